"""CLI subcommands contributed by this package (see srestream._cli)."""

from __future__ import annotations

import argparse


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this package's subcommands; each sets ``func=`` returning an exit code."""

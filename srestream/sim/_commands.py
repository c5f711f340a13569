"""CLI subcommands contributed by this package (see srestream._cli).

``srestream sim SCENARIO --out DIR [--seed N] [--formats jsonl,otlp]`` writes
the scenario's logs, traces, metrics, events and ``truth.json``;
``srestream sim SCENARIO --graph`` prints its service graph instead.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .._errors import ConfigError, Problem

if TYPE_CHECKING:
    from ._scenario import Scenario


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this package's subcommands; each sets ``func=`` returning an exit code."""
    p = subparsers.add_parser(
        "sim",
        help="simulate a scenario: logs, traces, metrics, events and ground truth",
        description="Write a seeded scenario's data and its truth.json into --out DIR.",
    )
    p.add_argument("scenario", help="scenario file (YAML), e.g. pipelines/scenarios/small.yaml")
    p.add_argument("--out", metavar="DIR", help="output directory (required unless --graph)")
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument(
        "--formats",
        metavar="LIST",
        default=None,
        help="comma-separated subset of jsonl,logfmt,syslog,otlp,openmetrics "
        "(default: the scenario's outputs)",
    )
    p.add_argument("--quiet", action="store_true", help="no summary at the end")
    p.add_argument(
        "--graph",
        action="store_true",
        help="print the service graph (names to use in faults and SLOs) and exit",
    )
    p.set_defaults(func=_cmd_sim)


def _cmd_sim(args: argparse.Namespace) -> int:
    from ._scenario import OUTPUT_FORMATS, load_scenario
    from ._simulate import simulate

    sc = load_scenario(args.scenario)
    if args.graph:
        return _print_graph(sc, args.seed)
    if not args.out:
        raise ConfigError([Problem(path="--out", message="an output directory is required")])
    formats = None
    if args.formats is not None:
        formats = [f.strip() for f in args.formats.split(",") if f.strip()]
        bad = [f for f in formats if f not in OUTPUT_FORMATS]
        if bad or not formats:
            raise ConfigError(
                [
                    Problem(
                        path="--formats",
                        message=f"unknown format(s) {bad or formats}; "
                        f"choose from {', '.join(OUTPUT_FORMATS)}",
                    )
                ]
            )
    result = simulate(sc, args.out, seed=args.seed, formats=formats)
    if not args.quiet:
        files = ", ".join(f"{k} {v:,}" for k, v in result.files.items())
        print(
            f"srestream: scenario {sc.name!r} -> {result.out_dir}: {result.spans:,} spans in "
            f"{result.seconds:.2f}s ({result.lines_per_second:,.0f} lines/s); {files}",
            file=sys.stderr,
        )
    return 0


def _print_graph(sc: Scenario, seed: int | None) -> int:
    from ._graph import build_graph

    graph = build_graph(sc.services, sc.seed if seed is None else seed)
    width = max(len(s.name) for s in graph.services)
    for s in graph.services:
        deps = ", ".join(s.dependencies) or "-"
        print(f"{s.name:<{width}}  {s.kind:<9}  {s.team:<11}  -> {deps}")
    return 0

"""The examples in the docstrings of srestream.patterns run, and the public surface is complete."""

from __future__ import annotations

import doctest
import importlib

import pytest

from srestream import patterns

MODULES = ["_masking", "_miner", "_stage", "_accuracy"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"srestream.patterns.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_public_names_are_exported() -> None:
    for name in patterns.__all__:
        assert getattr(patterns, name) is not None
    assert "TemplateMiner" in patterns.__all__ and "mine_templates" in patterns.__all__

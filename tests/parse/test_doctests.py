"""The examples in the parse package's docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "srestream.parse._time",
        "srestream.parse._levels",
        "srestream.parse._logfmt",
        "srestream.parse._syslog",
        "srestream.parse._access",
        "srestream.parse._template",
        "srestream.parse._trace",
        "srestream.parse._normalize",
    ],
)
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0

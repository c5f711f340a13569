"""The one error tree of srestream.

A bad *record* never raises: it becomes a :class:`~srestream.DeadLetter`.
These exceptions are for bad configuration, broken graphs and stages that fail.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

__all__ = [
    "ConfigError",
    "GraphError",
    "Problem",
    "SinkError",
    "SrestreamError",
    "StageError",
    "StoreError",
]


class SrestreamError(Exception):
    """Base of every error srestream raises on purpose."""


class Problem(msgspec.Struct, frozen=True):
    """One problem found in a configuration: where (a JSON path such as
    ``$.sinks.pager.inputs[0]``, with the file when known) and what."""

    path: str
    message: str
    file: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.path}: {self.message}"


class ConfigError(SrestreamError):
    """A configuration is invalid.  ``problems`` lists every problem found,
    not only the first one."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in configuration"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class GraphError(SrestreamError):
    """The pipeline graph cannot run as declared."""


class StageError(SrestreamError):
    """A stage failed while running.  ``stage_id`` names it; the original
    exception is the ``__cause__``."""

    def __init__(self, stage_id: str, message: str) -> None:
        self.stage_id = stage_id
        super().__init__(f"stage {stage_id!r} failed: {message}")


class SinkError(StageError):
    """A sink could not deliver its records."""


class StoreError(SrestreamError):
    """The checkpoint/incident store could not be read or written."""

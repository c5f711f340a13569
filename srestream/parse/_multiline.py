"""Multi-line records: Java and Python stack traces fold into the line that
starts them, before parsing (a parser then sees one record whose message
holds the whole trace, joined with ``\\n``).

A line continues the record before it (from the same source) when it is

* indented (Java ``\\tat ...``, ``    ... 5 more``; Python ``  File ...``);
* ``Caused by: ...``, ``Suppressed: ...``, ``Exception in thread ...``, or a
  Java exception line (``java.lang.IllegalStateException: ...``: a dotted
  class name ending in Exception/Error/Throwable);
* ``Traceback (most recent call last):``, Python's chained-exception
  sentences, blank lines inside a traceback, and the exception line that
  ends one (``ValueError: bad``);
* or, when ``start_pattern`` is set, any line that does not match it
  (lines that start a record match it, e.g. ``^\\d{4}-\\d{2}-\\d{2}``).

The folder holds one pending record per source across batch boundaries, so
the output does not depend on where batches were cut; the pending records
are part of the snapshot.  The last record of a source goes out when the
next record of that source starts, or when the input ends.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

from .._component import BuildContext, StageConfig
from .._errors import ConfigError, Problem
from .._records import RawLine
from .._registry import register

__all__ = ["FoldStackTracesStage", "StackTraceFolder", "fold_stack_traces"]

_JAVA_EXC = re.compile(r"(?:[A-Za-z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)\b(?::|$)")
_CONT_PREFIXES = (
    "Caused by: ",
    "Suppressed: ",
    "Exception in thread ",
    "Traceback (most recent call last):",
)
_PY_CHAIN = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)

# Python traceback state of a pending record
_NONE, _IN_TB, _AFTER_EXC = 0, 1, 2


def _joined(p: list[Any]) -> RawLine:
    first: RawLine = p[0]
    if p[2] == 1:
        return first
    return RawLine(source=first.source, position=first.position, offset=p[4], text="\n".join(p[3]))


class StackTraceFolder:
    """Folding logic with its pending records (see the module docstring)."""

    def __init__(self, *, start_pattern: str | None = None, max_lines: int = 1000) -> None:
        self.start = re.compile(start_pattern) if start_pattern else None
        self.max_lines = max_lines
        # source -> [first line folded so far, traceback state, line count]
        self.pending: dict[str, list[Any]] = {}

    def snapshot(self) -> dict[str, Any]:
        return {
            "pending": [[r.source, r.position, r.offset, r.text, st] for r, st in self._records()]
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.pending = {
            src: [
                RawLine(source=src, position=pos, offset=off, text=""),
                st,
                text.count("\n") + 1,
                text.split("\n"),
                off,
            ]
            for src, pos, off, text, st in state.get("pending", [])
        }

    def _records(self) -> list[tuple[RawLine, int]]:
        return [(_joined(p), p[1]) for p in self.pending.values()]

    def _continues(self, text: str, state: int) -> tuple[bool, int]:
        """Whether ``text`` continues a record in traceback ``state``, and the new state."""
        if self.start is not None:
            return self.start.match(text) is None, _NONE
        if not text or text.isspace():
            return state != _NONE, state
        c = text[0]
        if c == " " or c == "\t":
            return True, _IN_TB if state == _AFTER_EXC else state
        if c == "T" and text.startswith("Traceback (most recent call last):"):
            return True, _IN_TB
        if state == _IN_TB:
            return True, _AFTER_EXC  # the exception line that ends a Python traceback
        if state == _AFTER_EXC and text.startswith(_PY_CHAIN):
            return True, _AFTER_EXC
        if text.startswith(_CONT_PREFIXES):
            return True, _NONE
        if ("Exception" in text or "Error" in text or "Throwable" in text) and _JAVA_EXC.match(
            text
        ):
            return True, _NONE
        return False, _NONE

    def fold(self, batch: Sequence[RawLine]) -> list[RawLine]:
        """The records completed by ``batch`` (in the order they complete)."""
        out: list[RawLine] = []
        pending = self.pending
        for raw in batch:
            p = pending.get(raw.source)
            if p is not None:
                cont, state = self._continues(raw.text, p[1])
                if cont and p[2] < self.max_lines:
                    p[1] = state
                    p[2] += 1
                    p[3].append(raw.text)
                    p[4] = raw.offset
                    continue
                out.append(_joined(p))
            # [first line, traceback state, line count, texts, offset past the last line]
            pending[raw.source] = [raw, _NONE, 1, [raw.text], raw.offset]
        return out

    def flush(self) -> list[RawLine]:
        """Every pending record (end of input)."""
        out = [_joined(p) for p in self.pending.values()]
        self.pending.clear()
        return out

    async def __call__(
        self, batches: AsyncIterator[Sequence[RawLine]]
    ) -> AsyncIterator[list[RawLine]]:
        async with aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                yield self.fold(batch)
        rest = self.flush()
        if rest:
            yield rest


async def fold_stack_traces(
    batches: AsyncIterator[Sequence[RawLine]],
    /,
    *,
    start_pattern: str | None = None,
    max_lines: int = 1000,
) -> AsyncIterator[list[RawLine]]:
    """Fold stack-trace lines into the record that starts them."""
    folder = StackTraceFolder(start_pattern=start_pattern, max_lines=max_lines)
    async with aclosing(folder(batches)) as gen:  # type: ignore[type-var]
        async for out in gen:
            yield out


@register("Fold Java/Python stack-trace lines into the log line that starts them (before parsing).")
class FoldStackTracesStage(StageConfig, frozen=True, kw_only=True, tag="fold_stack_traces"):
    """Raw lines in, raw lines out (before a parse stage): indented lines,
    ``Caused by:``, Java exception lines and Python tracebacks join the line
    that starts their record (or, with ``start_pattern``, every line that
    does not match it).  One pending record per source is held across
    batches and checkpointed; the output is the same at any batch size."""

    start_pattern: str | None = None
    """Regex matching the first line of every record; other lines continue
    the record before (default: the built-in Java/Python trace rules)."""
    max_lines: int = 1000
    """Lines per record at most; a longer trace continues as a new record."""

    def build(self, ctx: BuildContext) -> StackTraceFolder:
        where = f"$.stages.{ctx.component_id}"
        problems = []
        if self.start_pattern:
            try:
                re.compile(self.start_pattern)
            except re.error as exc:
                problems.append(Problem(f"{where}.start_pattern", f"bad regex: {exc}"))
        if self.max_lines < 1:
            problems.append(Problem(f"{where}.max_lines", "must be at least 1"))
        if problems:
            raise ConfigError(problems)
        return StackTraceFolder(start_pattern=self.start_pattern, max_lines=self.max_lines)

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
next record of that source starts, when the input ends, or when its source
has been silent for ``flush_after``.

Idle flush.  A live service that logs an exception and then goes quiet (or
crashes) would otherwise hold its error record until it logs again, and
every alert that depends on it with it (Vector's multiline ``timeout_ms``).
So a pending record whose source has had no new line for ``flush_after`` of
wall-clock time (the stage's :class:`~srestream._component.Clock`) goes out
on the next batch the stage sees, empty batches included: sources yield
empty batches while idle (the tail source every poll).  Embedded (a
source's iterator fed straight to the stage, or in a pipeline graph, whose
runner passes a source's idle batches on) that is within a poll of
``flush_after``.  The lines of a batch
are folded *before* the idle check, so a source that has a line in the batch
is never flushed by it: a continuation that arrives late, but arrives, still
folds.  The idle timer is not checkpointed: after a restore it starts again.

Determinism.  The flush depends on the wall clock, so it could make a
replay's output depend on its speed (SPEC §2 says it must not).  A paced
replay (``--speed``) is slow on purpose: there a quiet file would
systematically have its record sent before other files' lines instead of
after, so under ``--speed`` the stage is built without the idle flush (a
replay ends, and its end sends every pending record).  In a replay as fast
as possible the flush can only change the output when a batch without any
line of a source reaches the stage ``flush_after`` or more after that
source's last line while its record is still pending: with one file that
never happens (each batch holds that file's lines); with several files
merged it needs a stall longer than ``flush_after`` (backpressure, a paused
machine) right there, and then a record goes out earlier, before other
files' lines, or a trace cut at the stall goes out as two records, as
Vector's would.  A pipeline that must be exact under such stalls sets a
long ``flush_after`` (e.g. ``1h``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

from .._component import BuildContext, Clock, StageConfig, SystemClock
from .._duration import Duration
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

DEFAULT_FLUSH_AFTER = Duration.parse("1s")


def _joined(p: list[Any]) -> RawLine:
    first: RawLine = p[0]
    if p[2] == 1:
        return first
    return RawLine(source=first.source, position=first.position, offset=p[4], text="\n".join(p[3]))


class StackTraceFolder:
    """Folding logic with its pending records (see the module docstring).

    ``flush_after`` is a :class:`Duration` (int ns) or text such as ``"1s"``,
    or None for no idle flush; ``clock`` tells the wall-clock time of each batch (the real one by
    default; a :class:`~srestream.testing.ManualClock` in tests)."""

    def __init__(
        self,
        *,
        start_pattern: str | None = None,
        max_lines: int = 1000,
        flush_after: Duration | str | None = DEFAULT_FLUSH_AFTER,
        clock: Clock | None = None,
    ) -> None:
        self.start = re.compile(start_pattern) if start_pattern else None
        self.max_lines = max_lines
        self.flush_after_ns: int | None = None
        if flush_after is not None:
            ns = int(Duration.parse(flush_after) if isinstance(flush_after, str) else flush_after)
            if ns <= 0:
                raise ValueError(f"flush_after must be positive, got {flush_after!r}")
            self.flush_after_ns = ns
        self.clock: Clock = clock or SystemClock()
        # source -> [first line, traceback state, line count, texts, offset
        #            past the last line, wall-clock ns of the last line]
        self.pending: dict[str, list[Any]] = {}

    def snapshot(self) -> dict[str, Any]:
        return {
            "pending": [[r.source, r.position, r.offset, r.text, st] for r, st in self._records()]
        }

    def restore(self, state: dict[str, Any]) -> None:
        now = self.clock.now_ns()  # the idle timers start again
        self.pending = {
            src: [
                RawLine(source=src, position=pos, offset=off, text=""),
                st,
                text.count("\n") + 1,
                text.split("\n"),
                off,
                now,
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

    def fold(self, batch: Sequence[RawLine], now_ns: int = 0) -> list[RawLine]:
        """The records completed by ``batch`` (in the order they complete);
        ``now_ns`` is the wall-clock time the batch arrived (for the idle
        flush, see :meth:`flush_idle`)."""
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
                    p[5] = now_ns
                    continue
                out.append(_joined(p))
            pending[raw.source] = [raw, _NONE, 1, [raw.text], raw.offset, now_ns]
        return out

    def flush_idle(self, now_ns: int) -> list[RawLine]:
        """The pending records whose source's last line arrived
        ``flush_after`` or more before ``now_ns`` (in the pending table's
        order, which depends on the input only)."""
        if self.flush_after_ns is None:
            return []
        horizon = now_ns - self.flush_after_ns
        idle = [src for src, p in self.pending.items() if p[5] <= horizon]
        return [_joined(self.pending.pop(src)) for src in idle]

    def flush(self) -> list[RawLine]:
        """Every pending record (end of input)."""
        out = [_joined(p) for p in self.pending.values()]
        self.pending.clear()
        return out

    async def __call__(
        self, batches: AsyncIterator[Sequence[RawLine]]
    ) -> AsyncIterator[list[RawLine]]:
        now_ns = self.clock.now_ns
        async with aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                now = now_ns()
                out = self.fold(batch, now) if batch else []
                if self.pending and self.flush_after_ns is not None:
                    # After the fold: a source with a line in this batch is not idle.
                    idle = self.flush_idle(now)
                    if idle:
                        out = idle + out  # they were pending before this batch's records
                yield out
        rest = self.flush()
        if rest:
            yield rest


async def fold_stack_traces(
    batches: AsyncIterator[Sequence[RawLine]],
    /,
    *,
    start_pattern: str | None = None,
    max_lines: int = 1000,
    flush_after: Duration | str | None = DEFAULT_FLUSH_AFTER,
    clock: Clock | None = None,
) -> AsyncIterator[list[RawLine]]:
    """Fold stack-trace lines into the record that starts them; a source
    silent for ``flush_after`` (wall clock, ``clock``) has its last record
    sent on the next batch, empty ones included."""
    folder = StackTraceFolder(
        start_pattern=start_pattern, max_lines=max_lines, flush_after=flush_after, clock=clock
    )
    async with aclosing(folder(batches)) as gen:  # type: ignore[type-var]
        async for out in gen:
            yield out


@register("Fold Java/Python stack-trace lines into the log line that starts them (before parsing).")
class FoldStackTracesStage(StageConfig, frozen=True, kw_only=True, tag="fold_stack_traces"):
    """Raw lines in, raw lines out (before a parse stage): indented lines,
    ``Caused by:``, Java exception lines and Python tracebacks join the line
    that starts their record (or, with ``start_pattern``, every line that
    does not match it).  One pending record per source is held across
    batches and checkpointed; the output is the same at any batch size.  A
    source silent for ``flush_after`` has its last record sent anyway, so an
    exception logged just before a service goes quiet is not held back."""

    start_pattern: str | None = None
    """Regex matching the first line of every record; other lines continue
    the record before (default: the built-in Java/Python trace rules)."""
    max_lines: int = 1000
    """Lines per record at most; a longer trace continues as a new record."""
    flush_after: Duration = DEFAULT_FLUSH_AFTER
    """How long a service's log may stay silent before its last record (say
    an exception and its stack trace, logged just before the service hung or
    crashed) goes out without waiting for a next line that may never come,
    so the alerts that depend on it are not held back.  Wall-clock time; a
    replay of several files that stalls longer than this inside a trace cuts
    the trace in two (a single file's replay never does); off in a paced
    replay (``--speed``), whose output must not depend on its speed.
    Checked on each batch the stage gets, including the empty batches an
    idle source sends every poll."""

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
        if self.flush_after <= 0:
            problems.append(Problem(f"{where}.flush_after", "must be positive"))
        if problems:
            raise ConfigError(problems)
        return StackTraceFolder(
            start_pattern=self.start_pattern,
            max_lines=self.max_lines,
            flush_after=None if ctx.speed else self.flush_after,  # see "Determinism"
            clock=ctx.clock,
        )

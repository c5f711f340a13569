"""Reading recorded files: the replay source.

Lines are read in 1 MiB chunks in a worker thread and yielded as batches of
:class:`RawLine`.  Several files are merged in event-time order by a k-way
merge whose lookahead is bounded by one chunk per file: the event time of
each line is read cheaply from its JSON ``time_field`` (a one-field msgspec
decoder skips everything else), a line without a readable time takes the
time of the line before it in the same file, so each file keeps its own
order and equal times go to the file listed first.  One file replayed as
fast as possible skips time decoding altogether.

At a speed factor (``--speed 60``: one hour of event time per minute) each
line is held until its event time, scaled, is due on the clock; the batch
gathered so far is yielded before each wait so pacing never delays records
that are already due.  Output records are the same at every speed.

The snapshot is, per file, the byte offset and line number just past the
last line yielded (and the files already read to the end); a restored
replay seeks there and goes on.  Positions are committed only when a batch
is yielded, so a replay cancelled mid-batch never counts unyielded lines.
"""

from __future__ import annotations

import glob
import operator
import os
from bisect import bisect_left, bisect_right
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from datetime import UTC, datetime
from itertools import repeat
from typing import IO, Any

import anyio
import msgspec

from .._component import BuildContext, Clock, SourceConfig, SystemClock
from .._errors import ConfigError, Problem
from .._records import RawLine
from .._registry import register
from ..parse._time import epoch_to_ns, parse_timestamp
from ._lines import cut_lines, last_line

__all__ = ["FileReplay", "ReplaySource", "expand_paths", "iter_lines"]

CHUNK_BYTES = 1 << 20
_NO_TIME = -(1 << 63)
"""Sort key of untimed lines at the start of a file: as early as possible."""


def expand_paths(patterns: list[str], base_dir: str, *, where: str) -> list[str]:
    """Expand globs (relative to ``base_dir``), keeping the given order and
    sorting the matches of each pattern; a pattern matching nothing is an error."""
    out: list[str] = []
    problems = []
    for i, pat in enumerate(patterns):
        full = pat if os.path.isabs(pat) else os.path.join(base_dir, pat)
        matches = sorted(glob.glob(full, recursive=True)) if glob.has_magic(full) else (
            [full] if os.path.exists(full) else []
        )
        if not matches:
            problems.append(Problem(path=f"{where}[{i}]", message=f"no file matches {pat!r}"))
        for m in matches:
            m = os.path.normpath(m)
            if m not in out:
                out.append(m)
    if problems:
        raise ConfigError(problems)
    return out


def _fast_ns(v: datetime | float | None) -> int | None:
    """ns of a time decoded by msgspec (RFC 3339 to the microsecond)."""
    if v is None:
        return None
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        return round(v.timestamp() * 1_000_000) * 1000
    try:
        return epoch_to_ns(v)
    except (ValueError, OverflowError):
        return None


def _head(c: _Cursor) -> tuple[int, int]:
    return c.times[c.i], c.index


_TIME_THEN_FILE = operator.itemgetter(0, 1)


class _Cursor:
    """One file being replayed: its buffered lines (at most one chunk) and
    where reading stands.  ``pos``/``line_no`` are what has been *read*; the
    replay's committed positions are kept apart."""

    __slots__ = (
        "eof",
        "f",
        "i",
        "index",
        "last_ts",
        "line_no",
        "lines",
        "name",
        "ordered",
        "path",
        "pos",
        "rest",
        "times",
    )

    def __init__(self, path: str, name: str, index: int, offset: int, line_no: int) -> None:
        self.path = path
        self.name = name
        self.index = index
        self.f: IO[bytes] | None = None
        self.pos = offset
        self.line_no = line_no
        self.rest = b""
        self.lines: list[RawLine] = []
        self.times: list[int] = []
        self.i = 0
        self.eof = False
        self.last_ts = _NO_TIME
        self.ordered = True
        """The buffered lines' keys never decrease (they can be bisected)."""

    def fill(self) -> None:
        """Read the next chunk (blocking: run in a worker thread)."""
        if self.f is None:
            self.f = open(self.path, "rb")  # noqa: SIM115  (closed by close())
            if self.pos:
                self.f.seek(self.pos)
        lines: list[RawLine] = []
        while not lines and not self.eof:
            chunk = self.f.read(CHUNK_BYTES)
            if not chunk:
                self.eof = True
                if self.rest:  # a last line without a newline is still a line
                    lines.append(last_line(self.name, self.rest, self.line_no, self.pos))
                    self.rest = b""
                break
            self.line_no, self.pos, self.rest = cut_lines(
                self.name, self.rest + chunk, self.line_no, self.pos, lines
            )
        self.lines = lines
        self.i = 0

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None


class FileReplay:
    """Running logic of a replay: yields batches of RawLine from files,
    merged in event-time order, optionally paced by event time."""

    def __init__(
        self,
        paths: list[str],
        *,
        batch_size: int = 1024,
        speed: float | None = None,
        time_field: str = "ts",
        clock: Clock | None = None,
        source_names: list[str] | None = None,
    ) -> None:
        self.paths = paths
        self.names = source_names or paths
        self.batch_size = max(1, batch_size)
        self.speed = speed
        self.time_field = time_field
        self.clock = clock
        # path -> (byte offset, line number) just past the last line yielded,
        # and (merging) the merge key of that line, for the untimed lines after it
        self._done: dict[str, tuple[int, ...]] = {}
        self._finished: set[str] = set()
        # The common forms (RFC 3339, epoch numbers) decode in C; anything
        # else falls back to the generic decoder and parse_timestamp.
        self._ts_fast = msgspec.json.Decoder(
            msgspec.defstruct(
                "_TimeFast", [(time_field, datetime | int | float | None, None)]
            )
        )
        self._ts_decoder = msgspec.json.Decoder(
            msgspec.defstruct("_TimeOnly", [(time_field, Any, None)])
        )
        # Positions of lines gathered into the batch being built, committed
        # (moved to _done/_finished) only when that batch is yielded.
        self._pending: dict[str, tuple[int, ...]] = {}
        self._pending_finished: list[str] = []

    def snapshot(self) -> dict[str, Any]:
        return {
            "positions": {p: list(v) for p, v in self._done.items()},
            "finished": sorted(self._finished),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._done = {p: tuple(int(x) for x in v) for p, v in state.get("positions", {}).items()}
        self._finished = set(state.get("finished", ()))

    def _commit(self) -> None:
        self._done.update(self._pending)
        self._pending.clear()
        self._finished.update(self._pending_finished)
        self._pending_finished.clear()

    def _cursors(self) -> list[_Cursor]:
        out = []
        for i, (path, name) in enumerate(zip(self.paths, self.names)):
            if path in self._finished:
                continue
            done = self._done.get(path, (0, 0))
            c = _Cursor(path, name, i, done[0], done[1])
            if len(done) > 2:
                c.last_ts = done[2]
            out.append(c)
        return out

    async def __call__(self) -> AsyncGenerator[list[RawLine], None]:
        self._pending.clear()
        self._pending_finished.clear()
        cursors = self._cursors()
        try:
            if len(cursors) <= 1 and not self.speed:
                gen = self._sequential(cursors)
            else:
                gen = self._merged(cursors)
            async for batch in gen:
                self._commit()
                yield batch
            self._commit()
        finally:
            for c in cursors:
                c.close()

    async def _sequential(self, cursors: list[_Cursor]) -> AsyncIterator[list[RawLine]]:
        """One file, no pacing: chunks cut into batches, no time decoding."""
        size = self.batch_size
        for c in cursors:
            while True:
                await anyio.to_thread.run_sync(c.fill)
                lines = c.lines
                for k in range(0, len(lines), size):
                    batch = lines[k : k + size]
                    last = batch[-1]
                    self._pending[c.path] = (last.offset, last.position)
                    if c.eof and k + size >= len(lines):
                        self._pending_finished.append(c.path)
                    yield batch
                if c.eof:
                    if not lines:
                        self._pending_finished.append(c.path)
                    break

    async def _refill(self, c: _Cursor) -> bool:
        """Buffer the next lines of ``c`` with their sort keys; False at its end."""
        while c.i >= len(c.lines):
            if c.eof:
                return False
            await anyio.to_thread.run_sync(self._fill_keyed, c)
        return True

    def _fill_keyed(self, c: _Cursor) -> None:
        """Read the next chunk of ``c`` and the merge key of each line
        (blocking: runs in a worker thread)."""
        c.fill()
        keys = []
        prev = c.last_ts
        for ts in self._event_times([ln.text for ln in c.lines]):
            if ts is not None:
                prev = ts
            keys.append(prev)
        c.times = keys
        c.ordered = all(map(operator.le, keys, keys[1:]))
        if keys:
            c.last_ts = keys[-1]

    def _event_times(self, texts: list[str]) -> list[int | None]:
        """Event times of lines: one msgspec call for a chunk of JSON lines
        whose times are RFC 3339 or epoch numbers; line by line otherwise."""
        try:
            docs = self._ts_fast.decode_lines("\n".join(texts))
        except msgspec.DecodeError:
            docs = None
        if docs is None or len(docs) != len(texts):  # a bad or blank line: one by one
            return [self._event_ns(t) for t in texts]
        field = self.time_field
        return [_fast_ns(getattr(d, field)) for d in docs]

    async def _merged(self, cursors: list[_Cursor]) -> AsyncIterator[list[RawLine]]:
        """k-way merge on (event time, file index); each file keeps its order.

        The order is decided first (:meth:`_next_segment`), pacing applies
        to it after, so the records are the same at every speed and batch
        size.  Checkpoint positions come from the lines of each yielded
        batch (:meth:`_commit_lines`)."""
        self._path_of = {c.name: c.path for c in cursors}
        self._ending: dict[str, int] = {}
        active = []
        for c in cursors:
            if await self._refill(c):
                active.append(c)
            else:
                self._pending_finished.append(c.path)
                c.close()
        pace = _Pacer(self.speed, self.clock) if self.speed else None
        size = self.batch_size
        batch: list[RawLine] = []
        keys: list[int] = []
        while active:
            lines, times = self._next_segment(active)
            if pace is None:
                batch.extend(lines)
                keys.extend(times)
            else:
                for ln, t in zip(lines, times):
                    if pace.due(t):
                        if batch:
                            self._commit_lines(batch, keys)
                            yield batch
                            batch, keys = [], []
                        await pace.wait(t)
                    batch.append(ln)
                    keys.append(t)
            while len(batch) >= size:
                out, batch = batch[:size], batch[size:]
                self._commit_lines(out, keys[:size])
                keys = keys[size:]
                yield out
            for c in [c for c in active if c.i >= len(c.lines)]:
                if not await self._refill(c):
                    active.remove(c)
                    c.close()
                    self._ending[c.path] = c.pos
                    self._commit_lines([], [])
        if batch:
            self._commit_lines(batch, keys)
            yield batch
        self._pending_finished.extend(self._ending)
        self._ending.clear()

    def _commit_lines(self, out: list[RawLine], keys: list[int]) -> None:
        """Positions to commit with the batch ``out``: the last line of each
        file in it (with its merge key); a file read to its end is finished
        once its last line is."""
        seen: set[str] = set()
        n = len(self._path_of)
        for k in range(len(out) - 1, -1, -1):
            ln = out[k]
            if ln.source not in seen:
                seen.add(ln.source)
                self._pending[self._path_of[ln.source]] = (ln.offset, ln.position, keys[k])
                if len(seen) == n:
                    break
        for path, end in list(self._ending.items()):
            if self._pending.get(path, self._done.get(path, (0, 0)))[0] >= end:
                self._pending_finished.append(path)
                del self._ending[path]

    @staticmethod
    def _next_segment(active: list[_Cursor]) -> tuple[list[RawLine], list[int]]:
        """The next lines in merge order, taken from the buffers.

        The merge is the classic one (always the smallest head by (time,
        file index)), computed in bulk: with h the smallest last buffered
        time, every line before h in ordered buffers comes out before any
        line at or after h whatever the files hold further on, so they are
        sorted together at once.  Otherwise one run of the file with the
        smallest head goes out, up to the next head of another file."""
        if len(active) == 1:
            c = active[0]
            i, c.i = c.i, len(c.lines)
            return c.lines[i:], c.times[i:]
        if all(c.ordered for c in active):
            h = min(c.times[-1] for c in active)
            parts = [(c, bisect_left(c.times, h, c.i)) for c in active]
            parts = [(c, j) for c, j in parts if j > c.i]
            if len(parts) == 1:
                c, j = parts[0]
                i, c.i = c.i, j
                return c.lines[i:j], c.times[i:j]
            if parts:
                keyed: list[tuple[int, int, RawLine]] = []
                for c, j in parts:
                    keyed.extend(zip(c.times[c.i : j], repeat(c.index), c.lines[c.i : j]))
                    c.i = j
                keyed.sort(key=_TIME_THEN_FILE)
                return [x[2] for x in keyed], [x[0] for x in keyed]
        c = min(active, key=_head)
        lt, lidx = min(_head(o) for o in active if o is not c)
        bound = lt if c.index < lidx else lt - 1
        i, times = c.i, c.times
        if c.ordered:
            j = bisect_right(times, bound, i)
        else:
            j, n = i, len(times)
            while j < n and times[j] <= bound:
                j += 1
        c.i = j
        return c.lines[i:j], times[i:j]

    def _event_ns(self, text: str) -> int | None:
        """Event time of a line, or None.  RFC 3339 times are read to the
        microsecond here (enough to order and pace lines)."""
        try:
            v = getattr(self._ts_fast.decode(text), self.time_field)
        except msgspec.DecodeError:
            try:
                v = getattr(self._ts_decoder.decode(text), self.time_field)
                return parse_timestamp(v) if v is not None else None
            except (msgspec.DecodeError, ValueError, TypeError, OverflowError):
                return None
        return _fast_ns(v)


class _Pacer:
    """Holds lines so that event time advances ``speed`` times faster than
    the clock.  The first timed line sets the origin."""

    def __init__(self, speed: float, clock: Clock | None) -> None:
        self.speed = speed
        self.clock = clock or SystemClock()
        self.first_event: int | None = None
        self.first_wall = 0

    def _delay_s(self, event_ns: int) -> float:
        if self.first_event is None:
            self.first_event = event_ns
            self.first_wall = self.clock.now_ns()
            return 0.0
        due = self.first_wall + (event_ns - self.first_event) / self.speed
        return (due - self.clock.now_ns()) / 1e9

    def due(self, event_ns: int) -> bool:
        """True when a line at ``event_ns`` must wait before it goes out."""
        if event_ns == _NO_TIME:
            return False
        return self._delay_s(event_ns) > 0

    async def wait(self, event_ns: int) -> None:
        delay = self._delay_s(event_ns)
        if delay > 0:
            await self.clock.sleep(delay)


@register(
    "Replay recorded line files (JSONL or any text), merged in event-time order, "
    "as fast as possible or at --speed."
)
class ReplaySource(SourceConfig, frozen=True, kw_only=True, tag="replay"):
    """Reads recorded files in 1 MiB chunks and yields their lines.  Several
    files are merged in event-time order (``time_field``; a line without a
    time keeps its place after the line before it in its file; ties go to
    the file listed first), with one chunk of lookahead per file.  With
    ``--speed N`` each line waits until its event time, N times faster than
    the clock; the records are the same at every speed and batch size.  The
    checkpoint is each file's offset: a resumed replay goes on exactly after
    the last line yielded."""

    paths: list[str]
    """Files or glob patterns, relative to the pipeline file."""
    time_field: str = "ts"
    """JSON field holding event time (RFC 3339 or epoch), used to merge
    several files in event-time order and to pace --speed replays."""

    def build(self, ctx: BuildContext) -> FileReplay:
        paths = expand_paths(self.paths, ctx.base_dir, where=f"$.sources.{ctx.component_id}.paths")
        rel = [os.path.relpath(p, ctx.base_dir) for p in paths]
        return FileReplay(
            paths,
            batch_size=ctx.batch_size,
            speed=ctx.speed,
            time_field=self.time_field,
            clock=ctx.clock,
            source_names=rel,
        )


def iter_lines(path: str) -> Iterator[str]:
    """Lines of a file without their line endings (for tests and tools)."""
    with open(path, "rb") as f:
        for ln in f:
            yield ln.rstrip(b"\r\n").decode("utf-8", "replace")

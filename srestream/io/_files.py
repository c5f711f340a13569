"""Reading recorded files: the replay source.

Lines are read in 1 MiB chunks in a worker thread, split on ``\\n`` (a
trailing ``\\r`` is dropped) and yielded as batches of :class:`RawLine`.
The snapshot is, per file, the byte offset and line number just past the
last line yielded; a restored replay seeks there and goes on.
"""

from __future__ import annotations

import glob
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import msgspec

from .._component import BuildContext, Clock, SourceConfig
from .._errors import ConfigError, Problem
from .._records import RawLine
from .._registry import register
from ..parse._time import parse_timestamp

__all__ = ["ReplaySource", "FileReplay", "expand_paths"]

CHUNK_BYTES = 1 << 20


def expand_paths(patterns: list[str], base_dir: str, *, where: str) -> list[str]:
    """Expand globs (relative to ``base_dir``), keeping the given order and
    sorting the matches of each pattern; a pattern matching nothing is an error."""
    out: list[str] = []
    problems = []
    for i, pat in enumerate(patterns):
        full = pat if os.path.isabs(pat) else os.path.join(base_dir, pat)
        matches = sorted(glob.glob(full)) if glob.has_magic(full) else (
            [full] if os.path.exists(full) else []
        )
        if not matches:
            problems.append(Problem(path=f"{where}[{i}]", message=f"no file matches {pat!r}"))
        out.extend(os.path.normpath(m) for m in matches if m not in out)
    if problems:
        raise ConfigError(problems)
    return out


def _read_chunk(f: Any) -> bytes:
    data: bytes = f.read(CHUNK_BYTES)
    return data


class FileReplay:
    """Running logic of a replay: yields batches of RawLine from files in
    order, optionally paced by event time."""

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
        self.batch_size = batch_size
        self.speed = speed
        self.time_field = time_field
        self.clock = clock
        # path -> (byte offset, line number) just past the last line yielded
        self._done: dict[str, tuple[int, int]] = {}
        self._finished: set[str] = set()
        self._ts_decoder = msgspec.json.Decoder(
            msgspec.defstruct("_TimeOnly", [(time_field, Any, None)])
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "positions": {p: list(v) for p, v in self._done.items()},
            "finished": sorted(self._finished),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._done = {p: (int(v[0]), int(v[1])) for p, v in state.get("positions", {}).items()}
        self._finished = set(state.get("finished", ()))

    async def __call__(self) -> AsyncIterator[list[RawLine]]:
        pace = _Pacer(self.speed, self.clock) if self.speed else None
        for path, name in zip(self.paths, self.names):
            if path in self._finished:
                continue
            offset, line_no = self._done.get(path, (0, 0))
            async for batch in self._read(path, name, offset, line_no):
                if pace is not None:
                    await pace.wait_for(self._event_ns(batch[-1].text))
                last = batch[-1]
                self._done[path] = (last.offset, last.position)
                yield batch
            self._finished.add(path)

    async def _read(
        self, path: str, name: str, offset: int, line_no: int
    ) -> AsyncIterator[list[RawLine]]:
        f = await anyio.to_thread.run_sync(open, path, "rb")
        try:
            if offset:
                await anyio.to_thread.run_sync(f.seek, offset)
            rest = b""
            batch: list[RawLine] = []
            size = self.batch_size
            while True:
                chunk = await anyio.to_thread.run_sync(_read_chunk, f)
                if not chunk:
                    if rest:  # a last line without a newline is still a line
                        line_no += 1
                        offset += len(rest)
                        batch.append(_raw(name, line_no, offset, rest))
                    if batch:
                        yield batch
                    return
                data = rest + chunk
                lines = data.split(b"\n")
                rest = lines.pop()
                for ln in lines:
                    line_no += 1
                    offset += len(ln) + 1
                    batch.append(_raw(name, line_no, offset, ln))
                    if len(batch) >= size:
                        yield batch
                        batch = []
        finally:
            await anyio.to_thread.run_sync(f.close)

    def _event_ns(self, text: str) -> int | None:
        try:
            v = getattr(self._ts_decoder.decode(text), self.time_field)
        except (msgspec.DecodeError, ValueError):
            return None
        return parse_timestamp(v) if v is not None else None


def _raw(name: str, line_no: int, offset: int, ln: bytes) -> RawLine:
    if ln[-1:] == b"\r":
        ln = ln[:-1]
    return RawLine(source=name, position=line_no, offset=offset, text=ln.decode("utf-8", "replace"))


class _Pacer:
    """Sleeps so that event time advances ``speed`` times faster than wall time."""

    def __init__(self, speed: float, clock: Clock | None) -> None:
        from .._component import SystemClock

        self.speed = speed
        self.clock = clock or SystemClock()
        self.first_event: int | None = None
        self.first_wall = 0

    async def wait_for(self, event_ns: int | None) -> None:
        if event_ns is None:
            return
        if self.first_event is None:
            self.first_event = event_ns
            self.first_wall = self.clock.now_ns()
            return
        due = self.first_wall + (event_ns - self.first_event) / self.speed
        delay = (due - self.clock.now_ns()) / 1e9
        if delay > 0:
            await self.clock.sleep(delay)


@register("Replay recorded line files (JSONL or any text), in order, as fast as possible or at --speed.")
class ReplaySource(SourceConfig, frozen=True, kw_only=True, tag="replay"):
    paths: list[str]
    """Files or glob patterns, relative to the pipeline file."""
    time_field: str = "ts"
    """JSON field holding event time, used only to pace --speed replays."""

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

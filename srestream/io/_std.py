"""stdin as a source, stdout as a sink."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio

from .._component import BuildContext, SinkConfig, SourceConfig
from .._output import encode_lines
from .._records import RawLine
from .._registry import register

__all__ = ["StdinSource", "StdoutSink", "read_stdin", "write_stdout"]


async def read_stdin(*, batch_size: int = 1024, fd: int | None = None) -> AsyncIterator[list[RawLine]]:
    """Lines from standard input, a batch per read (at most ``batch_size``)."""
    fd = sys.stdin.fileno() if fd is None else fd
    rest = b""
    line_no = 0
    offset = 0
    while True:
        chunk = await anyio.to_thread.run_sync(os.read, fd, 1 << 16, abandon_on_cancel=True)
        if not chunk:
            if rest:
                line_no += 1
                offset += len(rest)
                yield [_raw(line_no, offset, rest)]
            return
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        batch: list[RawLine] = []
        for ln in lines:
            line_no += 1
            offset += len(ln) + 1
            batch.append(_raw(line_no, offset, ln))
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


def _raw(line_no: int, offset: int, ln: bytes) -> RawLine:
    if ln[-1:] == b"\r":
        ln = ln[:-1]
    return RawLine(source="stdin", position=line_no, offset=offset, text=ln.decode("utf-8", "replace"))


async def write_stdout(batches: AsyncIterator[Sequence[Any]], /) -> None:
    """Write every record as a JSON line to standard output."""
    out = sys.stdout.buffer
    async for batch in batches:
        out.write(encode_lines(batch))
        out.flush()


@register("Read lines from standard input.")
class StdinSource(SourceConfig, frozen=True, kw_only=True, tag="stdin"):
    def build(self, ctx: BuildContext) -> Any:
        size = ctx.batch_size
        return lambda: read_stdin(batch_size=size)


@register("Write records as JSON lines to standard output.")
class StdoutSink(SinkConfig, frozen=True, kw_only=True, tag="stdout"):
    def build(self, ctx: BuildContext) -> Any:
        return write_stdout

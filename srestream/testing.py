"""Fakes for tests, ours and yours: real objects with the same seams, no mocks.

* :class:`ListSource` yields given records in batches (and snapshots its
  position like a real source).
* :class:`CaptureSink` keeps every record it receives, optionally slowly.
* :class:`ManualClock` is a clock that moves only when told to.
* :func:`run_stage` runs a stage over a list of records at a batch size and
  returns its output as one list.

>>> import anyio
>>> from srestream import map_records
>>> anyio.run(run_stage, map_records(str.upper), ["a", "b"])
['A', 'B']
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import aclosing
from typing import Any

import anyio

from ._component import Batch, BuildContext, SinkConfig, SourceConfig
from ._registry import register

__all__ = ["CaptureSink", "ListSource", "ManualClock", "batched", "run_stage"]


def batched(records: Sequence[Any], size: int) -> list[list[Any]]:
    """``records`` cut into lists of ``size``."""
    return [list(records[i : i + size]) for i in range(0, len(records), size)]


class ListSource:
    """A source over a list of records.  ``delay_seconds`` sleeps between
    batches (to simulate a slow producer); the snapshot is the index of the
    next record, so it resumes like a file source."""

    def __init__(
        self, records: Sequence[Any], *, batch_size: int = 1024, delay_seconds: float = 0.0
    ) -> None:
        self.records = records if isinstance(records, list) else list(records)
        self.batch_size = batch_size
        self.delay_seconds = delay_seconds
        self.position = 0

    def snapshot(self) -> int:
        return self.position

    def restore(self, state: int) -> None:
        self.position = int(state)

    async def __call__(self) -> AsyncIterator[list[Any]]:
        while self.position < len(self.records):
            end = min(self.position + self.batch_size, len(self.records))
            batch = self.records[self.position : end]
            if self.delay_seconds:
                await anyio.sleep(self.delay_seconds)
            self.position = end
            yield batch

    def __aiter__(self) -> AsyncIterator[list[Any]]:
        return self()


class CaptureSink:
    """A sink that keeps what it receives in ``records`` (and ``batches``).
    ``delay_seconds`` sleeps per batch: a slow consumer; ``on_batch`` is
    called with each batch, for assertions made while the graph runs."""

    def __init__(
        self,
        *,
        delay_seconds: float = 0.0,
        on_batch: Callable[[Batch], None] | None = None,
    ) -> None:
        self.records: list[Any] = []
        self.batches: list[Batch] = []
        self.delay_seconds = delay_seconds
        self.on_batch = on_batch

    async def __call__(self, batches: AsyncIterator[Batch], /) -> None:
        async with aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                if self.delay_seconds:
                    await anyio.sleep(self.delay_seconds)
                self.batches.append(batch)
                self.records.extend(batch)
                if self.on_batch is not None:
                    self.on_batch(batch)

    def snapshot(self) -> int:
        return len(self.records)

    def restore(self, state: int) -> None:
        del self.records[int(state) :]


class ManualClock:
    """A clock for tests: ``now_ns`` moves only by :meth:`advance`; a
    ``sleep`` returns once the clock has been advanced past its deadline."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns
        self._waiters: list[tuple[int, int, anyio.Event]] = []
        self._seq = 0

    def now_ns(self) -> int:
        return self._now

    async def sleep(self, seconds: float) -> None:
        deadline = self._now + round(seconds * 1e9)
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        ev = anyio.Event()
        self._seq += 1
        heapq.heappush(self._waiters, (deadline, self._seq, ev))
        await ev.wait()

    def advance(self, seconds: float) -> None:
        self._now += round(seconds * 1e9)
        while self._waiters and self._waiters[0][0] <= self._now:
            heapq.heappop(self._waiters)[2].set()

    @property
    def sleepers(self) -> int:
        """How many sleeps are waiting on this clock."""
        return len(self._waiters)


async def run_stage(
    stage: Callable[..., AsyncIterator[Batch]],
    records: Iterable[Any],
    *,
    batch_size: int = 1024,
    **options: Any,
) -> list[Any]:
    """Run ``stage`` alone over ``records`` cut into batches; return every
    record it yields, in order."""
    source = ListSource(list(records), batch_size=batch_size)
    out: list[Any] = []
    async with aclosing(stage(source(), **options)) as gen:  # type: ignore[type-var]
        async for batch in gen:
            out.extend(batch)
    return out


@register("Records given inline in the pipeline file (tests and examples).")
class ListSourceConfig(SourceConfig, frozen=True, kw_only=True, tag="list"):
    records: list[Any] = []

    def build(self, ctx: BuildContext) -> ListSource:
        return ListSource(self.records, batch_size=ctx.batch_size)


@register("Keep records in memory (tests; read them from Runner.logic(id).records).")
class CaptureSinkConfig(SinkConfig, frozen=True, kw_only=True, tag="capture"):
    delay_seconds: float = 0.0

    def build(self, ctx: BuildContext) -> CaptureSink:
        return CaptureSink(delay_seconds=self.delay_seconds)


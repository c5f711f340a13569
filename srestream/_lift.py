"""Lift plain functions into stages, and the simplest built-in stages.

>>> import anyio
>>> from srestream.testing import run_stage
>>> double = map_records(lambda x: 2 * x)
>>> anyio.run(run_stage, double, [1, 2, 3])
[2, 4, 6]
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import Any, TypeVar

from ._component import Batch, BuildContext, StageConfig
from ._registry import register

__all__ = ["filter_records", "map_batches", "map_records", "passthrough"]

In = TypeVar("In")
Out = TypeVar("Out")

Stage = Callable[[AsyncIterator[Sequence[Any]]], AsyncIterator[Sequence[Any]]]


def map_batches(fn: Callable[[Sequence[In]], Sequence[Out]]) -> Stage:
    """A stage that applies ``fn`` to each batch and yields its result."""

    async def stage(batches: AsyncIterator[Sequence[In]], /) -> AsyncIterator[Sequence[Out]]:
        async with aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                yield fn(batch)

    stage.__name__ = getattr(fn, "__name__", "map_batches")
    return stage


def map_records(fn: Callable[[In], Out | None]) -> Stage:
    """A stage that applies ``fn`` to each record; a ``None`` result drops
    that record (use a dead-letter output for anything that is not a choice)."""

    def per_batch(batch: Sequence[In]) -> list[Out]:
        out = [fn(r) for r in batch]
        return [r for r in out if r is not None]

    per_batch.__name__ = getattr(fn, "__name__", "map_records")
    return map_batches(per_batch)


def filter_records(predicate: Callable[[In], bool]) -> Stage:
    """A stage that keeps the records for which ``predicate`` is true."""

    def per_batch(batch: Sequence[In]) -> list[In]:
        return [r for r in batch if predicate(r)]

    per_batch.__name__ = getattr(predicate, "__name__", "filter_records")
    return map_batches(per_batch)


async def passthrough(batches: AsyncIterator[Batch], /) -> AsyncIterator[Batch]:
    """A stage that yields its input unchanged (for wiring and benchmarks)."""
    async with aclosing(batches):  # type: ignore[type-var]
        async for batch in batches:
            yield batch


@register("Forward batches unchanged (wiring, fan-in/fan-out points, benchmarks).")
class PassthroughStage(StageConfig, frozen=True, kw_only=True, tag="passthrough"):
    def build(self, ctx: BuildContext) -> Stage:
        return passthrough

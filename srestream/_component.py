"""Components: frozen config Structs that ``build`` running logic.

A pipeline file names sources, stages and sinks; each entry decodes (on its
``type`` tag) into one of the config Structs registered in
:mod:`srestream._registry`.  ``build(ctx)`` turns a config into the running
logic, which is kept apart from the config (STYLE 4):

* a **source** logic is called with no argument and returns an async
  iterator of batches;
* a **stage** logic is called with the upstream async iterator of batches
  and returns an async iterator of batches;
* a **sink** logic is called with the upstream and returns a coroutine that
  consumes it.

Logic that has state to keep across restarts has ``snapshot()`` returning
msgspec-encodable builtins and ``restore(state)``.  A source's snapshot
reflects exactly the batches it has yielded.  A sink may have ``flush()``
(called before each checkpoint).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import anyio
import msgspec

from ._records import DeadLetter

__all__ = [
    "Batch",
    "BuildContext",
    "Clock",
    "Outputs",
    "SinkConfig",
    "Snapshottable",
    "SourceConfig",
    "StageConfig",
    "SystemClock",
]

Batch = Sequence[Any]
"""A batch of records.  Batches are read-only once yielded: a stage that
changes records yields new ones."""


@runtime_checkable
class Clock(Protocol):
    """Wall-clock time, for pacing replays, lag and checkpoint intervals.
    Event time never comes from here: it comes from the records."""

    def now_ns(self) -> int: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    __slots__ = ()

    def now_ns(self) -> int:
        return time.time_ns()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


@runtime_checkable
class Snapshottable(Protocol):
    def snapshot(self) -> Any: ...

    def restore(self, state: Any) -> None: ...


class Outputs:
    """The named side outputs of one stage (``deadletter``, ``late``, ...).

    A stage appends to them synchronously, without awaiting; the graph runner
    forwards what is pending each time the stage yields or asks for its next
    upstream batch.  Used alone (outside a graph), pending records stay here
    until :meth:`take` collects them.
    """

    __slots__ = ("_pending", "stage_id")

    def __init__(self, stage_id: str = "") -> None:
        self.stage_id = stage_id
        self._pending: dict[str, list[Any]] = {}

    def emit(self, name: str, records: Sequence[Any]) -> None:
        """Queue ``records`` on the side output ``name``."""
        if records:
            try:
                self._pending[name].extend(records)
            except KeyError:
                self._pending[name] = list(records)

    def emit_one(self, name: str, record: Any) -> None:
        try:
            self._pending[name].append(record)
        except KeyError:
            self._pending[name] = [record]

    def deadletter(self, raw: str, source: str, position: int, reason: str) -> None:
        """Send one unusable record to ``<stage>.deadletter`` with the reason."""
        self.emit_one(
            "deadletter",
            DeadLetter(raw=raw, source=source, position=position, reason=reason, stage=self.stage_id),
        )

    def take(self) -> dict[str, list[Any]]:
        """Return and clear everything pending, by output name."""
        pending = self._pending
        if pending:
            self._pending = {}
        return pending

    @property
    def pending(self) -> bool:
        """True when records wait to be forwarded.  (Deliberately not
        ``__bool__``: ``outputs or Outputs()`` must never drop the runner's.)"""
        return bool(self._pending)


class BuildContext(msgspec.Struct, kw_only=True):
    """What a component gets when it is built for a run."""

    component_id: str
    outputs: Outputs
    batch_size: int = 1024
    clock: Clock = msgspec.field(default_factory=SystemClock)
    speed: float | None = None
    """Replay speed factor (None: as fast as possible)."""
    base_dir: str = "."
    """Directory of the pipeline file: relative paths in configs resolve here."""
    out_dir: str | None = None
    """``--out DIR`` from the command line, for directory sinks."""

    def resolve(self, path: str) -> str:
        import os

        return path if os.path.isabs(path) else os.path.normpath(os.path.join(self.base_dir, path))


class _Component(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"
):
    """Base of all component configs.  Subclasses set ``tag=`` to their type."""

    kind: ClassVar[str] = ""
    side_outputs: ClassVar[tuple[str, ...]] = ()
    """Names of the side outputs this component can emit (``deadletter``...)."""


class SourceConfig(_Component, frozen=True, kw_only=True):
    kind: ClassVar[str] = "source"

    def build(self, ctx: BuildContext) -> Callable[[], AsyncIterator[Batch]]:
        raise NotImplementedError


class StageConfig(_Component, frozen=True, kw_only=True):
    kind: ClassVar[str] = "stage"
    inputs: list[str]

    def build(self, ctx: BuildContext) -> Callable[[AsyncIterator[Batch]], AsyncIterator[Batch]]:
        raise NotImplementedError


class SinkConfig(_Component, frozen=True, kw_only=True):
    kind: ClassVar[str] = "sink"
    inputs: list[str]

    def build(
        self, ctx: BuildContext
    ) -> Callable[[AsyncIterator[Batch]], Coroutine[Any, Any, None]]:
        raise NotImplementedError

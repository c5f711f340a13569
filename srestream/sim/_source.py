"""The ``sim`` source: a scenario simulated inside the pipeline process.

It yields the very lines ``srestream sim`` would write to ``logs.jsonl`` (or
``events.jsonl``), as :class:`~srestream.RawLine` batches, so a pipeline can
run on a synthetic world without files: ``sim → parse_json → ...``.  The
snapshot is the number of lines yielded; a restored source regenerates the
scenario (deterministic) and skips them.  With a replay speed, batches are
paced by event time like the replay source.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import anyio.lowlevel

from .._component import BuildContext, Clock, SourceConfig
from .._records import RawLine
from .._registry import register
from ._engine import run_engine
from ._faults import fault_windows
from ._formats import JsonlWriter
from ._graph import build_graph
from ._oncall import event_lines, oncall_events
from ._scenario import Scenario, load_scenario

__all__ = ["SimReplay", "SimSource", "iter_log_lines"]


class _Collect:
    """A file-like sink for one chunk's text."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, s: str) -> int:
        self.parts.append(s)
        return len(s)

    def take(self) -> list[str]:
        text = "".join(self.parts)
        self.parts.clear()
        return text.split("\n")[:-1] if text else []

    def close(self) -> None:
        pass


def iter_log_lines(sc: Scenario) -> Iterator[tuple[list[int], list[str]]]:
    """(end times, JSON log lines) per engine chunk, as ``logs.jsonl`` holds them."""
    graph = build_graph(sc.services, sc.seed)
    sink = _Collect()
    writer = JsonlWriter(sink, graph, sc.environment)  # type: ignore[arg-type]
    for chunk in run_engine(sc, graph):
        writer.write(chunk)
        lines = sink.take()
        if lines:
            yield [s[0] for s in chunk.seen], lines


def _iter_event_lines(sc: Scenario) -> Iterator[tuple[list[int], list[str]]]:
    graph = build_graph(sc.services, sc.seed)
    events, _ = oncall_events(sc, graph, fault_windows(sc))
    yield [e.ts_ns for e in events], event_lines(events)


class SimReplay:
    """Running logic of the ``sim`` source."""

    def __init__(
        self,
        sc: Scenario,
        *,
        records: str,
        batch_size: int,
        speed: float | None,
        clock: Clock,
        source_name: str,
    ) -> None:
        self.sc = sc
        self.records = records
        self.batch_size = max(1, batch_size)
        self.speed = speed
        self.clock = clock
        self.source_name = source_name
        self.position = 0

    def snapshot(self) -> dict[str, Any]:
        return {"position": self.position}

    def restore(self, state: dict[str, Any]) -> None:
        self.position = int(state.get("position", 0))

    async def __call__(self) -> AsyncIterator[list[RawLine]]:
        gen = iter_log_lines(self.sc) if self.records == "logs" else _iter_event_lines(self.sc)
        skip = self.position
        n = 0
        size = self.batch_size
        name = self.source_name
        t_wall0 = self.clock.now_ns()
        t_event0: int | None = None
        for times, lines in gen:
            for k in range(0, len(lines), size):
                part = lines[k : k + size]
                first = n + 1
                n += len(part)
                if n <= skip:
                    continue
                if n - len(part) < skip:  # a batch straddling the restored position
                    cut = skip - (n - len(part))
                    part, first = part[cut:], skip + 1
                batch = [
                    RawLine(source=name, position=first + i, offset=first + i, text=t)
                    for i, t in enumerate(part)
                ]
                if self.speed:
                    last_ts = times[min(k + size, len(times)) - 1]
                    if t_event0 is None:
                        t_event0 = times[k]
                    due = t_wall0 + (last_ts - t_event0) / self.speed
                    wait = (due - self.clock.now_ns()) / 1e9
                    if wait > 0:
                        await self.clock.sleep(wait)
                self.position = n
                yield batch
                await anyio.lowlevel.checkpoint()


@register("Simulate a scenario in process: its JSON log lines (or events) as raw lines.")
class SimSource(SourceConfig, frozen=True, kw_only=True, tag="sim"):
    """Runs the scenario's simulator inside the pipeline and yields, batch by
    batch, exactly the lines ``srestream sim`` writes to ``logs.jsonl`` (or
    ``events.jsonl``), in event-time order, as raw lines for ``parse_json``.
    The same scenario and seed give the same lines.  Its checkpoint is the
    number of lines yielded: after a restart the scenario is simulated again
    and those lines are skipped.  At a replay ``--speed`` the batches are
    paced by event time.  See pipelines/scenarios/README.md for the format.
    """

    scenario: str
    """Scenario file (YAML), relative to the pipeline file."""
    seed: int | None = None
    """Overrides the scenario's seed."""
    records: Literal["logs", "events"] = "logs"
    """``logs``: the lines of logs.jsonl (parse them with parse_json);
    ``events``: the lines of events.jsonl."""

    def build(self, ctx: BuildContext) -> SimReplay:
        import msgspec

        sc = load_scenario(ctx.resolve(self.scenario))
        if self.seed is not None:
            sc = msgspec.structs.replace(sc, seed=self.seed)
        return SimReplay(
            sc,
            records=self.records,
            batch_size=ctx.batch_size,
            speed=ctx.speed,
            clock=ctx.clock,
            source_name=f"sim:{sc.name}/{self.records}",
        )

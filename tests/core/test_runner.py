"""The graph runner in-process: backpressure, fan-out/fan-in, side outputs,
failures, checkpoints and statistics."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import anyio
import pytest

from srestream import (
    GraphError,
    Outputs,
    Runner,
    StageError,
    open_store,
    pipeline_from_dict,
)
from srestream.testing import CaptureSink, ListSource


def graph(stages: dict[str, Any], sinks: dict[str, Any], **runtime: Any) -> Any:
    return pipeline_from_dict(
        {
            "name": "t",
            "runtime": runtime,
            "sources": {"src": {"type": "list"}},
            "stages": stages,
            "sinks": sinks,
        }
    )


@pytest.mark.parametrize("chain", [True, False], ids=["chained", "stream_per_edge"])
async def test_slow_sink_bounds_records_in_flight_by_edge_capacities(chain: bool) -> None:
    p = graph(
        {
            "a": {"type": "passthrough", "inputs": ["src"]},
            "b": {"type": "passthrough", "inputs": ["a"]},
        },
        {"out": {"type": "capture", "inputs": ["b"]}},
        edge_capacity_batches=2,
        chain_stages=chain,
    )
    batch = 10
    in_flight: list[int] = []
    runner: Runner

    def check(_: Sequence[Any]) -> None:
        st = runner.statistics()
        in_flight.append(st.records_in - st.records_out)

    sink = CaptureSink(delay_seconds=0.002, on_batch=check)
    runner = Runner(
        p, bindings={"src": ListSource(list(range(3000)), batch_size=batch), "out": sink}
    )
    summary = await runner.run()
    assert sink.records == list(range(3000))
    # Edges of 2 batches each (chained, a -> b -> out are direct generator
    # calls and only src -> a is a stream), plus one batch held by each of a,
    # b and the sink while it works: nothing else may pile up behind the sink.
    edges = (1 if chain else 3) * 2
    held = 3
    assert max(in_flight) <= (edges + held) * batch
    assert max(in_flight) >= edges * batch  # the buffers really filled: the source was throttled
    assert summary.statistics.records_in == summary.statistics.records_out == 3000
    for stage in ("a", "b"):
        assert summary.statistics.stages[stage].records_in == 3000
        assert summary.statistics.stages[stage].records_out == 3000


async def test_fan_out_waits_for_the_slowest_consumer_and_drops_nothing() -> None:
    p = graph(
        {"a": {"type": "passthrough", "inputs": ["src"]}},
        {
            "fast": {"type": "capture", "inputs": ["a"]},
            "slow": {"type": "capture", "inputs": ["a"]},
        },
        edge_capacity_batches=1,
    )
    fast, slow = CaptureSink(), CaptureSink(delay_seconds=0.001)
    lead: list[int] = []
    fast.on_batch = lambda _: lead.append(len(fast.records) - len(slow.records))
    r = Runner(
        p,
        bindings={"src": ListSource(list(range(500)), batch_size=5), "fast": fast, "slow": slow},
    )
    await r.run()
    assert fast.records == slow.records == list(range(500))
    # The fast consumer can never run ahead of the slow one by more than what
    # the two edges and the two consumers hold.
    assert max(lead) <= (1 + 1 + 2) * 5


async def test_fan_in_merges_every_input() -> None:
    p = pipeline_from_dict(
        {
            "sources": {"one": {"type": "list"}, "two": {"type": "list"}},
            "stages": {"both": {"type": "passthrough", "inputs": ["one", "two"]}},
            "sinks": {"out": {"type": "capture", "inputs": ["both"]}},
        }
    )
    sink = CaptureSink()
    r = Runner(
        p,
        bindings={
            "one": ListSource(list(range(1000)), batch_size=7),
            "two": ListSource(list(range(1000, 2000)), batch_size=13),
            "out": sink,
        },
    )
    await r.run()
    assert sorted(sink.records) == list(range(2000))
    # Each input keeps its own order through the merge.
    assert [x for x in sink.records if x < 1000] == list(range(1000))
    assert [x for x in sink.records if x >= 1000] == list(range(1000, 2000))


def _odd_goes_to_deadletter(outputs: Outputs) -> Any:
    async def stage(batches: AsyncIterator[Sequence[int]]) -> AsyncIterator[list[int]]:
        async with aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                keep = []
                for x in batch:
                    if x % 2:
                        outputs.deadletter(str(x), "list", x, "odd")
                    else:
                        keep.append(x)
                yield keep

    return stage


async def test_side_outputs_reach_their_consumers_and_unrouted_ones_are_counted() -> None:
    p = graph(
        {
            "even": {"type": "passthrough", "inputs": ["src"]},
            "quiet": {"type": "passthrough", "inputs": ["src"]},
        },
        {
            "main": {"type": "capture", "inputs": ["even"]},
            "dead": {"type": "capture", "inputs": ["quiet"]},
        },
    )
    main, dead = CaptureSink(), CaptureSink()
    # Bind stages to logic that uses the runner-owned Outputs of the same id.
    r = Runner(
        p,
        bindings={"src": ListSource(list(range(100)), batch_size=9), "main": main, "dead": dead},
    )
    even_outputs = r._nodes["even"].outputs  # the runner's own side-output queue for 'even'
    r._nodes["even"].logic = _odd_goes_to_deadletter(even_outputs)
    summary = await r.run()
    assert main.records == list(range(0, 100, 2))
    st = summary.statistics.stages["even"]
    assert st.errors == 50  # odd ones went to even.deadletter...
    assert st.unrouted == 50  # ...which nothing consumes: counted, reported


async def test_deadletter_side_output_flows_to_a_sink(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"ts": 1, "msg": "ok"}\nnot json\n{"ts": 2, "msg": "ok"}\n')
    p = pipeline_from_dict(
        {
            "sources": {"f": {"type": "replay", "paths": [str(src)]}},
            "stages": {"parse": {"type": "parse_json", "inputs": ["f"]}},
            "sinks": {
                "good": {"type": "capture", "inputs": ["parse"]},
                "bad": {"type": "capture", "inputs": ["parse.deadletter"]},
            },
        }
    )
    r = Runner(p)
    await r.run()
    assert [x.message for x in r.logic("good").records] == ["ok", "ok"]
    [dl] = r.logic("bad").records
    assert (dl.raw, dl.position, dl.stage) == ("not json", 2, "parse")


async def test_a_failing_stage_stops_the_run_with_its_name() -> None:
    def boom(x: int) -> int:
        if x == 42:
            raise RuntimeError("the answer")
        return x

    from srestream import map_records

    p = graph({"explode": {"type": "passthrough", "inputs": ["src"]}},
              {"out": {"type": "capture", "inputs": ["explode"]}})
    r = Runner(p, bindings={"src": ListSource(list(range(100)), batch_size=10),
                            "explode": map_records(boom)})
    with pytest.raises(StageError) as ei:
        await r.run()
    assert ei.value.stage_id == "explode"
    assert "explode" in str(ei.value) and "the answer" in str(ei.value)
    assert isinstance(ei.value.__cause__, RuntimeError)


@pytest.mark.parametrize("where", ["second", "third", "sink"])
async def test_a_failure_inside_a_chain_names_its_own_stage(where: str) -> None:
    def boom(x: int) -> int:
        if x == 42:
            raise ValueError(f"bad {where}")
        return x

    from srestream import map_records

    class FailingSink:
        async def __call__(self, batches: Any) -> None:
            async for batch in batches:
                if 42 in batch:
                    raise ValueError("bad sink")

    p = graph(
        {
            "first": {"type": "passthrough", "inputs": ["src"]},
            "second": {"type": "passthrough", "inputs": ["first"]},
            "third": {"type": "passthrough", "inputs": ["second"]},
        },
        {"sink": {"type": "capture", "inputs": ["third"]}},
    )
    bindings: dict[str, Any] = {"src": ListSource(list(range(100)), batch_size=10)}
    bindings[where] = FailingSink() if where == "sink" else map_records(boom)
    r = Runner(p, bindings=bindings)
    assert [n.id for n in r._nodes["first"].chain] == ["first", "second", "third", "sink"]
    with pytest.raises(StageError) as ei:
        await r.run()
    assert ei.value.stage_id == where
    assert f"bad {where}" in str(ei.value)


async def test_runner_runs_once() -> None:
    p = graph({}, {"out": {"type": "capture", "inputs": ["src"]}})
    r = Runner(p)
    await r.run()
    with pytest.raises(GraphError):
        await r.run()


async def test_periodic_checkpoints_and_resume_without_loss_or_duplicates(
    tmp_path: pathlib.Path,
) -> None:
    p = graph(
        {"a": {"type": "passthrough", "inputs": ["src"]}},
        {"out": {"type": "capture", "inputs": ["a"]}},
        checkpoint_interval="20ms",
    )
    records = list(range(400))
    db = str(tmp_path / "s.sqlite")
    first = CaptureSink()
    async with open_store(db) as store:
        r1 = Runner(p, store=store,
                    bindings={"src": ListSource(records, batch_size=4, delay_seconds=0.002),
                              "out": first})

        async def stop_soon() -> None:
            while len(first.records) < 100:
                await anyio.sleep(0.005)
            r1.stop()

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_soon)
            s1 = await r1.run()
        assert s1.stopped
        assert s1.statistics.checkpoints >= 2  # periodic ones, then the final one
        cp = await store.load_checkpoint("t")
        assert cp is not None and not cp.complete

    async with open_store(db) as store:
        second = CaptureSink()
        r2 = Runner(p, store=store,
                    bindings={"src": ListSource(records, batch_size=4), "out": second})
        s2 = await r2.run()
        assert s2.resumed_from == cp.checkpoint_id and not s2.stopped
        assert first.records + second.records == records
        done = await store.load_checkpoint("t")
        assert done is not None and done.complete


async def test_statistics_use_the_same_names_for_stages_and_runner() -> None:
    p = graph({"a": {"type": "passthrough", "inputs": ["src"]}},
              {"out": {"type": "capture", "inputs": ["a"]}})
    r = Runner(p, bindings={"src": ListSource(list(range(10)), batch_size=3)})
    summary = await r.run()
    st = summary.statistics
    a = st.stages["a"]
    assert (a.records_in, a.records_out, a.batches_in, a.batches_out) == (10, 10, 4, 4)
    assert (st.records_in, st.records_out, st.batches_in, st.batches_out) == (10, 10, 4, 4)
    for name in ("records_in", "records_out", "batches_in", "batches_out", "errors",
                 "queue_depth", "lag_seconds"):
        assert hasattr(a, name) and hasattr(st, name)

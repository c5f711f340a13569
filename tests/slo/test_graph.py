"""The SLO stages inside the graph runner: side outputs and checkpoints
through the Store (stop midway, resume, same alerts and budgets)."""

from __future__ import annotations

import pathlib
from typing import Any

import anyio

from srestream import Runner, pipeline_from_dict
from srestream._store import open_store
from srestream.slo import Alert, Budget, SliRollup
from srestream.testing import CaptureSink, ListSource

from .helpers import HOUR, MIN, T0, traffic

ROOT = pathlib.Path(__file__).parent.parent.parent
DEMO_SLOS = str(ROOT / "pipelines" / "slos" / "demo.yaml")


def _pipeline(**runtime: Any) -> Any:
    return pipeline_from_dict({
        "name": "slo_graph",
        "runtime": runtime,
        "sources": {"src": {"type": "list"}},
        "stages": {
            "windows": {"type": "sli_windows", "inputs": ["src"], "slos": DEMO_SLOS,
                        "allowed_lateness": "10s"},
            "burn_rate": {"type": "burn_rate", "inputs": ["windows"], "slos": DEMO_SLOS,
                          "budget_interval": "30m"},
        },
        "sinks": {
            "out": {"type": "capture", "inputs": ["burn_rate"]},
            "ledger": {"type": "capture", "inputs": ["windows.rollups"]},
            "late": {"type": "capture", "inputs": ["windows.late"]},
        },
    })


def _records() -> list[Any]:
    outage = (T0 + 2 * HOUR, T0 + 2 * HOUR + 15 * MIN)
    recs = traffic(T0, 3 * 3600, failing=lambda ts: outage[0] <= ts < outage[1])
    recs += traffic(T0, 3 * 3600, service="payments")
    recs.sort(key=lambda r: r.ts_ns)
    # One record far behind: late beyond the allowed lateness.
    recs.insert(5000, recs[100])
    return recs


async def test_side_outputs_carry_rollups_and_late_records() -> None:
    recs = _records()
    out, ledger, late = CaptureSink(), CaptureSink(), CaptureSink()
    r = Runner(_pipeline(), bindings={"src": ListSource(recs, batch_size=512), "out": out,
                                      "ledger": ledger, "late": late})
    await r.run()
    assert late.records == [recs[100]]
    assert all(isinstance(x, SliRollup) for x in ledger.records)
    # 6 SLOs (3 services x 2), 3 hours of minutes.
    assert len(ledger.records) == 6 * 180
    assert sum(x.total for x in ledger.records if x.slo == "availability" and x.service == "checkout") == 3 * 3600
    assert any(isinstance(x, Alert) and x.state == "firing" for x in out.records)
    assert any(isinstance(x, Budget) for x in out.records)


async def test_stop_and_resume_through_the_store_loses_and_repeats_nothing(tmp_path: pathlib.Path) -> None:
    recs = _records()
    straight = CaptureSink()
    await Runner(_pipeline(), bindings={"src": ListSource(recs, batch_size=256), "out": straight,
                                        "ledger": CaptureSink(), "late": CaptureSink()}).run()

    p = _pipeline(checkpoint_interval="20ms")
    db = str(tmp_path / "s.sqlite")
    first = CaptureSink()
    async with open_store(db) as store:
        r1 = Runner(p, store=store, bindings={
            "src": ListSource(recs, batch_size=256, delay_seconds=0.001), "out": first,
            "ledger": CaptureSink(), "late": CaptureSink()})

        async def stop_midway() -> None:
            with anyio.fail_after(60):
                while not any(isinstance(x, Alert) for x in first.records):
                    await anyio.sleep(0.005)
            r1.stop()

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_midway)
            s1 = await r1.run()
        assert s1.stopped
    async with open_store(db) as store:
        second = CaptureSink()
        r2 = Runner(p, store=store, bindings={"src": ListSource(recs, batch_size=256), "out": second,
                                              "ledger": CaptureSink(), "late": CaptureSink()})
        s2 = await r2.run()
        assert s2.resumed_from is not None
    assert first.records + second.records == straight.records

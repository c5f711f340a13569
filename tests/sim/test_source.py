"""The ``sim`` source yields what ``srestream sim`` writes, resumes from its
snapshot, and runs in a pipeline."""

from __future__ import annotations

import json
import pathlib
from contextlib import aclosing
from typing import Any

import pytest

from srestream._cli import main as cli
from srestream._component import BuildContext, Outputs
from srestream.sim import SimSource

ROOT = pathlib.Path(__file__).parent.parent.parent
SMALL = ROOT / "pipelines" / "scenarios" / "small.yaml"
DATA = ROOT / "tests" / "data" / "scenario_small"


def _source(records: str = "logs", batch_size: int = 1024) -> Any:
    cfg = SimSource(scenario=str(SMALL), records=records)  # type: ignore[arg-type]
    return cfg.build(
        BuildContext(component_id="world", outputs=Outputs("world"), batch_size=batch_size)
    )


async def _collect(src: Any, limit: int | None = None) -> list[Any]:
    out: list[Any] = []
    async with aclosing(src()) as gen:
        async for batch in gen:
            out.extend(batch)
            if limit is not None and len(out) >= limit:
                break
    return out


@pytest.mark.parametrize("batch_size", [1, 7, 1024])
async def test_sim_source_yields_the_recorded_lines(batch_size: int) -> None:
    if batch_size == 1:
        want = (DATA / "logs.jsonl").read_text().splitlines()[:3000]
        got = await _collect(_source(batch_size=batch_size), limit=3000)
        got = got[:3000]
    else:
        want = (DATA / "logs.jsonl").read_text().splitlines()
        got = await _collect(_source(batch_size=batch_size))
    assert [r.text for r in got] == want
    assert [r.position for r in got] == list(range(1, len(want) + 1))
    assert {r.source for r in got} == {"sim:small-outage/logs"}


async def test_sim_source_resumes_after_its_snapshot() -> None:
    want = (DATA / "logs.jsonl").read_text().splitlines()
    first = _source(batch_size=100)
    head = await _collect(first, limit=1234)
    state = json.loads(json.dumps(first.snapshot()))
    second = _source(batch_size=64)
    second.restore(state)
    tail = await _collect(second)
    assert [r.text for r in head + tail] == want
    assert tail[0].position == len(head) + 1


async def test_sim_source_can_yield_the_events() -> None:
    got = await _collect(_source(records="events"))
    assert [r.text for r in got] == (DATA / "events.jsonl").read_text().splitlines()


def test_sim_source_in_a_replayed_pipeline(tmp_path: pathlib.Path) -> None:
    pipeline = tmp_path / "world.yaml"
    pipeline.write_text(
        f"""
name: simulated
sources:
  world: {{type: sim, scenario: {SMALL}}}
stages:
  parse: {{type: parse_json, inputs: [world]}}
sinks:
  out: {{type: directory, path: out, inputs: [parse]}}
"""
    )
    assert cli(["validate", str(pipeline)]) == 0
    out = tmp_path / "run"
    assert cli(["replay", str(pipeline), "--out", str(out), "--quiet"]) == 0
    files = {p.name: p for p in out.rglob("*.jsonl")}
    truth = json.loads((DATA / "truth.json").read_text())
    logs = [json.loads(x) for x in files["logs.jsonl"].read_text().splitlines()]
    assert len(logs) == truth["files"]["logs.jsonl"]
    errors = sum(1 for r in logs if r["service"] == "web" and r["status"] >= 500)
    assert errors == truth["service_counts"]["web"]["errors"]

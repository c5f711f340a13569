"""End to end on the recorded scenario: parse -> trace_correlator ->
sli_windows -> burn_rate -> root_cause (fed by the correlator's
``correlations`` side output).  The page for the front end names the failing
datastore first, and the output is the same at every batch size."""

from __future__ import annotations

import json
import pathlib

import msgspec

from srestream._pipeline import pipeline_from_dict
from srestream._runner import Runner
from srestream.correlate import RootCauseRanking
from srestream.slo._records import Alert
from srestream.testing import CaptureSink

DATA = pathlib.Path(__file__).parent.parent / "data"


def _pipeline() -> object:
    slos = str(DATA / "correlate" / "slos.yaml")
    return pipeline_from_dict(
        {
            "name": "rca-e2e",
            "sources": {"logs": {"type": "replay",
                                 "paths": [str(DATA / "scenario_small" / "logs.jsonl")]}},
            "stages": {
                "parse": {"type": "parse_json", "inputs": ["logs"]},
                "traces": {"type": "trace_correlator", "inputs": ["parse"], "emit_links": False},
                "windows": {"type": "sli_windows", "inputs": ["traces"], "slos": slos},
                "burn_rate": {"type": "burn_rate", "inputs": ["windows"], "slos": slos},
                "root_cause": {"type": "root_cause",
                               "inputs": ["burn_rate", "traces.correlations"]},
            },
            "sinks": {"out": {"type": "capture", "inputs": ["root_cause"]}},
        }
    )  # fmt: skip


async def _run(batch_size: int) -> list[object]:
    sink = CaptureSink()
    runner = Runner(_pipeline(), batch_size=batch_size, bindings={"out": sink})  # type: ignore[arg-type]
    await runner.run()
    return sink.records


async def test_page_names_the_failing_datastore_at_any_batch_size(batch_size: int) -> None:
    truth = json.loads((DATA / "scenario_small" / "truth.json").read_text())
    fault = truth["faults"][0]
    records = await _run(batch_size)
    pages = [r for r in records if isinstance(r, Alert) and r.state == "firing"]
    assert pages, "the outage raised no alert"
    first = pages[0]
    assert fault["onset_ns"] <= first.ts_ns <= fault["end_ns"]
    assert first.root_cause_candidates[0]["service"] == fault["root_cause"]
    rankings = [r for r in records if isinstance(r, RootCauseRanking)]
    assert len(rankings) == len(pages)
    assert abs(rankings[0].onset_ts_ns - fault["onset_ns"]) <= 60_000_000_000
    if batch_size != 1024:
        assert msgspec.json.encode(records) == msgspec.json.encode(await _run(1024))

"""A replay of the recorded simulator scenario (tests/data/scenario_small,
logs only, no spans): the outage's datastore is found from logs grouped by
trace id, its error-rate change is dated to the fault onset, it ranks first
for an alert on the front end, and its anomaly leads the breach."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from srestream._component import Outputs
from srestream._records import RawLine
from srestream.correlate import (
    AnomalyDetector,
    AnomalyType,
    RootCauseAnalyzer,
    RootCauseRanking,
    TraceCorrelator,
    TraceSummary,
    leading_indicators,
)
from srestream.parse._json import parse_json_batch
from srestream.slo._records import Alert

SCENARIO = pathlib.Path(__file__).parent.parent / "data" / "scenario_small"
MINUTE = 60_000_000_000


@pytest.fixture(scope="module")
def replay() -> tuple[list[Any], dict[str, Any]]:
    lines = (SCENARIO / "logs.jsonl").read_text().splitlines()
    raws = [
        RawLine(source="logs.jsonl", position=i + 1, offset=0, text=t) for i, t in enumerate(lines)
    ]
    outputs = Outputs("parse")
    records = parse_json_batch(raws, outputs)
    assert not outputs.take()
    truth = json.loads((SCENARIO / "truth.json").read_text())
    return records, truth


def test_outage_datastore_found_from_logs_alone(replay: tuple[list[Any], dict[str, Any]]) -> None:
    records, truth = replay
    fault = truth["faults"][0]
    tc = TraceCorrelator(forward_records=False, bucket_ns=MINUTE)
    evidence = tc.process(records) + tc.finish()
    failing = [s for s in evidence if isinstance(s, TraceSummary) and s.error]
    during = [s for s in failing if fault["effect_start_ns"] <= s.ts_ns <= fault["end_ns"]]
    assert during
    rooted = sum(1 for s in during if s.root_cause_service == fault["root_cause"])
    assert rooted / len(during) > 0.9
    assert all(s.root_cause_method == "log" for s in failing)

    detector = AnomalyDetector(bucket_ns=MINUTE, min_requests=3)
    anomalies = detector.process(records) + detector.finish()
    (db_change,) = [
        a for a in anomalies
        if a.anomaly_type == AnomalyType.ERROR_RATE_CHANGE and a.service == fault["root_cause"]
    ]  # fmt: skip
    assert abs(db_change.onset_ts_ns - fault["onset_ns"]) <= MINUTE

    breach_at = fault["onset_ns"] + 5 * MINUTE
    alert = Alert(
        ts_ns=breach_at, slo="web-availability", service="web", severity="page", state="firing",
        burn_rate=95.0, long_window="1h", short_window="5m", budget_remaining=0.5,
        dedup_key="web-availability/web/page",
    )  # fmt: skip
    analyzer = RootCauseAnalyzer()
    out = analyzer.process([*evidence, *anomalies, alert]) + analyzer.finish()
    (ranking,) = [r for r in out if isinstance(r, RootCauseRanking)]
    assert ranking.candidates[0].service == fault["root_cause"]
    assert ranking.candidates[0].score > ranking.candidates[1].score
    leads = leading_indicators(anomalies, [alert], horizon_ns=30 * MINUTE)
    db_lead = [i for i in leads if i.anomaly_service == fault["root_cause"]]
    assert db_lead and abs(db_lead[0].lead_ns - 5 * MINUTE) <= MINUTE

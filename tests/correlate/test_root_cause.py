"""Root-cause ranking for SLO alerts on simulated cascades."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from srestream import Event, LogRecord, Span
from srestream._pipeline import pipeline_from_dict
from srestream._runner import Runner
from srestream.correlate import (
    Anomaly,
    AnomalyType,
    RootCauseAnalyzer,
    RootCauseRanking,
    ServiceStats,
    TraceCorrelator,
    rank_alert_causes,
)
from srestream.slo._records import Alert
from srestream.testing import CaptureSink, ListSource, run_stage

from ._cascade import MINUTE, T0, Cascade

FAIL_AT = T0 + 20 * MINUTE
ALERT_AT = T0 + 26 * MINUTE


def _alert(ts: int = ALERT_AT, state: str = "firing", service: str = "web") -> Alert:
    return Alert(
        ts_ns=ts, slo="checkout-availability", service=service, severity="page", state=state,
        burn_rate=14.4, long_window="1h", short_window="5m", budget_remaining=0.4,
        dedup_key=f"checkout-availability/{service}/page",
    )  # fmt: skip


def _evidence(**cascade: Any) -> list[Any]:
    params: dict[str, Any] = {"requests": 1800, "fail_at_ns": FAIL_AT, "fail_ratio": 0.4}
    params.update(cascade)
    tc = TraceCorrelator(bucket_ns=MINUTE, forward_records=False, emit_links=False)
    records = Cascade(**params).generate()
    return tc.process(records) + tc.finish()


def _rank(
    evidence: list[Any], *extra: Any, alert: Alert | None = None
) -> tuple[Alert, RootCauseRanking]:
    analyzer = RootCauseAnalyzer()
    out = analyzer.process([*extra, *evidence, alert or _alert()]) + analyzer.finish()
    (enriched,) = [r for r in out if isinstance(r, Alert)]
    (ranking,) = [r for r in out if isinstance(r, RootCauseRanking)]
    return enriched, ranking


@pytest.mark.parametrize("failing", ["db", "cache", "orders", "auth"])
def test_the_failing_dependency_ranks_first(failing: str) -> None:
    alert, ranking = _rank(_evidence(failing_service=failing))
    assert alert.root_cause_candidates[0]["service"] == failing
    assert set(alert.root_cause_candidates[0]) == {"service", "score", "method"}
    top = ranking.candidates[0]
    assert top.service == failing and top.method == "trace"
    scores = [c["score"] for c in alert.root_cause_candidates]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]
    # Its errors began in the bucket of the injected failure.
    assert top.onset_ts_ns == FAIL_AT
    assert ranking.onset_ts_ns == FAIL_AT


def test_datastore_still_first_with_lost_spans_and_background_noise() -> None:
    evidence = _evidence(seed=21, drop_span_ratio=0.3, background_error_ratio=0.02)
    alert, ranking = _rank(evidence)
    assert alert.root_cause_candidates[0]["service"] == "db"
    # Flaky auth calls before the outage are noise, not an onset.
    assert ranking.candidates[0].onset_ts_ns == FAIL_AT
    assert all(c.onset_ts_ns in (None, FAIL_AT) for c in ranking.candidates)


def test_a_deploy_shortly_before_onset_is_evidence_an_old_one_is_not() -> None:
    evidence = _evidence()
    deploy = Event(ts_ns=FAIL_AT - 3 * MINUTE, event_type="deploy", service="db", summary="v2")
    old = Event(ts_ns=FAIL_AT - 50 * MINUTE, event_type="deploy", service="orders")
    _, ranking = _rank(evidence, old, deploy)
    by = {c.service: c for c in ranking.candidates}
    assert by["db"].deploy_ts_ns == deploy.ts_ns
    assert by["db"].deploy == pytest.approx(1 - 3 / 30)
    assert any("deployed" in e for e in by["db"].evidence)
    assert by["orders"].deploy == 0.0
    _, without = _rank(evidence)
    assert by["db"].score > {c.service: c for c in without.candidates}["db"].score


def test_a_deploy_can_decide_between_equal_suspects() -> None:
    # No tracing evidence: two services start logging errors at the same time.
    stats = []
    for m in range(30):
        for svc in ("payments", "ledger"):
            err = 20 if m >= 20 else 0
            stats.append(ServiceStats(ts_ns=T0 + m * MINUTE, bucket_ns=MINUTE, service=svc,
                                      logs=100, error_logs=err))  # fmt: skip
    _, tied = _rank(stats, alert=_alert(service="ledger"))
    assert tied.candidates[0].score == tied.candidates[1].score
    deploy = Event(ts_ns=T0 + 19 * MINUTE, event_type="deploy", service="payments")
    _, ranking = _rank(stats, deploy, alert=_alert(service="ledger"))
    assert [c.service for c in ranking.candidates[:2]] == ["payments", "ledger"]
    assert ranking.candidates[0].onset_ts_ns == T0 + 20 * MINUTE
    assert ranking.candidates[0].deploy == pytest.approx(1 - 1 / 30)


def test_anomalous_templates_add_to_a_service_score() -> None:
    evidence = _evidence()
    spike = Anomaly(
        ts_ns=FAIL_AT + MINUTE, onset_ts_ns=FAIL_AT, anomaly_type=AnomalyType.NEW_TEMPLATE,
        method="first_seen", service="cache", template_id="cache:timeout",
    )  # fmt: skip
    _, ranking = _rank(evidence, spike)
    by = {c.service: c for c in ranking.candidates}
    assert by["cache"].template == 0.5
    assert ranking.candidates[0].service == "db"


def test_only_firing_alerts_are_ranked_and_order_is_kept() -> None:
    evidence = _evidence()
    analyzer = RootCauseAnalyzer()
    pending = _alert(ts=ALERT_AT - MINUTE, state="pending")
    firing = _alert()
    resolved = _alert(ts=ALERT_AT + 2 * MINUTE, state="resolved")
    out = analyzer.process([*evidence, pending, firing, resolved]) + analyzer.finish()
    alerts = [r for r in out if isinstance(r, Alert)]
    assert [a.state for a in alerts] == ["pending", "firing", "resolved"]
    assert alerts[0] is pending and alerts[2] is resolved
    assert alerts[1].root_cause_candidates[0]["service"] == "db"


def test_an_alert_waits_for_the_evidence_of_its_time() -> None:
    evidence = _evidence()
    analyzer = RootCauseAnalyzer()
    assert analyzer.process([_alert()]) == []
    before = [r for r in evidence if r.ts_ns < ALERT_AT - 5 * MINUTE]
    assert analyzer.process(before) == []
    rest = analyzer.process([r for r in evidence if r.ts_ns >= ALERT_AT - 5 * MINUTE])
    alert = next(r for r in rest if isinstance(r, Alert))
    assert alert.root_cause_candidates[0]["service"] == "db"
    # Evidence from after the alert does not change the answer.
    analyzer2 = RootCauseAnalyzer()
    late = analyzer2.process([*evidence, _alert()])
    assert msgspec.json.encode(late) == msgspec.json.encode(
        [r for r in rest if isinstance(r, Alert | RootCauseRanking)]
    )


def test_snapshot_keeps_evidence_and_waiting_alerts() -> None:
    evidence = _evidence()
    half = [r for r in evidence if r.ts_ns < ALERT_AT - 5 * MINUTE]
    rest = [r for r in evidence if r.ts_ns >= ALERT_AT - 5 * MINUTE]
    first = RootCauseAnalyzer()
    assert first.process([*half, _alert()]) == []
    second = RootCauseAnalyzer()
    second.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(first.snapshot())))
    out = second.process(rest) + second.finish()
    whole = RootCauseAnalyzer()
    expected = whole.process([*evidence, _alert()]) + whole.finish()
    assert msgspec.json.encode(out) == msgspec.json.encode(expected)


async def test_stage_output_is_the_same_at_every_batch_size(batch_size: int) -> None:
    evidence = _evidence(requests=1700)
    stream = [*evidence[: len(evidence) // 2], _alert(), *evidence[len(evidence) // 2 :]]
    reference = RootCauseAnalyzer()
    expected = reference.process(stream) + reference.finish()
    got = await run_stage(
        rank_alert_causes, stream, batch_size=batch_size, analyzer=RootCauseAnalyzer()
    )
    assert msgspec.json.encode(got) == msgspec.json.encode(expected)


async def test_correlator_and_alerts_fan_in_to_root_cause_in_a_pipeline() -> None:
    pipeline = pipeline_from_dict(
        {
            "sources": {"traffic": {"type": "list"}, "alerts": {"type": "list"}},
            "stages": {
                "correlate": {"type": "trace_correlator", "inputs": ["traffic"]},
                "rca": {"type": "root_cause", "inputs": ["correlate.correlations", "alerts"],
                        "lookback": "1h"},
            },
            "sinks": {
                "out": {"type": "capture", "inputs": ["rca"]},
                "logs": {"type": "capture", "inputs": ["correlate"]},
            },
        }
    )  # fmt: skip
    traffic = Cascade(requests=1800, fail_at_ns=FAIL_AT, fail_ratio=0.4).generate()
    sink = CaptureSink()
    runner = Runner(
        pipeline,
        bindings={
            "traffic": ListSource(traffic, batch_size=500),
            "alerts": ListSource([_alert()]),
            "out": sink,
        },
    )
    await runner.run()
    (alert,) = [r for r in sink.records if isinstance(r, Alert)]
    assert alert.root_cause_candidates[0]["service"] == "db"
    assert [type(r).__name__ for r in sink.records] == ["Alert", "RootCauseRanking"]
    forwarded = runner.logic("logs").records
    assert sum(1 for r in forwarded if isinstance(r, Span | LogRecord)) == len(traffic)


def test_without_correlator_statistics_an_alert_leaves_after_max_wait() -> None:
    analyzer = RootCauseAnalyzer(max_wait_ns=5 * MINUTE)
    alert = _alert()

    def spike(minute: int) -> Anomaly:
        ts = ALERT_AT + minute * MINUTE
        return Anomaly(ts_ns=ts, onset_ts_ns=ts - MINUTE, anomaly_type=AnomalyType.ERROR_RATE_CHANGE,
                       method="cusum", service="db")  # fmt: skip

    assert analyzer.process([spike(-3), alert, spike(2)]) == []
    out = analyzer.process([spike(5)])
    (enriched,) = [r for r in out if isinstance(r, Alert)]
    # Only the anomaly before the alert counts as evidence.
    assert [c["service"] for c in enriched.root_cause_candidates] == ["db"]


def test_evidence_kept_is_bounded_by_the_lookback() -> None:
    analyzer = RootCauseAnalyzer(lookback_ns=10 * MINUTE, deploy_window_ns=5 * MINUTE)
    for hour in range(24):
        batch = [
            ServiceStats(ts_ns=T0 + (hour * 60 + m) * MINUTE, bucket_ns=MINUTE, service=f"s{k}",
                         spans=10)
            for m in range(60) for k in range(5)
        ]  # fmt: skip
        analyzer.process(batch)
        assert len(analyzer.snapshot()["stats"]) <= 5 * 16


def _budget(minute: int) -> Any:
    from srestream.slo._records import Budget

    return Budget(
        ts_ns=T0 + minute * MINUTE, slo="checkout-availability", service="web", objective=99.9,
        period="30d", good=100, total=100, budget_remaining=0.5, burn_rate_1h=1.0,
    )  # fmt: skip


def test_other_records_are_forwarded_in_order_and_evidence_is_consumed() -> None:
    evidence = _evidence()
    analyzer = RootCauseAnalyzer()
    before, after = _budget(25), _budget(27)
    out = analyzer.process([_budget(24)])
    assert out == [_budget(24)]  # nothing waiting: straight through
    # A budget behind a waiting alert waits with it: the order is kept.
    assert analyzer.process([before, _alert(), after]) == [before]
    out = analyzer.process(evidence) + analyzer.finish()
    assert [type(r).__name__ for r in out] == ["Alert", "RootCauseRanking", "Budget"]
    assert out[2] is after
    # Telemetry arriving on an evidence edge is not forwarded either.
    records = Cascade(requests=10).generate()
    assert RootCauseAnalyzer().process(records) == []


def test_without_any_correlator_the_alert_stream_time_releases_alerts() -> None:
    analyzer = RootCauseAnalyzer(max_wait_ns=5 * MINUTE)
    assert analyzer.process([_alert(), _budget(27), _budget(30)]) == []
    out = analyzer.process([_budget(31)])
    assert [type(r).__name__ for r in out] == ["Alert", "RootCauseRanking", "Budget", "Budget",
                                               "Budget"]  # fmt: skip
    assert out[0].root_cause_candidates == []


def test_evidence_lag_uses_evidence_up_to_that_much_before_the_alert() -> None:
    evidence = _evidence()
    # Stats up to 2 minutes before the alert suffice to release it.
    early = [r for r in evidence if r.ts_ns < ALERT_AT - MINUTE]
    analyzer = RootCauseAnalyzer(evidence_lag_ns=2 * MINUTE)
    out = analyzer.process([*early, _alert()])
    (alert,) = [r for r in out if isinstance(r, Alert)]
    assert alert.root_cause_candidates[0]["service"] == "db"
    # Lagging past the onset leaves no evidence of the failure at all.
    blind = RootCauseAnalyzer(evidence_lag_ns=ALERT_AT - FAIL_AT + MINUTE)
    out = blind.process([*evidence, _alert()])
    (alert,) = [r for r in out if isinstance(r, Alert)]
    assert alert.root_cause_candidates == []


def test_snapshot_keeps_records_waiting_behind_an_alert() -> None:
    evidence = _evidence()
    first = RootCauseAnalyzer()
    assert first.process([_alert(), _budget(27)]) == []
    second = RootCauseAnalyzer()
    second.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(first.snapshot())))
    out = second.process(evidence)
    assert [type(r).__name__ for r in out] == ["Alert", "RootCauseRanking", "Budget"]
    assert out[2] == _budget(27)


def test_an_earlier_incident_in_the_lookback_does_not_take_the_blame() -> None:
    # db fails from minute 5 to 15 (and recovers), cache from minute 35 on,
    # after a deploy of cache; the page at minute 38 is about the cache.
    first = Cascade(seed=31, requests=1200, fail_at_ns=T0 + 5 * MINUTE,
                    fail_until_ns=T0 + 15 * MINUTE, fail_ratio=0.9).generate()  # fmt: skip
    second = Cascade(seed=32, requests=1200, start_ns=T0 + 20 * MINUTE,
                     fail_at_ns=T0 + 35 * MINUTE, failing_service="cache",
                     fail_ratio=0.3).generate()  # fmt: skip
    tc = TraceCorrelator(bucket_ns=MINUTE, forward_records=False, emit_links=False)
    evidence = tc.process([*first, *second]) + tc.finish()
    deploy = Event(ts_ns=T0 + 34 * MINUTE, event_type="deploy", service="cache")
    _, ranking = _rank(evidence, deploy, alert=_alert(ts=T0 + 38 * MINUTE))
    top = ranking.candidates[0]
    assert top.service == "cache" and top.deploy_ts_ns == deploy.ts_ns
    assert "db" not in [c.service for c in ranking.candidates[:1]]
    by = {c.service: c for c in ranking.candidates}
    assert "db" not in by or by["db"].onset == 0.0
    # The same evidence during the first incident blames the datastore.
    _, during = _rank(evidence, deploy, alert=_alert(ts=T0 + 8 * MINUTE))
    assert during.candidates[0].service == "db"

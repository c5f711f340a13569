"""Anomaly detectors: injected change points are found with the right onset
(within one bucket), seasonal peaks are not spikes, new templates are
reported once, and leading indicators measure their lead."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from srestream import LogRecord, Span
from srestream.correlate import (
    Anomaly,
    AnomalyDetector,
    AnomalyType,
    detect_anomalies,
    lead_time_summary,
    leading_indicators,
)
from srestream.slo._records import Alert
from srestream.testing import run_stage

from ._cascade import MINUTE, SECOND, T0


def _traffic(
    *,
    buckets: int,
    seed: int,
    error_ratio: Any,
    latency_ms: Any,
    per_bucket: int = 40,
    service: str = "checkout",
) -> list[Span]:
    """``per_bucket`` spans a minute; error ratio and latency as functions
    of the bucket number (with noise)."""
    rng = random.Random(seed)
    out = []
    for b in range(buckets):
        for k in range(per_bucket):
            start = T0 + b * MINUTE + k * (MINUTE // per_bucket)
            lat = max(1.0, rng.gauss(latency_ms(b), latency_ms(b) * 0.1))
            out.append(
                Span(
                    trace_id=f"{b}-{k}", span_id="s", service=service, start_ts_ns=start,
                    end_ts_ns=start + int(lat * 1e6), error=rng.random() < error_ratio(b),
                )
            )  # fmt: skip
    out.sort(key=lambda s: s.end_ts_ns)
    return out


def _run(records: list[Any], **kw: Any) -> list[Anomaly]:
    d = AnomalyDetector(bucket_ns=MINUTE, **kw)
    return d.process(records) + d.finish()


@pytest.mark.parametrize(
    ("onset", "before", "after", "seed"),
    [(25, 0.01, 0.30, 1), (40, 0.02, 0.15, 2), (57, 0.0, 0.10, 3), (33, 0.05, 0.25, 4)],
)
def test_error_rate_change_point_onset_within_one_bucket(
    onset: int, before: float, after: float, seed: int
) -> None:
    spans = _traffic(
        buckets=80, seed=seed, error_ratio=lambda b: after if b >= onset else before,
        latency_ms=lambda b: 50.0,
    )  # fmt: skip
    found = [a for a in _run(spans) if a.anomaly_type == AnomalyType.ERROR_RATE_CHANGE]
    assert len(found) == 1, found
    (a,) = found
    assert a.method == "cusum" and a.service == "checkout"
    assert abs(a.onset_ts_ns - (T0 + onset * MINUTE)) <= MINUTE
    assert a.ts_ns >= a.onset_ts_ns + MINUTE
    assert a.value > a.baseline


@pytest.mark.parametrize(("onset", "factor", "seed"), [(20, 2.0, 5), (45, 1.5, 6), (61, 3.0, 7)])
def test_latency_change_point_onset_within_one_bucket(onset: int, factor: float, seed: int) -> None:
    spans = _traffic(
        buckets=80, seed=seed, error_ratio=lambda b: 0.01,
        latency_ms=lambda b: 80.0 * factor if b >= onset else 80.0,
    )  # fmt: skip
    found = [a for a in _run(spans) if a.anomaly_type == AnomalyType.LATENCY_CHANGE]
    assert len(found) == 1, found
    assert abs(found[0].onset_ts_ns - (T0 + onset * MINUTE)) <= MINUTE


def test_stationary_traffic_raises_nothing() -> None:
    spans = _traffic(buckets=240, seed=8, error_ratio=lambda b: 0.02, latency_ms=lambda b: 50.0)
    assert _run(spans) == []


def _logs(counts: dict[str, list[int]], seed: int = 0) -> list[LogRecord]:
    """Log records per template per one-minute bucket, spread in the bucket."""
    rng = random.Random(seed)
    out = []
    for tid, per_bucket in counts.items():
        for b, n in enumerate(per_bucket):
            for _ in range(n):
                ts = T0 + b * MINUTE + rng.randrange(MINUTE)
                out.append(LogRecord(ts_ns=ts, service="api", template_id=tid, message=tid))
    out.sort(key=lambda r: (r.ts_ns, r.template_id))
    return out


def test_new_templates_after_warmup_are_reported_once_with_their_first_time() -> None:
    steady = [20] * 60
    fresh = [0] * 30 + [3] * 30
    logs = _logs({"api:ok": steady, "api:oom": fresh}, seed=1)
    found = [a for a in _run(logs, new_template_warmup_ns=10 * MINUTE)]
    news = [a for a in found if a.anomaly_type == AnomalyType.NEW_TEMPLATE]
    assert [a.template_id for a in news] == ["api:oom"]
    first = min(r.ts_ns for r in logs if r.template_id == "api:oom")
    assert news[0].onset_ts_ns == first and news[0].method == "first_seen"
    # At start-up every template is new: none of those is reported.
    assert not any(a.template_id == "api:ok" for a in news)


def _poisson(rng: random.Random, mu: float) -> int:
    # Knuth's method: small means only.
    limit, k, p = pow(2.718281828459045, -mu), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def test_seasonal_peaks_are_not_spikes_but_an_off_peak_burst_is() -> None:
    rng = random.Random(4)
    season = 60  # buckets: a one-hour "day" keeps the test small
    counts = []
    for b in range(4 * season):
        peak = 10 <= b % season < 15
        mu = 40.0 if peak else 4.0
        if b == 3 * season + 40:
            mu = 40.0  # the injected burst, off-peak, in the fourth season
        counts.append(_poisson(rng, mu))
    logs = _logs({"cart:retry": counts}, seed=2)
    found = [
        a for a in _run(logs, season_ns=season * MINUTE)
        if a.anomaly_type == AnomalyType.TEMPLATE_SPIKE
    ]  # fmt: skip
    after_first_season = [a for a in found if a.onset_ts_ns >= T0 + season * MINUTE]
    assert [a.onset_ts_ns for a in after_first_season] == [T0 + (3 * season + 40) * MINUTE]
    assert after_first_season[0].method == "seasonal_poisson"
    # Without a season the recurring peaks look like spikes every time.
    flat = [a for a in _run(logs, season_ns=MINUTE) if a.anomaly_type == AnomalyType.TEMPLATE_SPIKE]
    assert len(flat) >= 4


def _mixed(seed: int) -> list[Any]:
    spans = _traffic(
        buckets=60, seed=seed, error_ratio=lambda b: 0.3 if b >= 40 else 0.01,
        latency_ms=lambda b: 100.0 if b >= 45 else 50.0,
    )  # fmt: skip
    logs = _logs({"api:ok": [10] * 60, "db:deadlock": [0] * 35 + [5] * 25}, seed=seed)
    return sorted([*spans, *logs], key=lambda r: (r.ts_ns, type(r).__name__))


async def test_same_anomalies_at_every_batch_size(batch_size: int) -> None:
    records = _mixed(9)
    expected = _run(records)
    assert {a.anomaly_type for a in expected} == {
        AnomalyType.ERROR_RATE_CHANGE, AnomalyType.LATENCY_CHANGE, AnomalyType.NEW_TEMPLATE,
    }  # fmt: skip
    got = await run_stage(
        detect_anomalies, records, batch_size=batch_size,
        detector=AnomalyDetector(bucket_ns=MINUTE),
    )  # fmt: skip
    assert msgspec.json.encode(got) == msgspec.json.encode(expected)


@pytest.mark.parametrize("cut", [100, 1800, 3000])
def test_snapshot_restore_finds_the_same_anomalies(cut: int) -> None:
    records = _mixed(10)
    expected = _run(records)
    first = AnomalyDetector(bucket_ns=MINUTE)
    out = first.process(records[:cut])
    second = AnomalyDetector(bucket_ns=MINUTE)
    second.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(first.snapshot())))
    out += second.process(records[cut:]) + second.finish()
    assert msgspec.json.encode(out) == msgspec.json.encode(expected)


def test_late_records_go_to_the_late_output() -> None:
    d = AnomalyDetector(bucket_ns=MINUTE)
    old = LogRecord(ts_ns=T0, service="a", template_id="x")
    d.process([old, LogRecord(ts_ns=T0 + 5 * MINUTE, service="a", template_id="x")])
    d.process([old])
    assert d.outputs.take()["late"] == [old]
    assert d.late == 1


def test_series_stay_bounded_on_an_endless_stream_of_templates() -> None:
    d = AnomalyDetector(bucket_ns=MINUTE, max_series=100)
    for chunk in range(20):
        logs = [
            LogRecord(ts_ns=T0 + (chunk * 50 + i) * SECOND, service="a", template_id=f"t{chunk}-{i}")
            for i in range(50)
        ]  # fmt: skip
        d.process(logs)
        assert len(d.snapshot()["templates"]) <= 100


def test_leading_indicators_report_what_preceded_a_breach_and_by_how_much() -> None:
    anomalies = _run(_mixed(11))
    breach_at = T0 + 50 * MINUTE
    alert = Alert(
        ts_ns=breach_at, slo="api-availability", service="checkout", severity="page",
        state="firing", burn_rate=14.4, long_window="1h", short_window="5m",
        budget_remaining=0.2, dedup_key="api-availability/checkout/page",
    )  # fmt: skip
    found = leading_indicators(anomalies, [alert], horizon_ns=30 * MINUTE)
    by_type = {i.anomaly_type: i for i in found}
    assert set(by_type) == {
        AnomalyType.NEW_TEMPLATE,
        AnomalyType.ERROR_RATE_CHANGE,
        AnomalyType.LATENCY_CHANGE,
    }
    for a in anomalies:
        i = by_type[a.anomaly_type]
        assert i.lead_ns == breach_at - a.onset_ts_ns and i.onset_ts_ns == a.onset_ts_ns
    assert abs(by_type[AnomalyType.ERROR_RATE_CHANGE].lead_ns - 10 * MINUTE) <= MINUTE
    # A shorter horizon keeps only what started within it.
    near = leading_indicators(anomalies, [alert], horizon_ns=8 * MINUTE)
    assert {i.anomaly_type for i in near} == {AnomalyType.LATENCY_CHANGE}
    summary = lead_time_summary(found, breaches=1)
    assert summary[AnomalyType.LATENCY_CHANGE]["breaches_preceded"] == 1.0
    assert summary[AnomalyType.NEW_TEMPLATE]["share"] == 1.0
    assert summary[AnomalyType.NEW_TEMPLATE]["median_lead_seconds"] == pytest.approx(
        by_type[AnomalyType.NEW_TEMPLATE].lead_ns / 1e9
    )
    # Nothing precedes a breach before everything.
    assert leading_indicators(anomalies, [msgspec.structs.replace(alert, ts_ns=T0)]) == []


def test_leading_indicators_over_a_replay_output() -> None:
    from srestream.correlate import replay_leading_indicators

    anomalies = _run(_mixed(12))

    def alert(ts: int, state: str) -> Alert:
        return Alert(
            ts_ns=ts, slo="api-availability", service="checkout", severity="page", state=state,
            burn_rate=14.4, long_window="1h", short_window="5m", budget_remaining=0.2,
            dedup_key="api-availability/checkout/page",
        )  # fmt: skip

    # The replay output: anomalies, a repeated firing and a resolution, other records.
    output = [*anomalies, alert(T0 + 48 * MINUTE, "pending"), alert(T0 + 50 * MINUTE, "firing"),
              alert(T0 + 55 * MINUTE, "firing"), alert(T0 + 70 * MINUTE, "resolved"),
              LogRecord(ts_ns=T0, service="x")]  # fmt: skip
    found, summary = replay_leading_indicators(output, horizon_ns=30 * MINUTE)
    assert {i.breach_ts_ns for i in found} == {T0 + 50 * MINUTE}
    assert summary[AnomalyType.ERROR_RATE_CHANGE]["share"] == 1.0


def test_records_out_of_order_within_the_allowed_lateness_count_in_their_bucket() -> None:
    records = _mixed(13)
    rng = random.Random(5)
    # Each record arrives up to 20 s after its event time.
    delayed = sorted(records, key=lambda r: r.ts_ns + rng.randrange(20 * SECOND))
    assert delayed != records
    detector = AnomalyDetector(bucket_ns=MINUTE, allowed_lateness_ns=30 * SECOND)
    got = detector.process(delayed) + detector.finish()
    assert detector.late == 0
    assert msgspec.json.encode(got) == msgspec.json.encode(_run(records))

"""SLI windows stage: event-time buckets, lateness, gaps, checkpoints.

Buckets are one minute; ``|`` marks bucket boundaries, ``W`` the watermark::

    t:    0      60     120    180
          |  m0  |  m1  |  m2  |
    a record at 130 s with 60 s of allowed lateness moves W to 70 s: m0 closes.
"""

from __future__ import annotations

from typing import Any

import pytest

from srestream import LogRecord, MetricSample
from srestream._component import Outputs
from srestream.slo import SliRollup, SliWindows, sli_windows
from srestream.testing import ListSource, run_stage

from .helpers import MIN, T0, S, availability, slo_set, traffic


def _rec(t_s: float, status: int = 200, service: str = "checkout", **kw: Any) -> LogRecord:
    return LogRecord(ts_ns=T0 + int(t_s * S), service=service, status=status, **kw)


def _rollups(out: list[Any]) -> list[tuple[int, int, int, int]]:
    return [((r.bucket_ts_ns - T0) // S, r.good, r.total, r.no_data_ns // S) for r in out]


async def test_counts_good_and_total_per_minute_in_event_time(batch_size: int) -> None:
    slos = slo_set(availability())
    recs = [_rec(1), _rec(2, 503), _rec(59), _rec(61, 500), _rec(125), _rec(126, service="other")]
    out = await run_stage(sli_windows, recs, batch_size=batch_size, slos=slos)
    # End of input closes the bucket of the last record.
    assert _rollups(out) == [(0, 2, 3, 0), (60, 0, 1, 0), (120, 1, 1, 0)]
    assert all(isinstance(r, SliRollup) and r.resolution_ns == MIN for r in out)


async def test_late_within_allowed_lateness_lands_in_its_bucket(batch_size: int) -> None:
    slos = slo_set(availability())
    outputs = Outputs("windows")
    #   W = max_ts - 60 s.  At 130 s W = 70 s: m0 closes; a record at 75 s is
    #   late but allowed (>= W) and lands in m1; one at 65 s is too late.
    recs = [_rec(10), _rec(130), _rec(75, 500), _rec(65), _rec(20), _rec(200)]
    out = await run_stage(sli_windows, recs, batch_size=batch_size, slos=slos,
                          allowed_lateness_ns=60 * S, outputs=outputs)
    assert _rollups(out) == [(0, 1, 1, 0), (60, 0, 1, 0), (120, 1, 1, 0), (180, 1, 1, 0)]
    late = outputs.take()["late"]
    assert [(r.ts_ns - T0) // S for r in late] == [65, 20]


async def test_without_lateness_anything_behind_the_newest_record_is_late() -> None:
    slos = slo_set(availability())
    win = SliWindows(slos)
    win.process([_rec(100), _rec(99), _rec(100)])
    assert win.late_records == 1
    assert [r.ts_ns for r in win.outputs.take()["late"]] == [T0 + 99 * S]


async def test_gaps_become_no_data_and_long_gaps_one_rollup(batch_size: int) -> None:
    slos = slo_set(availability(), availability(service="payments"))
    # checkout sends in m0, m1 and m5; payments only in m0; nothing at all in m2..m4.
    recs = [_rec(5), _rec(6, service="payments"), _rec(65), _rec(305)]
    outputs = Outputs("w")
    out = await run_stage(sli_windows, recs, batch_size=batch_size, slos=slos, outputs=outputs)
    rows = [(r.service, (r.bucket_ts_ns - T0) // S, r.resolution_ns // S, r.total, r.no_data_ns // S)
            for r in out]
    assert rows == [
        ("checkout", 0, 60, 1, 0), ("payments", 0, 60, 1, 0),
        ("checkout", 60, 60, 1, 0), ("payments", 60, 60, 0, 60),      # payments silent: no data
        ("checkout", 120, 180, 0, 180), ("payments", 120, 180, 0, 180),  # nobody: one gap rollup
        ("checkout", 300, 60, 1, 0), ("payments", 300, 60, 0, 60),
    ]
    # The same rollups go to the side output for the ledger.
    assert outputs.take()["rollups"] == out


async def test_a_quiet_minute_with_data_is_zero_traffic_not_a_gap() -> None:
    # A record of the service that the SLI does not count still proves data flows.
    slos = slo_set(availability(sli={"kind": "availability", "total": {"attrs.route": "/pay"},
                                     "good": {"status": {"lt": 500}}}))
    out = await run_stage(sli_windows, [_rec(5, attrs={"route": "/pay"}), _rec(70), _rec(130)], slos=slos)
    assert _rollups(out) == [(0, 1, 1, 0), (60, 0, 0, 0), (120, 0, 0, 0)]


async def test_latency_throughput_timeslices_and_freshness_slis() -> None:
    slos = slo_set(
        availability(name="latency", sli={"kind": "latency", "total": {}, "threshold": "300ms"}),
        availability(name="throughput", sli={"kind": "throughput", "total": {}, "min_events_per_minute": 2}),
        availability(name="slices", sli={"kind": "availability", "total": {}, "good": {"status": {"lt": 500}},
                                         "budgeting": "timeslices", "timeslice_target": 50}),
        availability(name="fresh", sli={"kind": "freshness", "metric": "queue_age_seconds",
                                        "threshold": "5m"}),
    )
    ms = 1_000_000
    recs = [
        _rec(1, latency_ns=100 * ms), _rec(2, latency_ns=300 * ms), _rec(3, 500, latency_ns=900 * ms),
        _rec(4),  # no latency: not counted by the latency SLI
        MetricSample(name="queue_age_seconds", ts_ns=T0 + 5 * S, value=30.0, labels={"service": "checkout"}),
        MetricSample(name="queue_age_seconds", ts_ns=T0 + 6 * S, value=600.0, labels={"service": "checkout"}),
        MetricSample(name="other", ts_ns=T0 + 7 * S, value=1.0, labels={"service": "checkout"}),
        _rec(61, 500),
    ]
    out = await run_stage(sli_windows, recs, slos=slos)
    got = {(r.slo, (r.bucket_ts_ns - T0) // S): (r.good, r.total) for r in out}
    assert got[("latency", 0)] == (2, 3)           # <= 300 ms is good
    assert got[("throughput", 0)] == (1, 1)        # 4 requests >= 2: a good minute
    assert got[("throughput", 60)] == (0, 1)       # 1 request < 2: a bad minute
    assert got[("slices", 0)] == (1, 1)            # 3/4 good >= 50%
    assert got[("slices", 60)] == (0, 1)           # 0/1 good
    assert got[("fresh", 0)] == (1, 2)


async def test_snapshot_and_restore_continue_exactly() -> None:
    slos = slo_set(availability())
    recs = traffic(T0, 600, failing=lambda ts: (ts - T0) // S % 7 == 0)
    whole = await run_stage(sli_windows, recs, slos=slos, allowed_lateness_ns=30 * S)
    first = SliWindows(slos, allowed_lateness_ns=30 * S)
    out = list(first.process(recs[:333]))
    state = first.snapshot()
    import msgspec

    second = SliWindows(slos, allowed_lateness_ns=30 * S)
    second.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(state)))
    out += second.process(recs[333:])
    out += second.flush()
    assert out == whole


async def test_the_stage_is_driven_by_record_order_not_batches() -> None:
    slos = slo_set(availability())
    recs = traffic(T0, 3600, failing=lambda ts: ts % (13 * S) == 0)
    # Shuffle lightly within the allowed lateness.
    recs = [recs[i + 1] if i % 2 == 0 and i + 1 < len(recs) else recs[i - 1] if i % 2 else recs[i]
            for i in range(len(recs))]
    outs = []
    for size in (1, 7, 1024):
        win = SliWindows(slos, allowed_lateness_ns=5 * S)
        got: list[Any] = []
        async for b in win(ListSource(recs, batch_size=size)()):
            got.extend(b)
        outs.append((got, win.late_records))
    assert outs[0] == outs[1] == outs[2]
    assert outs[0][1] == 0
    assert sum(r.total for r in outs[0][0]) == len(recs)


def test_resolution_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        SliWindows(slo_set(availability()), resolution_ns=0)


async def test_counter_metrics_count_their_increase(batch_size: int) -> None:
    # Prometheus-style counters: good = requests with code < 500.  Each sample
    # counts its series' increase since the previous sample; the first sample
    # of a series is its baseline; a reset (a smaller value) counts from zero.
    slos = slo_set(availability(sli={"kind": "availability", "source": "metrics",
                                     "total": {"name": "http_requests_total"},
                                     "good": {"labels.code": {"lt": "500"}}}))

    def sample(t_s: int, code: str, value: float) -> MetricSample:
        return MetricSample(name="http_requests_total", ts_ns=T0 + t_s * S, value=value,
                            labels={"service": "checkout", "code": code})

    recs = [
        sample(0, "200", 1000), sample(0, "500", 10),      # baselines
        sample(30, "200", 1100), sample(30, "500", 12),    # m0: +100 good, +2 bad
        sample(60, "200", 1250), sample(60, "500", 12),    # m1: +150 good
        sample(90, "200", 40), sample(90, "500", 15),      # m1: reset -> +40 good; +3 bad
        MetricSample(name="other", ts_ns=T0 + 95 * S, value=5.0, labels={"service": "checkout"}),
        sample(130, "200", 50),                            # m2: +10
    ]
    out = await run_stage(sli_windows, recs, batch_size=batch_size, slos=slos)
    assert _rollups(out) == [(0, 100, 102, 0), (60, 190, 193, 0), (120, 10, 10, 0)]


async def test_counter_state_survives_a_checkpoint() -> None:
    import msgspec

    slos = slo_set(availability(sli={"kind": "ratio", "source": "metrics",
                                     "total": {"name": "jobs_total"}, "good": {"labels.ok": "true"}}))
    first = [MetricSample(name="jobs_total", ts_ns=T0, value=5, labels={"service": "checkout", "ok": "true"})]
    later = [MetricSample(name="jobs_total", ts_ns=T0 + 10 * S, value=9, labels={"service": "checkout", "ok": "true"})]
    a = SliWindows(slos)
    a.process(first)
    b = SliWindows(slos)
    b.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(a.snapshot())))
    out = b.process(later) + b.flush()
    assert [(r.good, r.total) for r in out] == [(4, 4)]

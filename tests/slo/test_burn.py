"""Burn-rate detector: Workbook timings in the stream, the alert state
machine, budgets, calendar periods, determinism and checkpoints."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import msgspec
import pytest

from srestream._output import encode_lines
from srestream.slo import Alert, Budget, BurnRateDetector, SliRollup
from srestream.slo._budget import budget_minutes, consumed_ratio

from .helpers import DAY, HOUR, MIN, T0, S, availability, run_engine, slo_set, traffic


def _alerts(out: list[Any]) -> list[Alert]:
    return [r for r in out if isinstance(r, Alert)]


def _budgets(out: list[Any]) -> list[Budget]:
    return [r for r in out if isinstance(r, Budget)]


async def test_full_outage_pages_after_51_84_seconds_at_one_second_resolution() -> None:
    # 99.9% / 30d at 1 request/s.  After k seconds of full outage the 1h window
    # holds k bad of 3600: it trips when k / 3600 >= 14.4 x 0.001, k >= 51.84 s,
    # so at the end of the 52nd one-second bucket; the 5m window (k/300) is
    # long past its threshold by then.
    slos = slo_set(availability(alerting={"tiers": ["page"]}))
    outage = T0 + 2 * HOUR
    need_s = 14.4 * 0.001 * 3600
    recs = traffic(T0, 2 * 3600 + 120, failing=lambda ts: ts >= outage)
    out, _, _ = await run_engine(slos, recs, resolution_ns=S)
    first = next(a for a in _alerts(out) if a.long_window == "1h")
    assert (first.state, first.tier, first.long_window, first.short_window) == ("firing", "page", "1h", "5m")
    assert first.ts_ns - outage == math.ceil(need_s) * S
    assert first.burn_rate == pytest.approx(52 / 3600 / 0.001, rel=1e-9)
    assert first.threshold == pytest.approx(14.4)


async def test_at_minute_resolution_the_page_comes_at_the_next_minute() -> None:
    slos = slo_set(availability())
    outage = T0 + 2 * HOUR
    recs = traffic(T0, 2 * 3600 + 600, failing=lambda ts: ts >= outage)
    out, _, _ = await run_engine(slos, recs)
    firing = [(a.long_window, (a.ts_ns - outage) // S) for a in _alerts(out) if a.state == "firing"]
    # 1h/5m needs 51.84 s -> evaluated at 60 s; 6h/30m needs 6 x 0.001 x 6h = 129.6 s
    # of a full window, but the 6h window only holds 2h of history here, so it
    # needs 6 x 0.001 x (2h + t) -> 43.5 s -> 60 s as well.
    assert firing[0] == ("1h", 60)
    assert ("6h", 60) in firing


async def test_pending_firing_resolved_with_stable_dedup_keys(batch_size: int) -> None:
    # 99% / 7d, page only; pending for 2 minutes.  A 1-minute blip stays pending;
    # a 10-minute outage fires and resolves once the short window is clean.
    slos = slo_set(availability(objective=99, period="7d",
                                alerting={"tiers": ["page"], "pending_for": "2m"}))
    blip = (T0 + 3 * HOUR, T0 + 3 * HOUR + 3 * MIN)
    outage = (T0 + 5 * HOUR, T0 + 5 * HOUR + 10 * MIN)

    def failing(ts: int) -> bool:
        return blip[0] <= ts < blip[1] or outage[0] <= ts < outage[1]

    recs = traffic(T0, 8 * 3600, failing=failing)
    out, _, _ = await run_engine(slos, recs, batch_size=batch_size)
    quick = [a for a in _alerts(out) if a.long_window == "14m"]
    states = [(a.state, (a.ts_ns - T0) // MIN) for a in quick]
    # 7d scales the 1h/5m pair to 14m/1m at 14.4x: the 14m error ratio must reach
    # 0.144, i.e. 3 bad minutes of 14 (2/14 = 0.143 is just short).
    # Blip (minutes 180-182): true at the end of minute 182 (t = 183), false at 184
    # (the 1m short window is clean): pending, never firing.
    # Outage (300-309): pending at 303, firing 2 minutes later at 305, resolved at
    # 311 when the short window is clean again.
    assert states == [("pending", 183), ("pending", 303), ("firing", 305), ("resolved", 311)]
    episode = [a for a in quick if a.ts_ns >= outage[0]]
    assert len({a.dedup_key for a in quick}) == 1
    assert episode[1].started_ts_ns == episode[0].ts_ns  # firing keeps the pending start
    slow = [a for a in _alerts(out) if a.long_window != "14m"]
    assert slow and slow[0].dedup_key != quick[0].dedup_key


async def test_keep_firing_for_delays_resolution() -> None:
    base = availability(objective=99, period="7d", alerting={"tiers": ["page"]})
    slow = availability(objective=99, period="7d", alerting={"tiers": ["page"], "keep_firing_for": "10m"})
    outage = (T0 + 3 * HOUR, T0 + 3 * HOUR + 10 * MIN)
    recs = traffic(T0, 5 * 3600, failing=lambda ts: outage[0] <= ts < outage[1])
    a, _, _ = await run_engine(slo_set(base), recs)
    b, _, _ = await run_engine(slo_set(slow), recs)
    ra = [x.ts_ns for x in _alerts(a) if x.state == "resolved" and x.long_window == "14m"]
    rb = [x.ts_ns for x in _alerts(b) if x.state == "resolved" and x.long_window == "14m"]
    # keep_firing_for counts from the first evaluation where the condition failed.
    assert rb[0] - ra[0] == 10 * MIN


async def test_zero_traffic_gives_no_burn_and_no_alert() -> None:
    slos = slo_set(availability())
    rollups = [SliRollup(slo="availability", service="checkout", bucket_ts_ns=T0 + i * MIN,
                         resolution_ns=MIN, good=0, total=0) for i in range(180)]
    det = BurnRateDetector(slos)
    out = det.process(rollups) + det.flush()
    assert not _alerts(out)
    b = _budgets(out)[-1]
    assert (b.total, b.budget_remaining, b.burn_rate_1h, b.exhaustion_ts_ns) == (0, 1.0, 0.0, None)


async def test_budget_records_match_the_budget_math(batch_size: int) -> None:
    slos = slo_set(availability(objective=99.9, period="7d"))
    recs = traffic(T0, 3 * 3600, failing=lambda ts: (ts - T0) // S % 500 == 0)
    out, _, _ = await run_engine(slos, recs, batch_size=batch_size)
    budgets = _budgets(out)
    assert [(b.ts_ns - T0) // HOUR for b in budgets] == [1, 2, 3, 3]  # hourly + end of input
    b = budgets[2]
    bad = sum(1 for r in recs if r.ts_ns < T0 + 3 * HOUR and r.status == 500)
    assert (b.total, b.total - b.good) == (3 * 3600, bad)
    assert b.budget_consumed == pytest.approx(consumed_ratio(b.good, b.total, 0.999))
    assert b.budget_remaining == pytest.approx(1 - b.budget_consumed)
    assert b.budget_minutes == pytest.approx(budget_minutes(0.999, 7 * DAY))
    assert b.minutes_remaining == pytest.approx(b.budget_remaining * b.budget_minutes)
    assert b.bad_events_remaining == pytest.approx(0.001 * b.total - bad)
    bad_last_hour = sum(1 for r in recs if r.ts_ns >= T0 + 2 * HOUR and r.status == 500)
    assert b.burn_rate_1h == pytest.approx((bad_last_hour / 3600) / 0.001)
    assert b.coverage == 1.0
    assert (b.period_start_ts_ns, b.objective, b.period) == (T0 + 3 * HOUR - 7 * DAY, 99.9, "7d")


async def test_gaps_lower_coverage_but_burn_nothing() -> None:
    slos = slo_set(availability(period="7d"))
    recs = traffic(T0, 3600) + traffic(T0 + 2 * HOUR, 3600)  # a 1h monitoring gap
    out, _, _ = await run_engine(slos, recs)
    last = _budgets(out)[-1]
    assert last.coverage == pytest.approx(2 / 3, abs=1 / 180)
    assert last.budget_remaining == 1.0
    assert not _alerts(out)


async def test_calendar_month_across_dst_resets_at_local_midnight() -> None:
    # Paris, March 2024: 31 days less the DST hour; April starts at
    # 2024-03-31T22:00Z (local midnight, UTC+2).
    paris_april = int(dt.datetime(2024, 3, 31, 22, tzinfo=dt.UTC).timestamp()) * S
    march_start = int(dt.datetime(2024, 2, 29, 23, tzinfo=dt.UTC).timestamp()) * S
    slos = slo_set(availability(period="month", time_zone="Europe/Paris"))
    start = paris_april - 2 * HOUR
    recs = traffic(start, 4 * 3600, failing=lambda ts: ts < paris_april and ts % (100 * S) == 0)
    out, _, _ = await run_engine(slos, recs)
    budgets = _budgets(out)
    march = [b for b in budgets if b.ts_ns <= paris_april]
    april = [b for b in budgets if b.ts_ns > paris_april]
    assert march[-1].period_start_ts_ns == march_start
    assert march[-1].budget_minutes == pytest.approx(0.001 * (31 * 24 - 1) * 60)
    assert march[-1].total - march[-1].good == 72
    assert april[0].period_start_ts_ns == paris_april
    assert april[0].total == 3600 and april[0].good == 3600
    assert april[0].budget_minutes == pytest.approx(0.001 * 30 * 24 * 60)


async def test_replay_is_identical_at_any_batch_size() -> None:
    slos = slo_set(availability(alerting={"forecast_horizon": "48h"}),
                   availability(name="latency", sli={"kind": "latency", "total": {}, "threshold": "200ms"}))

    def failing(ts: int) -> bool:
        m = (ts - T0) // MIN
        return 200 <= m < 215 or (m % 17 == 0 and ts % (3 * S) == 0)

    recs = [r.__class__(**{**msgspec.structs.asdict(r), "latency_ns": (r.ts_ns // S % 10) * 50_000_000})
            for r in traffic(T0, 6 * 3600, failing=failing)]
    encoded = []
    for size in (1, 7, 1024):
        out, _, _ = await run_engine(slos, recs, batch_size=size, allowed_lateness_ns=10 * S)
        encoded.append(encode_lines(out))
    assert encoded[0] == encoded[1] == encoded[2]
    assert b'"state":"firing"' in encoded[0] and b'"kind"' not in encoded[0]


async def test_snapshot_restore_midway_gives_the_same_alerts() -> None:
    slos = slo_set(availability(period="7d", alerting={"forecast_horizon": "24h"}))
    rollups = [SliRollup(slo="availability", service="checkout", bucket_ts_ns=T0 + i * MIN,
                         resolution_ns=MIN, good=100 - (5 if 300 <= i < 330 else 0), total=100)
               for i in range(600)]
    whole = BurnRateDetector(slos)
    expected = whole.process(rollups) + whole.flush()
    a = BurnRateDetector(slos)
    got = a.process(rollups[:310])
    state = msgspec.msgpack.decode(msgspec.msgpack.encode(a.snapshot()))
    b = BurnRateDetector(slos)
    b.restore(state)
    got += b.process(rollups[305:])  # replayed rollups after a restore are ignored
    got += b.flush()
    assert got == expected
    assert any(isinstance(r, Alert) and r.state == "firing" for r in expected)


async def test_rollups_of_unknown_slos_and_other_records_are_ignored() -> None:
    det = BurnRateDetector(slo_set(availability()))
    out = det.process([SliRollup(slo="nope", service="x", bucket_ts_ns=0, resolution_ns=MIN, good=1, total=1),
                       "not a rollup"])
    assert out == [] and det.unknown_rollups == 1
    assert det.flush() == []


async def test_a_long_gap_skips_ahead_without_walking_every_minute() -> None:
    slos = slo_set(availability(period="7d"), availability(name="cal", period="month"))
    det = BurnRateDetector(slos)
    rollups = []
    for name in ("availability", "cal"):
        rollups.append(SliRollup(slo=name, service="checkout", bucket_ts_ns=T0, resolution_ns=MIN, good=90, total=100))
        rollups.append(SliRollup(slo=name, service="checkout", bucket_ts_ns=T0 + MIN, resolution_ns=40 * DAY,
                                 good=0, total=0, no_data_ns=40 * DAY))
        rollups.append(SliRollup(slo=name, service="checkout", bucket_ts_ns=T0 + MIN + 40 * DAY,
                                 resolution_ns=MIN, good=100, total=100))
    out = det.process(rollups) + det.flush()
    last = {b.slo: b for b in _budgets(out)}
    # The bad minute left the 7-day window; a month later it belongs to an old month.
    assert (last["availability"].total, last["availability"].good) == (100, 100)
    assert (last["cal"].total, last["cal"].good) == (100, 100)
    assert last["availability"].coverage < 0.01
    resolved = [a for a in _alerts(out) if a.state == "resolved"]
    assert resolved and all(a.ts_ns <= T0 + 5 * DAY for a in resolved)


def test_memory_is_fixed_by_the_slo_set_not_by_the_input() -> None:
    import gc
    import tracemalloc

    # 7d: the longest scaled window is 16h48m, so the rings wrap within the first day.
    slos = slo_set(*(availability(service=f"svc{i}", period="7d") for i in range(3)))
    det = BurnRateDetector(slos)

    def feed(day: int) -> None:
        for m in range(day * 1440, (day + 1) * 1440, 60):
            det.process([SliRollup(slo="availability", service=f"svc{i}", bucket_ts_ns=T0 + (m + k) * MIN,
                                   resolution_ns=MIN, good=999, total=1000)
                         for k in range(60) for i in range(3)])

    gc.collect()
    tracemalloc.start()
    try:
        feed(0)
        after_one = tracemalloc.get_traced_memory()[0]
        for day in range(1, 3):
            feed(day)
        after_three = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after_three < after_one * 1.1 + 100_000


async def test_the_live_stage_answers_the_deployment_question() -> None:
    slos = slo_set(availability(period="7d"))
    outage = T0 + 2 * HOUR
    _, _, det = await run_engine(slos, traffic(T0, 2 * 3600 + 1800, failing=lambda ts: ts >= outage))
    d = det.deployment_allowed("checkout")
    assert not d.allowed and "frozen" in " ".join(d.reasons)
    assert det.deployment_allowed("search").allowed
    _, _, calm = await run_engine(slos, traffic(T0, 3600))
    assert calm.deployment_allowed("checkout").allowed


def test_misaligned_rollups_are_dead_lettered_not_miscounted() -> None:
    det = BurnRateDetector(slo_set(availability()))
    out = det.process([SliRollup(slo="availability", service="checkout", bucket_ts_ns=T0 + S,
                                 resolution_ns=S, good=1, total=1)])
    assert out == []
    (dead,) = det.outputs.take()["deadletter"]
    assert "same resolution" in dead.reason


def _rollups(per_minute: list[tuple[int, int]]) -> list[SliRollup]:
    """(good, total) per minute from T0 as closed one-minute rollups."""
    return [SliRollup(slo="availability", service="checkout", bucket_ts_ns=T0 + i * MIN,
                      resolution_ns=MIN, good=g, total=t) for i, (g, t) in enumerate(per_minute)]


async def test_min_events_keeps_a_nearly_empty_long_window_quiet_but_not_a_real_outage() -> None:
    # 99.9% / 30d.  A low-traffic start: 2 requests a minute, one error in
    # minute 3: the 1h window holds 8 events with 1 bad (12.5%, burn 125x)
    # and the 5m window 1 of 8 too: the 1h/5m pair pages as the Workbook
    # writes it.  Then 200 requests a minute, and from minute 30 a full outage.
    quiet = [(2, 2)] * 3 + [(1, 2)] + [(2, 2)] * 26
    busy = [(200, 200)] * 10 + [(0, 200)] * 5
    per_minute = quiet + busy
    outage_end = T0 + (len(quiet) + 10 + 1) * MIN  # end of the first outage minute
    # The long window when the outage minute closes: every event so far.
    events_then = sum(t for _, t in per_minute[: len(quiet) + 11])
    min_events = 100
    assert sum(t for _, t in quiet[:4]) < min_events <= events_then

    def pages(alerting: dict[str, Any]) -> list[int]:
        det = BurnRateDetector(slo_set(availability(alerting={"tiers": ["page"], **alerting})))
        out = det.process(_rollups(per_minute))
        return [a.ts_ns for a in _alerts(out) if a.state == "firing" and a.long_window == "1h"]

    plain = pages({})
    guarded = pages({"min_events": min_events})
    assert plain[0] == T0 + 4 * MIN  # the noise page, as written
    assert guarded[0] == outage_end  # no noise page; the outage pages when the Workbook says
    assert outage_end in plain


def test_min_events_must_not_be_negative() -> None:
    from srestream._errors import ConfigError
    from srestream.slo import parse_slos

    with pytest.raises(ConfigError) as exc:
        parse_slos({"slos": [availability(alerting={"min_events": -1})]})
    assert any(p.path.endswith("alerting.min_events") for p in exc.value.problems)

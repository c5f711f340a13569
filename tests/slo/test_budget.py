"""Error budget math (srestream.slo._budget): examples and properties."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srestream.slo._budget import (
    budget_events,
    budget_minutes,
    burn_rate,
    calendar_period_bounds,
    consumed_ratio,
    error_budget,
    period_bounds,
    remaining_events,
    remaining_minutes,
    remaining_ratio,
    time_sliced_consumed,
    timeslice_is_good,
)

DAY = 86_400_000_000_000
HOUR = 3_600_000_000_000

objectives = st.floats(min_value=0.5, max_value=0.99999, allow_nan=False)
counts = st.integers(min_value=0, max_value=10**9)


def _ns(d: dt.datetime) -> int:
    return int(d.timestamp()) * 1_000_000_000


def test_error_budget_is_one_minus_objective() -> None:
    assert error_budget(0.999) == pytest.approx(0.001)
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="objective"):
            error_budget(bad)


def test_workbook_budget_in_minutes_and_events() -> None:
    # 99.9% over 30 days: 0.1% of 43,200 minutes = 43.2 minutes of full outage.
    assert budget_minutes(0.999, 30 * DAY) == pytest.approx(43.2)
    # 99.999%: 25.92 s ("26 seconds" in the Workbook).
    assert budget_minutes(0.99999, 30 * DAY) * 60 == pytest.approx(25.92)
    assert budget_events(1_000_000, 0.999) == pytest.approx(1000)


def test_consumed_remaining_and_burn_on_an_example() -> None:
    # 1,000,000 requests, 500 failed, 99.9%: half of the 1,000-request budget spent.
    good, total = 999_500, 1_000_000
    assert consumed_ratio(good, total, 0.999) == pytest.approx(0.5)
    assert remaining_ratio(good, total, 0.999) == pytest.approx(0.5)
    assert remaining_events(good, total, 0.999) == pytest.approx(500)
    assert burn_rate(good, total, 0.999) == pytest.approx(0.5)
    assert remaining_minutes(good, total, 0.999, 30 * DAY) == pytest.approx(21.6)


def test_slo_generator_report_example() -> None:
    # slo-generator's report: goal 0.99, 5 good 5 bad over 1h -> burn rate 50,
    # 0.6 budget minutes, -29.4 remaining.
    assert burn_rate(5, 10, 0.99) == pytest.approx(50.0)
    assert budget_minutes(0.99, HOUR) == pytest.approx(0.6)
    assert remaining_minutes(5, 10, 0.99, HOUR) == pytest.approx(0.6 - 50 * 0.6)


def test_zero_traffic_burns_nothing() -> None:
    assert burn_rate(0, 0, 0.999) == 0.0
    assert consumed_ratio(0, 0, 0.999) == 0.0
    assert remaining_ratio(0, 0, 0.999) == 1.0
    assert remaining_events(0, 0, 0.999) == 0.0
    assert timeslice_is_good(0, 0, 0.99) is None


def test_time_sliced() -> None:
    assert timeslice_is_good(99, 100, 0.99) is True
    assert timeslice_is_good(98, 100, 0.99) is False
    # 99.9% of 30 days of 1-minute slices: 43.2 bad slices allowed.
    assert time_sliced_consumed(43, 60_000_000_000, 0.999, 30 * DAY) == pytest.approx(43 / 43.2)
    with pytest.raises(ValueError, match="positive"):
        time_sliced_consumed(1, 0, 0.999, DAY)
    with pytest.raises(ValueError, match="positive"):
        time_sliced_consumed(1, 60_000_000_000, 0.999, 0)


@given(good=counts, extra=counts, objective=objectives)
def test_properties_event_weighted(good: int, extra: int, objective: float) -> None:
    total = good + extra
    c = consumed_ratio(good, total, objective)
    assert c >= 0
    assert remaining_ratio(good, total, objective) == pytest.approx(1 - c)
    if total:
        # Over one window as long as the period, burn rate == consumed.
        assert burn_rate(good, total, objective) == pytest.approx(c)
        assert remaining_events(good, total, objective) == pytest.approx(
            (1 - objective) * total - extra, abs=1e-6 * total
        )
    # Consumed exactly 1.0 when bad == budget.
    assert (extra == 0) == (c == 0)


@given(bad=st.integers(0, 10**6), total=st.integers(1, 10**6), objective=objectives,
       scale=st.integers(1, 1000))
def test_burn_rate_is_scale_free(bad: int, total: int, objective: float, scale: int) -> None:
    bad = min(bad, total)
    a = burn_rate(total - bad, total, objective)
    b = burn_rate(scale * (total - bad), scale * total, objective)
    assert a == pytest.approx(b)
    assert a <= 1 / (1 - objective) + 1e-9
    # More bad events never lower the burn.
    if bad < total:
        assert burn_rate(total - bad - 1, total, objective) >= a


@given(slices=st.integers(0, 100_000), objective=objectives,
       period_days=st.integers(1, 90))
def test_time_sliced_consumed_is_linear(slices: int, objective: float, period_days: int) -> None:
    one = time_sliced_consumed(1, 60_000_000_000, objective, period_days * DAY)
    assert time_sliced_consumed(slices, 60_000_000_000, objective, period_days * DAY) == pytest.approx(
        slices * one
    )
    # The whole budget in slices is spent exactly.
    allowed = (1 - objective) * period_days * 1440
    assert time_sliced_consumed(1, 60_000_000_000, objective, period_days * DAY) * allowed == pytest.approx(1)


def test_calendar_month_across_dst_in_the_slo_time_zone() -> None:
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    # 15 March 2024: March starts at 1 March 00:00 Paris (23:00 UTC the day before)
    # and has 31 days less the hour lost on 31 March.
    ts = _ns(dt.datetime(2024, 3, 15, 12, tzinfo=paris))
    s, e = calendar_period_bounds(ts, "month", "Europe/Paris")
    assert s == _ns(dt.datetime(2024, 2, 29, 23, tzinfo=dt.UTC))
    assert e == _ns(dt.datetime(2024, 3, 31, 22, tzinfo=dt.UTC))
    assert e - s == 31 * DAY - HOUR
    # The last nanosecond before local midnight of 1 April belongs to March; midnight to April.
    assert calendar_period_bounds(e - 1, "month", "Europe/Paris") == (s, e)
    assert calendar_period_bounds(e, "month", "Europe/Paris")[0] == e
    # October gains the hour back.
    s, e = calendar_period_bounds(_ns(dt.datetime(2024, 10, 2, tzinfo=paris)), "month", "Europe/Paris")
    assert e - s == 31 * DAY + HOUR


def test_calendar_month_end_and_year_end() -> None:
    # 31 January 23:30 in New York is already February in UTC: still January for the SLO.
    ny = zoneinfo.ZoneInfo("America/New_York")
    ts = _ns(dt.datetime(2025, 1, 31, 23, 30, tzinfo=ny))
    s, e = calendar_period_bounds(ts, "month", "America/New_York")
    assert s == _ns(dt.datetime(2025, 1, 1, tzinfo=ny))
    assert e == _ns(dt.datetime(2025, 2, 1, tzinfo=ny))
    # December rolls over into the next year; February 2024 is a leap month.
    s, e = calendar_period_bounds(_ns(dt.datetime(2024, 12, 31, 12, tzinfo=dt.UTC)), "month")
    assert e == _ns(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    s, e = calendar_period_bounds(_ns(dt.datetime(2024, 2, 10, tzinfo=dt.UTC)), "month")
    assert e - s == 29 * DAY


def test_calendar_quarter() -> None:
    s, e = calendar_period_bounds(_ns(dt.datetime(2024, 11, 5, tzinfo=dt.UTC)), "quarter")
    assert s == _ns(dt.datetime(2024, 10, 1, tzinfo=dt.UTC))
    assert e == _ns(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    s, e = calendar_period_bounds(_ns(dt.datetime(2024, 5, 5, tzinfo=dt.UTC)), "quarter", "Europe/Paris")
    assert e - s == 91 * DAY  # April, May, June: no DST change inside
    with pytest.raises(ValueError, match="calendar unit"):
        calendar_period_bounds(0, "week")


@settings(max_examples=200)
@given(ts=st.integers(0, 4_000_000_000 * 10**9),
       tz=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]),
       unit=st.sampled_from(["month", "quarter"]))
def test_calendar_bounds_hold_the_instant(ts: int, tz: str, unit: str) -> None:
    s, e = calendar_period_bounds(ts, unit, tz)
    assert s <= ts < e
    days = (e - s) / DAY
    assert (28 - 0.05 <= days <= 31 + 0.05) if unit == "month" else (89.9 <= days <= 92.1)
    # Consecutive periods tile time: the next one starts where this one ends.
    assert calendar_period_bounds(e, unit, tz)[0] == e
    local = dt.datetime.fromtimestamp(s // 10**9, zoneinfo.ZoneInfo(tz))
    assert (local.day, local.hour, local.minute) == (1, 0, 0)
    assert not math.isnan(days)


def test_period_bounds() -> None:
    assert period_bounds(10 * DAY, rolling=True, length_ns=7 * DAY) == (3 * DAY, 10 * DAY)
    assert period_bounds(10 * DAY, rolling=False, unit="month") == calendar_period_bounds(10 * DAY, "month")

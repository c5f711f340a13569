"""Error budget math: every formula in one place (100% tested).

The objective is a ratio here (0.999); the budget is ``1 - objective``, the
share of events (event-weighted) or of time slices (time-sliced) that may be
bad over the period.

* ``consumed = bad / (budget x total)`` - 1.0 means the budget is spent;
* ``remaining = 1 - consumed`` (ratio), ``budget x total - bad`` (events),
  ``remaining x budget x period`` (minutes of full outage left);
* ``burn_rate = (bad / total) / budget`` over any window: 1.0 spends the
  budget exactly in one period.

A window without traffic has no burn and consumes nothing: every division
by a count is guarded and yields 0.0.

Many nines: the budget is computed in decimal from the objective as
written, so 99.999999999 (a durability objective) gives a budget of
exactly ``1e-11`` (as a float), where ``(100 - 99.999999999) / 100`` in
binary floats is ``1.0000036e-11`` (a lost object would burn 0.9999964 of
its share).  Past 16 nines (99.99999999999999) a float cannot tell the
objective from 100: the SLO file refuses it as outside (0, 100).

Calendar periods (month, quarter) start at local midnight in the SLO's time
zone, so a month that crosses a DST change is an hour shorter or longer than
its days times 24h.

>>> round(burn_rate(good=9_900, total=10_000, objective=0.999), 9)
10.0
>>> round(budget_minutes(0.999, 30 * 86_400_000_000_000), 9)
43.2
"""

from __future__ import annotations

import datetime as _dt
import zoneinfo
from decimal import Decimal

__all__ = [
    "MINUTE_NS",
    "budget_events",
    "budget_minutes",
    "budget_ratio",
    "burn_rate",
    "calendar_period_bounds",
    "consumed_ratio",
    "error_budget",
    "objective_ratio",
    "period_bounds",
    "remaining_events",
    "remaining_minutes",
    "remaining_ratio",
    "time_sliced_consumed",
    "timeslice_is_good",
]

MINUTE_NS = 60_000_000_000


def _exact(x: float) -> Decimal:
    """The decimal a float was written as (its shortest round-trip text)."""
    return Decimal(repr(x))


def objective_ratio(objective_percent: float) -> float:
    """An objective in percent as a ratio (99.9 -> 0.999), in decimal."""
    return float(_exact(objective_percent) / 100)


def budget_ratio(objective_percent: float) -> float:
    """The budget of an objective in percent, as a ratio, in decimal:
    ``(100 - objective) / 100``.

    >>> budget_ratio(99.999999999), (100 - 99.999999999) / 100
    (1e-11, 1.0000036354540499e-11)
    """
    return float((100 - _exact(objective_percent)) / 100)


def error_budget(objective: float) -> float:
    """``1 - objective`` for an objective ratio strictly between 0 and 1
    (in decimal: ``error_budget(0.99999999999)`` is ``1e-11``)."""
    if not 0.0 < objective < 1.0:
        raise ValueError(f"objective must be a ratio in (0, 1), got {objective!r}")
    return float(1 - _exact(objective))


def budget_events(total: int, objective: float) -> float:
    """How many bad events the period's ``total`` events may contain."""
    return error_budget(objective) * total


def consumed_ratio(good: int, total: int, objective: float) -> float:
    """Share of the budget spent: ``bad / (budget x total)``; 0.0 without traffic."""
    allowed = budget_events(total, objective)
    if total <= 0:
        return 0.0
    return (total - good) / allowed


def remaining_ratio(good: int, total: int, objective: float) -> float:
    """``1 - consumed``: 1.0 untouched, 0.0 exhausted, negative overspent."""
    return 1.0 - consumed_ratio(good, total, objective)


def remaining_events(good: int, total: int, objective: float) -> float:
    """Bad events still allowed in the period so far (negative: overspent)."""
    return budget_events(total, objective) - (total - good)


def burn_rate(good: int, total: int, objective: float) -> float:
    """``error ratio / budget`` over a window; 0.0 for a window without traffic."""
    budget = error_budget(objective)
    if total <= 0:
        return 0.0
    return ((total - good) / total) / budget


def budget_minutes(objective: float, period_ns: int) -> float:
    """The budget as minutes of full outage over a period of ``period_ns``."""
    return error_budget(objective) * period_ns / MINUTE_NS


def remaining_minutes(good: int, total: int, objective: float, period_ns: int) -> float:
    """Minutes of full outage left: ``remaining ratio x budget minutes``."""
    return remaining_ratio(good, total, objective) * budget_minutes(objective, period_ns)


def timeslice_is_good(good: int, total: int, target: float) -> bool | None:
    """Whether one time slice meets ``target`` (a ratio); None when the slice
    had no events (it counts neither good nor bad)."""
    if total <= 0:
        return None
    return good / total >= target


def time_sliced_consumed(
    bad_slices: float, slice_ns: int, objective: float, period_ns: int
) -> float:
    """Time-sliced budget spent: bad slices over the budgeted number of
    slices in the period (``budget x period / slice``)."""
    if slice_ns <= 0 or period_ns <= 0:
        raise ValueError("slice and period lengths must be positive")
    allowed = error_budget(objective) * (period_ns / slice_ns)
    return bad_slices / allowed


def calendar_period_bounds(ts_ns: int, unit: str, time_zone: str = "UTC") -> tuple[int, int]:
    """``[start, end)`` in UTC ns of the calendar month or quarter holding
    ``ts_ns``, with boundaries at local midnight in ``time_zone``.

    >>> s, e = calendar_period_bounds(1_710_000_000_000_000_000, "month", "Europe/Paris")
    >>> (e - s) / 3_600_000_000_000    # March 2024 in Paris: 31 days less the DST hour
    743.0
    """
    tz = zoneinfo.ZoneInfo(time_zone)
    secs = ts_ns // 1_000_000_000
    local = _dt.datetime.fromtimestamp(secs, tz)
    if unit == "month":
        first_month = local.month
        months = 1
    elif unit == "quarter":
        first_month = (local.month - 1) // 3 * 3 + 1
        months = 3
    else:
        raise ValueError(f"unknown calendar unit {unit!r} (month or quarter)")
    start = _dt.datetime(local.year, first_month, 1, tzinfo=tz)
    end_month = first_month + months
    end = _dt.datetime(local.year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1, tzinfo=tz)
    return _to_ns(start), _to_ns(end)


def _to_ns(d: _dt.datetime) -> int:
    return int(d.timestamp()) * 1_000_000_000


def period_bounds(
    ts_ns: int, *, rolling: bool, length_ns: int = 0, unit: str = "", time_zone: str = "UTC"
) -> tuple[int, int]:
    """``[start, end)`` of the period in force at ``ts_ns``: the last
    ``length_ns`` for a rolling period (ending at ``ts_ns``), the calendar
    month/quarter otherwise."""
    if rolling:
        return ts_ns - length_ns, ts_ns
    return calendar_period_bounds(ts_ns, unit, time_zone)

"""Multi-window, multi-burn-rate alert windows (SRE Workbook ch. 5).

An alert window pairs a long and a short window with a burn-rate factor:
the alert condition holds when the burn rate over *both* windows reaches
the factor.  The long window says "enough budget has burned to matter", the
short one says "and it is still burning" (so the alert resets quickly).

The factor comes from how much of the budget the long window may consume
before it alerts (Sloth's ``errorBudgetPercent``)::

    factor = budget_consumed x period / long_window

For a 30-day period the Workbook's catalogue gives: page at 2% in 1h
(14.4x, short 5m) and 5% in 6h (6x, short 30m); ticket at 10% in 1d (3x,
short 2h) and 10% in 3d (1x, short 6h).

For other periods the windows scale by ``period / 30d`` (rounded to the
minute, never under one minute) and the factor is recomputed with the same
formula, so each pair still alerts on the same fraction of the budget.
``scaling="none"`` keeps the Workbook windows as they are and only
recomputes the factor: that is what Sloth does with its 28d catalogue
(14.4 -> 13.44 for the 1h page).

>>> [w.burn_rate for w in default_alert_windows(30 * DAY_NS)]
[14.4, 6.0, 3.0, 1.0]
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

import msgspec

from .._duration import format_duration

__all__ = [
    "DAY_NS",
    "HOUR_NS",
    "MINUTE_NS",
    "REFERENCE_PERIOD_NS",
    "TIERS",
    "WORKBOOK_WINDOWS",
    "AlertWindow",
    "burn_rate_factor",
    "dedup_key",
    "default_alert_windows",
    "detection_time_ns",
    "scale_window",
]

MINUTE_NS: Final = 60_000_000_000
HOUR_NS: Final = 60 * MINUTE_NS
DAY_NS: Final = 24 * HOUR_NS
REFERENCE_PERIOD_NS: Final = 30 * DAY_NS
"""The period the Workbook's window catalogue is written for."""

TIERS: Final = ("page", "ticket")
"""Alert tiers of the burn-rate catalogue; ``forecast`` is the predicted-violation tier."""


class AlertWindow(msgspec.Struct, frozen=True, kw_only=True):
    """One long/short window pair and the burn rate that trips it.

    ``budget_consumed`` is the fraction of the period's budget the long
    window burns at exactly ``burn_rate`` (0.02 for the 1h page).
    ``name`` (``page_quick``, ``page_slow``, ...) identifies the pair.
    """

    tier: str
    severity: str
    name: str
    long_window_ns: int
    short_window_ns: int
    burn_rate: float
    budget_consumed: float

    @property
    def long_window(self) -> str:
        return format_duration(self.long_window_ns)

    @property
    def short_window(self) -> str:
        return format_duration(self.short_window_ns)


# (tier, name, long, short, budget fraction consumed in the long window)
WORKBOOK_WINDOWS: Final[tuple[tuple[str, str, int, int, float], ...]] = (
    ("page", "page_quick", 1 * HOUR_NS, 5 * MINUTE_NS, 0.02),
    ("page", "page_slow", 6 * HOUR_NS, 30 * MINUTE_NS, 0.05),
    ("ticket", "ticket_quick", 1 * DAY_NS, 2 * HOUR_NS, 0.10),
    ("ticket", "ticket_slow", 3 * DAY_NS, 6 * HOUR_NS, 0.10),
)


def burn_rate_factor(budget_consumed: float, period_ns: int, long_window_ns: int) -> float:
    """``budget_consumed x period / long_window`` (computed in hours, the
    way Sloth prints it).

    >>> burn_rate_factor(0.02, 30 * DAY_NS, HOUR_NS)
    14.4
    """
    if long_window_ns <= 0:
        raise ValueError("long window must be positive")
    return budget_consumed * (period_ns / HOUR_NS) / (long_window_ns / HOUR_NS)


def scale_window(window_ns: int, period_ns: int, resolution_ns: int = MINUTE_NS) -> int:
    """``window x period / 30d`` rounded (half up) to ``resolution_ns``, at
    least one resolution step."""
    scaled = window_ns * period_ns // REFERENCE_PERIOD_NS
    steps = (scaled + resolution_ns // 2) // resolution_ns
    return max(1, steps) * resolution_ns


def default_alert_windows(
    period_ns: int,
    *,
    scaling: Literal["period", "none"] = "period",
    severities: dict[str, str] | None = None,
    tiers: tuple[str, ...] | list[str] = TIERS,
    resolution_ns: int = MINUTE_NS,
) -> list[AlertWindow]:
    """The Workbook catalogue adapted to ``period_ns``.

    ``severities`` maps a tier to the severity label its alerts carry
    (default: the tier name); ``tiers`` keeps only these tiers.
    """
    sev = severities or {}
    out: list[AlertWindow] = []
    for tier, name, long_ns, short_ns, consumed in WORKBOOK_WINDOWS:
        if tier not in tiers:
            continue
        if scaling == "period" and period_ns != REFERENCE_PERIOD_NS:
            long_ns = scale_window(long_ns, period_ns, resolution_ns)
            short_ns = min(scale_window(short_ns, period_ns, resolution_ns), long_ns)
        out.append(
            AlertWindow(
                tier=tier,
                severity=sev.get(tier, tier),
                name=name,
                long_window_ns=long_ns,
                short_window_ns=short_ns,
                burn_rate=burn_rate_factor(consumed, period_ns, long_ns),
                budget_consumed=consumed,
            )
        )
    return out


def detection_time_ns(
    error_ratio: float, objective_ratio: float, window: AlertWindow
) -> float | None:
    """Event time (ns) from the start of an incident with a constant
    ``error_ratio`` (after a clean history) until ``window`` trips; None if
    it never trips.

    The long window's error ratio after t is ``error_ratio x t / long`` (for
    t <= long), which reaches ``factor x budget`` at
    ``t = factor x budget x long / error_ratio``; the short window needs the
    same over ``short``.  Workbook: 99.9%, 1h/14.4x, full outage: 51.84 s.
    """
    budget = 1.0 - objective_ratio
    need = window.burn_rate * budget
    if error_ratio < need or error_ratio <= 0:
        return None
    t_long = need * window.long_window_ns / error_ratio
    t_short = need * window.short_window_ns / error_ratio
    return max(t_long, t_short)


def dedup_key(service: str, slo: str, tier: str, name: str) -> str:
    """A stable key for one alert rule of one (service, SLO): the same for
    every pending/firing/resolved record of it, across runs and restarts."""
    h = hashlib.sha256(f"{service}\x1f{slo}\x1f{tier}\x1f{name}".encode()).hexdigest()
    return f"slo-{h[:20]}"

"""Exhaustion forecast: least squares on consumed budget, within 10% on
constant and linearly growing burn."""

from __future__ import annotations

import math

import pytest

from srestream.slo import Alert, Budget, BurnRateDetector, SliRollup, forecast_exhaustion

from .helpers import DAY, HOUR, MIN, T0, availability, slo_set

PERIOD_H = 7 * 24


def _scenario(bad_per_10k: callable[[float], float], burn_hours: float, *, horizon: str | None = None) -> list:
    """99% / 7d, 10,000 requests a minute: a full clean week, then ``burn_hours``
    with ``bad_per_10k(t_hours)`` failures a minute."""
    alerting = {"forecast_horizon": horizon} if horizon else {}
    slos = slo_set(availability(objective=99, period="7d", alerting=alerting))
    det = BurnRateDetector(slos)
    rollups = []
    week = 7 * 24 * 60
    for i in range(week + int(burn_hours * 60)):
        bad = 0 if i < week else round(bad_per_10k((i - week) / 60))
        rollups.append(SliRollup(slo="availability", service="checkout", bucket_ts_ns=T0 + i * MIN,
                                 resolution_ns=MIN, good=10_000 - bad, total=10_000))
    return det.process(rollups) + det.flush()


def test_constant_burn_forecast_is_within_10_percent() -> None:
    # Burn rate b = 10 (10% errors against a 1% budget): the budget of a 7-day
    # window lasts 168 h / 10 = 16.8 h from the start of the burn.
    b = 10.0
    start = T0 + 7 * DAY
    true_ex = start + int(PERIOD_H / b * HOUR)
    out = _scenario(lambda t: b * 0.01 * 10_000, 8)
    last = [r for r in out if isinstance(r, Budget)][-1]
    assert last.exhaustion_ts_ns is not None
    remaining = true_ex - last.ts_ns
    assert abs(last.exhaustion_ts_ns - true_ex) <= 0.1 * remaining
    assert last.exhaustion_error_ns is not None and last.exhaustion_error_ns <= 0.1 * remaining


def test_linearly_growing_burn_forecast_is_within_10_percent() -> None:
    # Burn rate grows 2x per hour: b(t) = 2t, consumed(t) = t^2 / 168 -> exhausted at
    # t = sqrt(168) = 12.96 h.  A straight line would miss it; the quadratic does not.
    k = 2.0
    start = T0 + 7 * DAY
    true_ex = start + int(math.sqrt(PERIOD_H / k * 2) * HOUR)
    assert math.sqrt(PERIOD_H / k * 2) == pytest.approx(12.96, abs=0.01)
    out = _scenario(lambda t: k * t * 0.01 * 10_000, 8)
    last = [r for r in out if isinstance(r, Budget)][-1]
    assert last.exhaustion_ts_ns is not None
    remaining = true_ex - last.ts_ns
    assert abs(last.exhaustion_ts_ns - true_ex) <= 0.1 * remaining


def test_no_burn_no_exhaustion() -> None:
    out = _scenario(lambda t: 0.0, 7)
    last = [r for r in out if isinstance(r, Budget)][-1]
    assert last.exhaustion_ts_ns is None and last.budget_remaining == 1.0


def test_predicted_violation_alert_fires_within_the_horizon() -> None:
    # Burn 4x: exhausted 42 h after it starts; with a 36 h horizon the forecast
    # alert fires once fewer than 36 h remain (about 6 h in), well before the
    # budget runs out and before the 1x/3d ticket would.
    out = _scenario(lambda t: 4 * 0.01 * 10_000, 8, horizon="36h")
    forecast = [a for a in out if isinstance(a, Alert) and a.tier == "forecast"]
    assert forecast and forecast[0].state == "firing"
    start = T0 + 7 * DAY
    fired_h = (forecast[0].ts_ns - start) / HOUR
    assert 5.5 <= fired_h <= 7.0
    true_ex = start + 42 * HOUR
    assert abs(forecast[0].exhaustion_ts_ns - true_ex) <= 0.1 * (true_ex - forecast[0].ts_ns)  # type: ignore[operator]
    assert forecast[0].budget_remaining > 0


def test_forecast_function_edge_cases() -> None:
    step = 5 * MIN
    assert forecast_exhaustion([], 0, max_horizon_ns=DAY, step_ns=step).model == "none"
    # All points at one time: no slope can be fitted.
    same = [(0, 0.1), (0, 0.2)]
    assert forecast_exhaustion(same, 0, max_horizon_ns=DAY, step_ns=step).exhaustion_ts_ns is None
    # Already exhausted: now.
    f = forecast_exhaustion([(-HOUR, 0.9), (0, 1.2)], 0, max_horizon_ns=DAY, step_ns=step)
    assert f.exhaustion_ts_ns == 0 and f.model == "linear"
    # Exact line: 0.5 now, +0.1 per hour -> 5 h, error floored at one step.
    pts = [(-i * HOUR // 4, 0.5 - 0.1 * i / 4) for i in range(12, -1, -1)]
    f = forecast_exhaustion(pts, 0, max_horizon_ns=DAY, step_ns=step)
    assert f.exhaustion_ts_ns == pytest.approx(5 * HOUR, rel=1e-6)
    assert f.error_ns == step and f.burn_trend == pytest.approx(0.1)
    # Beyond the horizon: no forecast.
    assert forecast_exhaustion(pts, 0, max_horizon_ns=4 * HOUR, step_ns=step).exhaustion_ts_ns is None
    # Decelerating consumption that never reaches 1: none (quadratic with no root).
    pts = [(-i * HOUR, 0.5 - 0.01 * i * i) for i in range(10, -1, -1)]
    pts = [(t, 0.5 - 0.01 * (t / HOUR + 10) ** 2 + 1.0) for t, _ in pts]
    f = forecast_exhaustion(pts, 0, max_horizon_ns=DAY, step_ns=step)
    assert f.model == "quadratic" and f.exhaustion_ts_ns is None
    # Noise gives an error estimate larger than one step.
    noisy = [(-i * HOUR // 4, 0.5 - 0.1 * i / 4 + (0.02 if i % 2 else -0.02)) for i in range(12, -1, -1)]
    f = forecast_exhaustion(noisy, 0, max_horizon_ns=DAY, step_ns=step)
    assert f.model == "linear" and f.error_ns is not None and f.error_ns > step
    # Flat consumption: no slope, no exhaustion.
    flat = [(-i * HOUR, 0.3) for i in range(5, -1, -1)]
    assert forecast_exhaustion(flat, 0, max_horizon_ns=DAY, step_ns=step).exhaustion_ts_ns is None


def test_a_burn_that_just_started_is_not_extrapolated_as_a_trend() -> None:
    # Burn 2x from a clean week: exhaustion 84 h away, beyond a 36 h horizon.
    # Right after the step the forecast is uncertain (its error says so) and the
    # predicted-violation alert must not fire at any point.
    out = _scenario(lambda t: 2 * 0.01 * 10_000, 12, horizon="36h")
    assert not [a for a in out if isinstance(a, Alert) and a.tier == "forecast"]
    budgets = [r for r in out if isinstance(r, Budget)]
    early = budgets[-13]  # one hour into the burn
    late = budgets[-1]
    start = T0 + 7 * DAY
    assert early.exhaustion_error_ns is not None and early.exhaustion_error_ns > 24 * HOUR
    assert late.exhaustion_ts_ns is not None
    assert abs(late.exhaustion_ts_ns - (start + 84 * HOUR)) <= 0.01 * 84 * HOUR

"""Forecast of error-budget exhaustion from the recent burn trend.

Model: least squares on the *consumed budget* series (one point per
forecast step over the forecast window).  A constant burn makes
consumption linear, a linearly growing burn makes it quadratic:

* when the burn rate (the slope between consecutive points) itself follows
  a straight line over the whole window (R^2 >= 0.9), consumption is fitted
  with a quadratic ``a + b t + c t^2`` over the window;
* otherwise - a constant or noisy burn, or a step (an incident that just
  started) - with a straight line through the most recent third of the
  window: the current burn, not a trend extrapolated across the step.

Exhaustion is the first time at or after ``now`` where the fitted curve
reaches 1.0 (the whole budget).  Its error estimate is the larger of

* the delta method: the residual standard deviation of the fit divided by
  the slope of the curve at exhaustion (how far in time one sigma of
  consumption moves the crossing), and
* the forecast's instability: how far the exhaustion forecast from the
  older half of the window lands from the full-window one (when the burn
  just changed, the two disagree and the error says so; when the older
  half forecasts no exhaustion at all, the error is the whole lead time),

floored at the forecast step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

__all__ = ["Forecast", "forecast_exhaustion"]

_HOUR_NS = 3_600_000_000_000


class Forecast(msgspec.Struct, frozen=True, kw_only=True):
    """``exhaustion_ts_ns`` None: the trend does not exhaust the budget
    within ``max_horizon_ns``."""

    exhaustion_ts_ns: int | None
    error_ns: int | None
    model: str
    burn_trend: float = 0.0
    """Slope of consumption now, in budget per hour."""


def _solve(xs: Sequence[float], ys: Sequence[float], degree: int) -> tuple[list[float], float] | None:
    """Least squares polynomial fit (normal equations, small degree);
    returns coefficients (low order first) and the residual sum of squares."""
    n = degree + 1
    # Normal equations A^T A x = A^T y.
    if degree in (1, 2):
        sums, rhs = _moments(xs, ys, degree)
    else:
        sums = [0.0] * (2 * degree + 1)
        rhs = [0.0] * n
        for x, y in zip(xs, ys, strict=True):
            p = 1.0
            for k in range(2 * degree + 1):
                sums[k] += p
                if k < n:
                    rhs[k] += p * y
                p *= x
    m = [[sums[i + j] for j in range(n)] + [rhs[i]] for i in range(n)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[piv][col]) < 1e-12:
            return None
        m[col], m[piv] = m[piv], m[col]
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    coef = [m[i][n] / m[i][i] for i in range(n)]
    rss = 0.0
    powers = range(n)
    for x, y in zip(xs, ys, strict=True):
        fx = sum([c * x**k for k, c in zip(powers, coef)])
        rss += (y - fx) ** 2
    return coef, rss


def _moments(xs: Sequence[float], ys: Sequence[float], degree: int) -> tuple[list[float], list[float]]:
    """The sums of x^k and x^k y of the normal equations for a line or a
    parabola: the general loop of ``_solve`` unrolled, with the very same
    floating-point operations in the same order (so the same results to
    the bit: ``1.0 * v`` is ``v``).  The budget forecast fits these once per
    key and budget interval; the general loop was most of its time."""
    s0 = s1 = s2 = s3 = s4 = r0 = r1 = r2 = 0.0
    if degree == 1:
        for x, y in zip(xs, ys, strict=True):
            s0 += 1.0
            r0 += y
            s1 += x
            r1 += x * y
            s2 += x * x
        return [s0, s1, s2], [r0, r1]
    for x, y in zip(xs, ys, strict=True):
        s0 += 1.0
        r0 += y
        s1 += x
        r1 += x * y
        p = x * x
        s2 += p
        r2 += p * y
        p *= x
        s3 += p
        s4 += p * x
    return [s0, s1, s2, s3, s4], [r0, r1, r2]


def _burn_grows_linearly(xs: Sequence[float], ys: Sequence[float]) -> bool:
    """Whether the burn rate (the slope of consumption between points) follows
    a straight line over the whole window (R^2 >= 0.9): then consumption is
    quadratic.  A step in the burn (an incident that just started) fits a
    line poorly and is not extrapolated as a trend."""
    if len(xs) < 6:
        return False
    mids = [(xs[i] + xs[i + 1]) / 2 for i in range(len(xs) - 1) if xs[i + 1] > xs[i]]
    rates = [(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) for i in range(len(xs) - 1) if xs[i + 1] > xs[i]]
    if len(rates) < 5:
        return False
    mean = sum(rates) / len(rates)
    total = sum((r - mean) ** 2 for r in rates)
    if total <= 1e-18 * max(1.0, mean * mean) * len(rates):
        return False  # constant burn: a line is exact
    line = _solve(mids, rates, 1)
    if line is None:
        return False
    return 1.0 - line[1] / total >= 0.9


def _first_crossing(coef: list[float], x0: float, limit: float) -> float | None:
    """Smallest x in [x0, limit] with poly(x) >= 1."""
    a = coef[0] - 1.0
    b = coef[1] if len(coef) > 1 else 0.0
    c = coef[2] if len(coef) > 2 else 0.0

    def f(x: float) -> float:
        return a + b * x + c * x * x

    if f(x0) >= 0:
        return x0
    roots: list[float] = []
    if abs(c) < 1e-15:
        if b != 0:
            roots.append(-a / b)
    else:
        disc = b * b - 4 * c * a
        if disc >= 0:
            s = math.sqrt(disc)
            roots += [(-b - s) / (2 * c), (-b + s) / (2 * c)]
    good = sorted(r for r in roots if x0 <= r <= limit)
    return good[0] if good else None


def forecast_exhaustion(
    points: Sequence[tuple[int, float]],
    now_ns: int,
    *,
    max_horizon_ns: int,
    step_ns: int,
) -> Forecast:
    """Forecast when consumption reaches 1.0 from ``(ts_ns, consumed)``
    points (oldest first), looking at most ``max_horizon_ns`` ahead."""
    main = _fit_forecast(points, now_ns, max_horizon_ns=max_horizon_ns, step_ns=step_ns)
    ex = main.exhaustion_ts_ns
    if ex is None or main.error_ns is None or ex == now_ns or len(points) < 8:
        return main
    older = _fit_forecast(
        points[: len(points) // 2], now_ns, max_horizon_ns=max_horizon_ns, step_ns=step_ns
    )
    lead = ex - now_ns
    spread = abs(older.exhaustion_ts_ns - ex) if older.exhaustion_ts_ns is not None else lead
    return Forecast(
        exhaustion_ts_ns=ex,
        error_ns=max(main.error_ns, min(spread, max_horizon_ns)),
        model=main.model,
        burn_trend=main.burn_trend,
    )


def _fit_forecast(
    points: Sequence[tuple[int, float]], now_ns: int, *, max_horizon_ns: int, step_ns: int
) -> Forecast:
    if len(points) < 2:
        return Forecast(exhaustion_ts_ns=None, error_ns=None, model="none")
    xs = [(t - now_ns) / _HOUR_NS for t, _ in points]
    ys = [y for _, y in points]
    if _burn_grows_linearly(xs, ys):
        fit = _solve(xs, ys, 2)
        model = "quadratic"
        dof = len(xs) - 3
    else:
        # The current burn: a line through the most recent third of the window.
        k = max(2, len(xs) // 3)
        xs, ys = xs[-k:], ys[-k:]
        fit = _solve(xs, ys, 1)
        model = "linear"
        dof = len(xs) - 2
    if fit is None:
        return Forecast(exhaustion_ts_ns=None, error_ns=None, model="none")
    coef, rss = fit
    slope_now = coef[1]
    limit = max_horizon_ns / _HOUR_NS
    x = _first_crossing(coef, 0.0, limit)
    if x is None:
        return Forecast(exhaustion_ts_ns=None, error_ns=None, model=model, burn_trend=slope_now)
    slope = coef[1] + 2 * (coef[2] if len(coef) > 2 else 0.0) * x
    sigma = math.sqrt(rss / dof) if dof > 0 else 0.0
    err_h = sigma / slope if slope > 0 else float("inf")
    err_ns = max(step_ns, int(min(err_h * _HOUR_NS, max_horizon_ns)))
    return Forecast(
        exhaustion_ts_ns=now_ns + round(x * _HOUR_NS),
        error_ns=err_ns,
        model=model,
        burn_trend=slope_now,
    )

"""The state of one (SLO, service) in the burn-rate stage.

It keeps:

* a ring of *cumulative* good/total counts per bucket, one slot longer
  than the longest alert window: a window's counts are the cumulative
  counts now minus those n buckets ago, so a closed bucket costs two
  stores and an evaluation reads only the windows it needs;
* coarse buckets (one hour, or one bucket for periods under a day) over the
  SLO period for the budget (rolling, the oldest hour counted pro rata), or
  sums since the start of the calendar month/quarter in the SLO's time
  zone (calendar);
* the state of each alert rule (pending, firing) and a short history of
  consumed budget for the exhaustion forecast.

Everything is evaluated at the end of each closed bucket, in event time:
the alerts depend only on the rollups, so a replay gives the same alerts
at any speed and batch size.

Memory per key (8-byte counters): ``2 x (longest alert window in buckets
+ 1)`` cumulative counters plus ``3 x (coarse buckets in the period + 1)``.
For a 30d SLO: 2 x 4321 + 3 x 721 counters = 86 KB; for a 90d quarter
(windows scaled x3): 2 x 12961 + 3 x 2161 = 259 KB.  Measured with
tracemalloc for 100 services x 3 SLOs (after 4 days of minute rollups):
35 MB when all are 30d, 73 MB when all are calendar quarters - fixed by
the SLO set, not by the input.  (Minute history beyond the longest alert
window and the 90-day history live in the budget ledger, from the rollups.)
"""

from __future__ import annotations

from array import array
from collections import deque
from typing import Any

import msgspec

from ._alerting import HOUR_NS, MINUTE_NS, AlertWindow, dedup_key
from ._budget import calendar_period_bounds, time_sliced_consumed
from ._forecast import Forecast, forecast_exhaustion
from ._records import Alert, AlertState, Budget, SliRollup
from ._spec import SLOSpec, alert_windows

__all__ = ["SloState"]

_INACTIVE = ""


class _Rule:
    """One alert rule of one key: a window pair, or the forecast."""

    __slots__ = (
        "bad_share",
        "cleared_ns",
        "dedup",
        "factor",
        "long_n",
        "name",
        "severity",
        "short_n",
        "since_ns",
        "state",
        "tier",
        "window",
    )

    def __init__(self, window: AlertWindow | None, spec: SLOSpec, res: int, severity: str = "") -> None:
        self.window = window
        if window is not None:
            self.name, self.tier, self.severity = window.name, window.tier, window.severity
            self.long_n = window.long_window_ns // res
            self.short_n = window.short_window_ns // res
            self.factor = window.burn_rate
        else:
            self.name, self.tier, self.severity = "forecast", "forecast", severity
            self.long_n = self.short_n = 0
            self.factor = 0.0
        self.dedup = dedup_key(spec.service, spec.name, self.tier, self.name)
        self.bad_share = self.factor * spec.budget_ratio
        """The error ratio at which the burn rate reaches the factor."""
        self.state = _INACTIVE
        self.since_ns = 0
        self.cleared_ns: int | None = None
        """When the condition of a firing alert stopped holding."""


class SloState:
    """Windows, budget and alert state of one (SLO, service)."""

    def __init__(
        self,
        spec: SLOSpec,
        *,
        resolution_ns: int,
        budget_interval_ns: int,
        forecast_step_ns: int,
    ) -> None:
        self.spec = spec
        self.res = resolution_ns
        self.budget_ratio = spec.budget_ratio
        self.objective_ratio = spec.objective_ratio
        period = spec.parsed_period()
        self.period = period
        self.rolling = period.rolling
        self.windows = alert_windows(spec, resolution_ns=resolution_ns)
        a = spec.alerting
        self.rules = [_Rule(w, spec, resolution_ns) for w in self.windows]
        least = max(1, a.min_events)
        self.checks = [(r, r.long_n, r.short_n, r.bad_share, least) for r in self.rules]
        """What ``_evaluate`` reads of each rule, in one tuple."""
        self.forecast_rule = (
            _Rule(None, spec, resolution_ns, a.severities.get("forecast", "ticket"))
            if a.enabled and a.forecast_horizon is not None
            else None
        )
        self.pending_for = a.pending_for.ns
        self.keep_firing_for = a.keep_firing_for.ns
        self.horizon_ns = a.forecast_horizon.ns if a.forecast_horizon is not None else 0
        hour_n = max(1, HOUR_NS // resolution_ns)
        lengths = {hour_n} | {r.long_n for r in self.rules} | {r.short_n for r in self.rules}
        self.lengths = sorted(lengths)
        # The ring holds cumulative counts: a window's sum is the cumulative
        # count now minus the one n buckets ago (one slot more than the
        # longest window, so that slot is still there).
        self.ring_len = self.lengths[-1] + 1
        self.hour_n = hour_n
        self.ring = array("q", bytes(16 * self.ring_len))
        """Cumulative (good, total) of slot s at [2s] and [2s + 1]: one
        cache line holds both, and with 300 keys the rings are tens of MB,
        so the reads of a window are cache misses (the stage's main cost)."""
        self.cum_good = 0
        self.cum_total = 0
        self.last_idx = -1
        self.next_bucket: int | None = None
        """Index (ts // resolution) of the next bucket expected."""
        self.first_ts_ns: int | None = None
        # Period accounting.
        if period.rolling:
            coarse = HOUR_NS if period.length_ns >= 24 * HOUR_NS and period.length_ns % HOUR_NS == 0 else resolution_ns
            self.coarse_ns = coarse
            # Coarser than the bucket: one more coarse bucket than the period
            # holds, the oldest counted pro rata (see period_counts).
            self.prorate = coarse > resolution_ns
            self.coarse_len = max(1, period.length_ns // coarse) + (1 if self.prorate else 0)
            self.c_good = array("q", bytes(8 * self.coarse_len))
            self.c_total = array("q", bytes(8 * self.coarse_len))
            self.c_nodata = array("q", bytes(8 * self.coarse_len))
            self.coarse_idx: int | None = None
        self.period_start_ns = 0
        self.period_end_ns = 0
        self.p_good = 0
        self.p_total = 0
        self.p_nodata = 0
        self.now_ns = 0
        self.budget_interval_ns = budget_interval_ns
        self.forecast_step_ns = forecast_step_ns
        n_points = max(2, a.forecast_window.ns // forecast_step_ns)
        self.points: deque[tuple[int, float]] = deque(maxlen=n_points)
        self.next_budget_ns: int | None = None
        self.next_point_ns: int | None = None
        self.forecast = Forecast(exhaustion_ts_ns=None, error_ns=None, model="none")

    # -- accounting -------------------------------------------------------------

    def _push(self, idx: int, good: int, total: int, nodata_ns: int, windows: bool = True) -> None:
        """Add one closed bucket with index ``idx`` (consecutive).  Runs once
        per key and bucket: attributes are read into locals once."""
        if windows:
            slot = idx % self.ring_len
            self.cum_good = cg_ = self.cum_good + good
            self.cum_total = ct_ = self.cum_total + total
            self.ring[2 * slot] = cg_
            self.ring[2 * slot + 1] = ct_
            self.last_idx = idx
        ts = idx * self.res
        if self.rolling:
            c = ts // self.coarse_ns
            ci = self.coarse_idx
            C = self.coarse_len
            cg, ct, cn = self.c_good, self.c_total, self.c_nodata
            if ci is None:
                self.coarse_idx = c
            elif c > ci:
                pg, pt, pn = self.p_good, self.p_total, self.p_nodata
                for k in range(ci + 1, min(c, ci + C) + 1):
                    s = k % C
                    pg -= cg[s]
                    pt -= ct[s]
                    pn -= cn[s]
                    cg[s] = ct[s] = cn[s] = 0
                self.p_good, self.p_total, self.p_nodata = pg, pt, pn
                self.coarse_idx = c
            s = c % C
            cg[s] += good
            ct[s] += total
            cn[s] += nodata_ns
        elif ts >= self.period_end_ns:
            self.period_start_ns, self.period_end_ns = calendar_period_bounds(
                ts, self.period.unit, self.period.time_zone
            )
            self.p_good = self.p_total = self.p_nodata = 0
        self.p_good += good
        self.p_total += total
        self.p_nodata += nodata_ns

    def _reset_windows(self, idx: int) -> None:
        """Every window empty as of bucket ``idx`` (after a long gap)."""
        self.ring = array("q", [self.cum_good, self.cum_total]) * self.ring_len
        self.last_idx = idx

    def window(self, n: int) -> tuple[int, int]:
        """(good, total) over the last ``n`` buckets."""
        i = self.last_idx
        if i < 0:
            return 0, 0
        L = self.ring_len
        old = (i - n) % L
        ring, now = self.ring, 2 * (i % L)
        return ring[now] - ring[2 * old], ring[now + 1] - ring[2 * old + 1]

    def burn(self, n: int) -> float:
        g, t = self.window(n)
        if t <= 0:
            return 0.0
        return ((t - g) / t) / self.budget_ratio

    def period_start(self) -> int:
        """Start of the period the budget covers."""
        if self.period.rolling:
            return self.now_ns - self.period.length_ns
        return self.period_start_ns

    def period_counts(self) -> tuple[float, float, float]:
        """(good, total, no-data ns) over the period.  A rolling period over
        coarse buckets takes the part of the oldest bucket still inside the
        window pro rata, so the window slides smoothly instead of by hours."""
        if self.period.rolling and self.prorate and self.coarse_idx is not None:
            c = self.coarse_idx
            out = (self.now_ns - c * self.coarse_ns) / self.coarse_ns
            oldest = (c + 1) % self.coarse_len
            return (
                self.p_good - out * self.c_good[oldest],
                self.p_total - out * self.c_total[oldest],
                self.p_nodata - out * self.c_nodata[oldest],
            )
        return float(self.p_good), float(self.p_total), float(self.p_nodata)

    def consumed(self) -> float:
        good, total, _ = self.period_counts()
        bad = total - good
        if self.spec.sli.time_sliced:
            length = self.period.length_ns if self.period.rolling else self.period_end_ns - self.period_start_ns
            return time_sliced_consumed(bad, self.res, self.objective_ratio, length)
        if total <= 0:
            return 0.0
        return bad / (self.budget_ratio * total)

    def period_length_ns(self) -> int:
        if self.period.rolling:
            return self.period.length_ns
        return self.period_end_ns - self.period_start_ns

    # -- one closed bucket ------------------------------------------------------

    def add(self, r: SliRollup, out: list[Any]) -> None:
        res = self.res
        idx = r.bucket_ts_ns // res
        n = max(1, r.resolution_ns // res)
        if self.next_bucket is None:
            self.next_bucket = idx
            self.first_ts_ns = r.bucket_ts_ns
            self._schedule(r.bucket_ts_ns)
        elif idx < self.next_bucket:
            return  # already counted (a replayed rollup after restore)
        elif idx > self.next_bucket:
            # A hole in the rollups: treat as no-data buckets.
            self._gap(self.next_bucket, idx - self.next_bucket, out)
        if n == 1:
            self._push(idx, r.good, r.total, r.no_data_ns)
            self.next_bucket = idx + 1
            self._evaluate((idx + 1) * res, out)
        else:
            # A multi-bucket rollup is a gap: spread counts on its first bucket.
            self._push(idx, r.good, r.total, min(r.no_data_ns, res))
            self.next_bucket = idx + 1
            self._evaluate((idx + 1) * res, out)
            rest_nodata = max(0, r.no_data_ns - res)
            self._gap(idx + 1, n - 1, out, nodata_ns=rest_nodata)

    def _gap(self, idx: int, n: int, out: list[Any], nodata_ns: int | None = None) -> None:
        """``n`` empty buckets from ``idx``: evaluated one by one while the
        windows still hold data, then skipped in one step."""
        res = self.res
        per = res if nodata_ns is None else nodata_ns // n if n else 0
        step_through = min(n, self.ring_len + 1)
        for i in range(step_through):
            self._push(idx + i, 0, 0, per)
            self.next_bucket = idx + i + 1
            self._evaluate((idx + i + 1) * res, out)
        rest = n - step_through
        if rest > 0:
            last = idx + n - 1
            # Windows are all empty by now; account the period in coarse steps.
            self._reset_windows(last)
            self._skip_period(idx + step_through, rest, per)
            self.next_bucket = last + 1
            self._evaluate((last + 1) * res, out)

    def _skip_period(self, idx: int, n: int, per_nodata: int) -> None:
        if self.period.rolling:
            ratio = max(1, self.coarse_ns // self.res)
            keep = (self.coarse_len + 1) * ratio
            if n > keep:
                # Longer than the period: everything before is evicted anyway.
                self.c_good = array("q", bytes(8 * self.coarse_len))
                self.c_total = array("q", bytes(8 * self.coarse_len))
                self.c_nodata = array("q", bytes(8 * self.coarse_len))
                self.p_good = self.p_total = self.p_nodata = 0
                self.coarse_idx = (idx + n - keep) * self.res // self.coarse_ns
                idx, n = idx + n - keep, keep
            # One push per coarse bucket is enough to evict and account.
            i = idx
            end = idx + n
            while i < end:
                chunk = min(end - i, ratio - (i % ratio) if ratio > 1 else 1)
                self._push_period_only(i, chunk * per_nodata)
                i += chunk
        else:
            i = idx
            end = idx + n
            while i < end:
                ts = i * self.res
                if ts >= self.period_end_ns:
                    self.period_start_ns, self.period_end_ns = calendar_period_bounds(
                        ts, self.period.unit, self.period.time_zone
                    )
                    self.p_good = self.p_total = self.p_nodata = 0
                stop = min(end, -(-self.period_end_ns // self.res))
                self.p_nodata += (stop - i) * per_nodata
                i = stop

    def _push_period_only(self, idx: int, nodata_ns: int) -> None:
        self._push(idx, 0, 0, nodata_ns, windows=False)

    def _schedule(self, ts: int) -> None:
        bi, fs = self.budget_interval_ns, self.forecast_step_ns
        self.next_budget_ns = (ts // bi + 1) * bi
        self.next_point_ns = (ts // fs + 1) * fs

    def _evaluate(self, ts: int, out: list[Any]) -> None:
        self.now_ns = ts
        remaining: float | None = None
        ring, L, i = self.ring, self.ring_len, self.last_idx
        g_now, t_now = ring[2 * (i % L)], ring[2 * (i % L) + 1]
        for rule, long_n, short_n, share, least in self.checks:
            # burn >= factor  <=>  bad >= factor x budget x total (no division);
            # and the long window holds at least ``least`` events (min_events).
            o = 2 * ((i - long_n) % L)
            t = t_now - ring[o + 1]
            cond = t >= least and t - (g_now - ring[o]) >= share * t
            if cond:
                o = 2 * ((i - short_n) % L)
                t = t_now - ring[o + 1]
                cond = t > 0 and t - (g_now - ring[o]) >= share * t
            if cond or rule.state:
                if remaining is None:
                    remaining = 1.0 - self.consumed()
                self._step(rule, cond, ts, self.burn(rule.long_n), remaining, out)
        assert self.next_point_ns is not None and self.next_budget_ns is not None
        if ts >= self.next_point_ns:
            self.next_point_ns = (ts // self.forecast_step_ns + 1) * self.forecast_step_ns
            consumed = self.consumed()
            self.points.append((ts, consumed))
            fr = self.forecast_rule
            if fr is not None:
                self._update_forecast(ts)
                # Fire when even the late end of the forecast (exhaustion plus
                # its error) falls within the horizon: a burn that just
                # changed has a large error and waits until the trend settles.
                # (Once firing, it resolves when the forecast itself leaves
                # the horizon: no flapping on a wobbling error.)
                ex = self.forecast.exhaustion_ts_ns
                err = 0 if fr.state == AlertState.FIRING else (self.forecast.error_ns or 0)
                cond = ex is not None and ex + err - ts <= self.horizon_ns and consumed < 1.0
                if cond or fr.state:
                    self._step(fr, cond, ts, self.burn(self.hour_n), 1.0 - consumed, out)
        if ts >= self.next_budget_ns:
            self.next_budget_ns = (ts // self.budget_interval_ns + 1) * self.budget_interval_ns
            out.append(self.budget_record(ts))

    def _update_forecast(self, ts: int) -> None:
        self.forecast = forecast_exhaustion(
            list(self.points), ts, max_horizon_ns=self.period_length_ns(), step_ns=self.forecast_step_ns
        )

    def _step(self, rule: _Rule, cond: bool, ts: int, burn: float, remaining: float, out: list[Any]) -> None:
        """The alert state machine: inactive -> pending -> firing -> resolved."""
        state = rule.state
        if cond:
            rule.cleared_ns = None
            if not state:
                rule.since_ns = ts
                if self.pending_for > 0:
                    rule.state = AlertState.PENDING
                    out.append(self._alert(rule, AlertState.PENDING, ts, burn, remaining))
                    return
                rule.state = AlertState.FIRING
                out.append(self._alert(rule, AlertState.FIRING, ts, burn, remaining))
            elif state == AlertState.PENDING and ts - rule.since_ns >= self.pending_for:
                rule.state = AlertState.FIRING
                out.append(self._alert(rule, AlertState.FIRING, ts, burn, remaining))
        elif state == AlertState.PENDING:
            rule.state = _INACTIVE  # the condition did not hold long enough: no page
        elif state == AlertState.FIRING:
            if rule.cleared_ns is None:
                rule.cleared_ns = ts
            if ts - rule.cleared_ns >= self.keep_firing_for:
                rule.state = _INACTIVE
                rule.cleared_ns = None
                out.append(self._alert(rule, AlertState.RESOLVED, ts, burn, remaining))

    def _alert(self, rule: _Rule, state: str, ts: int, burn: float, remaining: float) -> Alert:
        spec = self.spec
        w = rule.window
        if w is not None:
            short_burn = self.burn(rule.short_n)
            long_s, short_s = w.long_window, w.short_window
            long_ns, short_ns = w.long_window_ns, w.short_window_ns
            summary = (
                f"{spec.service} {spec.name}: burn rate {burn:.2f}x over {long_s} and "
                f"{short_burn:.2f}x over {short_s} (threshold {rule.factor:g}x)"
            )
        else:
            short_burn = 0.0
            long_ns = self.spec.alerting.forecast_window.ns
            short_ns = 0
            long_s, short_s = str(self.spec.alerting.forecast_window), ""
            summary = f"{spec.service} {spec.name}: error budget forecast to run out within {spec.alerting.forecast_horizon}"
        if state == AlertState.RESOLVED:
            summary = f"resolved: {summary}"
        return Alert(
            ts_ns=ts,
            slo=spec.name,
            service=spec.service,
            severity=rule.severity,
            state=state,
            burn_rate=burn,
            long_window=long_s,
            short_window=short_s,
            budget_remaining=remaining,
            dedup_key=rule.dedup,
            tier=rule.tier,
            short_burn_rate=short_burn,
            threshold=rule.factor,
            long_window_ns=long_ns,
            short_window_ns=short_ns,
            started_ts_ns=rule.since_ns,
            exhaustion_ts_ns=self.forecast.exhaustion_ts_ns,
            objective=spec.objective,
            period=self.period.text,
            team=spec.labels.team,
            slo_tier=spec.labels.tier,
            component=spec.labels.component,
            summary=summary,
        )

    def budget_record(self, ts: int) -> Budget:
        self.now_ns = ts
        self._update_forecast(ts)
        consumed = self.consumed()
        length = self.period_length_ns()
        budget_minutes = self.budget_ratio * length / MINUTE_NS
        start = self.period_start()
        observed_from = max(start, self.first_ts_ns if self.first_ts_ns is not None else start)
        elapsed = max(0, ts - observed_from)
        good, total, nodata = self.period_counts()
        coverage = 1.0 - nodata / elapsed if elapsed > 0 else 1.0
        budget_events = self.budget_ratio * total
        return Budget(
            ts_ns=ts,
            slo=self.spec.name,
            service=self.spec.service,
            objective=self.spec.objective,
            period=self.period.text,
            good=round(good),
            total=round(total),
            budget_remaining=1.0 - consumed,
            burn_rate_1h=self.burn(self.hour_n),
            exhaustion_ts_ns=self.forecast.exhaustion_ts_ns,
            exhaustion_error_ns=self.forecast.error_ns,
            budget_consumed=consumed,
            budget_events=budget_events,
            bad_events_remaining=budget_events - (total - good),
            budget_minutes=budget_minutes,
            minutes_remaining=(1.0 - consumed) * budget_minutes,
            period_start_ts_ns=start,
            coverage=max(0.0, min(1.0, coverage)),
            team=self.spec.labels.team,
            slo_tier=self.spec.labels.tier,
            component=self.spec.labels.component,
            sli=self.spec.sli.kind,
        )

    # -- checkpoints ------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        st: dict[str, Any] = {
            "good_ring": self.ring[0::2].tolist(),
            "total_ring": self.ring[1::2].tolist(),
            "cum": [self.cum_good, self.cum_total, self.last_idx],
            "next_bucket": self.next_bucket,
            "first_ts_ns": self.first_ts_ns,
            "p": [self.period_start_ns, self.period_end_ns, self.p_good, self.p_total, self.p_nodata],
            "now_ns": self.now_ns,
            "next_budget_ns": self.next_budget_ns,
            "next_point_ns": self.next_point_ns,
            "points": [list(p) for p in self.points],
            "forecast": msgspec.to_builtins(self.forecast),
            "rules": [[r.name, r.state, r.since_ns, r.cleared_ns] for r in self._all_rules()],
        }
        if self.period.rolling:
            st["coarse"] = [self.coarse_idx, self.c_good.tolist(), self.c_total.tolist(), self.c_nodata.tolist()]
        return st

    def restore(self, st: dict[str, Any]) -> None:
        if len(st["good_ring"]) == self.ring_len:
            ring = array("q", bytes(16 * self.ring_len))
            ring[0::2] = array("q", st["good_ring"])
            ring[1::2] = array("q", st["total_ring"])
            self.ring = ring
            self.cum_good, self.cum_total, self.last_idx = st["cum"]
        self.next_bucket = st["next_bucket"]
        self.first_ts_ns = st["first_ts_ns"]
        self.period_start_ns, self.period_end_ns, self.p_good, self.p_total, self.p_nodata = st["p"]
        self.now_ns = st["now_ns"]
        self.next_budget_ns = st["next_budget_ns"]
        self.next_point_ns = st["next_point_ns"]
        self.points.extend((int(t), float(c)) for t, c in st["points"])
        if "forecast" in st:
            self.forecast = msgspec.convert(st["forecast"], Forecast)
        by_name = {r.name: r for r in self._all_rules()}
        for name, state, since, last in st["rules"]:
            if name in by_name:
                r = by_name[name]
                r.state, r.since_ns, r.cleared_ns = state, since, last
        if self.period.rolling and "coarse" in st and len(st["coarse"][1]) == self.coarse_len:
            self.coarse_idx = st["coarse"][0]
            self.c_good = array("q", st["coarse"][1])
            self.c_total = array("q", st["coarse"][2])
            self.c_nodata = array("q", st["coarse"][3])

    def _all_rules(self) -> list[_Rule]:
        return [*self.rules, *([self.forecast_rule] if self.forecast_rule else [])]

"""SLO status as Prometheus text metrics (exposition format 0.0.4).

:func:`slo_status_metrics` renders the latest budget of each (SLO, service)
and the alerts currently firing; the ``slo_status`` sink keeps them current
in a file (node_exporter's textfile collector reads such files).

>>> from srestream.slo import Budget
>>> b = Budget(ts_ns=0, slo="availability", service="checkout", objective=99.9,
...     period="30d", good=999, total=1000, budget_remaining=0.0, burn_rate_1h=1.0)
>>> print(slo_status_metrics([b]).splitlines()[2])
srestream_slo_objective_ratio{service="checkout",slo="availability",team="",tier="",period="30d"} 0.999
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from typing import Any, Final

from ._records import Alert, AlertState, Budget

__all__ = ["SloStatusWriter", "slo_status_metrics"]

# The metric names, in one place (the Grafana dashboards query them).
OBJECTIVE_METRIC: Final = "srestream_slo_objective_ratio"
BUDGET_REMAINING_METRIC: Final = "srestream_slo_error_budget_remaining_ratio"
BUDGET_CONSUMED_METRIC: Final = "srestream_slo_error_budget_consumed_ratio"
BUDGET_MINUTES_METRIC: Final = "srestream_slo_error_budget_remaining_minutes"
BURN_RATE_1H_METRIC: Final = "srestream_slo_burn_rate_1h"
EVENTS_GOOD_METRIC: Final = "srestream_slo_events_good"
EVENTS_TOTAL_METRIC: Final = "srestream_slo_events_total"
COVERAGE_METRIC: Final = "srestream_slo_data_coverage_ratio"
EXHAUSTION_METRIC: Final = "srestream_slo_budget_exhaustion_timestamp_seconds"
STATUS_TS_METRIC: Final = "srestream_slo_status_timestamp_seconds"
ALERT_FIRING_METRIC: Final = "srestream_slo_alert_firing"

_GAUGES: tuple[tuple[str, str], ...] = (
    (OBJECTIVE_METRIC, "SLO objective as a ratio."),
    (BUDGET_REMAINING_METRIC, "Error budget remaining (1 untouched, 0 spent, <0 overspent)."),
    (BUDGET_CONSUMED_METRIC, "Error budget consumed in the period."),
    (BUDGET_MINUTES_METRIC, "Minutes of full outage left in the budget."),
    (BURN_RATE_1H_METRIC, "Burn rate over the last hour."),
    (EVENTS_GOOD_METRIC, "Good events in the period."),
    (EVENTS_TOTAL_METRIC, "Valid events in the period."),
    (COVERAGE_METRIC, "Share of the period that had data."),
    (EXHAUSTION_METRIC, "Forecast time the budget runs out (absent: not forecast)."),
    (STATUS_TS_METRIC, "Event time of this status."),
)


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in kv.items()) + "}"


def _num(x: float) -> str:
    return "NaN" if math.isnan(x) else repr(float(x))


def slo_status_metrics(budgets: Iterable[Budget], alerts: Iterable[Alert] = ()) -> str:
    """Prometheus text for the latest budget per (SLO, service) and the
    alerts whose latest state is firing."""
    latest: dict[tuple[str, str], Budget] = {}
    for b in budgets:
        k = (b.service, b.slo)
        if k not in latest or b.ts_ns >= latest[k].ts_ns:
            latest[k] = b
    values: dict[str, list[str]] = {name: [] for name, _ in _GAUGES}
    for (service, slo), b in sorted(latest.items()):
        lab = _labels(service=service, slo=slo, team=b.team, tier=b.slo_tier, period=b.period)
        rows = {
            OBJECTIVE_METRIC: round(b.objective / 100.0, 12),
            BUDGET_REMAINING_METRIC: b.budget_remaining,
            BUDGET_CONSUMED_METRIC: b.budget_consumed,
            BUDGET_MINUTES_METRIC: b.minutes_remaining,
            BURN_RATE_1H_METRIC: b.burn_rate_1h,
            EVENTS_GOOD_METRIC: float(b.good),
            EVENTS_TOTAL_METRIC: float(b.total),
            COVERAGE_METRIC: b.coverage,
            STATUS_TS_METRIC: b.ts_ns / 1e9,
        }
        if b.exhaustion_ts_ns is not None:
            rows[EXHAUSTION_METRIC] = b.exhaustion_ts_ns / 1e9
        for name, v in rows.items():
            values[name].append(f"{name}{lab} {_num(v)}")
    lines: list[str] = []
    for name, help_ in _GAUGES:
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} gauge", *values[name]]
    firing: dict[str, Alert] = {}
    for a in alerts:
        firing[a.dedup_key] = a
    lines += [f"# HELP {ALERT_FIRING_METRIC} Burn-rate alert firing (1) per SLO and window pair.",
              f"# TYPE {ALERT_FIRING_METRIC} gauge"]
    for _key, a in sorted(firing.items()):
        if a.state == AlertState.FIRING:
            lab = _labels(service=a.service, slo=a.slo, severity=a.severity, tier=a.tier,
                          long_window=a.long_window, short_window=a.short_window)
            lines.append(f"{ALERT_FIRING_METRIC}{lab} 1")
    return "\n".join(lines) + "\n"


class SloStatusWriter:
    """Sink logic: keep a Prometheus text file of the SLO status current
    (rewritten atomically after each batch that changed it)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.budgets: dict[tuple[str, str], Budget] = {}
        self.alerts: dict[str, Alert] = {}

    def update(self, batch: Sequence[Any]) -> bool:
        changed = False
        for r in batch:
            if type(r) is Budget:
                self.budgets[(r.service, r.slo)] = r
                changed = True
            elif type(r) is Alert:
                self.alerts[r.dedup_key] = r
                changed = True
        return changed

    def write(self) -> None:
        text = slo_status_metrics(self.budgets.values(), self.alerts.values())
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        tmp = f"{self.path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, self.path)

    async def __call__(self, batches: AsyncIterator[Sequence[Any]], /) -> None:
        async with aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                if self.update(batch):
                    self.write()
        self.write()

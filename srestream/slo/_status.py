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
from typing import Any

from ._records import Alert, AlertState, Budget

__all__ = ["SloStatusWriter", "slo_status_metrics"]

_GAUGES: tuple[tuple[str, str], ...] = (
    ("srestream_slo_objective_ratio", "SLO objective as a ratio."),
    ("srestream_slo_error_budget_remaining_ratio", "Error budget remaining (1 untouched, 0 spent, <0 overspent)."),
    ("srestream_slo_error_budget_consumed_ratio", "Error budget consumed in the period."),
    ("srestream_slo_error_budget_remaining_minutes", "Minutes of full outage left in the budget."),
    ("srestream_slo_burn_rate_1h", "Burn rate over the last hour."),
    ("srestream_slo_events_good", "Good events in the period."),
    ("srestream_slo_events_total", "Valid events in the period."),
    ("srestream_slo_data_coverage_ratio", "Share of the period that had data."),
    ("srestream_slo_budget_exhaustion_timestamp_seconds", "Forecast time the budget runs out (absent: not forecast)."),
    ("srestream_slo_status_timestamp_seconds", "Event time of this status."),
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
            "srestream_slo_objective_ratio": round(b.objective / 100.0, 12),
            "srestream_slo_error_budget_remaining_ratio": b.budget_remaining,
            "srestream_slo_error_budget_consumed_ratio": b.budget_consumed,
            "srestream_slo_error_budget_remaining_minutes": b.minutes_remaining,
            "srestream_slo_burn_rate_1h": b.burn_rate_1h,
            "srestream_slo_events_good": float(b.good),
            "srestream_slo_events_total": float(b.total),
            "srestream_slo_data_coverage_ratio": b.coverage,
            "srestream_slo_status_timestamp_seconds": b.ts_ns / 1e9,
        }
        if b.exhaustion_ts_ns is not None:
            rows["srestream_slo_budget_exhaustion_timestamp_seconds"] = b.exhaustion_ts_ns / 1e9
        for name, v in rows.items():
            values[name].append(f"{name}{lab} {_num(v)}")
    lines: list[str] = []
    for name, help_ in _GAUGES:
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} gauge", *values[name]]
    firing: dict[str, Alert] = {}
    for a in alerts:
        firing[a.dedup_key] = a
    lines += ["# HELP srestream_slo_alert_firing Burn-rate alert firing (1) per SLO and window pair.",
              "# TYPE srestream_slo_alert_firing gauge"]
    for _key, a in sorted(firing.items()):
        if a.state == AlertState.FIRING:
            lab = _labels(service=a.service, slo=a.slo, severity=a.severity, tier=a.tier,
                          long_window=a.long_window, short_window=a.short_window)
            lines.append(f"srestream_slo_alert_firing{lab} 1")
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

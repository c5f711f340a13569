"""Component registrations of the SLO engine (see srestream._registry).

Pipeline shape::

    stages:
      windows:    {type: sli_windows, inputs: [parse], slos: slos/demo.yaml,
                   allowed_lateness: 30s}
      burn_rate:  {type: burn_rate, inputs: [windows], slos: slos/demo.yaml}
      policy:     {type: budget_policy, inputs: [burn_rate], slos: slos/demo.yaml}
      # governance: slos/demo.governance.sqlite  on each of the three: the SLOs
      # in effect when the pipeline starts (approved changes applied)
    sinks:
      out:        {type: directory, inputs: [burn_rate, policy]}   # alerts.jsonl, budgets.jsonl
      late:       {type: directory, inputs: [windows.late], path: late}
      status:     {type: slo_status, inputs: [burn_rate], path: slo.prom}
"""

from __future__ import annotations

import os
from typing import Any

from .._component import BuildContext, SinkConfig, StageConfig
from .._duration import Duration
from .._errors import ConfigError, Problem
from .._registry import register
from ._alerting import MINUTE_NS
from ._burn import BurnRateDetector
from ._governance_changes import effective_slos
from ._policy import PolicyTracker
from ._spec import SLOSet, load_slos
from ._status import SloStatusWriter
from ._windows import SliWindows

__all__ = ["BudgetPolicyStage", "BurnRateStage", "SliWindowsStage", "SloStatusSink"]


def _load(ctx: BuildContext, path: str, governance: str) -> SLOSet:
    """The SLO file, or with a governance store the SLOs in effect now
    (changes approved there applied; see ``_governance_changes``)."""
    if not governance:
        return load_slos(ctx.resolve(path))
    store = ctx.resolve(governance)
    if not os.path.exists(store):
        raise ConfigError([Problem(f"$.stages.{ctx.component_id}.governance",
                                   f"no governance store at {store}")])
    return effective_slos(ctx.resolve(path), store, ctx.clock.now_ns())




def _check_resolution(resolution: Duration, where: str) -> None:
    if resolution.ns <= 0 or MINUTE_NS % resolution.ns:
        raise ConfigError(
            [Problem(f"$.stages.{where}.resolution", "must divide one minute (e.g. 1m, 30s, 1s)")]
        )


@register("Count good/total SLI events per (SLO, service) in event-time minute buckets; closed buckets out, .late and .rollups side outputs.")
class SliWindowsStage(StageConfig, frozen=True, kw_only=True, tag="sli_windows"):
    """Counts, for every (SLO, service) of the SLO file, the valid and good
    events of each event-time bucket (log records for log SLIs, metric
    samples for freshness and counter SLIs, trace spans at their end time
    for ``source: spans`` SLIs).  The watermark is the newest event time less
    ``allowed_lateness``; it moves record by record, so output does not
    depend on batching.  A bucket closes when the watermark passes its end
    and is emitted as one ``sli_rollup`` per key (main output and
    ``.rollups`` for the budget ledger); a record behind the watermark goes
    to ``.late``.  A bucket without any record of the service is no data
    (``no_data_ns``), neither good nor bad.  Memory: the open buckets only."""

    side_outputs = ("late", "rollups")
    slos: str
    """The SLO file (YAML), relative to the pipeline file: srestream's own, or a Sloth
    (``version: prometheus/v1``) or OpenSLO (``apiVersion: openslo/v1``) spec whose PromQL
    counter ratios are counted from metric samples (see docs/slo.md)."""
    governance: str = ""
    """A governance store (SQLite, relative to the pipeline file): the SLOs in effect when the
    pipeline starts, with the changes approved there (see docs/slo.md, Governance)."""
    resolution: Duration = Duration(MINUTE_NS)
    """Bucket length (one minute: the alert windows' resolution)."""
    allowed_lateness: Duration = Duration(0)
    """How far behind the newest record a record may be and still count."""

    def build(self, ctx: BuildContext) -> SliWindows:
        _check_resolution(self.resolution, ctx.component_id)
        return SliWindows(
            _load(ctx, self.slos, self.governance),
            resolution_ns=self.resolution.ns,
            allowed_lateness_ns=self.allowed_lateness.ns,
            outputs=ctx.outputs,
        )


@register("Multi-window multi-burn-rate alerts (pending/firing/resolved), error budgets and exhaustion forecasts from SLI rollups.")
class BurnRateStage(StageConfig, frozen=True, kw_only=True, tag="burn_rate"):
    """Keeps per (SLO, service) cumulative minute counters as long as the
    longest alert window and hourly counters over the period (or sums since
    the calendar month/quarter start in the SLO's time zone).  At each
    closed bucket it evaluates the Workbook's window pairs (scaled to the
    period), steps each alert through pending -> firing -> resolved
    (``alert`` records with stable ``dedup_key``), forecasts budget
    exhaustion (least squares on consumed budget) and, every
    ``budget_interval`` of event time and at the end, emits a ``budget``
    record.  Everything is in event time: replays give identical output.
    A rollup whose bucket does not align with ``resolution`` goes to
    ``.deadletter``."""

    side_outputs = ("deadletter",)
    slos: str
    """The SLO file (YAML), relative to the pipeline file; the same as the windows stage's."""
    governance: str = ""
    """A governance store (SQLite, relative to the pipeline file): the SLOs in effect when the
    pipeline starts, with the changes approved there (see docs/slo.md, Governance)."""
    resolution: Duration = Duration(MINUTE_NS)
    """Must equal the windows stage's resolution."""
    budget_interval: Duration = Duration(60 * MINUTE_NS)
    """Event-time interval between budget records of each SLO."""
    forecast_step: Duration = Duration(5 * MINUTE_NS)
    """Event-time interval between points of the forecast's consumption series."""

    def build(self, ctx: BuildContext) -> BurnRateDetector:
        _check_resolution(self.resolution, ctx.component_id)
        problems = []
        for name in ("budget_interval", "forecast_step"):
            v: Duration = getattr(self, name)
            if v.ns < self.resolution.ns:
                problems.append(Problem(f"$.stages.{ctx.component_id}.{name}", "must be at least the resolution"))
        if problems:
            raise ConfigError(problems)
        return BurnRateDetector(
            _load(ctx, self.slos, self.governance),
            resolution_ns=self.resolution.ns,
            budget_interval_ns=self.budget_interval.ns,
            forecast_step_ns=self.forecast_step.ns,
            outputs=ctx.outputs,
        )


@register("Budget policy: emit notify/ticket/freeze actions when budget thresholds are crossed.")
class BudgetPolicyStage(StageConfig, frozen=True, kw_only=True, tag="budget_policy"):
    """Reads ``budget`` records and emits a ``policy_action`` (notify,
    ticket, freeze; ``triggered`` or ``cleared``) each time an SLO's
    remaining budget crosses a threshold of its budget policy."""

    slos: str
    """The SLO file (YAML) holding the budget policies."""
    governance: str = ""
    """A governance store (SQLite, relative to the pipeline file): the SLOs in effect when the
    pipeline starts, with the changes approved there (see docs/slo.md, Governance)."""

    def build(self, ctx: BuildContext) -> PolicyTracker:
        return PolicyTracker(_load(ctx, self.slos, self.governance))


@register("Keep a Prometheus text file of SLO status (budgets, burn rates, firing alerts).")
class SloStatusSink(SinkConfig, frozen=True, kw_only=True, tag="slo_status"):
    """Keeps the latest budget of each SLO and its firing alerts as
    Prometheus text (``srestream_slo_*`` gauges), rewritten atomically after
    each batch that changes them: point node_exporter's textfile collector
    at it, or read it."""

    path: str = "slo_status.prom"
    """The metrics file, relative to the pipeline file (or to --out)."""

    def build(self, ctx: BuildContext) -> Any:
        path = os.path.join(ctx.out_dir, self.path) if ctx.out_dir and not os.path.isabs(self.path) else ctx.resolve(self.path)
        return SloStatusWriter(path)

from . import _ledger  # noqa: F401  (registers the budget_ledger sink)

"""SLO specifications (YAML) and their validation.

An SLO file::

    budget_policy:                 # optional; thresholds on budget remaining
      - {remaining_at_most: 50, action: notify}
      - {remaining_at_most: 25, action: ticket}
      - {remaining_at_most: 0, action: freeze}
    slos:
      - name: availability
        service: checkout
        objective: 99.9            # percent, in (0, 100)
        period: 30d                # rolling 1h..90d, or: month, quarter (calendar)
        time_zone: Europe/Paris    # calendar periods start at midnight here
        sli:
          kind: availability
          total: {}                # predicate over record fields; {} = every record
          good: {status: {lt: 500}}
        labels: {team: payments, tier: "1", component: api}
        alerting:
          tiers: [page, ticket]
          severities: {page: critical, ticket: warning}
        review:                    # optional governance (see _governance)
          owner: alice             # who reviews it; may approve proposed changes
          cadence: 90d             # next review due = last review + cadence
          last_reviewed: 2026-10-01
          approvers: [bob]         # others who may approve changes

Validation reports every problem at once, each with its JSON path
(``$.slos[2].objective``): unknown or missing fields, wrong types, duplicate
names, two objectives for one SLI and period, an objective outside
(0, 100), an unknown SLI kind or record field, a missing good or total
predicate, a period shorter than its alert windows, an unknown time zone,
a review without owner or with a cadence under a day.
"""

from __future__ import annotations

import datetime
from typing import Any, Final, Literal

import msgspec

from .._duration import Duration, format_duration, parse_duration
from ._alerting import (
    DAY_NS,
    HOUR_NS,
    MINUTE_NS,
    TIERS,
    AlertWindow,
    burn_rate_factor,
    default_alert_windows,
)
from ._budget import budget_ratio, objective_ratio

__all__ = [
    "DEFAULT_BUDGET_POLICY",
    "POLICY_ACTIONS",
    "SLI_KINDS",
    "SPAN_KINDS",
    "TWO_POPULATION_KINDS",
    "AlertWindowSpec",
    "AlertingSpec",
    "Period",
    "PolicyRule",
    "ReviewSpec",
    "SLILabels",
    "SLISpec",
    "SLOSet",
    "SLOSpec",
    "alert_windows",
    "load_slos",
    "parse_period",
    "parse_slos",
    "validate_slos",
]

SLI_KINDS: Final = (
    "availability",
    "ratio",
    "correctness",
    "latency",
    "throughput",
    "freshness",
    "coverage",
    "durability",
)
"""availability/ratio/correctness: good and total predicates over records;
latency: total predicate, good when ``latency_ns <= threshold``;
throughput: time-sliced, a minute is good with at least
``min_events_per_minute`` matching records; freshness: metric samples named
``metric`` whose value (age in seconds) is at most ``threshold``;
coverage: the share of the work due that was done (jobs started vs
completed, records received vs written), ``total`` the work due and
``good`` the work done (or ``bad`` the work dropped), each counted from
records of its own; durability: the share of stored data still intact,
``total`` the objects checked or written and ``good`` those found intact
(or ``bad`` the loss and corruption events), counted the same way.
With ``source: spans``, availability, ratio, correctness and latency SLIs
count trace spans (see :data:`SPAN_KINDS`)."""

SPAN_KINDS: Final = ("availability", "ratio", "correctness", "latency")
"""Kinds that count spans (``source: spans``): availability (good = the span
did not fail, unless a ``good`` predicate says otherwise), ratio and
correctness (good and total predicates over span fields), latency (good
when ``duration_ns = end - start <= threshold``).  A span's event time is
its end, when its outcome is known."""

_NEEDS_GOOD: Final = ("availability", "ratio", "correctness", "coverage", "durability")
"""Kinds whose good events come from a ``good`` (or ``bad``) predicate."""
TWO_POPULATION_KINDS: Final = ("coverage", "durability")
"""Kinds whose good (or bad) events are records of their own, not a
condition on the total records: a ``job_completed`` log is not the
``job_started`` log.  A closed bucket keeps its good at most its total
(completions of jobs started in an earlier bucket are not credited), and
a bucket with more bad events than total counts them all, its total
raised to match (a loss is never dropped)."""
POLICY_ACTIONS: Final = ("notify", "ticket", "freeze")
CALENDAR_UNITS: Final = ("month", "quarter")
MIN_ROLLING_NS: Final = HOUR_NS
MAX_ROLLING_NS: Final = 90 * DAY_NS


class SLILabels(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who owns the SLO: team, service tier and component."""

    team: str = ""
    tier: str = ""
    component: str = ""


class SLISpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What counts as a good and a valid event (see :data:`SLI_KINDS`)."""

    kind: str
    total: dict[str, Any] | None = None
    good: dict[str, Any] | None = None
    threshold: Duration | None = None
    metric: str = ""
    min_events_per_minute: int | None = None
    budgeting: str = "occurrences"
    """``occurrences`` (event-weighted) or ``timeslices`` (a minute is good
    when its good ratio reaches ``timeslice_target`` percent)."""
    timeslice_target: float | None = None
    source: str = "logs"
    """``logs``: each matching log record is one event.  ``metrics``: the
    predicates select metric samples (``name``, ``labels.<key>``) of
    counters, and each sample counts the counter's increase since the
    previous sample of the same series (a reset counts from zero), e.g.
    ``total: {name: http_requests_total}``, ``good: {labels.code: {lt: "500"}}``.
    ``spans``: each matching trace span of the SLO's service is one event
    (kinds of :data:`SPAN_KINDS`), e.g. ``total: {name: "GET /cart"}``;
    predicates read the span fields (``name``, ``error``, ``duration_ns``,
    ``attrs.<key>``...)."""
    bad: dict[str, Any] | None = None
    """Instead of ``good``, the bad events; good = total - bad.  For ratio
    kinds with ``source: metrics`` (an error counter, as a Sloth
    ``errorQuery``), and for coverage (work dropped) and durability (objects
    lost or corrupt), where they are records of their own."""
    series: str = "service"
    """``source: metrics``: which samples the SLI reads.  ``service``: those
    whose ``service`` label is the SLO's service, ``good``/``bad`` being a
    further condition on the total samples.  ``selected``: every sample a
    predicate selects whatever its labels, ``total`` and ``good`` (or
    ``bad``) each selecting their own counter series (a histogram's
    ``_bucket`` over its ``_count``, an error counter over a request
    counter); a bucket's good is at most its total.  Imported Sloth and
    OpenSLO SLIs read ``selected`` series."""

    @property
    def time_sliced(self) -> bool:
        return self.budgeting == "timeslices" or self.kind == "throughput"

    @property
    def on_metrics(self) -> bool:
        """Whether this SLI reads metric samples rather than log records."""
        return self.kind == "freshness" or self.source == "metrics"

    @property
    def on_spans(self) -> bool:
        """Whether this SLI counts trace spans (``source: spans``)."""
        return self.source == "spans"

    @property
    def selects_series(self) -> bool:
        """Whether total and good/bad select their own series, whatever
        the samples' ``service`` label (``series: selected``)."""
        return self.source == "metrics" and self.series == "selected"

    @property
    def counts_apart(self) -> bool:
        """Whether good (or bad) events are counted apart from the total
        ones, each from records or series of their own: ``series:
        selected``, and the coverage and durability kinds over logs."""
        return self.selects_series or (self.kind in TWO_POPULATION_KINDS and not self.on_metrics)

    @property
    def counts_increments(self) -> bool:
        """Whether each sample counts its counter's increase (not one event)."""
        return self.source == "metrics" and self.kind != "freshness"


class AlertWindowSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A custom window pair: give ``budget_percent`` (the share of the
    budget the long window may burn, as Sloth's ``errorBudgetPercent``) or
    the ``burn_rate`` factor directly."""

    tier: str
    long_window: Duration
    short_window: Duration
    budget_percent: float | None = None
    burn_rate: float | None = None
    name: str = ""
    severity: str = ""


class AlertingSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-SLO alerting.  ``windows`` replaces the scaled Workbook catalogue
    when given; ``pending_for`` is how long a condition must hold before
    firing (Prometheus ``for``); ``keep_firing_for`` delays resolution;
    ``forecast_horizon`` enables the predicted-violation alert when the
    forecast exhaustion falls within it; ``min_events`` keeps a window pair
    quiet while its long window holds fewer events."""

    enabled: bool = True
    tiers: list[str] = msgspec.field(default_factory=lambda: list(TIERS))
    severities: dict[str, str] = {}
    window_scaling: str = "period"
    windows: list[AlertWindowSpec] = []
    pending_for: Duration = Duration(0)
    keep_firing_for: Duration = Duration(0)
    forecast_horizon: Duration | None = None
    forecast_window: Duration = Duration(6 * HOUR_NS)
    min_events: int = 0
    """A window pair fires only when its long window holds at least this
    many valid events (minutes with data for time-sliced SLIs).  For
    low-traffic services, where one error among a few requests is a huge
    burn rate, and for the first minutes of a replay, when the long windows
    hold only what has been seen so far.  0 (default): the Workbook's rules
    as written, which is also what the exported Prometheus rules do."""


class PolicyRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When the budget remaining (percent) is at most ``remaining_at_most``,
    take ``action`` (notify, ticket, freeze deploys)."""

    remaining_at_most: float
    action: str
    note: str = ""


DEFAULT_BUDGET_POLICY: Final = (
    PolicyRule(remaining_at_most=50.0, action="notify", note="half of the error budget is spent"),
    PolicyRule(remaining_at_most=25.0, action="ticket", note="three quarters of the budget are spent"),
    PolicyRule(remaining_at_most=0.0, action="freeze", note="the error budget is exhausted"),
)


class Period(msgspec.Struct, frozen=True, kw_only=True):
    """An SLO period: rolling ``length_ns``, or a calendar ``unit``
    (month, quarter) starting at midnight in ``time_zone``."""

    text: str
    rolling: bool
    length_ns: int
    """Rolling: the length.  Calendar: the nominal length used to scale the
    alert windows (month 30d, quarter 90d); budgets use the real length."""
    unit: str = ""
    time_zone: str = "UTC"


class ReviewSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who reviews an SLO and how often (SPEC 3.6 governance).  The next
    review is due ``cadence`` after the last one: ``last_reviewed`` here, or
    a later review or approved change recorded in the governance store.
    ``owner`` and ``approvers`` are the people who may approve a proposed
    change to the SLO (never the change's own proposer)."""

    owner: str
    cadence: Duration
    last_reviewed: datetime.date | None = None
    approvers: list[str] = []


class SLOSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One SLO of one service."""

    name: str
    service: str
    sli: SLISpec
    objective: float
    period: str = "30d"
    time_zone: str = "UTC"
    description: str = ""
    labels: SLILabels = SLILabels()
    alerting: AlertingSpec = AlertingSpec()
    budget_policy: list[PolicyRule] | None = None
    review: ReviewSpec | None = None

    @property
    def objective_ratio(self) -> float:
        return objective_ratio(self.objective)

    @property
    def budget_ratio(self) -> float:
        """1 - objective, as a ratio (0.001 for 99.9), computed in decimal
        from the objective as written (see :func:`budget_ratio`)."""
        return budget_ratio(self.objective)

    @property
    def key(self) -> tuple[str, str]:
        return (self.slo_id, self.service)

    @property
    def slo_id(self) -> str:
        return self.name

    def parsed_period(self) -> Period:
        p = parse_period(self.period, self.time_zone)
        assert p is not None, "validated SLOs have a valid period"
        return p


class SLOSet(msgspec.Struct, frozen=True, kw_only=True):
    """A validated set of SLOs and the default budget policy."""

    slos: tuple[SLOSpec, ...]
    budget_policy: tuple[PolicyRule, ...] = DEFAULT_BUDGET_POLICY
    file: str = ""

    def policy_for(self, slo: SLOSpec) -> tuple[PolicyRule, ...]:
        return tuple(slo.budget_policy) if slo.budget_policy is not None else self.budget_policy

    def for_service(self, service: str) -> list[SLOSpec]:
        return [s for s in self.slos if s.service == service]


def parse_period(text: str, time_zone: str = "UTC") -> Period | None:
    """``"30d"`` -> rolling 30 days; ``"month"``/``"calendar month"`` ->
    calendar month; None when ``text`` is neither."""
    t = text.strip().lower()
    if t.startswith("calendar "):
        t = t[len("calendar ") :].strip()
    if t in CALENDAR_UNITS:
        nominal = 30 * DAY_NS if t == "month" else 90 * DAY_NS
        return Period(text=t, rolling=False, length_ns=nominal, unit=t, time_zone=time_zone)
    try:
        ns = parse_duration(t)
    except ValueError:
        return None
    return Period(text=format_duration(ns), rolling=True, length_ns=ns, time_zone=time_zone)


def alert_windows(slo: SLOSpec, *, resolution_ns: int = MINUTE_NS) -> list[AlertWindow]:
    """The alert windows of one SLO: its custom ``alerting.windows`` or the
    Workbook catalogue scaled to its period, with its severities."""
    a = slo.alerting
    if not a.enabled:
        return []
    period = slo.parsed_period().length_ns
    if not a.windows:
        scaling: Literal["period", "none"] = "none" if a.window_scaling == "none" else "period"
        return default_alert_windows(
            period, scaling=scaling, severities=a.severities, tiers=a.tiers,
            resolution_ns=resolution_ns,
        )
    out = []
    for i, w in enumerate(a.windows):
        if w.tier not in a.tiers:
            continue
        if w.burn_rate is not None:
            factor = w.burn_rate
            consumed = factor * w.long_window.ns / period
        else:
            consumed = (w.budget_percent or 0.0) / 100.0
            factor = burn_rate_factor(consumed, period, w.long_window.ns)
        out.append(
            AlertWindow(
                tier=w.tier,
                severity=w.severity or a.severities.get(w.tier, w.tier),
                name=w.name or f"{w.tier}_{i}",
                long_window_ns=w.long_window.ns,
                short_window_ns=w.short_window.ns,
                burn_rate=factor,
                budget_consumed=consumed,
            )
        )
    return out


# Loading and validation live in _validate (kept importable from here).
from ._validate import load_slos, parse_slos, validate_slos

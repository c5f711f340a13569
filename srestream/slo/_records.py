"""The records the SLO engine emits.

* :class:`SliRollup` (``kind: sli_rollup``): one closed bucket of one
  (SLO, service): good and total events and how much of the bucket had no
  data.  The ``sli_windows`` stage emits one per key each time the
  watermark closes a bucket, on its main output and on ``windows.rollups``
  (a ledger sink stores them).
* :class:`Alert` (``kind: alert`` -> ``alerts.jsonl``): a burn-rate or
  predicted-violation alert changing state (pending, firing, resolved).
* :class:`Budget` (``kind: budget`` -> ``budgets.jsonl``): the error budget
  of one (SLO, service) at one event time.

Time points are ``*ts_ns`` ints (UTC ns); durations are other ``*_ns`` ints.
These names are a contract (SPEC §4): other packages read them, keep them.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["ALERT_STATES", "Alert", "AlertState", "Budget", "SliRollup"]


class AlertState:
    """The states of an alert, in the order an alert goes through them."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


ALERT_STATES = (AlertState.PENDING, AlertState.FIRING, AlertState.RESOLVED)


class SliRollup(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="sli_rollup"
):
    """Good and total events of one (SLO, service) in one closed bucket
    ``[bucket_ts_ns, bucket_ts_ns + resolution_ns)``.

    ``no_data_ns`` is how much of the bucket had no data at all from the
    SLO's service (a monitoring gap): those nanoseconds count neither good
    nor bad, and are reported as lost coverage.
    """

    slo: str
    service: str
    bucket_ts_ns: int
    resolution_ns: int
    good: int
    total: int
    no_data_ns: int = 0


class Alert(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="alert"):
    """One state change of one alert of one (SLO, service).

    ``burn_rate`` is the long-window burn rate at ``ts_ns`` (the event time
    of the evaluation), ``short_burn_rate`` the short-window one;
    ``threshold`` the burn rate factor both had to reach.  ``dedup_key`` is
    the same for every state change of the same alert rule (service, SLO,
    tier, windows), so receivers (Alertmanager, PagerDuty) group them.
    ``tier`` is ``page``, ``ticket`` or ``forecast`` (predicted violation);
    ``severity`` is what the SLO configured for that tier.
    """

    ts_ns: int
    slo: str
    service: str
    severity: str
    state: str
    burn_rate: float
    long_window: str
    short_window: str
    budget_remaining: float
    dedup_key: str
    tier: str = ""
    short_burn_rate: float = 0.0
    threshold: float = 0.0
    long_window_ns: int = 0
    short_window_ns: int = 0
    started_ts_ns: int | None = None
    """When the condition first held (pending or firing since)."""
    exhaustion_ts_ns: int | None = None
    """Forecast exhaustion time of the budget at ``ts_ns``, if one is predicted."""
    objective: float = 0.0
    period: str = ""
    team: str = ""
    slo_tier: str = ""
    component: str = ""
    summary: str = ""
    root_cause_candidates: list[dict[str, Any]] = []
    """``[{service, score, method}]`` filled by the correlation stages."""


class Budget(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="budget"):
    """The error budget of one (SLO, service) at event time ``ts_ns``.

    ``good``/``total`` are events in the SLO period so far (rolling: the
    last period; calendar: since the period start).  ``budget_remaining``
    is a ratio of the budget (1.0 untouched, 0 exhausted, negative:
    overspent).  ``exhaustion_ts_ns`` is the forecast exhaustion time (None
    when the trend does not exhaust the budget), ``exhaustion_error_ns``
    its one-sigma error.
    """

    ts_ns: int
    slo: str
    service: str
    objective: float
    period: str
    good: int
    total: int
    budget_remaining: float
    burn_rate_1h: float
    exhaustion_ts_ns: int | None = None
    exhaustion_error_ns: int | None = None
    budget_consumed: float = 0.0
    budget_events: float = 0.0
    """The budget in events: (1 - objective) x total."""
    bad_events_remaining: float = 0.0
    budget_minutes: float = 0.0
    """The budget in minutes of full outage: (1 - objective) x period."""
    minutes_remaining: float = 0.0
    period_start_ts_ns: int = 0
    coverage: float = 1.0
    """Fraction of the period that had data, counted from the period start
    or from the first data seen, whichever is later."""
    team: str = ""
    slo_tier: str = ""
    component: str = ""
    sli: str = ""

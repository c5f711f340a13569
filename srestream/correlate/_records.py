"""The records that trace correlation, root-cause analysis and the anomaly
detectors emit.

Like the core records they are frozen, ``gc=False`` msgspec Structs tagged
on ``kind``; time points are int ns UTC in ``ts_ns``/``*_ts_ns`` fields and
durations are other ``*_ns`` ints.  Each one says *how* it was obtained
(``method``) so an SRE can judge how far to trust it.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = [
    "Anomaly",
    "AnomalyType",
    "CallNode",
    "CallTreeRecord",
    "CandidateEvidence",
    "DependencyEdge",
    "LeadingIndicator",
    "Link",
    "LinkMethod",
    "RootCauseRanking",
    "ServiceStats",
    "SliCorrelation",
    "TraceSummary",
]


class LinkMethod:
    """How a record was tied to a trace (or request group)."""

    TRACE: Final = "trace"
    """Same trace id (W3C/B3 context or plain ``trace_id`` fields)."""
    REQUEST_ID: Final = "request_id"
    """Same request/correlation id, no trace id on the record."""
    TIME_WINDOW: Final = "time_window"
    """No id at all: same service, inside (or close to) a span in time."""


class AnomalyType:
    NEW_TEMPLATE: Final = "new_template"
    TEMPLATE_SPIKE: Final = "template_spike"
    ERROR_RATE_CHANGE: Final = "error_rate_change"
    LATENCY_CHANGE: Final = "latency_change"


class TraceSummary(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="trace_summary"
):
    """One trace (or request group) once it has gone quiet in event time.

    ``ts_ns`` is the end of the latest span or log of the trace.  A failing
    trace names its root-cause span: the erroring span none of whose
    children errored, earliest first; ``root_cause_path`` lists the services
    from the entry span down to it.  ``missing_spans`` counts parent span ids
    that were referenced but never seen: the tree is then a forest, and the
    trace is still summarised.
    """

    ts_ns: int
    start_ts_ns: int
    trace_id: str
    request_id: str = ""
    duration_ns: int = 0
    root_service: str = ""
    root_name: str = ""
    span_count: int = 0
    log_count: int = 0
    error: bool = False
    error_services: list[str] = []
    root_cause_service: str = ""
    root_cause_span_id: str = ""
    root_cause_name: str = ""
    root_cause_method: str = ""
    """``span`` (from the call tree) or ``log`` (only error logs failed)."""
    root_cause_path: list[str] = []
    missing_spans: int = 0
    truncated: bool = False
    """Closed early: the buffer was full or the trace exceeded its span cap."""


class CallNode(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One span of a call tree; ``depth`` 0 is a root (the entry span, or a
    span whose parent is missing)."""

    span_id: str
    parent_span_id: str
    service: str
    name: str
    depth: int
    start_ts_ns: int
    end_ts_ns: int
    error: bool = False


class CallTreeRecord(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="call_tree"
):
    """The call tree of one trace, depth first (children by start time), for
    consumers that need the whole shape (journeys, SLO discovery)."""

    ts_ns: int
    trace_id: str
    nodes: list[CallNode]


class Link(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="link"):
    """A log record tied to a trace or request group, and how."""

    ts_ns: int
    method: str
    trace_id: str = ""
    request_id: str = ""
    span_id: str = ""
    service: str = ""
    level: int = 0
    template_id: str = ""
    source: str = ""
    position: int = 0


class ServiceStats(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="service_stats"
):
    """What one service did in one event-time bucket ``[ts_ns, ts_ns + bucket_ns)``.

    ``root_causes`` counts failing traces whose root-cause span is in this
    service; ``error_logs`` counts logs at ERROR or above (or status >= 500).
    """

    ts_ns: int
    bucket_ns: int
    service: str
    spans: int = 0
    errors: int = 0
    root_causes: int = 0
    latency_mean_ns: int = 0
    logs: int = 0
    error_logs: int = 0


class DependencyEdge(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="dependency"
):
    """Calls from ``caller`` to ``callee`` over the sliding window
    ``[ts_ns - window_ns, ts_ns)``; errors are erroring callee spans."""

    ts_ns: int
    window_ns: int
    caller: str
    callee: str
    calls: int
    errors: int
    error_ratio: float
    latency_mean_ns: int
    latency_max_ns: int
    latency_p95_ns: int = 0
    """From a half-octave histogram: at most 50% above the true value."""
    latency_p99_ns: int = 0


class Anomaly(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="anomaly"):
    """Something moved.  ``onset_ts_ns`` is when it started (the start of the
    first bucket of the change), ``ts_ns`` when it was detected (end of the
    bucket that confirmed it).  ``method`` names the test (``first_seen``,
    ``seasonal_poisson``, ``cusum``)."""

    ts_ns: int
    onset_ts_ns: int
    anomaly_type: str
    method: str
    service: str = ""
    template_id: str = ""
    value: float = 0.0
    baseline: float = 0.0
    score: float = 0.0
    summary: str = ""


class CandidateEvidence(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One root-cause candidate with the evidence behind its score.

    Each evidence score is in [0, 1]; ``score`` is their weighted sum.
    ``method`` is the evidence that contributed most.
    """

    service: str
    score: float
    method: str
    trace: float = 0.0
    onset: float = 0.0
    propagation: float = 0.0
    deploy: float = 0.0
    template: float = 0.0
    onset_ts_ns: int | None = None
    deploy_ts_ns: int | None = None
    evidence: list[str] = []


class RootCauseRanking(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="root_cause"
):
    """The ranking made for one alert (the alert itself carries the short
    form in ``root_cause_candidates``)."""

    ts_ns: int
    service: str
    onset_ts_ns: int
    alert: str = ""
    """The alert's dedup key when it has one, else its SLO name."""
    candidates: list[CandidateEvidence] = []


class LeadingIndicator(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="leading_indicator"
):
    """An anomaly that started before a breach, and by how much."""

    breach_ts_ns: int
    onset_ts_ns: int
    lead_ns: int
    anomaly_type: str
    breach_service: str = ""
    breach: str = ""
    anomaly_service: str = ""
    template_id: str = ""


class SliCorrelation(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="sli_correlation"
):
    """How one log template or metric moved with an SLI over a window."""

    name: str
    source: str
    """``template`` or ``metric``."""
    coefficient: float
    method: str
    """``pearson`` or ``spearman``."""
    points: int
    start_ts_ns: int
    end_ts_ns: int

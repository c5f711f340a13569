"""Component registrations (see srestream._registry): ``trace_correlator``,
``anomaly_detector`` and ``root_cause``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal

import msgspec

from .._component import BuildContext, StageConfig
from .._duration import Duration
from .._records import Level
from .._registry import register
from ._anomaly import AnomalyDetector, detect_anomalies
from ._correlator import TraceCorrelator, correlate_traces
from ._root_cause import RootCauseAnalyzer, rank_alert_causes

__all__ = ["AnomalyDetectorStage", "RootCauseStage", "TraceCorrelatorStage"]

Positive = Annotated[int, msgspec.Meta(ge=1)]
LevelName = Literal["DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "FATAL"]
_LEVELS = {"DEBUG": Level.DEBUG, "INFO": Level.INFO, "NOTICE": Level.NOTICE,
           "WARN": Level.WARN, "ERROR": Level.ERROR, "FATAL": Level.FATAL}  # fmt: skip

Stage = Any  # callable(upstream) -> async iterator of batches


def _positive(name: str, value: Duration) -> None:
    if int(value) <= 0:
        raise ValueError(f"{name} must be positive, got {value}")


@register(
    "Group spans and logs by trace; trace summaries, links, dependency graph, root-cause spans."
)
class TraceCorrelatorStage(StageConfig, frozen=True, kw_only=True, tag="trace_correlator"):
    """Groups spans and logs by trace id in a buffer that expires in event
    time (the watermark is the largest event time seen; a span's is its
    end).  A closed trace gives a ``trace_summary`` (call tree, root-cause
    span: the erroring span none of whose children errored, earliest first,
    across gaps left by lost spans) and one ``link`` per log saying how it
    was tied (``trace``, ``request_id`` or ``time_window``).  Per ``bucket``
    it emits ``service_stats`` and the ``dependency`` edges (calls, errors,
    mean/max/p95/p99 latency) over ``graph_window``.  The input is
    forwarded with the correlation records interleaved; the
    ``correlations`` side output carries them alone (feed ``root_cause``
    from it).  Same output at any batch size; snapshot/restore."""

    side_outputs = ("late", "correlations")
    idle_timeout: Duration = Duration.parse("30s")
    """A trace closes this long (event time) after its last record."""
    max_traces: Positive = 100_000
    """Traces buffered at most; when full, the one due first closes early (``truncated``)."""
    max_spans_per_trace: Positive = 10_000
    """A trace with this many spans closes early (``truncated``)."""
    bucket: Duration = Duration.parse("1m")
    """Resolution of ``service_stats`` and of the dependency graph."""
    graph_window: Duration = Duration.parse("5m")
    """Sliding window of the ``dependency`` edges."""
    time_window: Duration = Duration.parse("2s")
    """A log with no id links to a span of its service within this much of its time (0s: off)."""
    time_window_min_level: LevelName = "WARN"
    """Only logs at or above this level are linked by time window."""
    forward_records: bool = True
    """Forward the input records (with the correlation records interleaved)."""
    emit_links: bool = True
    """Emit a ``link`` record per correlated log."""
    emit_call_trees: bool = False
    """Emit a ``call_tree`` record per trace (depth-first spans)."""

    def __post_init__(self) -> None:
        _positive("idle_timeout", self.idle_timeout)
        _positive("bucket", self.bucket)
        if int(self.graph_window) < int(self.bucket):
            raise ValueError(
                f"graph_window ({self.graph_window}) is shorter than bucket ({self.bucket})"
            )

    def create_correlator(self, ctx: BuildContext | None = None) -> TraceCorrelator:
        return TraceCorrelator(
            idle_timeout_ns=int(self.idle_timeout), max_traces=self.max_traces,
            max_spans_per_trace=self.max_spans_per_trace, bucket_ns=int(self.bucket),
            graph_window_ns=int(self.graph_window), time_window_ns=int(self.time_window),
            time_window_min_level=_LEVELS[self.time_window_min_level],
            forward_records=self.forward_records, emit_links=self.emit_links,
            emit_call_trees=self.emit_call_trees,
            outputs=ctx.outputs if ctx is not None else None,
        )  # fmt: skip

    def build(self, ctx: BuildContext) -> Stage:
        return _Logic(self.create_correlator(ctx), correlate_traces, "correlator")


@register(
    "Anomalies with onset: new templates, seasonal template spikes, error-rate/latency change points."
)
class AnomalyDetectorStage(StageConfig, frozen=True, kw_only=True, tag="anomaly_detector"):
    """Counts log templates and, per service, requests, errors and latency
    (spans; logs with a status or latency) per event-time ``bucket``, and
    tests each closed bucket: ``new_template`` (first seen, after the
    warm-up), ``template_spike`` (Poisson test against the seasonal
    expectation of the slot), ``error_rate_change`` and ``latency_change``
    (one-sided CUSUM on asin-sqrt error ratios and on mean log latency;
    the onset is the best step split of the excursion).  Each ``anomaly``
    record has its onset and detection times; feed them to ``root_cause``
    and to ``leading_indicators``."""

    side_outputs = ("late",)
    bucket: Duration = Duration.parse("1m")
    """Resolution of every series."""
    season: Duration = Duration.parse("1d")
    """Period of the seasonal baseline of template counts."""
    allowed_lateness: Duration = Duration.parse("30s")
    """A bucket is tested this long (event time) after it ends; later records go to ``.late``."""
    new_template_warmup: Duration = Duration.parse("10m")
    """Templates first seen this soon after the first record are not reported as new."""
    spike_z: float = 4.0
    """A spike exceeds the expectation by this many Poisson standard deviations..."""
    spike_min_ratio: float = 3.0
    """...and is at least this many times the expectation..."""
    spike_min_count: Positive = 10
    """...and counts at least this many records."""
    baseline_buckets: Positive = 30
    """Buckets of the trailing baseline of the change-point tests."""
    min_baseline_buckets: Positive = 5
    """Buckets seen before a series is tested."""
    cusum_threshold: float = 8.0
    """CUSUM alarm threshold, in baseline sigmas."""
    cusum_drift: float = 0.5
    """CUSUM allowance per bucket, in baseline sigmas."""
    min_requests: Positive = 10
    """A service's bucket with fewer requests is not tested."""
    error_rate_min_shift: float = 0.02
    """Smallest rise of the error ratio that counts (absolute)."""
    latency_min_shift_ratio: float = 0.2
    """Smallest rise of latency that counts (ratio of the baseline)."""
    max_series: Positive = 10_000
    """Templates and services tracked at most; the least recently seen are forgotten."""

    def __post_init__(self) -> None:
        _positive("bucket", self.bucket)
        if int(self.season) < int(self.bucket):
            raise ValueError(f"season ({self.season}) is shorter than bucket ({self.bucket})")

    def create_detector(self, ctx: BuildContext | None = None) -> AnomalyDetector:
        return AnomalyDetector(
            bucket_ns=int(self.bucket), season_ns=int(self.season),
            allowed_lateness_ns=int(self.allowed_lateness),
            new_template_warmup_ns=int(self.new_template_warmup), spike_z=self.spike_z,
            spike_min_ratio=self.spike_min_ratio, spike_min_count=self.spike_min_count,
            baseline_buckets=self.baseline_buckets,
            min_baseline_buckets=self.min_baseline_buckets,
            cusum_threshold=self.cusum_threshold, cusum_drift=self.cusum_drift,
            min_requests=self.min_requests, error_rate_min_shift=self.error_rate_min_shift,
            latency_min_shift_ratio=self.latency_min_shift_ratio, max_series=self.max_series,
            outputs=ctx.outputs if ctx is not None else None,
        )  # fmt: skip

    def build(self, ctx: BuildContext) -> Stage:
        return _Logic(self.create_detector(ctx), detect_anomalies, "detector")


@register("Rank root-cause services for firing alerts and attach them as root_cause_candidates.")
class RootCauseStage(StageConfig, frozen=True, kw_only=True, tag="root_cause"):
    """Inputs: the alerts, and the evidence (``trace_correlator`` output,
    ``anomaly_detector`` output, deploy events).  Evidence from ``lookback``
    before an alert is used (from ``incident_margin`` before the alerting
    service's own error onset when it has one), deploys up to
    ``deploy_window`` before an onset; failures weigh less with age
    (``recency_half_life``).  An
    alert waits for the correlator's statistics to reach its time
    minus ``evidence_lag`` (a lag trades evidence for paging latency), or
    for the stream to be ``max_wait`` past it when there is no correlator.
    Evidence and telemetry are consumed; alerts and every other record are
    forwarded in order."""

    lookback: Duration = Duration.parse("1h")
    """Evidence this far before an alert is used."""
    deploy_window: Duration = Duration.parse("30m")
    """A deploy this long before a service's error onset is evidence."""
    evidence_lag: Duration = Duration.parse("0s")
    """Rank with evidence up to this long before the alert (less wait, less evidence)."""
    recency_half_life: Duration = Duration.parse("5m")
    """A failing trace this old weighs half as much as a current one."""
    incident_margin: Duration = Duration.parse("15m")
    """Evidence from this long before the alerting service's own error onset."""
    max_wait: Duration = Duration.parse("10m")
    """Without correlator statistics, an alert waits until the stream is this far past it."""
    max_candidates: Positive = 5
    """Candidates attached to an alert."""

    def __post_init__(self) -> None:
        _positive("lookback", self.lookback)

    def create_analyzer(self) -> RootCauseAnalyzer:
        return RootCauseAnalyzer(
            lookback_ns=int(self.lookback), deploy_window_ns=int(self.deploy_window),
            evidence_lag_ns=int(self.evidence_lag), max_wait_ns=int(self.max_wait),
            recency_half_life_ns=int(self.recency_half_life),
            incident_margin_ns=int(self.incident_margin),
            max_candidates=self.max_candidates,
        )  # fmt: skip

    def build(self, ctx: BuildContext) -> Stage:
        return _Logic(self.create_analyzer(), rank_alert_causes, "analyzer")


class _Logic:
    """A stage callable that exposes its logic's snapshot/restore and
    statistics to the runner."""

    __slots__ = ("_name", "_stage", "logic")

    def __init__(self, logic: Any, stage: Any, name: str) -> None:
        self.logic = logic
        self._stage = stage
        self._name = name

    def __call__(self, upstream: AsyncIterator[Sequence[Any]]) -> AsyncIterator[Sequence[Any]]:
        result: AsyncIterator[Sequence[Any]] = self._stage(upstream, **{self._name: self.logic})
        return result

    def snapshot(self) -> Any:
        return self.logic.snapshot()

    def restore(self, state: Any) -> None:
        self.logic.restore(state)

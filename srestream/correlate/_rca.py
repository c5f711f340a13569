"""Root-cause ranking for an SLO alert.

Given what the correlator and the detectors saw before an alert, rank the
services that may have caused it.  Each candidate gets five evidence scores
in [0, 1] and a weighted sum:

========================  ======  ============================================
evidence                  weight  score
========================  ======  ============================================
``trace``                 0.35    share of failing traces (through the
                                  alerting service, when trace summaries are
                                  given) whose root-cause span is in the
                                  service, each weighted by its recency
                                  (half-life ``recency_half_life_ns``)
``onset``                 0.25    1 for the earliest error onset, 1/2 for the
                                  next, 1/3 ... (services still erring
                                  near the alert only)
``dependency_graph``      0.20    the service errs while none of its callees
                                  does (1) or while some do (0.3); halved when
                                  the alerting service does not depend on it
``deploy``                0.10    a deploy of the service shortly before its
                                  onset, decaying linearly over the window
``template``              0.10    anomalous log templates (new or spiking) of
                                  the service, 0.5 each
========================  ======  ============================================

A service's error onset is the first bucket of the latest upward CUSUM
change of its error ratio inside the window (or the onset of a later
``error_rate_change`` anomaly); a service that errs from the first bucket
has its first erroring bucket as onset.  The window is the lookback, narrowed
to ``incident_margin_ns`` before the alerting service's own onset when it
has one, so that an earlier, unrelated incident is not blamed.  Ties are
broken by service name, so the ranking is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .._output import rfc3339_ms
from .._records import Event
from ._graph import downstream_of
from ._onsets import SeriesIndex, error_onsets
from ._records import (
    Anomaly,
    AnomalyType,
    CandidateEvidence,
    DependencyEdge,
    ServiceStats,
    TraceSummary,
)

__all__ = ["WEIGHTS", "EvidenceMemo", "error_onsets", "rank_root_causes"]

WEIGHTS: dict[str, float] = {
    "trace": 0.35,
    "onset": 0.25,
    "dependency_graph": 0.20,
    "deploy": 0.10,
    "template": 0.10,
}


class EvidenceMemo:
    """The lookback window and its error onsets for the last alert time.

    Alerts leave ``root_cause`` in bursts (an outage pages many SLOs at the
    same evaluation time); their windows are the same statistics, so the
    change-point test runs once for them all.  The owner passes a
    ``version`` that changes whenever a statistic is added: a window is
    reused only for the same bounds and the same statistics.  With a
    :class:`SeriesIndex` kept in step with the statistics, onsets come from
    it rather than from a pass over the window's statistics."""

    __slots__ = ("_key", "_narrowed", "_value", "index")

    def __init__(self, index: SeriesIndex | None = None) -> None:
        self.index = index
        self._key: tuple[int, int, object] = (0, 0, object())  # matches no version
        self._value: tuple[list[ServiceStats], dict[str, int]] = ([], {})
        self._narrowed: dict[tuple[int, int], _Narrowed] = {}

    def window(
        self, stats: Iterable[ServiceStats], start: int, until: int, version: object
    ) -> tuple[list[ServiceStats], dict[str, int]]:
        """(statistics of ``[start, until]``, their error onsets); do not
        modify them, they are shared."""
        key = (start, until, version)
        if key != self._key:
            window = [s for s in stats if start <= s.ts_ns and s.ts_ns + s.bucket_ns <= until]
            onsets = self.index.onsets(start, until) if self.index is not None else None
            self._value = (window, error_onsets(window) if onsets is None else onsets)
            self._key = key
            self._narrowed = {}
        return self._value

    def narrowed(self, start: int, half_life_ns: int) -> _Narrowed:
        """The last :meth:`window` from ``start`` on (an alert's own onset
        narrows it), the services erring in it and those erring in its last
        ``2 * half_life_ns`` (at least two buckets); shared, do not modify."""
        got = self._narrowed.get((start, half_life_ns))
        if got is None:
            window = self._value[0]
            if start > self._key[0]:
                window = [s for s in window if start <= s.ts_ns]
            erring = frozenset(
                s.service for s in window if s.errors or (not s.spans and s.error_logs)
            )
            size = window[0].bucket_ns if window else 0
            recent = self._key[1] - max(2 * half_life_ns, 2 * size)
            active = frozenset(
                s.service for s in window
                if s.ts_ns + s.bucket_ns > recent and (s.errors or (not s.spans and s.error_logs))
            )  # fmt: skip
            got = self._narrowed[(start, half_life_ns)] = (window, erring, active)
        return got


_Narrowed = tuple[list[ServiceStats], frozenset[str], frozenset[str]]


def _onsets(
    stat_onsets: dict[str, int], anomalies: Sequence[Anomaly], start: int, until: int
) -> dict[str, int]:
    """Latest error onsets from the statistics, or from ``error_rate_change``
    anomalies of ``[start, until]`` when those are later."""
    onsets = dict(stat_onsets)
    for a in anomalies:
        if (
            a.anomaly_type == AnomalyType.ERROR_RATE_CHANGE
            and start <= a.onset_ts_ns
            and a.ts_ns <= until
            and a.service
            and a.onset_ts_ns > onsets.get(a.service, a.onset_ts_ns - 1)
        ):
            onsets[a.service] = a.onset_ts_ns
    return onsets


def _trace_blame(
    service: str,
    window: Sequence[ServiceStats],
    traces: Sequence[TraceSummary],
    start: int,
    until: int,
    half_life_ns: int,
) -> tuple[dict[str, float], str]:
    """Weighted root-cause counts per service: of the failing traces in the
    window that went through the alerting service when there are trace
    summaries (failures elsewhere are not this alert's), else of all failing
    traces (the correlator's per-service counts).  A failure ``age`` before
    the alert weighs ``0.5 ** (age / half_life)``: what fails now explains
    an alert better than what failed half an hour ago."""

    def weight(ts: int) -> float:
        return 0.5 ** (max(0, until - ts) / half_life_ns) if half_life_ns > 0 else 1.0

    counts: dict[str, float] = {}
    failing = [t for t in traces if t.error and t.root_cause_service and start <= t.ts_ns <= until]
    touching = [t for t in failing if service in t.error_services]
    for t in touching or failing:
        counts[t.root_cause_service] = counts.get(t.root_cause_service, 0.0) + weight(t.ts_ns)
    if counts:
        return counts, f" through {service}" if touching else ""
    for s in window:
        if s.root_causes:
            w = weight(s.ts_ns + s.bucket_ns) * s.root_causes
            counts[s.service] = counts.get(s.service, 0.0) + w
    return counts, ""


def rank_root_causes(
    *,
    service: str,
    until_ts_ns: int,
    stats: Sequence[ServiceStats],
    edges: Sequence[DependencyEdge] = (),
    deploys: Sequence[Event] = (),
    anomalies: Sequence[Anomaly] = (),
    traces: Sequence[TraceSummary] = (),
    lookback_ns: int = 3_600_000_000_000,
    deploy_window_ns: int = 1_800_000_000_000,
    incident_margin_ns: int = 900_000_000_000,
    recency_half_life_ns: int = 300_000_000_000,
    max_candidates: int = 5,
    memo: EvidenceMemo | None = None,
    stats_version: object = None,
) -> list[CandidateEvidence]:
    """Rank candidate root-cause services for an alert on ``service`` raised
    at ``until_ts_ns``; only evidence from ``[until - lookback, until]`` is
    used, so the answer does not depend on what arrived afterwards.  When
    the alerting service's own errors have an onset, the evidence window
    narrows to ``incident_margin_ns`` before it: an earlier incident inside
    the lookback must not take the blame for this one.  A ``memo`` with a
    ``stats_version`` that changes whenever ``stats`` do lets alerts of the
    same time share the window and its change-point test."""
    start = until_ts_ns - lookback_ns
    if memo is None or stats_version is None:
        memo, stats_version = EvidenceMemo(), None
    _, stat_onsets = memo.window(stats, start, until_ts_ns, stats_version)
    # Onsets need the whole lookback as baseline; the window only filters them.
    onsets = _onsets(stat_onsets, anomalies, start, until_ts_ns)
    own = onsets.get(service)
    if own is not None and own - incident_margin_ns > start:
        start = own - incident_margin_ns
        onsets = {svc: t for svc, t in onsets.items() if t >= start}
    window, erring_stats, active = memo.narrowed(start, recency_half_life_ns)
    size = window[0].bucket_ns if window else 0
    erring: set[str] = set(onsets) | erring_stats
    # Services whose errors stopped long before the alert are not its cause.
    if active:
        erring &= active
        onsets = {svc: t for svc, t in onsets.items() if svc in active}
    root_causes, through = _trace_blame(
        service, window, traces, start, until_ts_ns, recency_half_life_ns
    )
    adjacency: dict[str, list[str]] = {}
    for e in edges:
        adjacency.setdefault(e.caller, []).append(e.callee)
    known = service in adjacency or any(service in v for v in adjacency.values())
    reachable = downstream_of(adjacency, service) | {service}
    templates: dict[str, list[str]] = {}
    for a in anomalies:
        if (
            a.anomaly_type in (AnomalyType.NEW_TEMPLATE, AnomalyType.TEMPLATE_SPIKE)
            and start <= a.onset_ts_ns
            and a.ts_ns <= until_ts_ns
        ):
            templates.setdefault(a.service, []).append(a.template_id)
    deploys_by: dict[str, list[int]] = {}
    for ev in deploys:
        if ev.event_type == "deploy" and start - deploy_window_ns <= ev.ts_ns <= until_ts_ns:
            deploys_by.setdefault(ev.service, []).append(ev.ts_ns)

    candidates = set(root_causes) | set(onsets) | erring | set(templates)
    candidates |= {s for s in deploys_by if s in erring or s in reachable}
    candidates.discard("")
    slack = size
    total_rc = sum(root_causes.values())
    onset_rank = {t: k for k, t in enumerate(sorted(set(onsets.values())))}
    out = []
    for cand in candidates:
        evidence: list[str] = []
        trace = root_causes.get(cand, 0) / total_rc if total_rc else 0.0
        if trace:
            evidence.append(f"root cause of {trace:.0%} of recent failing traces{through}")
        onset_ts = onsets.get(cand)
        onset = 0.0
        if onset_ts is not None:
            onset = 1.0 / (1 + onset_rank[onset_ts])
            evidence.append(f"errors began at {rfc3339_ms(onset_ts)}")
        graph = 0.0
        if cand in erring:
            callees = adjacency.get(cand, ())
            graph = 0.3 if any(c in erring for c in callees) else 1.0
            if known and cand not in reachable:
                graph *= 0.5
            if graph >= 0.5:
                evidence.append("erring while none of its dependencies err")
        deploy = 0.0
        deploy_ts = None
        ref = onset_ts if onset_ts is not None else until_ts_ns
        for ts in deploys_by.get(cand, ()):
            # Onsets are bucket starts: a deploy inside the onset bucket counts.
            if ref - deploy_window_ns <= ts <= ref + slack:
                score = 1.0 - max(0, ref - ts) / deploy_window_ns
                if score > deploy:
                    deploy, deploy_ts = score, ts
        if deploy_ts is not None:
            evidence.append(f"deployed at {rfc3339_ms(deploy_ts)}")
        tpl = min(1.0, 0.5 * len(templates.get(cand, ())))
        if tpl:
            evidence.append(f"{len(templates[cand])} anomalous log template(s)")
        parts = {
            "trace": trace, "onset": onset, "dependency_graph": graph, "deploy": deploy,
            "template": tpl,
        }  # fmt: skip
        weighted = {k: WEIGHTS[k] * v for k, v in parts.items()}
        score = round(sum(weighted.values()), 6)
        if score <= 0:
            continue
        method = max(weighted, key=lambda k: (weighted[k], k))
        out.append(
            CandidateEvidence(
                service=cand, score=score, method=method, trace=round(trace, 6),
                onset=round(onset, 6), propagation=graph, deploy=round(deploy, 6),
                template=tpl, onset_ts_ns=onset_ts, deploy_ts_ns=deploy_ts, evidence=evidence,
            )
        )  # fmt: skip
    out.sort(key=lambda c: (-c.score, c.service))
    return out[:max_candidates]

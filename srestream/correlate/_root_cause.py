"""The ``root_cause`` stage: alerts in, alerts with candidates out.

Its inputs are the alert stream (``burn_rate``) and the evidence streams: the
correlator's ``service_stats``, ``dependency`` and failing ``trace_summary``
records (its output, or
just its ``correlations`` side output), the detectors' ``anomaly`` records and
deploy :class:`~srestream.Event` records.  Evidence is kept for the lookback
window only (bounded memory) and is not forwarded; neither is raw telemetry
(logs, spans, metrics) arriving on an evidence edge.  Every other record
(alerts, budgets ...) is forwarded in the order it came.

An alert (any record with ``ts_ns`` and a ``root_cause_candidates`` field)
waits until the evidence has caught up with its time minus
``evidence_lag_ns`` (a closed ``service_stats`` bucket ending at or after
it), then leaves with ``root_cause_candidates`` filled as
``[{service, score, method}]``, followed by a :class:`RootCauseRanking` with
the full evidence.  Records behind a waiting alert wait with it.  Only
evidence up to that time is used, so the output does not depend on how
the inputs interleaved.  Without any correlator in the graph an alert
leaves once the stream (or any evidence) is ``max_wait_ns`` past it.
Alerts whose ``state`` is not ``firing`` are forwarded unchanged.
"""

from __future__ import annotations

import importlib
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import msgspec

from .._records import Event, LogRecord, MetricSample, RawLine, Span
from ._onsets import SeriesIndex
from ._rca import EvidenceMemo, rank_root_causes
from ._records import (
    Anomaly,
    CallTreeRecord,
    DependencyEdge,
    LeadingIndicator,
    Link,
    RootCauseRanking,
    ServiceStats,
    TraceSummary,
)

__all__ = ["RootCauseAnalyzer", "rank_alert_causes"]

# Arrive on evidence edges, are not forwarded.
_CONSUMED = (LogRecord, Span, MetricSample, RawLine, Event, Link, CallTreeRecord,
             LeadingIndicator)  # fmt: skip


class RootCauseAnalyzer:
    """Running logic of the ``root_cause`` stage (see module doc)."""

    def __init__(
        self,
        *,
        lookback_ns: int = 3_600_000_000_000,
        deploy_window_ns: int = 1_800_000_000_000,
        max_candidates: int = 5,
        evidence_lag_ns: int = 0,
        max_wait_ns: int = 600_000_000_000,
        max_pending_records: int = 100_000,
        max_failing_traces: int = 100_000,
        recency_half_life_ns: int = 300_000_000_000,
        incident_margin_ns: int = 900_000_000_000,
    ) -> None:
        self.recency_half_life_ns = recency_half_life_ns
        self.incident_margin_ns = incident_margin_ns
        self.max_failing_traces = max_failing_traces
        self.lookback_ns = lookback_ns
        self.deploy_window_ns = deploy_window_ns
        self.max_candidates = max_candidates
        self.evidence_lag_ns = evidence_lag_ns
        self.max_wait_ns = max_wait_ns
        self.max_pending_records = max_pending_records
        self._reset()

    def _reset(self) -> None:
        self.evidence_watermark: int | None = None
        self._latest: int | None = None  # newest event time of anything seen
        self._stats: deque[ServiceStats] = deque()
        # Changes whenever ``_stats`` does: alerts of one time share a window.
        self._stats_version = 0
        self._series = SeriesIndex()  # the statistics by service, for onsets
        self._memo = EvidenceMemo(self._series)
        self._edges: deque[DependencyEdge] = deque()
        self._deploys: deque[Event] = deque()
        self._anomalies: deque[Anomaly] = deque()
        self._failing: deque[TraceSummary] = deque()  # failing traces only
        self._queue: deque[Any] = deque()  # forwarded records waiting behind an alert

    def process(self, batch: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        latest = self._latest
        queue = self._queue
        for rec in batch:
            t = type(rec)
            if t is ServiceStats:
                self._stats.append(rec)
                self._series.add(rec)
                self._stats_version += 1
                end = rec.ts_ns + rec.bucket_ns
                if self.evidence_watermark is None or end > self.evidence_watermark:
                    self.evidence_watermark = end
            elif t is DependencyEdge:
                self._edges.append(rec)
            elif t is Anomaly:
                self._anomalies.append(rec)
            elif t is TraceSummary:
                if rec.error and rec.root_cause_service:
                    self._failing.append(rec)
                    if len(self._failing) > self.max_failing_traces:
                        self._failing.popleft()
            elif t is Event:
                if rec.event_type == "deploy":
                    self._deploys.append(rec)
            elif t in _CONSUMED:
                pass
            elif queue or _is_alert(rec):
                queue.append(rec)
            else:
                out.append(rec)
                continue
            ts = getattr(rec, "ts_ns", None)
            if isinstance(ts, int) and (latest is None or ts > latest):
                latest = ts
        self._latest = latest
        self._release(out, final=False)
        self._prune()
        return out

    def finish(self) -> list[Any]:
        out: list[Any] = []
        self._release(out, final=True)
        return out

    def _ready(self, alert: Any) -> bool:
        w = self.evidence_watermark
        due = alert.ts_ns - self.evidence_lag_ns
        if w is not None and due <= w:
            return True
        latest = self._latest
        return latest is not None and alert.ts_ns + self.max_wait_ns <= latest

    def _release(self, out: list[Any], *, final: bool) -> None:
        queue = self._queue
        while queue:
            head = queue[0]
            if _is_alert(head):
                if not (final or self._ready(head) or len(queue) > self.max_pending_records):
                    return
                out.extend(self.enrich(queue.popleft()))
            else:
                out.append(queue.popleft())

    def enrich(self, alert: Any) -> list[Any]:
        """The alert with its candidates and the ranking (or the alert alone
        when it is not firing)."""
        if getattr(alert, "state", "firing") != "firing":
            return [alert]
        until = alert.ts_ns - self.evidence_lag_ns
        edges = [e for e in self._edges if e.ts_ns <= until]
        latest = max((e.ts_ns for e in edges), default=None)
        ranked = rank_root_causes(
            service=getattr(alert, "service", ""),
            until_ts_ns=until,
            stats=self._stats,
            edges=[e for e in edges if e.ts_ns == latest],
            deploys=self._deploys,
            anomalies=self._anomalies,
            traces=self._failing,
            recency_half_life_ns=self.recency_half_life_ns,
            incident_margin_ns=self.incident_margin_ns,
            lookback_ns=self.lookback_ns,
            deploy_window_ns=self.deploy_window_ns,
            max_candidates=self.max_candidates,
            memo=self._memo,
            stats_version=self._stats_version,
        )
        short = [{"service": c.service, "score": c.score, "method": c.method} for c in ranked]
        onsets = [c.onset_ts_ns for c in ranked if c.onset_ts_ns is not None]
        ranking = RootCauseRanking(
            ts_ns=alert.ts_ns,
            service=getattr(alert, "service", ""),
            onset_ts_ns=min(onsets) if onsets else alert.ts_ns,
            alert=str(getattr(alert, "dedup_key", "") or getattr(alert, "slo", "")),
            candidates=ranked,
        )
        return [msgspec.structs.replace(alert, root_cause_candidates=short), ranking]

    def _prune(self) -> None:
        """Drop evidence too old for any alert still to come (or waiting)."""
        if self._latest is None:
            return
        w = self._latest
        for rec in self._queue:
            if _is_alert(rec):
                w = min(w, rec.ts_ns)
                break
        horizon = w - self.lookback_ns - self.deploy_window_ns - self.evidence_lag_ns
        stats = self._stats
        if stats and stats[0].ts_ns < horizon:
            self._stats_version += 1
            while stats and stats[0].ts_ns < horizon:
                self._series.remove(stats.popleft())
        for q in (self._edges, self._deploys, self._anomalies, self._failing):
            while q and q[0].ts_ns < horizon:
                q.popleft()

    def snapshot(self) -> Any:
        return msgspec.to_builtins(
            {
                "evidence_watermark": self.evidence_watermark,
                "latest": self._latest,
                "stats": list(self._stats),
                "edges": list(self._edges),
                "deploys": list(self._deploys),
                "anomalies": list(self._anomalies),
                "failing": list(self._failing),
                "queue": [
                    [type(r).__module__, type(r).__qualname__, msgspec.to_builtins(r)]
                    for r in self._queue
                ],
            }
        )

    def restore(self, state: Any) -> None:
        """Restore the evidence and the records still waiting (their record
        types are named in the snapshot: alerts are another package's)."""
        self._reset()
        for module, qualname, fields in state.get("queue", ()):
            cls: Any = importlib.import_module(module)
            for part in qualname.split("."):
                cls = getattr(cls, part)
            is_struct = isinstance(cls, type) and issubclass(cls, msgspec.Struct)
            self._queue.append(msgspec.convert(fields, cls) if is_struct else fields)
        self.evidence_watermark = state["evidence_watermark"]
        self._latest = state.get("latest")
        self._stats = deque(msgspec.convert(state["stats"], list[ServiceStats]))
        for s in self._stats:
            self._series.add(s)
        self._edges = deque(msgspec.convert(state["edges"], list[DependencyEdge]))
        self._deploys = deque(msgspec.convert(state["deploys"], list[Event]))
        self._anomalies = deque(msgspec.convert(state["anomalies"], list[Anomaly]))
        self._failing = deque(msgspec.convert(state.get("failing", []), list[TraceSummary]))


def _is_alert(rec: Any) -> bool:
    return hasattr(rec, "root_cause_candidates") and isinstance(getattr(rec, "ts_ns", None), int)


async def rank_alert_causes(
    batches: AsyncIterator[Sequence[Any]],
    /,
    *,
    analyzer: RootCauseAnalyzer | None = None,
) -> AsyncIterator[list[Any]]:
    """The ``root_cause`` stage (see module doc)."""
    logic = analyzer if analyzer is not None else RootCauseAnalyzer()
    async with aclosing(batches):  # type: ignore[type-var]
        async for batch in batches:
            yield logic.process(batch)
    yield logic.finish()

"""The ``root_cause`` stage: alerts in, alerts with candidates out.

Its inputs are the alert stream and the evidence streams: the correlator's
``service_stats`` and ``dependency`` records, the detectors' ``anomaly``
records and deploy :class:`~srestream.Event` records.  Evidence is kept for
the lookback window only (bounded memory).

An alert (any record with ``ts_ns`` and a ``root_cause_candidates`` field)
waits until the evidence has caught up with its time (a closed
``service_stats`` bucket ending at or after it; or, for pipelines without a
correlator, any evidence ``max_wait_ns`` of event time past it), then leaves with
``root_cause_candidates`` filled as ``[{service, score, method}]``, followed
by a :class:`RootCauseRanking` with the full evidence.  Only evidence up to
the alert's time is used and alerts leave in the order they came, so the
output does not depend on how the inputs interleaved.  Alerts whose
``state`` is not ``firing`` pass through unchanged (in order).
"""

from __future__ import annotations

import importlib
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import msgspec

from .._records import Event
from ._rca import rank_root_causes
from ._records import Anomaly, DependencyEdge, RootCauseRanking, ServiceStats

__all__ = ["RootCauseAnalyzer", "rank_alert_causes"]


class RootCauseAnalyzer:
    """Running logic of the ``root_cause`` stage (see module doc)."""

    def __init__(
        self,
        *,
        lookback_ns: int = 3_600_000_000_000,
        deploy_window_ns: int = 1_800_000_000_000,
        max_candidates: int = 5,
        max_wait_ns: int = 600_000_000_000,
        max_pending_alerts: int = 10_000,
    ) -> None:
        self.lookback_ns = lookback_ns
        self.max_wait_ns = max_wait_ns
        self.deploy_window_ns = deploy_window_ns
        self.max_candidates = max_candidates
        self.max_pending_alerts = max_pending_alerts
        self._reset()

    def _reset(self) -> None:
        self.evidence_watermark: int | None = None
        self._latest: int | None = None  # newest evidence of any kind
        self._stats: deque[ServiceStats] = deque()
        self._edges: deque[DependencyEdge] = deque()
        self._deploys: deque[Event] = deque()
        self._anomalies: deque[Anomaly] = deque()
        self._pending: deque[Any] = deque()

    def process(self, batch: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        latest = self._latest
        for rec in batch:
            t = type(rec)
            if t is ServiceStats:
                self._stats.append(rec)
                end = rec.ts_ns + rec.bucket_ns
                if self.evidence_watermark is None or end > self.evidence_watermark:
                    self.evidence_watermark = end
            elif t is DependencyEdge:
                self._edges.append(rec)
            elif t is Anomaly:
                self._anomalies.append(rec)
            elif t is Event:
                if rec.event_type != "deploy":
                    continue
                self._deploys.append(rec)
            elif hasattr(rec, "root_cause_candidates") and hasattr(rec, "ts_ns"):
                self._pending.append(rec)
                continue
            else:
                continue
            if latest is None or rec.ts_ns > latest:
                latest = rec.ts_ns
        self._latest = latest
        self._release(out, final=False)
        self._prune()
        return out

    def finish(self) -> list[Any]:
        out: list[Any] = []
        self._release(out, final=True)
        return out

    def _release(self, out: list[Any], *, final: bool) -> None:
        pending = self._pending
        w = self.evidence_watermark
        latest = self._latest
        while pending and (
            final
            or (w is not None and pending[0].ts_ns <= w)
            or (latest is not None and pending[0].ts_ns + self.max_wait_ns <= latest)
            or len(pending) > self.max_pending_alerts
        ):
            out.extend(self.enrich(pending.popleft()))

    def enrich(self, alert: Any) -> list[Any]:
        """The alert with its candidates and the ranking (or the alert alone
        when it is not firing)."""
        if getattr(alert, "state", "firing") != "firing":
            return [alert]
        until = alert.ts_ns
        edges = [e for e in self._edges if e.ts_ns <= until]
        latest = max((e.ts_ns for e in edges), default=None)
        ranked = rank_root_causes(
            service=getattr(alert, "service", ""),
            until_ts_ns=until,
            stats=list(self._stats),
            edges=[e for e in edges if e.ts_ns == latest],
            deploys=list(self._deploys),
            anomalies=list(self._anomalies),
            lookback_ns=self.lookback_ns,
            deploy_window_ns=self.deploy_window_ns,
            max_candidates=self.max_candidates,
        )
        short = [{"service": c.service, "score": c.score, "method": c.method} for c in ranked]
        onsets = [c.onset_ts_ns for c in ranked if c.onset_ts_ns is not None]
        ranking = RootCauseRanking(
            ts_ns=until,
            service=getattr(alert, "service", ""),
            onset_ts_ns=min(onsets) if onsets else until,
            alert=str(getattr(alert, "dedup_key", "") or getattr(alert, "slo", "")),
            candidates=ranked,
        )
        return [msgspec.structs.replace(alert, root_cause_candidates=short), ranking]

    def _prune(self) -> None:
        """Drop evidence too old for any alert still to come (or waiting)."""
        if self._latest is None:
            return
        w = self._latest
        if self._pending:
            w = min(w, self._pending[0].ts_ns)
        horizon = w - self.lookback_ns - self.deploy_window_ns
        for q in (self._stats, self._edges, self._deploys, self._anomalies):
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
                "pending": [
                    [type(a).__module__, type(a).__qualname__, msgspec.to_builtins(a)]
                    for a in self._pending
                ],
            }
        )

    def restore(self, state: Any) -> None:
        """Restore the evidence and the alerts still waiting for it (their
        record type is named in the snapshot: alerts are another package's)."""
        self._reset()
        for module, qualname, fields in state.get("pending", ()):
            cls: Any = importlib.import_module(module)
            for part in qualname.split("."):
                cls = getattr(cls, part)
            self._pending.append(msgspec.convert(fields, cls))
        self.evidence_watermark = state["evidence_watermark"]
        self._latest = state.get("latest")
        self._stats = deque(msgspec.convert(state["stats"], list[ServiceStats]))
        self._edges = deque(msgspec.convert(state["edges"], list[DependencyEdge]))
        self._deploys = deque(msgspec.convert(state["deploys"], list[Event]))
        self._anomalies = deque(msgspec.convert(state["anomalies"], list[Anomaly]))


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

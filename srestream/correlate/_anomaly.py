"""Anomaly detectors over logs and spans, in event-time buckets.

Per bucket (default one minute) the detector counts each log template and,
per service, requests, errors and latency (from spans, and from logs that
carry a status or latency).  When the watermark (largest event time seen,
minus ``allowed_lateness_ns``) passes a bucket's end, the bucket is tested:

* ``new_template`` (method ``first_seen``): a template id never seen before,
  once the ``new_template_warmup_ns`` after the first record is over (at
  start-up every template is new).  Onset: its first record.
* ``template_spike`` (``seasonal_poisson``): the count is above the
  seasonal expectation (see :class:`SeasonalBaseline`).  Onset: the first
  bucket of the spike.
* ``error_rate_change`` and ``latency_change`` (``cusum``): an upward
  change point of the error ratio (tested on ``asin(sqrt(ratio))``, which
  makes binomial noise the same at every rate) or of the mean log latency
  (heavy tails tamed; see :class:`Cusum`); shifts below ``error_rate_min_shift`` (absolute) or
  ``latency_min_shift_ratio`` (of the baseline) are not changes.
  Onset: the first bucket of the excursion that crossed the threshold.

Quiet buckets count as zero for the templates being tracked.  The number of
series is bounded (``max_series``); the least recently seen is forgotten.
Records for a bucket already tested go to the ``late`` side output.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

from .._component import Outputs
from .._records import LogRecord, Span
from ._changepoint import Cusum, ErrorRateCusum, SeasonalBaseline, poisson_spike
from ._records import Anomaly, AnomalyType

__all__ = ["AnomalyDetector", "detect_anomalies"]


class _Template:
    __slots__ = ("baseline", "last_bucket", "service", "spiking")

    def __init__(self, service: str, slots: int, recent: int, bucket: int) -> None:
        self.service = service
        self.baseline = SeasonalBaseline(slots=slots, recent_buckets=recent)
        self.last_bucket = bucket
        self.spiking = False


class AnomalyDetector:
    """The running logic of the ``anomaly_detector`` stage (module doc)."""

    def __init__(
        self,
        *,
        bucket_ns: int = 60_000_000_000,
        season_ns: int = 86_400_000_000_000,
        allowed_lateness_ns: int = 30_000_000_000,
        new_template_warmup_ns: int = 600_000_000_000,
        spike_z: float = 4.0,
        spike_min_ratio: float = 3.0,
        spike_min_count: int = 10,
        baseline_buckets: int = 30,
        min_baseline_buckets: int = 5,
        cusum_threshold: float = 8.0,
        cusum_drift: float = 0.5,
        min_requests: int = 10,
        error_rate_min_shift: float = 0.02,
        latency_min_shift_ratio: float = 0.2,
        max_series: int = 10_000,
        outputs: Outputs | None = None,
    ) -> None:
        if bucket_ns <= 0:
            raise ValueError("bucket must be positive")
        self.bucket_ns = bucket_ns
        self.slots = max(1, season_ns // bucket_ns)
        self.allowed_lateness_ns = allowed_lateness_ns
        self.warmup_buckets = -(-new_template_warmup_ns // bucket_ns)
        self.spike_z = spike_z
        self.spike_min_ratio = spike_min_ratio
        self.spike_min_count = spike_min_count
        self.baseline_buckets = baseline_buckets
        self.min_baseline = min_baseline_buckets
        self.cusum_threshold = cusum_threshold
        self.cusum_drift = cusum_drift
        self.min_requests = min_requests
        self.error_rate_min_shift = error_rate_min_shift
        self.latency_min_shift_ratio = latency_min_shift_ratio
        self.max_series = max(1, max_series)
        self.outputs = outputs if outputs is not None else Outputs("anomaly_detector")
        self.late = 0
        self._first_bucket: int | None = None
        self._next: int | None = None  # first bucket not yet tested
        self._watermark: int | None = None
        # bucket -> (template counts {tid: [count, first_ts, service]},
        #            per service [requests, errors, sum log ms, latencies, sum log^2])
        self._open: dict[int, tuple[dict[str, list[Any]], dict[str, list[float]]]] = {}
        self._templates: dict[str, _Template] = {}
        self._error_cusum: dict[str, ErrorRateCusum] = {}
        self._latency_cusum: dict[str, Cusum] = {}

    # ------------------------------------------------------------ feeding
    def process(self, batch: Sequence[Any]) -> list[Anomaly]:
        out: list[Anomaly] = []
        size = self.bucket_ns
        for rec in batch:
            t = type(rec)
            if t is LogRecord:
                ts = rec.ts_ns
            elif t is Span:
                ts = rec.end_ts_ns
            else:
                continue
            self._advance(ts, out)
            b = ts // size
            if self._next is not None and b < self._next:
                self.late += 1
                self.outputs.emit_one("late", rec)
                continue
            if self._first_bucket is None:
                self._first_bucket = self._next = b
            data = self._open.get(b)
            if data is None:
                data = self._open[b] = ({}, {})
            templates, services = data
            if t is LogRecord:
                tid = rec.template_id
                if tid:
                    c = templates.get(tid)
                    if c is None:
                        templates[tid] = [1, ts, rec.service]
                    else:
                        c[0] += 1
                        c[1] = min(c[1], ts)
                if rec.status is None and rec.latency_ns is None:
                    continue
                error = rec.status is not None and rec.status >= 500
                latency = rec.latency_ns
            else:
                error = rec.error
                latency = rec.end_ts_ns - rec.start_ts_ns
            st = services.get(rec.service)
            if st is None:
                st = services[rec.service] = [0, 0, 0.0, 0, 0.0]
            st[0] += 1
            st[1] += error
            if latency is not None and latency > 0:
                x = math.log(latency / 1e6)
                st[2] += x
                st[3] += 1
                st[4] += x * x
        return out

    def finish(self) -> list[Anomaly]:
        out: list[Anomaly] = []
        if self._watermark is not None:
            self._advance(self._watermark + self.allowed_lateness_ns + self.bucket_ns, out)
        return out

    def _advance(self, ts: int, out: list[Anomaly]) -> None:
        if self._watermark is not None and ts <= self._watermark:
            return
        self._watermark = ts
        if self._next is None:
            return
        limit = (ts - self.allowed_lateness_ns) // self.bucket_ns  # buckets < limit close
        while self._next < limit:
            b = self._next
            self._test(b, self._open.pop(b, None), out)
            self._next = b + 1
            if not self._open and limit - self._next > self.slots:
                # A long gap: a season of zeros is as good as more of them.
                self._next = limit - self.slots

    # ------------------------------------------------------------ testing
    def _test(
        self,
        b: int,
        data: tuple[dict[str, list[Any]], dict[str, list[float]]] | None,
        out: list[Anomaly],
    ) -> None:
        size = self.bucket_ns
        start, end = b * size, (b + 1) * size
        counts, services = data if data is not None else ({}, {})
        assert self._first_bucket is not None
        warm = b - self._first_bucket >= self.warmup_buckets
        known = self._templates
        for tid in sorted(counts):
            if tid in known:
                continue
            count, first_ts, service = counts[tid]
            if warm:
                out.append(
                    Anomaly(
                        ts_ns=end, onset_ts_ns=first_ts, anomaly_type=AnomalyType.NEW_TEMPLATE,
                        method="first_seen", service=service, template_id=tid, value=count,
                        summary=f"new log template {tid} ({count} in its first bucket)",
                    )
                )  # fmt: skip
            known[tid] = _Template(service, self.slots, self.baseline_buckets, b)
        for tid in sorted(known):
            tpl = known[tid]
            c = counts.get(tid)
            count = c[0] if c is not None else 0
            if c is not None:
                tpl.last_bucket = b
                tpl.service = c[2]
            expected = tpl.baseline.expected(b)
            seasoned = tpl.baseline.buckets_seen(b) >= self.min_baseline
            if seasoned and poisson_spike(
                count, expected, z=self.spike_z, min_ratio=self.spike_min_ratio,
                min_count=self.spike_min_count,
            ):  # fmt: skip
                if not tpl.spiking:
                    tpl.spiking = True
                    out.append(
                        Anomaly(
                            ts_ns=end, onset_ts_ns=start,
                            anomaly_type=AnomalyType.TEMPLATE_SPIKE, method="seasonal_poisson",
                            service=tpl.service, template_id=tid, value=count,
                            baseline=round(expected, 3),
                            score=round((count - expected) / max(expected, 1.0) ** 0.5, 3),
                            summary=f"template {tid}: {count} per bucket, expected {expected:.1f}",
                        )
                    )  # fmt: skip
                tpl.baseline.learn(b, count, anomalous=True)
            else:
                tpl.spiking = False
                tpl.baseline.learn(b, count)
        for service in sorted(services):
            total, errors, log_sum, lat_n, log_sq = services[service]
            if total < self.min_requests:
                continue
            self._error_change(service, int(errors), int(total), b, out)
            if lat_n >= self.min_requests:
                self._latency_change(service, b, log_sum, int(lat_n), log_sq, out)
        self._bound()

    def _error_change(
        self, service: str, errors: int, total: int, b: int, out: list[Anomaly]
    ) -> None:
        """See :class:`ErrorRateCusum` (asin-sqrt ratios, binomial sigma)."""
        cusum = self._error_cusum.get(service)
        if cusum is None:
            cusum = self._error_cusum[service] = self._new_error_cusum()
        mean = cusum.baseline_ratio()
        ratio = errors / total
        onset = cusum.update(b, errors, total)
        if onset is not None:
            out.append(
                Anomaly(
                    ts_ns=(b + 1) * self.bucket_ns, onset_ts_ns=onset * self.bucket_ns,
                    anomaly_type=AnomalyType.ERROR_RATE_CHANGE, method="cusum", service=service,
                    value=round(ratio, 6), baseline=round(mean, 6), score=round(cusum.score, 3),
                    summary=f"{service} error rate change: {mean:.4g} -> {ratio:.4g}",
                )
            )  # fmt: skip

    def _new_error_cusum(self) -> ErrorRateCusum:
        return ErrorRateCusum(
            min_shift=self.error_rate_min_shift, baseline_buckets=self.baseline_buckets,
            min_baseline=self.min_baseline, drift=self.cusum_drift,
            threshold=self.cusum_threshold,
        )  # fmt: skip

    def _latency_change(
        self, service: str, b: int, log_sum: float, n: int, log_sq: float, out: list[Anomaly]
    ) -> None:
        """Latency is heavy-tailed: the test runs on the mean of log latency
        (the log of the geometric mean), with sigma at least its standard
        error in this bucket, so one slow request among few does not look
        like a change; a shift must be ``latency_min_shift_ratio`` of the
        baseline."""
        cusum = self._latency_cusum.get(service)
        if cusum is None:
            cusum = self._latency_cusum[service] = self._new_latency_cusum()
        value = log_sum / n
        var = max(0.0, log_sq / n - value * value)
        cusum.min_sigma = max(0.05, math.sqrt(var / n))
        mean, _ = cusum.baseline()
        onset = cusum.update(b, value)
        if onset is not None:
            before, now = math.exp(mean), math.exp(value)
            out.append(
                Anomaly(
                    ts_ns=(b + 1) * self.bucket_ns, onset_ts_ns=onset * self.bucket_ns,
                    anomaly_type=AnomalyType.LATENCY_CHANGE, method="cusum", service=service,
                    value=round(now, 6), baseline=round(before, 6), score=round(cusum.score, 3),
                    summary=f"{service} latency change (geometric mean): "
                    f"{before:.4g} ms -> {now:.4g} ms",
                )
            )  # fmt: skip

    def _new_latency_cusum(self) -> Cusum:
        """On log latency: sigma at least 0.05 (5%, more per bucket, see
        ``_latency_change``), shifts of at least ``log(1 + latency_min_shift_ratio)``."""
        return Cusum(
            baseline_buckets=self.baseline_buckets, min_baseline=self.min_baseline,
            min_sigma=0.05, relative_sigma=0.0,
            min_shift=math.log1p(self.latency_min_shift_ratio), drift=self.cusum_drift,
            threshold=self.cusum_threshold,
        )  # fmt: skip

    def _bound(self) -> None:
        """Forget the least recently seen templates beyond ``max_series``."""
        known = self._templates
        if len(known) > self.max_series:
            order = sorted(known, key=lambda t: (known[t].last_bucket, t))
            for tid in order[: len(known) - self.max_series]:
                del known[tid]
        for detectors in (self._error_cusum, self._latency_cusum):
            if len(detectors) > self.max_series:
                for service in sorted(detectors)[: len(detectors) - self.max_series]:
                    del detectors[service]

    # ------------------------------------------------------------ state
    def snapshot(self) -> Any:
        return {
            "late": self.late,
            "first_bucket": self._first_bucket,
            "next": self._next,
            "watermark": self._watermark,
            "open": [[b, t, s] for b, (t, s) in sorted(self._open.items())],
            "templates": [
                [tid, t.service, t.last_bucket, t.spiking, t.baseline.snapshot()]
                for tid, t in sorted(self._templates.items())
            ],
            "error_cusum": {k: c.snapshot() for k, c in sorted(self._error_cusum.items())},
            "latency_cusum": {k: c.snapshot() for k, c in sorted(self._latency_cusum.items())},
        }

    def restore(self, state: Any) -> None:
        self.late = state["late"]
        self._first_bucket = state["first_bucket"]
        self._next = state["next"]
        self._watermark = state["watermark"]
        self._open = {int(b): (t, s) for b, t, s in state["open"]}
        self._templates = {}
        for tid, service, last, spiking, base in state["templates"]:
            tpl = _Template(service, self.slots, self.baseline_buckets, last)
            tpl.spiking = spiking
            tpl.baseline.restore(base)
            self._templates[tid] = tpl
        self._error_cusum.clear()
        for service, snap in state["error_cusum"].items():
            e = self._new_error_cusum()
            e.restore(snap)
            self._error_cusum[service] = e
        self._latency_cusum.clear()
        for service, snap in state["latency_cusum"].items():
            c = self._new_latency_cusum()
            c.restore(snap)
            self._latency_cusum[service] = c


async def detect_anomalies(
    batches: AsyncIterator[Sequence[Any]],
    /,
    *,
    detector: AnomalyDetector | None = None,
    outputs: Outputs | None = None,
) -> AsyncIterator[list[Anomaly]]:
    """The ``anomaly_detector`` stage: yields :class:`Anomaly` records only."""
    logic = detector if detector is not None else AnomalyDetector(outputs=outputs)
    async with aclosing(batches):  # type: ignore[type-var]
        async for batch in batches:
            yield logic.process(batch)
    yield logic.finish()

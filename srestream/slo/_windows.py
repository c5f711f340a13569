"""The SLI windows stage: records in, closed minute buckets (rollups) out.

For every (SLO, service) it counts good and total events in event-time
buckets of ``resolution_ns`` (one minute by default).  A bucket stays open
until the watermark passes its end; then it is closed and emitted as one
:class:`~srestream.slo.SliRollup`, on the main output (for the burn-rate
stage) and on the ``rollups`` side output (for a ledger sink).

Event time and lateness (all in the records' own time, never the clock)::

    max_ts = the largest ts_ns seen so far
    watermark = max_ts - allowed_lateness   (never before the first bucket)

    ─────────────────────────────────────────────►  event time
         │  closed  │  closed  │ open       │ open │
                               ▲ watermark   ▲ max_ts
    a record at ts >= watermark lands in its bucket (late but allowed);
    a record at ts <  watermark goes to the ``late`` side output.

The watermark moves record by record, so what is late and when a bucket
closes depend only on the order of the records, never on how they are cut
into batches: a replay at any batch size or speed gives the same output.

Data gaps: a bucket in which the SLO's service sent no record at all is a
no-data bucket (``no_data_ns = resolution``): neither good nor bad, and it
lowers the reported coverage.  A stretch of buckets in which no SLO service
sent anything is emitted as one rollup per key whose ``resolution_ns``
spans the whole gap.

Memory: the open buckets only (those between the watermark and ``max_ts``)
- a few per key, whatever the input size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import Any

from .._component import Outputs
from .._records import LogRecord, MetricSample
from ._alerting import MINUTE_NS
from ._budget import timeslice_is_good
from ._predicates import compile_predicate
from ._records import SliRollup
from ._spec import SLOSet, SLOSpec

__all__ = ["SliWindows", "sli_windows", "SliCounter"]


class SliCounter:
    """The counting rule and open buckets of one (SLO, service)."""

    __slots__ = (
        "slo",
        "service",
        "spec",
        "total",
        "good",
        "pending",
        "time_sliced",
        "slice_target",
        "min_events",
        "state_key",
    )

    def __init__(self, spec: SLOSpec) -> None:
        self.spec = spec
        self.slo = spec.name
        self.service = spec.service
        self.state_key = f"{spec.name}\x1f{spec.service}"
        sli = spec.sli
        total = compile_predicate(sli.total)
        good: Callable[[Any], bool]
        if sli.kind == "latency":
            assert sli.threshold is not None
            limit = sli.threshold.ns
            extra = compile_predicate(sli.good)

            def good(r: Any, limit: int = limit, extra: Callable[[Any], bool] = extra) -> bool:
                return r.latency_ns <= limit and extra(r)

            base_total = total

            def total(r: Any, base: Callable[[Any], bool] = base_total) -> bool:
                return r.latency_ns is not None and base(r)

        elif sli.kind == "freshness":
            assert sli.threshold is not None
            limit_s = sli.threshold.seconds
            metric = sli.metric
            base_total = total

            def total(r: Any, metric: str = metric, base: Callable[[Any], bool] = base_total) -> bool:
                return r.name == metric and base(r)

            def good(r: Any, limit_s: float = limit_s) -> bool:
                return r.value <= limit_s

        else:
            good = compile_predicate(sli.good)
        self.total = total
        self.good = good
        self.pending: dict[int, list[int]] = {}
        self.time_sliced = sli.time_sliced
        self.slice_target = (sli.timeslice_target or 100.0) / 100.0
        self.min_events = sli.min_events_per_minute or 0

    def closed(self, good: int, total: int, had_data: bool) -> tuple[int, int]:
        """Event counts of a closed bucket, as slices for time-sliced SLIs."""
        if not self.time_sliced:
            return good, total
        if not had_data:
            return 0, 0
        if self.spec.sli.kind == "throughput":
            return (1 if total >= self.min_events else 0), 1
        ok = timeslice_is_good(good, total, self.slice_target)
        if ok is None:
            return 0, 0
        return (1 if ok else 0), 1


def _service_of(r: Any) -> str:
    if type(r) is MetricSample:
        return r.labels.get("service", "")
    return getattr(r, "service", "")


class SliWindows:
    """The running logic of the SLI windows stage (see the module doc).

    Call it with the upstream batches; ``snapshot()``/``restore()`` carry
    the open buckets and the watermark across restarts.
    """

    def __init__(
        self,
        slos: SLOSet,
        *,
        resolution_ns: int = MINUTE_NS,
        allowed_lateness_ns: int = 0,
        outputs: Outputs | None = None,
    ) -> None:
        if resolution_ns <= 0:
            raise ValueError("resolution must be positive")
        self.slos = slos
        self.resolution_ns = resolution_ns
        self.allowed_lateness_ns = allowed_lateness_ns
        self.outputs = outputs if outputs is not None else Outputs("sli_windows")
        self.counters = [SliCounter(s) for s in slos.slos]
        self._log_keys: dict[str, tuple[SliCounter, ...]] = {}
        self._metric_keys: dict[str, tuple[SliCounter, ...]] = {}
        for c in self.counters:
            target = self._metric_keys if c.spec.sli.on_metrics else self._log_keys
            target[c.service] = (*target.get(c.service, ()), c)
        self._services = {c.service for c in self.counters}
        self.watermark_ns: int | None = None
        self.max_ts_ns: int | None = None
        self.next_close: int | None = None
        """Index (ts // resolution) of the oldest open bucket."""
        self._seen: dict[int, set[str]] = {}
        """Open bucket index -> services that sent at least one record in it."""
        self.late_records = 0
        self.rollups_out = 0

    # -- the hot path ---------------------------------------------------------

    def process(self, batch: Sequence[Any]) -> list[SliRollup]:
        """Count one batch; return the rollups of the buckets it closed."""
        out: list[SliRollup] = []
        late: list[Any] = []
        res = self.resolution_ns
        lateness = self.allowed_lateness_ns
        log_keys = self._log_keys
        metric_keys = self._metric_keys
        seen = self._seen
        if self.max_ts_ns is None:
            if not batch:
                return out
            # Counting starts with the bucket of the first record: earlier
            # records are late even within the allowed lateness.
            first = batch[0].ts_ns
            self.max_ts_ns = first
            self.next_close = first // res
            self.watermark_ns = max(first - lateness, self.next_close * res)
        max_ts = self.max_ts_ns
        wm = self.watermark_ns
        assert wm is not None and self.next_close is not None
        close_at = (self.next_close + 1) * res
        for r in batch:
            ts = r.ts_ns
            if type(r) is LogRecord:
                keys = log_keys.get(r.service)
                svc = r.service
            elif type(r) is MetricSample:
                svc = r.labels.get("service", "")
                keys = metric_keys.get(svc)
            else:
                continue
            if ts > max_ts:
                max_ts = ts
                if ts - lateness > wm:
                    wm = ts - lateness
                if wm >= close_at:
                    self.max_ts_ns, self.watermark_ns = max_ts, wm
                    self._close(wm // res, out)
                    close_at = (self.next_close + 1) * res
            elif ts < wm:
                if keys is not None or svc in self._services:
                    late.append(r)
                continue
            if keys is None:
                if svc in self._services:
                    m = ts // res
                    s = seen.get(m)
                    if s is None:
                        seen[m] = {svc}
                    else:
                        s.add(svc)
                continue
            m = ts // res
            s = seen.get(m)
            if s is None:
                seen[m] = {svc}
            else:
                s.add(svc)
            for k in keys:
                if k.total(r):
                    cell = k.pending.get(m)
                    if cell is None:
                        cell = k.pending[m] = [0, 0]
                    cell[1] += 1
                    if k.good(r):
                        cell[0] += 1
        self.max_ts_ns, self.watermark_ns = max_ts, wm
        if late:
            self.late_records += len(late)
            self.outputs.emit("late", late)
        if out:
            self.outputs.emit("rollups", out)
        return out

    def _close(self, end: int, out: list[SliRollup]) -> None:
        """Close every bucket with index < ``end``."""
        res = self.resolution_ns
        nc = self.next_close
        assert nc is not None
        seen = self._seen
        counters = self.counters
        append = out.append
        before = len(out)
        while nc < end:
            first_data = min(seen) if seen else end
            if first_data > nc:
                stop = min(first_data, end)
                span = (stop - nc) * res
                for k in counters:
                    append(
                        SliRollup(
                            slo=k.slo, service=k.service, bucket_ts_ns=nc * res,
                            resolution_ns=span, good=0, total=0, no_data_ns=span,
                        )
                    )
                nc = stop
                continue
            services = seen.pop(nc)
            for k in counters:
                cell = k.pending.pop(nc, None)
                had = k.service in services
                g, t = k.closed(cell[0], cell[1], had) if cell else k.closed(0, 0, had)
                append(
                    SliRollup(
                        slo=k.slo, service=k.service, bucket_ts_ns=nc * res,
                        resolution_ns=res, good=g, total=t, no_data_ns=0 if had else res,
                    )
                )
            nc += 1
        self.next_close = nc
        self.rollups_out += len(out) - before

    def flush(self) -> list[SliRollup]:
        """End of input: close every bucket up to the one holding the
        latest record (the end of input is the final watermark)."""
        out: list[SliRollup] = []
        if self.max_ts_ns is not None:
            end = self.max_ts_ns // self.resolution_ns + 1
            self._close(end, out)
            self.watermark_ns = end * self.resolution_ns
            if out:
                self.outputs.emit("rollups", out)
        return out

    async def __call__(
        self, batches: AsyncIterator[Sequence[Any]], /
    ) -> AsyncIterator[list[SliRollup]]:
        async with aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                yield self.process(batch)
        yield self.flush()

    # -- checkpoints ----------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "watermark_ns": self.watermark_ns,
            "max_ts_ns": self.max_ts_ns,
            "next_close": self.next_close,
            "seen": [[m, sorted(s)] for m, s in sorted(self._seen.items())],
            "pending": {
                k.state_key: [[m, c[0], c[1]] for m, c in sorted(k.pending.items())]
                for k in self.counters
                if k.pending
            },
            "late_records": self.late_records,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.watermark_ns = state["watermark_ns"]
        self.max_ts_ns = state["max_ts_ns"]
        self.next_close = state["next_close"]
        self._seen = {int(m): set(s) for m, s in state["seen"]}
        pending = state.get("pending", {})
        for k in self.counters:
            k.pending = {int(m): [g, t] for m, g, t in pending.get(k.state_key, [])}
        self.late_records = int(state.get("late_records", 0))


async def sli_windows(
    batches: AsyncIterator[Sequence[Any]],
    /,
    *,
    slos: SLOSet,
    resolution_ns: int = MINUTE_NS,
    allowed_lateness_ns: int = 0,
    outputs: Outputs | None = None,
) -> AsyncIterator[list[SliRollup]]:
    """Count good/total events per (SLO, service) in event-time buckets and
    yield the rollups of closed buckets (see :class:`SliWindows`)."""
    logic = SliWindows(
        slos, resolution_ns=resolution_ns, allowed_lateness_ns=allowed_lateness_ns, outputs=outputs
    )
    async with aclosing(logic(batches)) as gen:
        async for out in gen:
            yield out

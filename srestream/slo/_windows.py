"""The SLI windows stage: records in, closed minute buckets (rollups) out.

For every (SLO, service) it counts good and total events in event-time
buckets of ``resolution_ns`` (one minute by default): log records, metric
samples (``source: metrics``) or trace spans at their end time
(``source: spans``).  A bucket stays open
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

Coverage and durability SLIs count their good (or bad) records apart from
their total ones (a ``job_completed`` log is not the ``job_started`` log):
each bucket counts both populations, and when it closes its good is kept
at most its total (a job started in one minute and completed in the next
is a miss in the first, and its completion is not credited to the second)
while bad events beyond the total raise it (every loss counts).

Memory: the open buckets only (those between the watermark and ``max_ts``)
- a few per key, whatever the input size.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import Any

from .._component import Outputs
from ._alerting import MINUTE_NS
from ._budget import timeslice_is_good
from ._predicates import predicate_env, predicate_source
from ._records import SliRollup
from ._scan import compile_scan, count_lines, empty_cache
from ._series_counter import compile_selected_counter, selected_metric_names
from ._spec import TWO_POPULATION_KINDS, SLOSet, SLOSpec

__all__ = ["ServiceBuckets", "SliCounter", "SliWindows", "sli_windows"]

_FIELD_REF = re.compile(r"\br\.([a-z_]+)")
"""A record field in generated predicate code (``r.status``)."""


class SliCounter:
    """The counting rule of one (SLO, service): which records count as
    valid and good, and how a closed bucket turns into counts."""

    __slots__ = ("apart", "bad_cell", "keeps_bad", "min_events", "selects", "service",
                 "slice_target", "slo", "spec", "state_key", "time_sliced")

    def __init__(self, spec: SLOSpec) -> None:
        self.spec = spec
        self.slo = spec.name
        self.service = spec.service
        self.state_key = f"{spec.name}\x1f{spec.service}"
        sli = spec.sli
        self.time_sliced = sli.time_sliced
        self.slice_target = (sli.timeslice_target or 100.0) / 100.0
        self.min_events = sli.min_events_per_minute or 0
        self.selects = sli.selects_series
        """Total and good/bad select their own series (``series: selected``)."""
        self.apart = sli.counts_apart
        """Good (or bad) events are records or series of their own, counted
        whatever total says (``series: selected``; coverage, durability)."""
        self.bad_cell = self.apart and sli.bad is not None
        """The good cell counts bad events (their own records) until the bucket closes."""
        self.keeps_bad = sli.kind in TWO_POPULATION_KINDS
        """More bad events than total in a bucket raise its total (a loss is never dropped)."""

    def sources(self, env: dict[str, Any], j: int) -> tuple[str, str]:
        """Python expressions (over record ``r``) for "counts as valid" and
        "counts as good", constants added to ``env``."""
        sli = self.spec.sli
        if sli.on_spans:
            return self._span_sources(env, j)
        total = predicate_source(sli.total, env, f"t{j}")
        if sli.kind == "latency":
            assert sli.threshold is not None
            env[f"limit{j}"] = sli.threshold.ns
            good = f"r.latency_ns <= limit{j} and ({predicate_source(sli.good, env, f'g{j}')})"
            return f"r.latency_ns is not None and ({total})", good
        if sli.kind == "freshness":
            assert sli.threshold is not None
            env[f"metric{j}"] = sli.metric
            env[f"limit{j}"] = sli.threshold.seconds
            return f"r.name == metric{j} and ({total})", f"r.value <= limit{j}"
        if sli.kind == "throughput":
            return total, "True"
        if sli.bad is not None:
            bad = predicate_source(sli.bad, env, f"b{j}")
            return total, (bad if self.apart else f"not ({bad})")
        return total, predicate_source(sli.good, env, f"g{j}")

    def _span_sources(self, env: dict[str, Any], j: int) -> tuple[str, str]:
        """:meth:`sources` of a span SLI (``r`` a Span): availability is
        good when the span did not fail (or as its ``good`` says), latency
        when ``end - start`` is at most the threshold."""
        sli = self.spec.sli
        total = predicate_source(sli.total, env, f"t{j}", spans=True)
        if sli.kind == "latency":
            assert sli.threshold is not None
            env[f"limit{j}"] = sli.threshold.ns
            extra = predicate_source(sli.good, env, f"g{j}", spans=True)
            return total, f"r.end_ts_ns - r.start_ts_ns <= limit{j} and ({extra})"
        if sli.kind == "availability" and sli.good is None:
            return total, "not r.error"
        return total, predicate_source(sli.good, env, f"g{j}", spans=True)

    def closed(self, good: int, total: int, had_data: bool) -> tuple[int, int]:
        """Event counts of a closed bucket, as slices for time-sliced SLIs."""
        if self.apart:
            # Good (or bad) came from records of their own: keep good in [0, total].
            if not self.bad_cell:
                good = min(good, total)
            elif good > total and self.keeps_bad:
                good, total = 0, good  # every loss counts
            else:
                good = max(total - good, 0)
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


class ServiceBuckets:
    """The open buckets of one service: bucket index -> one list of
    ``[good, total]`` pairs, one pair per SLO of the service.  A bucket
    exists as soon as any record of the service arrives in it, so its
    presence is the service's data coverage.

    ``count_metric`` is a generated function (one call per metric sample
    for all the service's SLOs, predicates inlined); log records are
    counted inline by the stage's generated scan (see ``_scan``), or by
    ``compile_counter(on_metrics=False)`` for services past its shapes.
    ``series: selected`` SLIs are counted apart, by ``count_selected``
    (see ``_series_counter``), which the scan offers samples by metric name.
    Spans go to ``count_span`` (``source: spans`` SLIs; None when the
    service has none), one call per span of the service.
    """

    __slots__ = ("count_metric", "count_selected", "count_span", "counter_values", "counters",
                 "pending", "selected_names", "selected_values", "service")

    def __init__(self, service: str, counters: Sequence[SliCounter]) -> None:
        self.service = service
        self.counters = list(counters)
        self.pending: dict[int, list[int]] = {}
        self.counter_values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        """Last value of each counter series (``source: metrics`` SLIs)."""
        self.count_metric = self.compile_counter(on_metrics=True)
        if any(k.spec.sli.counts_increments and not k.selects for k in self.counters):
            self.count_metric = self._with_increments(self.count_metric)
        self.selected_values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        """Last value of each series a ``series: selected`` SLI reads."""
        selected = [(j, k) for j, k in enumerate(self.counters) if k.selects]
        self.count_selected = (
            compile_selected_counter(selected, len(self.counters), self.pending, self.selected_values)
            if selected else None
        )
        self.selected_names = selected_metric_names([k for _, k in selected])
        self.count_span = (self.compile_counter(on_spans=True)
                           if any(k.spec.sli.on_spans for k in self.counters) else None)

    @property
    def reads_service_label(self) -> bool:
        """Whether samples labelled with this service count (any SLI of the
        service but ``series: selected`` ones)."""
        return not all(k.selects for k in self.counters)

    def _with_increments(self, count: Callable[..., None]) -> Callable[[Any, int], None]:
        last = self.counter_values

        def count_increase(r: Any, m: int) -> None:
            key = (r.name, tuple(sorted(r.labels.items())))
            prev = last.get(key)
            last[key] = r.value
            if prev is None:
                d = 0  # the first sample of a series is its baseline
            else:
                d = round(r.value - prev) if r.value >= prev else round(r.value)  # a reset
            count(r, m, d)

        return count_increase

    def compile_counter(self, *, on_metrics: bool = False, on_spans: bool = False) -> Callable[..., None]:
        """One function ``count(r, m, d=1)`` counting a record (log record,
        metric sample, or span with ``on_spans``) into bucket ``m`` for
        every SLI of the service that reads that kind of record."""
        env = predicate_env()
        env["PEND"] = self.pending
        width = 2 * len(self.counters)
        lines = [
            "def count(r, m, d=1):",
            "    c = PEND.get(m)",
            "    if c is None:",
            f"        c = PEND[m] = [0] * {width}",
        ]
        body: list[str] = []
        for j, k in enumerate(self.counters):
            sli = k.spec.sli
            if sli.on_spans != on_spans or (sli.on_metrics != on_metrics and not on_spans) or k.selects:
                continue
            total, good = k.sources(env, j)
            step = "d" if k.spec.sli.counts_increments else "1"
            body += ["    " + ln for ln in count_lines(total, good, j, step, k.apart)]
        # Read each record field once into a local (attribute loads are the
        # cost here), then the predicates use the locals.
        fields = sorted(set(_FIELD_REF.findall("\n".join(body))))
        lines += [f"    f_{f} = r.{f}" for f in fields]
        lines += [_FIELD_REF.sub(lambda mt: f"f_{mt.group(1)}", ln) for ln in body]
        name = f"<sli span counter {self.service}>" if on_spans else f"<sli counter {self.service}>"
        exec(compile("\n".join(lines), name, "exec"), env)  # noqa: S102
        fn: Callable[[Any, int], None] = env["count"]
        return fn


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
        by_service: dict[str, list[SliCounter]] = {}
        for spec in slos.slos:
            by_service.setdefault(spec.service, []).append(SliCounter(spec))
        self.services = {svc: ServiceBuckets(svc, cs) for svc, cs in by_service.items()}
        self._scan = compile_scan(self.services, resolution_ns, allowed_lateness_ns)
        self._cache = empty_cache()
        """The scan's cells of the current bucket (see ``_scan``)."""
        self.watermark_ns: int | None = None
        self.max_ts_ns: int | None = None
        self.next_close: int | None = None
        """Index (ts // resolution) of the oldest open bucket."""
        self.late_records = 0
        self.rollups_out = 0

    @property
    def counters(self) -> list[SliCounter]:
        return [k for b in self.services.values() for k in b.counters]

    # -- the hot path ---------------------------------------------------------

    def process(self, batch: Sequence[Any]) -> list[SliRollup]:
        """Count one batch; return the rollups of the buckets it closed.

        The generated scan (see ``_scan``) walks the records in order: it
        moves the watermark, sets the late records aside, counts the others
        and notes where the watermark passed a bucket end; the buckets then
        close at those points, in order.  Counting a whole batch before
        closing changes nothing: a record that is not late is at or after
        the watermark, so never in a bucket that closed before it; and
        closing at the same points as a record-by-record pass keeps the gap
        rollups (and so the output) identical at any batch size.
        """
        out: list[SliRollup] = []
        if not batch:
            return out
        res = self.resolution_ns
        if self.max_ts_ns is None:
            # Counting starts with the bucket of the first record: earlier
            # records are late even within the allowed lateness.
            first = batch[0].ts_ns
            self.max_ts_ns = first
            self.next_close = first // res
            self.watermark_ns = max(first - self.allowed_lateness_ns, self.next_close * res)
        wm = self.watermark_ns
        assert wm is not None and self.next_close is not None
        ends: list[int] = []
        late: list[Any] = []
        self.max_ts_ns, self.watermark_ns = self._scan(
            batch, self.max_ts_ns, wm, (self.next_close + 1) * res, ends, late, self._cache
        )
        for e in ends:
            self._close(e, out)
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
        services = list(self.services.values())
        append = out.append
        before = len(out)
        while nc < end:
            first_data = min((min(b.pending) for b in services if b.pending), default=end)
            if first_data > nc:
                stop = min(first_data, end)
                span = (stop - nc) * res
                for b in services:
                    for k in b.counters:
                        append(
                            SliRollup(
                                slo=k.slo, service=k.service, bucket_ts_ns=nc * res,
                                resolution_ns=span, good=0, total=0, no_data_ns=span,
                            )
                        )
                nc = stop
                continue
            ts = nc * res
            for b in services:
                cells = b.pending.pop(nc, None)
                had = cells is not None
                nodata = 0 if had else res
                for j, k in enumerate(b.counters):
                    g, t = k.closed(cells[2 * j], cells[2 * j + 1], True) if cells else k.closed(0, 0, False)
                    append(
                        SliRollup(
                            slo=k.slo, service=k.service, bucket_ts_ns=ts,
                            resolution_ns=res, good=g, total=t, no_data_ns=nodata,
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
    ) -> AsyncGenerator[list[SliRollup], None]:
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
            "pending": {
                svc: {
                    "slos": [k.slo for k in b.counters],
                    "buckets": [[m, *cells] for m, cells in sorted(b.pending.items())],
                }
                for svc, b in self.services.items()
                if b.pending
            },
            "late_records": self.late_records,
            "counters": {
                svc: [[name, [list(kv) for kv in labels], v]
                      for (name, labels), v in sorted(b.counter_values.items())]
                for svc, b in self.services.items()
                if b.counter_values
            },
            "selected_counters": {
                svc: [[name, [list(kv) for kv in labels], v]
                      for (name, labels), v in sorted(b.selected_values.items())]
                for svc, b in self.services.items()
                if b.selected_values
            },
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.watermark_ns = state["watermark_ns"]
        self.max_ts_ns = state["max_ts_ns"]
        self.next_close = state["next_close"]
        self._cache = empty_cache()  # its cells are about to be replaced
        pending = state.get("pending", {})
        for svc, b in self.services.items():
            b.pending.clear()  # in place: the generated counters hold this dict
            saved = pending.get(svc)
            if not saved:
                continue
            # Map saved SLO columns onto the current ones (an SLO file may change).
            cols = {name: i for i, name in enumerate(saved["slos"])}
            for row in saved["buckets"]:
                m, cells = int(row[0]), row[1:]
                now = [0] * (2 * len(b.counters))
                for j, k in enumerate(b.counters):
                    i = cols.get(k.slo)
                    if i is not None:
                        now[2 * j], now[2 * j + 1] = cells[2 * i], cells[2 * i + 1]
                b.pending[m] = now
        self.late_records = int(state.get("late_records", 0))
        for key, attr in (("counters", "counter_values"), ("selected_counters", "selected_values")):
            saved_values = state.get(key, {})
            for svc, b in self.services.items():
                values = getattr(b, attr)
                values.clear()  # in place: the generated counters hold this dict
                for name, labels, v in saved_values.get(svc, []):
                    values[(name, tuple((str(k), str(x)) for k, x in labels))] = float(v)


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

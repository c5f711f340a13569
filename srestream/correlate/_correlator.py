"""The trace correlator: spans and logs grouped by trace in event time.

Records are kept per trace in a bounded buffer.  The watermark is the
largest event time seen (a span's event time is its end); a trace closes
once the watermark has passed its last record by ``idle_timeout_ns``, or
early (``truncated``) when the buffer is full or the trace has too many
spans.  On closing, the trace's call tree gives its root-cause span, its
cross-service calls feed the dependency graph, and a :class:`TraceSummary`
plus one :class:`Link` per log record are emitted.

Records without a trace id still correlate, and each link says how:

* ``request_id``: a log with only a request/correlation id joins the trace
  that carries the same id (a span attribute or a log with both), or a
  request group of its own that a later record may merge into a trace;
* ``time_window``: a log with no id at all (at or above
  ``time_window_min_level``) is tied to the narrowest span of the same
  service whose interval holds its time (within ``time_window_ns``), once
  the watermark is past it.

Every record is processed in order and everything it triggers is emitted
right before it, so the output is the same whatever the batch size.
Statistics per service and the dependency-graph window are emitted when a
bucket closes (watermark past its end plus the idle timeout, so all traces
ending in it have closed).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import msgspec

from .._component import Outputs
from .._records import Level, LogRecord, Span
from ._buckets import ERROR_LOGS, ERRORS, LAT_SUM, LOGS, ROOT_CAUSES, SPANS, ServiceBuckets
from ._graph import add_call, new_edge_stats
from ._records import CallNode, CallTreeRecord, Link, LinkMethod, TraceSummary
from ._tree import CallTree

__all__ = ["CORRELATIONS", "REQUEST_ID_ATTRS", "TraceCorrelator", "correlate_traces"]

CORRELATIONS = "correlations"
"""Side output with the correlation records alone (without the forwarded
input): what a ``root_cause`` stage needs from the correlator."""

REQUEST_ID_ATTRS = ("request_id", "http.request_id", "request.id", "correlation_id")
"""Span attributes that carry a request/correlation id."""

_REQ = "\x00req:"  # key prefix of request groups (cannot collide with a trace id)
_SCAN_LIMIT = 512  # spans of one service looked at per time-window link
_NEVER_BEFORE = -(1 << 63)  # "something may be due at any time" (before the first record)
_BY_REQUEST: str = LinkMethod.REQUEST_ID


class _Trace:
    __slots__ = (
        "deadline",
        "first_ts",
        "key",
        "last_ts",
        "logs",
        "request_ids",
        "serial",
        "spans",
        "trace_id",
        "truncated",
    )

    def __init__(self, key: str, trace_id: str, serial: int, ts: int, deadline: int) -> None:
        self.key = key
        self.trace_id = trace_id
        self.serial = serial
        self.request_ids: list[str] = []
        self.spans: list[Span] = []
        self.logs: list[tuple[LogRecord, str]] = []
        self.first_ts = ts
        self.last_ts = ts
        self.deadline = deadline
        self.truncated = False


class _TraceState(msgspec.Struct, kw_only=True):
    key: str
    trace_id: str
    serial: int
    request_ids: list[str]
    spans: list[Span]
    logs: list[tuple[LogRecord, str]]
    first_ts: int
    last_ts: int
    deadline: int
    truncated: bool


class _State(msgspec.Struct, kw_only=True):
    watermark: int | None
    serial: int
    traces: list[_TraceState]
    request_map: dict[str, str]
    orphans: list[tuple[int, LogRecord]]
    index: dict[str, list[Span]]
    stats: list[Any]
    counters: dict[str, int]


class TraceCorrelator:
    """The running logic of the ``trace_correlator`` stage (see module doc).

    Feed it with :meth:`process`; :meth:`finish` closes everything still
    open at the end of a replay.  Durations are in ns.
    """

    def __init__(
        self,
        *,
        idle_timeout_ns: int = 30_000_000_000,
        max_traces: int = 100_000,
        max_spans_per_trace: int = 10_000,
        bucket_ns: int = 60_000_000_000,
        graph_window_ns: int = 300_000_000_000,
        time_window_ns: int = 2_000_000_000,
        time_window_min_level: int = Level.WARN,
        max_indexed_spans_per_service: int = 10_000,
        forward_records: bool = True,
        emit_links: bool = True,
        emit_call_trees: bool = False,
        outputs: Outputs | None = None,
    ) -> None:
        if bucket_ns <= 0 or idle_timeout_ns <= 0:
            raise ValueError("bucket and idle timeout must be positive")
        self.idle_timeout_ns = idle_timeout_ns
        self.max_traces = max(1, max_traces)
        self.max_spans_per_trace = max(1, max_spans_per_trace)
        self.bucket_ns = bucket_ns
        self.time_window_ns = time_window_ns
        self.time_window_min_level = time_window_min_level
        self.max_indexed = max(1, max_indexed_spans_per_service)
        self.forward_records = forward_records
        self.emit_links = emit_links
        self.emit_call_trees = emit_call_trees
        self.outputs = outputs if outputs is not None else Outputs("trace_correlator")
        self.graph_window_ns = graph_window_ns
        self._reset()

    def _reset(self) -> None:
        self.watermark: int | None = None
        self._out: list[Any] = []  # the output list of the batch being processed
        self._derived: list[Any] = self._out  # its correlation records (side output)
        self._bucket_delay = self.bucket_ns + self.idle_timeout_ns
        self.stats = ServiceBuckets(bucket_ns=self.bucket_ns, graph_window_ns=self.graph_window_ns)
        self.graph = self.stats.graph
        self._serial = 0
        self._open: dict[str, _Trace] = {}
        self._heap: list[tuple[int, str, int]] = []
        self._req: dict[str, str] = {}
        self._orphans: deque[tuple[int, LogRecord]] = deque()
        self._due = _NEVER_BEFORE
        """No event time below this has anything to close (a trace, a
        pending log, a bucket): records below it only move the watermark."""
        self._index: dict[str, deque[Span]] = {}  # recent spans per service
        self.counters: dict[str, int] = dict.fromkeys(
            ("traces_closed", "traces_truncated", "late", "unlinked_logs",
             "links_trace", "links_request_id", "links_time_window"), 0,
        )  # fmt: skip

    # ------------------------------------------------------------ feeding
    def process(self, batch: Sequence[Any]) -> list[Any]:
        """Take one batch; return what it produced (the forwarded records
        interleaved with the correlation records they triggered)."""
        out: list[Any] = []
        forward = self.forward_records
        derived: list[Any] = [] if forward else out
        self._out = out
        self._derived = derived
        w = -1 if self.watermark is None else self.watermark
        advance, add_span, add_log = self._advance, self._add_span, self._add_log
        for rec in batch:
            t = type(rec)
            if t is Span:
                ts = rec.end_ts_ns
                if ts > w:
                    w = ts
                    if ts < self._due:
                        self.watermark = ts  # nothing due yet: no call
                    else:
                        mark = len(out)
                        advance(ts, out)
                        if forward and len(out) > mark:
                            derived.extend(out[mark:])
                add_span(rec)
            elif t is LogRecord:
                ts = rec.ts_ns
                if ts > w:
                    w = ts
                    if ts < self._due:
                        self.watermark = ts
                    else:
                        mark = len(out)
                        advance(ts, out)
                        if forward and len(out) > mark:
                            derived.extend(out[mark:])
                add_log(rec)
            if forward:
                out.append(rec)
        if derived:
            self.outputs.emit(CORRELATIONS, derived)
        return out

    def _close_early(self, tr: _Trace) -> None:
        """Close a trace while a record is being added (buffer full, span
        cap): its records go out before that record, and to the side output."""
        out = self._out
        mark = len(out)
        self._close(tr, out)
        if self._derived is not out:
            self._derived.extend(out[mark:])

    def finish(self) -> list[Any]:
        """End of input: close every trace, resolve every pending log, close
        every bucket."""
        out: list[Any] = []
        self._out = self._derived = out
        if self.watermark is None:
            return out
        far = self.watermark + self.idle_timeout_ns + self.time_window_ns + 2 * self.bucket_ns
        self._advance(far, out)
        if out:
            self.outputs.emit(CORRELATIONS, out)
        return out

    def _advance(self, ts: int, out: list[Any]) -> None:
        """Move the watermark to ``ts`` (greater than the current one) and
        close what is due."""
        self.watermark = ts
        heap = self._heap
        if heap and heap[0][0] <= ts:
            self._close_due(ts, out)
        if self._orphans and self._orphans[0][0] <= ts:
            self._resolve_orphans(ts, out)
        stats = self.stats
        closed = stats.closed_upto
        if closed is None:
            stats.begin(ts)
        elif closed + self._bucket_delay <= ts:
            stats.close(ts - self.idle_timeout_ns, out)
        self._set_due()

    def _set_due(self) -> None:
        """The least event time at which :meth:`_advance` has work: the first
        trace deadline, the first pending log, the next bucket to close.
        (Stale heap entries only make it earlier than needed.)"""
        heap, orphans, closed = self._heap, self._orphans, self.stats.closed_upto
        due = _NEVER_BEFORE if closed is None else closed + self._bucket_delay
        if heap and heap[0][0] < due:
            due = heap[0][0]
        if orphans and orphans[0][0] < due:
            due = orphans[0][0]
        self._due = due

    def _late(self, rec: Any, ts: int) -> bool:
        w = self.watermark
        if w is not None and ts + self.idle_timeout_ns <= w:
            self.counters["late"] += 1
            self.outputs.emit_one("late", rec)
            return True
        return False

    def _open_trace(self, key: str, trace_id: str, ts: int) -> _Trace:
        if len(self._open) >= self.max_traces:
            self._evict()
        self._serial += 1
        tr = _Trace(key, trace_id, self._serial, ts, ts + self.idle_timeout_ns)
        self._open[key] = tr
        heapq.heappush(self._heap, (tr.deadline, key, tr.serial))
        self._due = min(self._due, tr.deadline)
        return tr

    def _touch(self, tr: _Trace, ts: int) -> None:
        if ts > tr.last_ts:
            tr.last_ts = ts
            tr.deadline = ts + self.idle_timeout_ns
        elif ts < tr.first_ts:
            tr.first_ts = ts

    def _add_span(self, span: Span) -> None:
        ts = span.end_ts_ns
        key = span.trace_id
        tr = self._open.get(key)
        if tr is None:
            if self._late(span, ts):
                return
            tr = self._open_trace(key, key, ts)
        elif ts > tr.last_ts:
            tr.last_ts = ts
            tr.deadline = ts + self.idle_timeout_ns
        if span.start_ts_ns < tr.first_ts:  # noqa: PLR1730 (hot path: no call)
            tr.first_ts = span.start_ts_ns
        tr.spans.append(span)
        if span.attrs and not tr.request_ids:
            # One request id per trace is the rule; the first span naming it binds it.
            attrs = span.attrs
            for name in REQUEST_ID_ATTRS:
                rid = attrs.get(name)
                if rid:
                    self._bind_request(str(rid), tr)
                    break
        if self.time_window_ns > 0 and span.service:
            idx = self._index.get(span.service)
            if idx is None:
                idx = self._index[span.service] = deque(maxlen=self.max_indexed)
            idx.append(span)
        if len(tr.spans) >= self.max_spans_per_trace:
            tr.truncated = True
            self._close_early(tr)

    def _add_log(self, log: LogRecord) -> None:
        ts = log.ts_ns
        if log.trace_id:
            key = log.trace_id
            tr = self._open.get(key)
            if tr is None:
                if self._late(log, ts):
                    return
                tr = self._open_trace(key, key, ts)
            else:
                self._touch(tr, ts)
            tr.logs.append((log, LinkMethod.TRACE))
            if log.request_id and log.request_id not in tr.request_ids:
                self._bind_request(log.request_id, tr)
        elif log.request_id:
            rid = log.request_id
            key = self._req.get(rid, "")
            tr = self._open.get(key) if key else None
            if tr is None:
                if self._late(log, ts):
                    return
                tr = self._open_trace(_REQ + rid, "", ts)
                tr.request_ids.append(rid)
                self._req[rid] = tr.key
            else:
                self._touch(tr, ts)
            tr.logs.append((log, LinkMethod.REQUEST_ID))
        else:
            if self._late(log, ts):
                return
            if self.time_window_ns > 0 and log.service and log.level >= self.time_window_min_level:
                self._orphans.append((ts + self.time_window_ns, log))
                self._due = min(self._due, ts + self.time_window_ns)
            else:
                self.counters["unlinked_logs"] += 1
        st = self.stats.service(ts, log.service)
        st[LOGS] += 1
        if log.level >= Level.ERROR or (log.status is not None and log.status >= 500):
            st[ERROR_LOGS] += 1

    def _bind_request(self, rid: str, tr: _Trace) -> None:
        """Tie request id ``rid`` to trace ``tr``; a request group already
        waiting under that id is merged into the trace."""
        old_key = self._req.get(rid)
        if old_key == tr.key:
            return
        if old_key is not None and old_key.startswith(_REQ):
            group = self._open.pop(old_key, None)
            if group is not None:
                tr.logs.extend(group.logs)
                for other in group.request_ids:
                    if other != rid and self._req.get(other) == old_key:
                        self._req[other] = tr.key
                        tr.request_ids.append(other)
                self._touch(tr, group.last_ts)
                tr.first_ts = min(tr.first_ts, group.first_ts)
        self._req[rid] = tr.key
        tr.request_ids.append(rid)

    # ------------------------------------------------------------ closing

    def _close_due(self, w: int, out: list[Any]) -> None:
        heap = self._heap
        opened = self._open
        while heap and heap[0][0] <= w:
            deadline, key, serial = heapq.heappop(heap)
            tr = opened.get(key)
            if tr is None or tr.serial != serial:
                continue
            if tr.deadline != deadline:
                heapq.heappush(heap, (tr.deadline, key, serial))
                continue
            self._close(tr, out)

    def _evict(self) -> None:
        """The buffer is full: close the trace due first, marked truncated."""
        heap = self._heap
        while heap:
            deadline, key, serial = heapq.heappop(heap)
            tr = self._open.get(key)
            if tr is None or tr.serial != serial:
                continue
            if tr.deadline != deadline:
                heapq.heappush(heap, (tr.deadline, key, serial))
                continue
            tr.truncated = True
            self._close_early(tr)
            return

    def _close(self, tr: _Trace, out: list[Any]) -> None:
        del self._open[tr.key]
        for rid in tr.request_ids:
            if self._req.get(rid) == tr.key:
                del self._req[rid]
        self.counters["traces_closed"] += 1
        if tr.truncated:
            self.counters["traces_truncated"] += 1
        services, edges = self.stats.bucket(tr.last_ts)
        tree = CallTree.build(tr.spans) if tr.spans else None
        error_services: set[str] = set()
        rc_service = rc_span = rc_name = rc_method = ""
        path: list[str] = []
        root_service = root_name = ""
        missing = 0
        if tree is not None:
            for s in tree.by_id.values():
                st = services.get(s.service)
                if st is None:
                    st = services[s.service] = [0, 0, 0, 0, 0, 0]
                st[SPANS] += 1
                st[LAT_SUM] += s.end_ts_ns - s.start_ts_ns
                if s.error:
                    st[ERRORS] += 1
                    error_services.add(s.service)
            for parent, child in tree.edges():
                k = (parent.service, child.service)
                e = edges.get(k)
                if e is None:
                    e = edges[k] = new_edge_stats()
                add_call(e, child.end_ts_ns - child.start_ts_ns, child.error)
            entry = tree.entry()
            if entry is not None:
                root_service, root_name = entry.service, entry.name
            missing = tree.missing_spans
            cause = tree.root_cause() if error_services else None
            if cause is not None:
                rc_service, rc_span, rc_name, rc_method = (
                    cause.service, cause.span_id, cause.name, "span",
                )  # fmt: skip
                path = tree.path_to(cause)
        first_error_log: LogRecord | None = None
        for log, _ in tr.logs:
            if log.level >= Level.ERROR or (log.status is not None and log.status >= 500):
                error_services.add(log.service)
                if first_error_log is None or log.ts_ns < first_error_log.ts_ns:
                    first_error_log = log
        if not rc_method and first_error_log is not None:
            rc_service, rc_method = first_error_log.service, "log"
            rc_span = first_error_log.span_id
            path = [rc_service]
        if rc_method:
            st = services.get(rc_service)
            if st is None:
                st = services[rc_service] = [0, 0, 0, 0, 0, 0]
            st[ROOT_CAUSES] += 1
        rid = tr.request_ids[0] if tr.request_ids else ""
        if self.emit_call_trees and tree is not None:
            out.append(
                CallTreeRecord(
                    ts_ns=tr.last_ts, trace_id=tr.trace_id,
                    nodes=[
                        CallNode(
                            span_id=sp.span_id, parent_span_id=sp.parent_span_id,
                            service=sp.service, name=sp.name, depth=depth,
                            start_ts_ns=sp.start_ts_ns, end_ts_ns=sp.end_ts_ns, error=sp.error,
                        )
                        for sp, depth in tree.walk()
                    ],
                )
            )  # fmt: skip
        out.append(
            TraceSummary(
                ts_ns=tr.last_ts,
                start_ts_ns=tr.first_ts,
                trace_id=tr.trace_id,
                request_id=rid,
                duration_ns=tr.last_ts - tr.first_ts,
                root_service=root_service,
                root_name=root_name,
                span_count=len(tree.by_id) if tree is not None else 0,
                log_count=len(tr.logs),
                error=bool(error_services),
                error_services=sorted(error_services),
                root_cause_service=rc_service,
                root_cause_span_id=rc_span,
                root_cause_name=rc_name,
                root_cause_method=rc_method,
                root_cause_path=path,
                missing_spans=missing,
                truncated=tr.truncated,
            )
        )
        if not tr.logs:
            return
        by_request = sum(1 for _, method in tr.logs if method == _BY_REQUEST)
        self.counters["links_request_id"] += by_request
        self.counters["links_trace"] += len(tr.logs) - by_request
        if not self.emit_links:
            return
        trace_id = tr.trace_id
        append = out.append
        for log, method in tr.logs:
            span_id = log.span_id
            if not span_id and tree is not None:
                cover = tree.covering_span(log.service, log.ts_ns)
                span_id = cover.span_id if cover is not None else ""
            append(
                Link(
                    ts_ns=log.ts_ns, method=method, trace_id=trace_id,
                    request_id=log.request_id or rid, span_id=span_id, service=log.service,
                    level=log.level, template_id=log.template_id, source=log.source,
                    position=log.position,
                )
            )  # fmt: skip

    def _resolve_orphans(self, w: int, out: list[Any]) -> None:
        orphans = self._orphans
        tw = self.time_window_ns
        while orphans and orphans[0][0] <= w:
            _, log = orphans.popleft()
            idx = self._index.get(log.service)
            best: tuple[int, int, int, str, str] | None = None
            ts = log.ts_ns
            if idx:
                # Spans that ended this long before a pending log are of no use
                # (the deque's maxlen bounds the index in any case).
                horizon = ts - self.idle_timeout_ns - tw
                while idx and idx[0].end_ts_ns < horizon:
                    idx.popleft()
                is_error = log.level >= Level.ERROR
                for n, sp in enumerate(reversed(idx)):
                    if n >= _SCAN_LIMIT:
                        break
                    start, end = sp.start_ts_ns, sp.end_ts_ns
                    if start - tw <= ts <= end + tw:
                        dist = start - ts if ts < start else (ts - end if ts > end else 0)
                        cand = (
                            dist, 0 if sp.error == is_error else 1, end - start, sp.trace_id,
                            sp.span_id,
                        )  # fmt: skip
                        if best is None or cand < best:
                            best = cand
            if best is None:
                self.counters["unlinked_logs"] += 1
                continue
            self.counters["links_time_window"] += 1
            if self.emit_links:
                out.append(
                    Link(
                        ts_ns=log.ts_ns, method=LinkMethod.TIME_WINDOW, trace_id=best[3],
                        span_id=best[4], service=log.service, level=log.level,
                        template_id=log.template_id, source=log.source, position=log.position,
                    )
                )  # fmt: skip

    # ------------------------------------------------------------ state
    def statistics(self) -> dict[str, int]:
        return {**self.counters, "traces_open": len(self._open), "orphans": len(self._orphans)}

    def snapshot(self) -> Any:
        traces = [
            _TraceState(
                key=t.key, trace_id=t.trace_id, serial=t.serial, request_ids=t.request_ids,
                spans=t.spans, logs=t.logs, first_ts=t.first_ts, last_ts=t.last_ts,
                deadline=t.deadline, truncated=t.truncated,
            )
            for t in sorted(self._open.values(), key=lambda t: t.serial)
        ]  # fmt: skip
        state = _State(
            watermark=self.watermark,
            serial=self._serial,
            traces=traces,
            request_map=dict(self._req),
            orphans=list(self._orphans),
            index={k: list(v) for k, v in self._index.items()},
            stats=self.stats.snapshot(),
            counters=dict(self.counters),
        )
        return msgspec.to_builtins(state)

    def restore(self, state: Any) -> None:
        s = msgspec.convert(state, _State, strict=False)
        self._reset()
        self.watermark = s.watermark
        self._serial = s.serial
        for t in s.traces:
            tr = _Trace(t.key, t.trace_id, t.serial, t.first_ts, t.deadline)
            tr.request_ids = list(t.request_ids)
            tr.spans = list(t.spans)
            tr.logs = [(log, method) for log, method in t.logs]
            tr.last_ts = t.last_ts
            tr.truncated = t.truncated
            self._open[tr.key] = tr
            self._heap.append((tr.deadline, tr.key, tr.serial))
        heapq.heapify(self._heap)
        self._req = dict(s.request_map)
        self._orphans = deque(s.orphans)
        self._index = {k: deque(v, maxlen=self.max_indexed) for k, v in s.index.items()}
        self.stats.restore(s.stats)
        self.counters.update(s.counters)
        self._set_due()


async def correlate_traces(
    batches: AsyncIterator[Sequence[Any]],
    /,
    *,
    correlator: TraceCorrelator | None = None,
    outputs: Outputs | None = None,
) -> AsyncIterator[list[Any]]:
    """The ``trace_correlator`` stage: forwards its input (unless the
    correlator was built with ``forward_records=False``) with trace
    summaries, links, service statistics and dependency edges interleaved;
    at the end of input every open trace and bucket is closed."""
    logic = correlator if correlator is not None else TraceCorrelator(outputs=outputs)
    async with aclosing(batches):  # type: ignore[type-var]
        async for batch in batches:
            yield logic.process(batch)
    yield logic.finish()

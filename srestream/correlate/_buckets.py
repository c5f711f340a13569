"""Per-service statistics and call edges in event-time buckets.

The correlator counts what each service did (spans, errors, root causes,
latency, logs, error logs) and each cross-service call into the bucket of
the record's (or closed trace's) time.  A record older than the buckets
already closed counts in the oldest open one, so nothing is dropped.  When
a bucket closes it becomes one :class:`ServiceStats` per service and joins
the :class:`DependencyGraph` window, whose edges are emitted as
:class:`DependencyEdge` records.
"""

from __future__ import annotations

from typing import Any

from ._graph import DependencyGraph, EdgeStats
from ._records import ServiceStats

__all__: list[str] = []  # internal to the correlator

# Per-service counters of one bucket (a list of six ints).
SPANS, ERRORS, ROOT_CAUSES, LAT_SUM, LOGS, ERROR_LOGS = range(6)

_Bucket = tuple[dict[str, list[int]], dict[tuple[str, str], EdgeStats]]


class ServiceBuckets:
    """Open buckets, the closing point and the dependency-graph window."""

    __slots__ = (
        "_buckets",
        "_hot",
        "_hot_end",
        "_hot_services",
        "bucket_ns",
        "closed_upto",
        "graph",
    )

    def __init__(self, *, bucket_ns: int, graph_window_ns: int) -> None:
        self.bucket_ns = bucket_ns
        self.graph = DependencyGraph(
            window_buckets=max(1, graph_window_ns // bucket_ns), bucket_ns=bucket_ns
        )
        self.closed_upto: int | None = None
        """Start of the oldest bucket not yet closed."""
        self._buckets: dict[int, _Bucket] = {}
        self._hot = self._hot_end = -1  # the bucket the last records fell in
        self._hot_services: dict[str, list[int]] = {}

    def begin(self, ts: int) -> None:
        """Set the first bucket from the first event time seen."""
        if self.closed_upto is None:
            self.closed_upto = ts - ts % self.bucket_ns

    def bucket(self, ts: int) -> _Bucket:
        """(per-service counters, edges) of the bucket ``ts`` counts in."""
        start = ts - ts % self.bucket_ns
        closed = self.closed_upto
        if closed is not None and start < closed:
            start = closed
        b = self._buckets.get(start)
        if b is None:
            b = self._buckets[start] = ({}, {})
        return b

    def service(self, ts: int, service: str) -> list[int]:
        """The counters of ``service`` in ``ts``'s bucket; the bucket is
        remembered for the next records, most of which fall in it."""
        if self._hot <= ts < self._hot_end:
            services = self._hot_services
        else:
            size = self.bucket_ns
            natural = ts - ts % size
            services = self.bucket(ts)[0]
            start = max(natural, self.closed_upto if self.closed_upto is not None else natural)
            # A clamped bucket (records older than the closed ones) takes every earlier time.
            self._hot = natural if start == natural else -1
            self._hot_end = start + size
            self._hot_services = services
        st = services.get(service)
        if st is None:
            st = services[service] = [0, 0, 0, 0, 0, 0]
        return st

    def close(self, limit: int, out: list[Any]) -> None:
        """Close every bucket that ends at or before ``limit``."""
        size = self.bucket_ns
        if self.closed_upto is None:
            return
        self._hot_end = -1  # the remembered bucket may close now
        while self.closed_upto + size <= limit:
            start = self.closed_upto
            data = self._buckets.pop(start, None)
            if data is not None or self.graph:
                self._emit(start, data, out)
            self.closed_upto = start + size
            if not self.graph:
                # Nothing in the window: skip the empty buckets of a gap.
                nxt = min(self._buckets) if self._buckets else limit
                self.closed_upto = max(self.closed_upto, min(nxt, limit - limit % size))

    def _emit(self, start: int, data: _Bucket | None, out: list[Any]) -> None:
        size = self.bucket_ns
        services, edges = data if data is not None else ({}, {})
        for service in sorted(services):
            st = services[service]
            out.append(
                ServiceStats(
                    ts_ns=start, bucket_ns=size, service=service, spans=st[SPANS],
                    errors=st[ERRORS], root_causes=st[ROOT_CAUSES],
                    latency_mean_ns=st[LAT_SUM] // st[SPANS] if st[SPANS] else 0,
                    logs=st[LOGS], error_logs=st[ERROR_LOGS],
                )
            )  # fmt: skip
        self.graph.push(start, edges)
        out.extend(self.graph.edge_records(start + size))

    def snapshot(self) -> list[Any]:
        return [
            self.closed_upto,
            [
                [start, services, [[k[0], k[1], *e] for k, e in edges.items()]]
                for start, (services, edges) in self._buckets.items()
            ],
            self.graph.snapshot(),
        ]

    def restore(self, state: list[Any]) -> None:
        closed, buckets, graph = state
        self.closed_upto = None if closed is None else int(closed)
        self._buckets = {
            int(start): (
                {k: [int(x) for x in v] for k, v in services.items()},
                {(e[0], e[1]): [int(x) for x in e[2:]] for e in edges},
            )
            for start, services, edges in buckets
        }
        self._hot = self._hot_end = -1
        self.graph.restore(graph)

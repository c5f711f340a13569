"""The service dependency graph, with call, error and latency statistics
over a sliding event-time window.

The correlator adds each closed trace's cross-service calls to the bucket of
the trace's end; when a bucket closes it joins the window and the oldest
bucket leaves it.  Sums are kept incrementally; the latency maximum is
recomputed over the (few) buckets of the window when asked.

>>> def calls(*latencies_ns, errors=0):
...     st = new_edge_stats()
...     for i, lat in enumerate(latencies_ns):
...         add_call(st, lat, i < errors)
...     return st
>>> g = DependencyGraph(window_buckets=2, bucket_ns=10)
>>> g.push(0, {("api", "db"): calls(100, 100, 100, 100, errors=1)})
>>> g.push(10, {("api", "db"): calls(50, 50, errors=2), ("web", "api"): calls(*[10] * 6)})
>>> [(e.caller, e.callee, e.calls, e.errors) for e in g.edge_records(20)]
[('api', 'db', 6, 3), ('web', 'api', 6, 0)]
>>> sorted(g.downstream("web"))
['api', 'db']
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from operator import add, sub
from typing import Any

from ._records import DependencyEdge

__all__ = ["DependencyGraph", "downstream_of"]

EdgeStats = list[int]
"""``[calls, errors, latency_sum_ns, latency_max_ns, *histogram]`` of one
edge in one bucket; the histogram has ``LATENCY_BINS`` half-octave bins of
microseconds (bins split each octave at 1.5x, so a
quantile read from it is at most 50% high, never low)."""

LATENCY_BINS = 64
_HEAD = 4


def new_edge_stats() -> EdgeStats:
    return [0] * (_HEAD + LATENCY_BINS)


def add_call(stats: EdgeStats, latency_ns: int, error: bool) -> None:
    """Count one call of ``latency_ns`` into ``stats``."""
    stats[0] += 1
    stats[1] += error
    stats[2] += latency_ns
    stats[3] = max(stats[3], latency_ns)
    us = latency_ns // 1000
    if us < 2:
        k = 0
    else:
        n = us.bit_length()
        k = 2 * (n - 1) + ((us >> (n - 2)) & 1) - 1
    stats[_HEAD + (k if k < LATENCY_BINS else LATENCY_BINS - 1)] += 1


def _bin_upper_ns(k: int) -> int:
    """Upper edge of bin ``k`` in ns (the inverse of :func:`add_call`'s binning)."""
    if k == 0:
        return 2_000
    n, half = divmod(k + 1, 2)
    return ((2 << n) if half else (3 << (n - 1))) * 1000


def _quantiles(hist: list[int], total: int) -> tuple[int, int]:
    """(p95, p99) upper bin edges, in one pass."""
    r95, r99 = 0.95 * total, 0.99 * total
    p95 = 0
    seen = 0
    for k, c in enumerate(hist):
        if c:
            seen += c
            if not p95 and seen >= r95:
                p95 = _bin_upper_ns(k)
            if seen >= r99:
                return p95, _bin_upper_ns(k)
    return p95, 0


class DependencyGraph:
    """Caller -> callee edges over the last ``window_buckets`` closed buckets."""

    __slots__ = ("_buckets", "_totals", "bucket_ns", "window_buckets")

    def __init__(self, *, window_buckets: int, bucket_ns: int) -> None:
        self.window_buckets = max(1, window_buckets)
        self.bucket_ns = bucket_ns
        self._buckets: deque[tuple[int, dict[tuple[str, str], EdgeStats]]] = deque()
        self._totals: dict[tuple[str, str], list[int]] = {}

    def push(self, bucket_start_ns: int, edges: dict[tuple[str, str], EdgeStats]) -> None:
        """Add a closed bucket; buckets older than the window fall out.  An
        empty bucket only moves the window."""
        if edges:
            self._buckets.append((bucket_start_ns, edges))
        totals = self._totals
        for key, st in edges.items():
            t = totals.get(key)
            if t is None:
                totals[key] = list(st)
            else:
                t[:] = map(add, t, st)
        horizon = bucket_start_ns + self.bucket_ns - self.window_buckets * self.bucket_ns
        while self._buckets and self._buckets[0][0] < horizon:
            _, old = self._buckets.popleft()
            for key, st in old.items():
                t = totals[key]
                t[:] = map(sub, t, st)
                if t[0] <= 0:
                    del totals[key]

    def __bool__(self) -> bool:
        """True while some edge is inside the window."""
        return bool(self._buckets)

    def edge_records(self, ts_ns: int) -> list[DependencyEdge]:
        """The window's edges as records, sorted by (caller, callee)."""
        maxima: dict[tuple[str, str], int] = {}
        for _, edges in self._buckets:
            for key, st in edges.items():
                if st[3] > maxima.get(key, 0):
                    maxima[key] = st[3]
        window_ns = self.window_buckets * self.bucket_ns
        out = []
        for key in sorted(self._totals):
            t = self._totals[key]
            calls, errors, lat_sum = t[0], t[1], t[2]
            p95, p99 = _quantiles(t[_HEAD:], calls)
            top = maxima.get(key, 0)
            out.append(
                DependencyEdge(
                    ts_ns=ts_ns,
                    window_ns=window_ns,
                    caller=key[0],
                    callee=key[1],
                    calls=calls,
                    errors=errors,
                    error_ratio=errors / calls if calls else 0.0,
                    latency_mean_ns=lat_sum // calls if calls else 0,
                    latency_max_ns=maxima.get(key, 0),
                    latency_p95_ns=min(p95, top),
                    latency_p99_ns=min(p99, top),
                )
            )
        return out

    def callees(self) -> dict[str, list[str]]:
        """Adjacency: each caller's callees in the window, sorted."""
        adj: dict[str, list[str]] = {}
        for caller, callee in sorted(self._totals):
            adj.setdefault(caller, []).append(callee)
        return adj

    def downstream(self, service: str) -> set[str]:
        """Every service ``service`` calls, directly or not."""
        return downstream_of(self.callees(), service)

    def snapshot(self) -> list[Any]:
        return [
            [start, [[k[0], k[1], *st] for k, st in sorted(edges.items())]]
            for start, edges in self._buckets
        ]

    def restore(self, state: Iterable[Any]) -> None:
        self._buckets.clear()
        self._totals.clear()
        for start, rows in state:
            self.push(int(start), {(r[0], r[1]): [int(x) for x in r[2:]] for r in rows})


def downstream_of(adjacency: dict[str, list[str]], service: str) -> set[str]:
    """Services reachable from ``service`` along caller -> callee edges."""
    seen: set[str] = set()
    stack = list(adjacency.get(service, ()))
    while stack:
        s = stack.pop()
        if s in seen or s == service:
            continue
        seen.add(s)
        stack.extend(adjacency.get(s, ()))
    return seen

"""Prometheus metrics of the simulated services, as OpenMetrics text.

The services count every request (``http_requests_total{service,code}``)
and observe its duration (``http_request_duration_seconds{service}``
histogram); Prometheus scrapes them every ``metrics_interval``.  A data gap
hides the *scrapes* inside it (monitoring is down) while the counters go on
counting, exactly as a real scrape outage looks: after the gap the counter
has jumped.

OpenMetrics wants each metric family in one block and each series' samples
together in time order, so samples are accumulated per scrape interval and
written when the scenario ends.  The file ends with ``# EOF`` and loads with
``promtool tsdb create-blocks-from openmetrics``.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import IO

from ._engine import Chunk
from ._faults import GapSet
from ._graph import ServiceGraph

__all__ = ["BUCKETS_SECONDS", "OpenMetricsWriter"]

BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_H = "http_request_duration_seconds"
_BOUNDS_US = [round(b * 1_000_000) for b in BUCKETS_SECONDS]


class OpenMetricsWriter:
    filename = "metrics.om.txt"

    def __init__(
        self,
        f: IO[str],
        graph: ServiceGraph,
        *,
        start_ns: int,
        end_ns: int,
        interval_ns: int,
        gaps: GapSet,
    ) -> None:
        self.f = f
        self.names = [s.name for s in graph.services]
        self.t0 = start_ns
        self.interval = interval_ns
        self.k = -(-(end_ns - start_ns) // interval_ns)
        self.gaps = gaps
        # Flat int64 arrays: services x intervals x buckets stays compact.
        self.requests: dict[tuple[int, int], array[int]] = {}
        n = len(self.names)
        self.nb = nb = len(_BOUNDS_US) + 1
        self.buckets = [array("q", bytes(8 * nb * self.k)) for _ in range(n)]
        self.sum_us = [array("q", bytes(8 * self.k)) for _ in range(n)]
        self.lines = 0

    def write(self, chunk: Chunk) -> None:
        t0, iv, req, buckets, sums = (
            self.t0,
            self.interval,
            self.requests,
            self.buckets,
            self.sum_us,
        )
        bounds = _BOUNDS_US
        k, nb = self.k, self.nb
        for span in chunk.all:
            end, si, st, start = span[0], span[1], span[2], span[3]
            i = (end - t0) // iv
            if i >= k:
                continue
            try:
                req[si, st][i] += 1
            except KeyError:
                arr = req[si, st] = array("q", bytes(8 * k))
                arr[i] += 1
            lat = (end - start) // 1000
            buckets[si][i * nb + bisect_left(bounds, lat)] += 1
            sums[si][i] += lat

    def close(self) -> None:
        # Written series by series: the whole text of a big graph would not
        # need to sit in memory at once.
        out: list[str] = []
        app = out.append
        lines = 0

        def flush() -> None:
            nonlocal lines
            lines += len(out)
            self.f.write("".join(out))
            out.clear()

        stamps = [_stamp(self.t0 + j * self.interval) for j in range(self.k + 1)]
        visible = [
            [not self.gaps.hides(si, self.t0 + j * self.interval) for j in range(self.k + 1)]
            for si in range(len(self.names))
        ]
        app("# TYPE http_requests counter\n")
        app("# HELP http_requests Requests served, by service and HTTP status code.\n")
        for (si, st), arr in sorted(
            self.requests.items(), key=lambda kv: (self.names[kv[0][0]], kv[0][1])
        ):
            labels = f'{{service="{self.names[si]}",code="{st}"}}'
            total = 0
            vis = visible[si]
            for j in range(self.k + 1):
                if vis[j]:
                    app(f"http_requests_total{labels} {total} {stamps[j]}\n")
                if j < self.k:
                    total += arr[j]
            flush()
        app("# TYPE http_request_duration_seconds histogram\n")
        app("# HELP http_request_duration_seconds Time to serve a request, by service.\n")
        les = [f"{b:g}" for b in BUCKETS_SECONDS] + ["+Inf"]
        seen = {si for si, _ in self.requests}
        for si in sorted(seen, key=lambda s: self.names[s]):
            name = self.names[si]
            cum = [0] * len(les)
            total_us = 0
            vis = visible[si]
            for j in range(self.k + 1):
                if vis[j]:
                    ts = stamps[j]
                    running = 0
                    for le, c in zip(les, cum, strict=True):
                        running += c
                        app(f'{_H}_bucket{{service="{name}",le="{le}"}} {running} {ts}\n')
                    app(f'{_H}_count{{service="{name}"}} {running} {ts}\n')
                    app(f'{_H}_sum{{service="{name}"}} {total_us / 1e6:.6f} {ts}\n')
                if j < self.k:
                    row = self.buckets[si]
                    base = j * self.nb
                    for b in range(len(les)):
                        cum[b] += row[base + b]
                    total_us += self.sum_us[si][j]
            flush()
        app("# EOF\n")
        flush()
        self.lines = lines - 1  # the lines before "# EOF"
        self.f.close()


def _stamp(t_ns: int) -> str:
    ms = t_ns // 1_000_000
    return f"{ms // 1000}.{ms % 1000:03d}"

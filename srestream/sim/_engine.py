"""The request engine: arrivals, call trees and spans, in event-time chunks.

Requests arrive at the frontends as a Poisson process whose rate follows the
diurnal curve.  Each request walks the call graph depth-first: a service
spends a quarter of its self time, calls each dependency (with the call
probability) one after the other, then spends the rest; so latency adds up
along the call path.  A span fails on its own with the effect's error ratio;
a caller whose callee failed fails in turn with the propagation
probability, or degrades (WARN, 200) otherwise.

One span is one tuple (see the ``E_*`` indices), one log line, one OTLP
span.  Chunks are cut at fault boundaries, so the effects are constant
inside a chunk.  Spans end after their request arrived, so everything that
ends before the current chunk's end is final: it is sorted and handed to
the writers; the rest waits for the next chunk.  The output is therefore in
event-time order (by span end, which is the log line's ``ts``).

Only ``random.Random`` instances seeded from the scenario seed are used, so
the same seed gives the same bytes.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from ._faults import Effect, GapSet, effects_at, fault_windows, ramp_cuts
from ._graph import ServiceGraph
from ._scenario import Scenario

__all__ = ["Chunk", "SpanTuple", "run_engine"]

# Fields of a span tuple.
E_END, E_SI, E_STATUS, E_START, E_MSG, E_COMP, E_LEVEL, E_TRACE, E_SPAN, E_PARENT, E_OP = range(11)
SpanTuple = tuple[int, int, int, int, str, str, str, str, str, str, str]

CHUNK_NS = 10 * 1_000_000_000
HOP_NS = 250_000  # network time of one call, each way
_CLIENT_STATUSES = (400, 404, 404, 429)


class Chunk:
    """One chunk of final spans: ``seen`` are those monitoring saw (no data
    gap), ``all`` includes those hidden by a gap (metrics counters keep
    counting through a monitoring outage)."""

    __slots__ = ("all", "end_ns", "seen", "start_ns")

    def __init__(self, start_ns: int, end_ns: int, seen: list[Any], all_: list[Any]) -> None:
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.seen = seen
        self.all = all_


def diurnal_rate(sc: Scenario, t_ns: int) -> float:
    tr = sc.traffic
    hour = (t_ns // 1_000_000_000 % 86400) / 3600.0
    return tr.requests_per_second * (
        1.0 + tr.diurnal_amplitude * math.cos(2.0 * math.pi * (hour - tr.peak_hour_utc) / 24.0)
    )


def _boundaries(sc: Scenario) -> list[int]:
    t0, t1 = sc.start_ns, sc.end_ns
    cuts = {t1}
    for w in fault_windows(sc):
        for t in (w.start_ns, w.end_ns, *ramp_cuts(w)):
            if t0 < t < t1:
                cuts.add(t)
    return sorted(cuts)


def run_engine(
    sc: Scenario, graph: ServiceGraph, *, max_spans: int | None = None
) -> Iterator[Chunk]:
    """Yield the spans of the scenario, chunk by chunk, in event-time order.

    ``max_spans`` stops after that many seen spans (for sized workloads)."""
    rng = random.Random(f"{sc.seed}:traffic")
    rand = rng.random
    bits = rng.getrandbits
    expo = rng.expovariate
    svcs = graph.services
    n = len(svcs)
    index = graph.index()
    names = [s.name for s in svcs]
    deps = [tuple(index[d] for d in s.dependencies) for s in svcs]
    comps = [s.components for s in svcs]
    ops = [s.endpoints for s in svcs]
    ok_msgs = [[f"{ep} 200" for ep in s.endpoints] for s in svcs]
    client_msgs = [[[f"{ep} {st}" for st in _CLIENT_STATUSES] for ep in s.endpoints] for s in svcs]
    frontends = [i for i, s in enumerate(svcs) if s.kind == "frontend"]
    nfe = len(frontends)
    base = sc.baseline
    # Frontends always hand the request to their gateway; others call each
    # dependency with the call probability.
    callp = [1.0 if s.kind == "frontend" else base.call_probability for s in svcs]
    prop = base.error_propagation
    client = sc.traffic.client_error_ratio
    # Lognormal self-time multipliers (median 1, sigma 0.6), drawn once.
    lat_table = [rng.lognormvariate(0.0, 0.6) for _ in range(4096)]
    self_ns = [base.latency_ms * 1_000_000 * (4.0 if s.kind == "datastore" else 1.0) for s in svcs]
    upstream_msg: dict[tuple[int, int, int], str] = {}
    fallback_msg = [
        {d: f"degraded response: {names[d]} unavailable, served fallback" for d in deps[i]}
        for i in range(n)
    ]
    windows = fault_windows(sc)
    gaps = GapSet(sc, index, windows)

    eff: Effect = effects_at(sc, names, comps, windows, sc.start_ns)
    err = eff.error_ratio
    err_status = eff.error_status
    err_msg = eff.error_message
    err_comp = eff.error_component
    err_lat = eff.error_latency_ns
    lat = [self_ns[i] * eff.latency_factor[i] for i in range(n)]

    def call(
        si: int, start: int, tid: str, psid: str, out: Callable[[SpanTuple], None]
    ) -> tuple[int, int]:
        sid = f"{bits(64):016x}"
        own = int(lat[si] * lat_table[bits(12)])
        t = start + (own >> 2)
        failed = -1
        fstatus = 0
        for ci in deps[si]:
            if rand() < callp[si]:
                cend, cst = call(ci, t + HOP_NS, tid, sid, out)
                t = cend + HOP_NS
                if cst >= 500:
                    failed, fstatus = ci, cst
                    break
        end = t + own - (own >> 2)
        e = bits(2)
        r = rand()
        if r < err[si]:
            st = err_status[si]
            if err_lat[si]:  # a hung dependency: the caller waited for its timeout
                end = max(end, start + err_lat[si])
            out(
                (
                    end,
                    si,
                    st,
                    start,
                    err_msg[si],
                    err_comp[si] or comps[si][e],
                    "ERROR",
                    tid,
                    sid,
                    psid,
                    ops[si][e],
                )
            )
            return end, st
        if failed >= 0:
            if rand() < prop:
                st = 502 if fstatus != 504 else 504
                key = (si, failed, fstatus)
                msg = upstream_msg.get(key)
                if msg is None:
                    msg = upstream_msg[key] = f"upstream {names[failed]} returned {fstatus}"
                out((end, si, st, start, msg, comps[si][e], "ERROR", tid, sid, psid, ops[si][e]))
                return end, st
            out(
                (
                    end,
                    si,
                    200,
                    start,
                    fallback_msg[si][failed],
                    comps[si][e],
                    "WARN",
                    tid,
                    sid,
                    psid,
                    ops[si][e],
                )
            )
            return end, 200
        if r < err[si] + client:
            k = bits(2)
            st = _CLIENT_STATUSES[k]
            out(
                (
                    end,
                    si,
                    st,
                    start,
                    client_msgs[si][e][k],
                    comps[si][e],
                    "WARN",
                    tid,
                    sid,
                    psid,
                    ops[si][e],
                )
            )
            return end, st
        out((end, si, 200, start, ok_msgs[si][e], comps[si][e], "INFO", tid, sid, psid, ops[si][e]))
        return end, 200

    pending: list[SpanTuple] = []
    emitted = 0
    t = sc.start_ns
    next_arrival = float(t)
    for cut in _boundaries(sc):
        e = effects_at(sc, names, comps, windows, t)
        err[:] = e.error_ratio
        err_status[:] = e.error_status
        err_msg[:] = e.error_message
        err_comp[:] = e.error_component
        err_lat[:] = e.error_latency_ns
        lat[:] = [self_ns[i] * e.latency_factor[i] for i in range(n)]
        while t < cut:
            c1 = min(t + CHUNK_NS, cut)
            mean_gap = 1e9 / max(diurnal_rate(sc, t), 1e-9)
            out = pending.append
            while next_arrival < c1:
                start = int(next_arrival)
                tid = f"{bits(128):032x}"
                call(frontends[int(rand() * nfe)], start, tid, "", out)
                next_arrival += expo(1.0) * mean_gap
            pending.sort()
            k = bisect_left(pending, (c1,))
            final = pending[:k]
            del pending[:k]
            seen = gaps.filter(final)
            if max_spans is not None and emitted + len(seen) >= max_spans:
                cut_at = max_spans - emitted
                seen = seen[:cut_at]
                last = seen[-1][0] if seen else t
                yield Chunk(t, c1, seen, [s for s in final if s[0] <= last])
                return
            emitted += len(seen)
            yield Chunk(t, c1, seen, final)
            t = c1

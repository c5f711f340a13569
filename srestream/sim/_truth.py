"""Ground truth: what a correct pipeline must find in the simulated data.

Counts are taken from the spans as they are written (after data gaps), so
they equal what anyone recomputes from ``logs.jsonl``: per service and per
minute the total, the errors (status >= 500) and, per latency SLO, the
requests slower than its threshold.  SLO good/total follow:

* availability: good = status < 500;
* latency: good = latency_ms <= threshold_ms (whatever the status).
"""

from __future__ import annotations

from typing import Any

from ._engine import Chunk
from ._faults import FaultWindow
from ._formats import rfc3339_ms
from ._graph import ServiceGraph
from ._oncall import SimIncident
from ._scenario import BadDeploy, DataGap, Scenario

__all__ = ["TruthCollector", "expand_slos"]

_MIN = 60_000_000_000


def expand_slos(sc: Scenario, graph: ServiceGraph) -> list[dict[str, Any]]:
    """The scenario's SLO templates applied to their services."""
    out = []
    for tpl in sc.slos:
        for s in graph.services:
            if (tpl.services is not None and s.name in tpl.services) or (
                tpl.services is None and s.kind in tpl.kinds
            ):
                out.append(
                    {
                        "name": f"{s.name}-{tpl.name}",
                        "service": s.name,
                        "team": s.team,
                        "sli": tpl.sli,
                        "objective": tpl.objective,
                        "threshold_ms": tpl.threshold_ms,
                    }
                )
    return out


def _no_data(windows: list[FaultWindow], service: str, t0: int, t1: int) -> list[tuple[int, int]]:
    """The merged data-gap intervals that hide ``service`` (within the scenario)."""
    spans = sorted(
        (max(w.start_ns, t0), min(w.end_ns, t1))
        for w in windows
        if isinstance(w.fault, DataGap)
        and (w.fault.services is None or service in w.fault.services)
    )
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


class TruthCollector:
    """Counts per service and minute from the spans monitoring saw."""

    def __init__(self, sc: Scenario, graph: ServiceGraph, windows: list[FaultWindow]) -> None:
        self.sc = sc
        self.graph = graph
        self.m0 = sc.start_ns // _MIN
        self.nm = (sc.end_ns - 1) // _MIN - self.m0 + 1
        n = len(graph.services)
        self.slos = expand_slos(sc, graph)
        index = graph.index()
        # Per-minute counts only for services with an SLO (memory is
        # services x minutes); the others share one scratch row never read.
        with_slo = {index[slo["service"]] for slo in self.slos}
        scratch = [0] * self.nm
        self.total = [[0] * self.nm if i in with_slo else scratch for i in range(n)]
        self.errors = [[0] * self.nm if i in with_slo else scratch for i in range(n)]
        self.service_total = [0] * n
        self.service_errors = [0] * n
        self.slow: list[list[tuple[int, list[int]]]] = [[] for _ in range(n)]
        self._slow_of: dict[tuple[int, int], list[int]] = {}
        for slo in self.slos:
            if slo["sli"] == "latency":
                si = index[slo["service"]]
                thr = round(slo["threshold_ms"] * 1000)
                if (si, thr) not in self._slow_of:
                    arr = [0] * self.nm
                    self._slow_of[si, thr] = arr
                    self.slow[si].append((thr, arr))
        self.spans = 0
        # Counts inside each fault's effect window.  Chunks are cut at fault
        # boundaries and hold the spans ending within them, so a chunk is
        # wholly inside or outside each window.
        self.windows = [w for w in windows if not isinstance(w.fault, DataGap)]
        self.in_window: dict[str, tuple[list[int], list[int], dict[tuple[int, int], int]]] = {
            w.fault_id: ([0] * n, [0] * n, dict.fromkeys(self._slow_of, 0)) for w in self.windows
        }

    def write(self, chunk: Chunk) -> None:
        m0, total, errors, slow = self.m0, self.total, self.errors, self.slow
        s_total, s_errors = self.service_total, self.service_errors
        for span in chunk.seen:
            end, si, st = span[0], span[1], span[2]
            m = end // _MIN - m0
            total[si][m] += 1
            s_total[si] += 1
            if st >= 500:
                errors[si][m] += 1
                s_errors[si] += 1
            checks = slow[si]
            if checks:
                lat = (end - span[3]) // 1000
                for thr, arr in checks:
                    if lat > thr:
                        arr[m] += 1
        self.spans += len(chunk.seen)
        active = [w for w in self.windows if w.start_ns <= chunk.start_ns < w.end_ns]
        if active and chunk.seen:
            self._count_in_windows(chunk, active)

    def _count_in_windows(self, chunk: Chunk, active: list[FaultWindow]) -> None:
        n = len(self.total)
        tot, err = [0] * n, [0] * n
        slow = dict.fromkeys(self._slow_of, 0)
        checks = self.slow
        for span in chunk.seen:
            si = span[1]
            tot[si] += 1
            if span[2] >= 500:
                err[si] += 1
            if checks[si]:
                lat = (span[0] - span[3]) // 1000
                for thr, _arr in checks[si]:
                    if lat > thr:
                        slow[si, thr] += 1
        for w in active:
            t, e, sl = self.in_window[w.fault_id]
            for i in range(n):
                t[i] += tot[i]
                e[i] += err[i]
            for k, v in slow.items():
                sl[k] += v

    def _impact(self, w: FaultWindow, services: list[str]) -> list[dict[str, Any]]:
        """Good/total of every SLO on ``services`` inside the fault's effect window."""
        index = self.graph.index()
        tot, err, slow = self.in_window[w.fault_id]
        out = []
        for slo in self.slos:
            if slo["service"] not in services:
                continue
            si = index[slo["service"]]
            if slo["sli"] == "availability":
                bad = err[si]
            else:
                bad = slow[si, round(slo["threshold_ms"] * 1000)]
            ratio = bad / tot[si] if tot[si] else None
            out.append(
                {
                    "slo": slo["name"],
                    "service": slo["service"],
                    "good": tot[si] - bad,
                    "total": tot[si],
                    "bad_ratio": ratio,
                    "burn_rate": ratio / (1 - slo["objective"] / 100)
                    if ratio is not None
                    else None,
                }
            )
        return out

    def truth(
        self,
        windows: list[FaultWindow],
        incidents: list[SimIncident],
        files: dict[str, int],
        events: int,
    ) -> dict[str, Any]:
        sc, graph = self.sc, self.graph
        index = graph.index()
        slos = []
        for slo in self.slos:
            si = index[slo["service"]]
            tot = self.total[si]
            if slo["sli"] == "availability":
                bad = self.errors[si]
            else:
                bad = self._slow_of[si, round(slo["threshold_ms"] * 1000)]
            good = [t - b for t, b in zip(tot, bad, strict=True)]
            no_data = _no_data(windows, slo["service"], sc.start_ns, sc.end_ns)
            slos.append(
                {
                    **slo,
                    "good": sum(good),
                    "total": sum(tot),
                    "no_data": [
                        {"start": rfc3339_ms(a), "start_ns": a, "end": rfc3339_ms(b), "end_ns": b}
                        for a, b in no_data
                    ],
                    "coverage": 1 - sum(b - a for a, b in no_data) / (sc.end_ns - sc.start_ns),
                    "minutes": {
                        "start": rfc3339_ms(self.m0 * _MIN),
                        "start_ns": self.m0 * _MIN,
                        "good": good,
                        "total": tot,
                    },
                }
            )
        inc_of = {i.fault_id: i.incident_id for i in incidents}
        faults = []
        for w in windows:
            f = w.fault
            onset = sc.start_ns + int(f.onset)
            entry: dict[str, Any] = {
                "fault_id": w.fault_id,
                "kind": f.__struct_config__.tag,
                "onset": rfc3339_ms(onset),
                "onset_ns": onset,
                "effect_start": rfc3339_ms(w.start_ns),
                "effect_start_ns": w.start_ns,
                "end": rfc3339_ms(w.end_ns),
                "end_ns": w.end_ns,
                "incident_id": inc_of.get(w.fault_id),
            }
            if isinstance(f, DataGap):
                entry["root_cause"] = None
                entry["services"] = (
                    sorted(f.services) if f.services else [s.name for s in graph.services]
                )
                entry["affected_services"] = []
            else:
                entry["root_cause"] = f.service
                entry["affected_services"] = graph.upstream_of(f.service)
                entry["impact"] = self._impact(w, [f.service, *entry["affected_services"]])
            params = {
                k: getattr(f, k)
                for k in ("error_ratio", "ramp_to", "latency_factor", "mode", "version")
                if hasattr(f, k)
            }
            if isinstance(f, BadDeploy):
                entry["deploy_ts"] = rfc3339_ms(onset)
                entry["deploy_ts_ns"] = onset
            entry["params"] = params
            faults.append(entry)
        return {
            "scenario": sc.name,
            "seed": sc.seed,
            "environment": sc.environment,
            "start": rfc3339_ms(sc.start_ns),
            "start_ns": sc.start_ns,
            "end": rfc3339_ms(sc.end_ns),
            "end_ns": sc.end_ns,
            "definitions": {
                "availability": "good = status < 500",
                "latency": "good = latency_ms <= threshold_ms",
                "counted": "log lines of logs.jsonl (one per span), by ts",
            },
            "services": [
                {"name": s.name, "kind": s.kind, "team": s.team, "dependencies": s.dependencies}
                for s in graph.services
            ],
            "root_causes": [f["root_cause"] for f in faults if f["root_cause"]],
            "faults": faults,
            "data_gaps": [
                {k: f[k] for k in ("fault_id", "services", "onset", "onset_ns", "end", "end_ns")}
                for f in faults
                if f["kind"] == "data_gap"
            ],
            "incidents": [
                {
                    "incident_id": i.incident_id,
                    "fault_id": i.fault_id,
                    "root_cause": i.root_cause,
                    "team": i.team,
                    "detected": rfc3339_ms(i.detected_ns),
                    "acked": rfc3339_ms(i.acked_ns),
                    "acked_by": i.acked_by,
                    "escalated": i.escalated,
                    "mitigated": rfc3339_ms(i.mitigated_ns),
                    "resolved": rfc3339_ms(i.resolved_ns),
                }
                for i in incidents
            ],
            "slos": slos,
            "service_counts": {
                s.name: {"total": self.service_total[i], "errors": self.service_errors[i]}
                for i, s in enumerate(graph.services)
            },
            "files": files,
            "events": events,
        }

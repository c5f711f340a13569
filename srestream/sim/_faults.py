"""What faults do to the simulated services, as piecewise-constant effects.

Each fault is active on a half-open event-time interval.  The engine cuts
time at every fault boundary, so within one chunk the effect on every
service is constant: an own-failure probability, the status and message of
those failures, and a self-latency multiplier.  Data gaps are different:
they change nothing in the system, only what monitoring sees (see
:class:`GapSet`).
"""

from __future__ import annotations

import msgspec

from ._scenario import (
    BadDeploy,
    DataGap,
    DependencyOutage,
    Fault,
    LatencyRegression,
    Scenario,
    SlowBurn,
)

__all__ = [
    "Effect",
    "FaultWindow",
    "GapSet",
    "effects_at",
    "fault_windows",
    "ramp_cuts",
    "ramp_ratio",
]


class Effect(msgspec.Struct, kw_only=True):
    """Per-service behaviour during one chunk (parallel lists by service index)."""

    error_ratio: list[float]
    error_status: list[int]
    error_message: list[str]
    error_component: list[str | None]
    error_latency_ns: list[int]
    """Duration of a failing span (0: its usual time)."""
    latency_factor: list[float]


class FaultWindow(msgspec.Struct, frozen=True, kw_only=True):
    fault_id: str
    fault: Fault
    start_ns: int
    """When the fault changes the system (for a bad deploy: errors_after the deploy)."""
    end_ns: int


def fault_windows(sc: Scenario) -> list[FaultWindow]:
    t0 = sc.start_ns
    out = []
    for i, f in enumerate(sc.faults):
        onset = t0 + int(f.onset)
        start = onset + int(f.errors_after) if isinstance(f, BadDeploy) else onset
        out.append(
            FaultWindow(
                fault_id=f"F{i + 1}", fault=f, start_ns=start, end_ns=onset + int(f.duration)
            )
        )
    return out


def _baseline(sc: Scenario, names: list[str]) -> Effect:
    n = len(names)
    return Effect(
        error_ratio=[sc.baseline.error_ratio] * n,
        error_status=[500] * n,
        error_message=[
            f"internal error: unexpected EOF reading request body in {s}" for s in names
        ],
        error_component=[None] * n,
        error_latency_ns=[0] * n,
        latency_factor=[1.0] * n,
    )


def effects_at(
    sc: Scenario,
    names: list[str],
    components: list[list[str]],
    windows: list[FaultWindow],
    t_ns: int,
) -> Effect:
    """The effect of every fault active at ``t_ns`` on top of the baseline."""
    eff = _baseline(sc, names)
    index = {s: i for i, s in enumerate(names)}
    for w in windows:
        f = w.fault
        if not w.start_ns <= t_ns < w.end_ns or isinstance(f, DataGap):
            continue
        si = index[f.service]
        name = f.service
        if isinstance(f, LatencyRegression):
            eff.latency_factor[si] *= f.latency_factor
            continue
        # Independent failure causes combine as 1 - Π(1 - p).
        p = ramp_ratio(f, w, t_ns) if isinstance(f, SlowBurn) else f.error_ratio
        eff.error_ratio[si] = 1.0 - (1.0 - eff.error_ratio[si]) * (1.0 - p)
        if isinstance(f, DependencyOutage) and f.mode == "timeout":
            eff.error_status[si] = 504
            eff.error_message[si] = f"timeout after {f.timeout} waiting for {name}:5432"
            eff.error_latency_ns[si] = int(f.timeout)
        elif isinstance(f, DependencyOutage):
            eff.error_status[si] = 503
            eff.error_message[si] = f"connection refused: {name}:5432 (no healthy backend)"
        elif isinstance(f, BadDeploy):
            comp = components[si][0]
            eff.error_status[si] = 500
            eff.error_message[si] = f"NullPointerException in {comp}.serialize ({f.version})"
            eff.error_component[si] = comp
        elif isinstance(f, SlowBurn):
            eff.error_status[si] = 500
            eff.error_message[si] = f"context deadline exceeded writing to {name} replica"
    return eff


RAMP_STEP_NS = 60_000_000_000


def ramp_ratio(f: SlowBurn, w: FaultWindow, t_ns: int) -> float:
    """A slow burn's error ratio at ``t_ns``: constant, or on its linear ramp
    taken at the middle of the minute step holding ``t_ns``."""
    if f.ramp_to is None:
        return f.error_ratio
    k = (t_ns - w.start_ns) // RAMP_STEP_NS
    mid = min(k * RAMP_STEP_NS + RAMP_STEP_NS // 2, w.end_ns - w.start_ns)
    return f.error_ratio + (f.ramp_to - f.error_ratio) * mid / (w.end_ns - w.start_ns)


def ramp_cuts(w: FaultWindow) -> list[int]:
    """Where a ramping slow burn changes its ratio (every minute)."""
    if not isinstance(w.fault, SlowBurn) or w.fault.ramp_to is None:
        return []
    return list(range(w.start_ns + RAMP_STEP_NS, w.end_ns, RAMP_STEP_NS))


class GapSet:
    """Data gaps as (start, end, service indices or None for all)."""

    def __init__(self, sc: Scenario, index: dict[str, int], windows: list[FaultWindow]) -> None:
        self.gaps: list[tuple[int, int, frozenset[int] | None]] = []
        for w in windows:
            f = w.fault
            if isinstance(f, DataGap):
                svcs = None if f.services is None else frozenset(index[s] for s in f.services)
                self.gaps.append((w.start_ns, w.end_ns, svcs))

    def overlapping(self, lo: int, hi: int) -> list[tuple[int, int, frozenset[int] | None]]:
        return [g for g in self.gaps if g[0] < hi and lo < g[1]]

    def hides(self, si: int, t_ns: int) -> bool:
        for g0, g1, svcs in self.gaps:
            if g0 <= t_ns < g1 and (svcs is None or si in svcs):
                return True
        return False

    def filter(self, entries: list[tuple]) -> list[tuple]:  # type: ignore[type-arg]
        """``entries`` (sorted by end time) without those monitoring did not see."""
        if not entries:
            return entries
        gaps = self.overlapping(entries[0][0], entries[-1][0] + 1)
        if not gaps:
            return entries
        out = []
        for e in entries:
            t, si = e[0], e[1]
            for g0, g1, svcs in gaps:
                if g0 <= t < g1 and (svcs is None or si in svcs):
                    break
            else:
                out.append(e)
        return out

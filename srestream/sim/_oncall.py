"""Events around the simulated system: deploys and what responders do.

Routine deploys happen all day (noise for root-cause ranking); a bad deploy
has its own deploy event at its onset and a rollback at its end.  Every
fault marked ``incident`` gets a response: the page is noticed after the
detection delay, acknowledged (or escalated to the next person when the ack
takes longer than ``ack_timeout``), discussed in chat notes, mitigated by a
human action when the fault ends, and resolved a few minutes later.

The events are what ``events.jsonl`` holds; the incidents (who acked when)
go into ``truth.json``.
"""

from __future__ import annotations

import random
from typing import Any

import msgspec

from ._faults import FaultWindow
from ._graph import ServiceGraph
from ._scenario import BadDeploy, DataGap, DependencyOutage, LatencyRegression, Scenario

__all__ = ["SimEvent", "SimIncident", "event_lines", "oncall_events", "people_by_team"]

_PEOPLE = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "wendy",
    "zoe",
)
_S = 1_000_000_000


class SimEvent(msgspec.Struct, frozen=True, kw_only=True):
    ts_ns: int
    event_type: str
    service: str
    summary: str
    team: str = ""
    person: str = ""
    incident_id: str = ""
    version: str = ""


class SimIncident(msgspec.Struct, frozen=True, kw_only=True):
    incident_id: str
    fault_id: str
    root_cause: str
    team: str
    detected_ns: int
    acked_ns: int
    acked_by: str
    escalated: bool
    mitigated_ns: int
    resolved_ns: int


_encode = msgspec.json.Encoder().encode


def event_lines(events: list[SimEvent]) -> list[str]:
    """The lines of ``events.jsonl``: ts (RFC 3339 ms), event_type, service,
    summary, team, then person, incident_id and version when set, and source."""
    from ._formats import rfc3339_ms

    out = []
    for e in events:
        obj: dict[str, Any] = {
            "ts": rfc3339_ms(e.ts_ns),
            "event_type": e.event_type,
            "service": e.service,
            "summary": e.summary,
            "team": e.team,
        }
        for k in ("person", "incident_id", "version"):
            if v := getattr(e, k):
                obj[k] = v
        obj["source"] = "sim"
        out.append(_encode(obj).decode())
    return out


def people_by_team(sc: Scenario, graph: ServiceGraph) -> dict[str, list[str]]:
    teams = sorted({s.team for s in graph.services})
    k = sc.oncall.people_per_team
    out: dict[str, list[str]] = {}
    for t, team in enumerate(teams):
        out[team] = []
        for j in range(k):
            i = t * k + j
            base = _PEOPLE[i % len(_PEOPLE)]
            out[team].append(base if i < len(_PEOPLE) else f"{base}{i // len(_PEOPLE) + 1}")
    return out


def oncall_events(
    sc: Scenario, graph: ServiceGraph, windows: list[FaultWindow]
) -> tuple[list[SimEvent], list[SimIncident]]:
    rng = random.Random(f"{sc.seed}:oncall")
    team_of = {s.name: s.team for s in graph.services}
    people = people_by_team(sc, graph)
    events: list[SimEvent] = []
    incidents: list[SimIncident] = []
    events.extend(_routine_deploys(sc, graph, windows, rng, people))
    for n, w in enumerate(windows):
        f = w.fault
        if isinstance(f, BadDeploy):
            team = team_of[f.service]
            events.append(
                SimEvent(
                    ts_ns=w.start_ns - int(f.errors_after),
                    event_type="deploy",
                    service=f.service,
                    summary=f"deploy {f.service} {f.version}",
                    team=team,
                    person=people[team][0],
                    version=f.version,
                )
            )
        if not f.incident or isinstance(f, DataGap):
            continue
        inc, evs = _respond(sc, w, f"INC-{len(incidents) + 1}", rng, team_of, people, n)
        incidents.append(inc)
        events.extend(evs)
    events.sort(key=lambda e: (e.ts_ns, e.event_type, e.service, e.summary))
    return events, incidents


def _routine_deploys(
    sc: Scenario,
    graph: ServiceGraph,
    windows: list[FaultWindow],
    rng: random.Random,
    people: dict[str, list[str]],
) -> list[SimEvent]:
    out = []
    candidates = [s for s in graph.services if s.kind != "datastore"]
    n = round(sc.routine_deploys_per_day * sc.duration / (86400 * _S))
    quiet = [
        (getattr(w.fault, "service", ""), w.start_ns - 3600 * _S, w.end_ns + 3600 * _S)
        for w in windows
    ]
    builds = 4000
    for _ in range(n):
        t = sc.start_ns + int(rng.random() * sc.duration) // 1_000_000 * 1_000_000
        s = candidates[rng.randrange(len(candidates))]
        if any(svc == s.name and a <= t < b for svc, a, b in quiet):
            continue
        builds += rng.randint(1, 40)
        version = f"v1.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        out.append(
            SimEvent(
                ts_ns=t,
                event_type="deploy",
                service=s.name,
                summary=f"deploy {s.name} {version} (build {builds})",
                team=s.team,
                person=people[s.team][rng.randrange(len(people[s.team]))],
                version=version,
            )
        )
    return out


def _respond(
    sc: Scenario,
    w: FaultWindow,
    incident_id: str,
    rng: random.Random,
    team_of: dict[str, str],
    people: dict[str, list[str]],
    n: int,
) -> tuple[SimIncident, list[SimEvent]]:
    f = w.fault
    svc: str = f.service  # type: ignore[union-attr]
    team = team_of[svc]
    crew = people[team]
    primary = crew[n % len(crew)]
    secondary = crew[(n + 1) % len(crew)]
    oc = sc.oncall
    detected = w.start_ns + int(oc.detection_delay)
    ack_delay = int(rng.uniform(30 * _S, max(int(oc.max_ack_delay), 31 * _S)))
    ev: list[SimEvent] = []

    def add(t: int, kind: str, summary: str, person: str = "", service: str = svc) -> None:
        ev.append(
            SimEvent(
                ts_ns=t // 1_000_000 * 1_000_000,
                event_type=kind,
                service=service,
                summary=summary,
                team=team,
                person=person,
                incident_id=incident_id,
            )
        )

    escalated = ack_delay > int(oc.ack_timeout)
    if escalated:
        t_esc = detected + int(oc.ack_timeout)
        add(
            t_esc,
            "escalation",
            f"no ack from {primary} after {oc.ack_timeout}, paging {secondary}",
            secondary,
        )
        acked, acker = t_esc + int(rng.uniform(20 * _S, 180 * _S)), secondary
    else:
        acked, acker = detected + ack_delay, primary
    add(acked, "ack", f"{acker} acknowledged {incident_id}", acker)
    # The fault ends because someone acted: the action lands just before its
    # end (or a minute after the ack when the fault was shorter than that);
    # the chat notes come between the ack and the action.
    mitigated = max(w.end_ns - 30 * _S, acked + 60 * _S)
    t_first = min(acked + int(rng.uniform(30 * _S, 120 * _S)), mitigated - 2 * _S)
    add(t_first, "chat_note", f"investigating elevated errors around {svc}", acker)
    hypothesis, action = _diagnosis(f, svc)
    t_note = acked + int(rng.uniform(150 * _S, 300 * _S))
    add(min(t_note, mitigated - _S), "chat_note", hypothesis, acker)
    add(mitigated, "human_action", action, acker)
    if isinstance(f, BadDeploy):
        add(mitigated, "deploy", f"rollback {svc} to {f.previous_version}", acker)
    resolved = max(w.end_ns, mitigated) + int(rng.uniform(120 * _S, 480 * _S))
    add(resolved - 60 * _S, "chat_note", "error rates back to baseline, monitoring", acker)
    add(resolved, "resolve", f"{incident_id} resolved", acker)
    inc = SimIncident(
        incident_id=incident_id,
        fault_id=w.fault_id,
        root_cause=svc,
        team=team,
        detected_ns=detected,
        acked_ns=acked // 1_000_000 * 1_000_000,
        acked_by=acker,
        escalated=escalated,
        mitigated_ns=mitigated // 1_000_000 * 1_000_000,
        resolved_ns=resolved // 1_000_000 * 1_000_000,
    )
    return inc, ev


def _diagnosis(f: Any, svc: str) -> tuple[str, str]:
    if isinstance(f, DependencyOutage):
        return (
            f"{svc} is refusing connections; its callers fail in turn",
            f"failed over {svc} to the standby replica",
        )
    if isinstance(f, BadDeploy):
        return (
            f"errors started right after the deploy of {svc} {f.version}",
            f"rolled back {svc} to {f.previous_version}",
        )
    if isinstance(f, LatencyRegression):
        return (
            f"{svc} latency is up about {f.latency_factor:g}x; callers slow down too",
            f"scaled out {svc} and flushed its connection pool",
        )
    return (
        f"slow error budget burn on {svc}: a trickle of deadline errors",
        f"replaced the degraded {svc} replica",
    )

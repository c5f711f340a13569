"""SLO discovery: user journeys found in traces, proposed as SLO YAML.

From the spans of recorded traces (OTLP JSON files), find the journeys a
user starts and propose an availability and a latency SLO for each, with
objectives the observed history supports, as an srestream SLO file
(``source: spans`` SLIs) for a human to review.

**Entry spans.**  A span is where a journey enters the system when

* it has no parent in the traces read (a root span, or its caller was not
  traced), unless it is itself a ``CLIENT`` or ``PRODUCER`` span (an
  outgoing call: the journey enters at the span it called); or
* its parent is such a root ``CLIENT``/``PRODUCER`` span of another
  service (a browser, a mobile app or a load generator whose only span is
  its call into the system).

Every other span is a call made on the journey's behalf.  A journey is the
entry spans of one (service, operation name); its **call path** is what its
requests reached below the entry span by parent links: each distinct path
entry -> service/operation -> ... with the share of requests that took it.

**Evidence** per journey: requests, errors (spans with an error status),
latency p50/p95/p99 (nearest rank, over the requests that did not fail:
failed requests are the availability SLO's business), and the observed
window (first entry start to last entry end).

**Proposals**, for each journey with at least ``min_requests`` requests:

* availability: good = the entry span did not fail;
* latency: good = duration <= threshold, over the requests that did not
  fail; the threshold is the observed p99 rounded up to a "nice" value
  (1, 2.5, 5 x 10^k ms: ... 50ms, 100ms, 250ms, 500ms, 1s, 2.5s, 5s, 10s ...);
* objective: the tightest rung of :data:`OBJECTIVE_LADDER` that the
  observed history meets **with margin**: the observed bad fraction is at
  most half the error budget (``max(bad, 1) / total <= (100 - objective)
  / 200``, checked in integers; a clean history counts as one bad event,
  so that 200 flawless requests propose 99, not 99.99).  When not even 90% is met so, 90 is proposed and
  the SLO is marked as not met by its history (the comment says so);
* ``alerting.min_events``: a window pair fires only once its long window
  holds ``ceil(10 / budget)`` events (so that one burst of bad luck cannot
  page before ten bad events), capped at the journey's mean hourly traffic
  (so that a normal hour of traffic is always enough).

The SLIs select the entry spans by service and operation name; when the
service also has spans that are not entries under that name (every name,
for a service-level SLO) and every entry is a root span, the total adds
``parent_span_id: ""`` so that only the entries count (otherwise the
description says how many other spans the SLI counts too).

**Cardinality guard.**  A service whose entry operations carry more than
``max_operations`` distinct names (ids in the span names: ``GET
/users/123``) is not turned into one SLO per name: that would be an SLO
per user.  It is refused with the reason (the count and examples) and a
suggestion (name spans by route template, ``GET /users/{id}``), and one
service-level pair of SLOs over all its entry spans is proposed instead.
srestream SLOs have no per-label keying (``group_by``): an SLO is one
(service, SLI) series, so operation names are the only key to guard.

Deterministic: the same spans give the same bytes, whatever the file
order within a trace.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from .._component import Outputs
from .._errors import ConfigError, Problem
from .._records import RawLine, Span
from ._alerting import HOUR_NS
from ._spec import MAX_ROLLING_NS, MIN_ROLLING_NS, SLOSet, parse_period
from ._validate import parse_slos

__all__ = [
    "NICE_THRESHOLDS_NS",
    "OBJECTIVE_LADDER",
    "Discovery",
    "Journey",
    "Refusal",
    "SloProposal",
    "discover_slos",
    "find_journeys",
    "meets_with_margin",
    "nice_threshold_ns",
    "read_trace_files",
    "recommend_objective",
]

OBJECTIVE_LADDER: Final = (99.99, 99.95, 99.9, 99.5, 99.0, 98.0, 95.0, 90.0)
"""Objectives proposed, tightest first."""
_BUDGET_BP: Final = {99.99: 1, 99.95: 5, 99.9: 10, 99.5: 50, 99.0: 100, 98.0: 200, 95.0: 500, 90.0: 1000}
"""Error budget of each rung in basis points (1 = 0.01%), for exact integer checks."""
NICE_THRESHOLDS_NS: Final = tuple(
    int(m * 10**e * 1_000_000) for e in range(6) for m in (1, 2.5, 5)
)
"""Latency thresholds proposed: 1ms, 2.5ms, 5ms, 10ms, ... 50s, 100s... (250s, 500s)."""
MIN_EVENTS_BAD: Final = 10
"""``alerting.min_events`` holds this many bad events at the budget rate."""
_OUTGOING: Final = frozenset({"CLIENT", "PRODUCER"})
_SLUG: Final = re.compile(r"[^a-z0-9]+")


class Journey(msgspec.Struct, kw_only=True):
    """The requests of one entry operation and what they reached.

    ``operation`` is empty for a service-level journey (all the entry
    operations of a service the cardinality guard refused)."""

    service: str
    operation: str
    requests: int = 0
    errors: int = 0
    durations_ns: list[int] = []
    """Durations of the requests that did not fail, sorted."""
    first_ts_ns: int = 0
    last_ts_ns: int = 0
    paths: dict[tuple[str, ...], int] = {}
    """Call path (``"service op"`` steps below the entry) -> requests that took it."""
    roots_only: bool = True
    """Every entry span is a root span (``parent_span_id`` empty)."""
    also_called: int = 0
    """Spans of the same service and operation that are not entries (internal calls)."""
    service_internal: int = 0
    """Spans of the service, whatever their name, that are not entries."""

    def percentile_ns(self, p: float) -> int | None:
        """Nearest-rank percentile of the successful requests' durations."""
        d = self.durations_ns
        if not d:
            return None
        return d[max(0, math.ceil(p / 100.0 * len(d)) - 1)]

    @property
    def services_reached(self) -> list[str]:
        return sorted({step.split(" ", 1)[0] for path in self.paths for step in path})


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    """A service whose entry operations were not turned into per-operation SLOs."""

    service: str
    operations: int
    examples: tuple[str, ...]
    reason: str
    suggestion: str


class SloProposal(msgspec.Struct, frozen=True, kw_only=True):
    """One proposed SLO and the evidence behind it."""

    name: str
    service: str
    kind: str
    """``availability`` or ``latency``."""
    operation: str
    objective: float
    met: bool
    """The observed history meets the objective with margin."""
    total: int
    bad: int
    threshold_ns: int | None
    min_events: int
    total_predicate: dict[str, Any]
    evidence: str


class Discovery(msgspec.Struct, kw_only=True):
    """What discovery found: journeys, refusals, proposals, and the YAML."""

    spans: int
    journeys: list[Journey]
    refusals: list[Refusal]
    proposals: list[SloProposal]
    too_few: list[Journey]
    """Journeys under ``min_requests``: no SLO proposed."""
    service_level: list[Journey] = []
    """The journey over all entry operations of each refused service."""
    period: str
    min_requests: int
    max_operations: int
    yaml: str = ""

    def slo_set(self) -> SLOSet:
        """The proposed SLO file, loaded and validated."""
        import yaml as pyyaml

        return parse_slos(pyyaml.safe_load(self.yaml))


# ---------------------------------------------------------------- reading


def read_trace_files(
    paths: Sequence[str | os.PathLike[str]], *, lean: bool = False
) -> tuple[list[Span], int]:
    """The spans of OTLP JSON files (one export request per line, as the
    Collector's file exporter and ``srestream sim --formats otlp`` write),
    and the number of parts that could not be read.

    ``lean``: keep of each span's attributes only ``span.kind`` (in one
    dict shared by the spans of that kind), all discovery reads: a third
    less memory on large files (about 600 bytes a span held)."""
    from ..io._otlp import otlp_records

    outputs = Outputs("discover")
    spans: list[Span] = []
    unreadable = 0
    kinds: dict[Any, dict[str, Any]] = {}
    replace = msgspec.structs.replace
    for path in paths:
        p = os.fspath(path)
        try:
            fh = open(p, encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ConfigError([Problem("TRACEFILES", f"cannot read trace file: {exc.strerror}", p)]) from exc
        with fh:
            for i, line in enumerate(fh, 1):
                for r in otlp_records(RawLine(source=p, position=i, offset=0, text=line), outputs):
                    if type(r) is not Span:
                        continue
                    if lean:
                        k = r.attrs.get("span.kind")
                        shared = kinds.get(k)
                        if shared is None:
                            shared = kinds[k] = {} if k is None else {"span.kind": k}
                        r = replace(r, attrs=shared)
                    spans.append(r)
                unreadable += len(outputs.take().get("deadletter", ()))
    return spans, unreadable


# ---------------------------------------------------------------- journeys


def _span_kind(s: Span) -> str:
    return str(s.attrs.get("span.kind", "")).upper().removeprefix("SPAN_KIND_")


def _step(s: Span) -> str:
    return f"{s.service} {s.name}"


def find_journeys(spans: Iterable[Span]) -> list[Journey]:
    """The journeys of the spans, by (service, entry operation), sorted (see the module doc).

    Trace by trace: only one trace's span index is held at a time, and what
    a journey accumulates (counts, min/max times, durations sorted at the
    end) does not depend on the order of traces or spans."""
    traces: dict[str, list[Span]] = {}
    for s in spans:
        group = traces.get(s.trace_id)
        if group is None:
            traces[s.trace_id] = [s]
        else:
            group.append(s)
    journeys: dict[tuple[str, str], Journey] = {}
    internal: dict[tuple[str, str], int] = {}
    for group in traces.values():
        by_id = {s.span_id: s for s in group}
        children: dict[str, list[Span]] = {}
        for s in by_id.values():
            if s.parent_span_id in by_id:
                children.setdefault(s.parent_span_id, []).append(s)
        for s in by_id.values():
            key = (s.service, s.name)
            if not _is_entry(s, by_id):
                internal[key] = internal.get(key, 0) + 1
                continue
            j = journeys.get(key)
            if j is None:
                j = journeys[key] = Journey(service=s.service, operation=s.name, durations_ns=[],
                                            paths={}, first_ts_ns=s.start_ts_ns, last_ts_ns=s.end_ts_ns)
            _add_request(j, s, children)
    per_service: dict[str, int] = {}
    for (svc, _), n in internal.items():
        per_service[svc] = per_service.get(svc, 0) + n
    for key, j in journeys.items():
        j.also_called = internal.get(key, 0)
        j.service_internal = per_service.get(j.service, 0)
        j.durations_ns.sort()
    return [journeys[k] for k in sorted(journeys)]


def _is_entry(s: Span, by_id: dict[str, Span]) -> bool:
    """Whether ``s`` is where a journey enters (see the module doc)."""
    parent = by_id.get(s.parent_span_id) if s.parent_span_id else None
    if parent is None:
        return _span_kind(s) not in _OUTGOING
    return (parent.service != s.service and _span_kind(parent) in _OUTGOING
            and not (parent.parent_span_id and parent.parent_span_id in by_id))


def _add_request(j: Journey, s: Span, children: dict[str, list[Span]]) -> None:
    j.requests += 1
    if s.error:
        j.errors += 1
    else:
        j.durations_ns.append(s.end_ts_ns - s.start_ts_ns)
    j.first_ts_ns = min(j.first_ts_ns, s.start_ts_ns)
    j.last_ts_ns = max(j.last_ts_ns, s.end_ts_ns)
    if s.parent_span_id:
        j.roots_only = False
    # Every distinct path below the entry, counted once per request.
    seen: set[tuple[str, ...]] = set()
    stack: list[tuple[Span, tuple[str, ...]]] = [(s, ())]
    while stack:
        node, path = stack.pop()
        for c in children.get(node.span_id, ()):
            p = (*path, _step(c))
            if len(p) <= 32:  # a cycle in broken traces cannot run away
                seen.add(p)
                stack.append((c, p))
    for p in seen:
        j.paths[p] = j.paths.get(p, 0) + 1


def _service_journey(service: str, parts: Sequence[Journey]) -> Journey:
    """One journey over all the entry operations of a service."""
    j = Journey(service=service, operation="", durations_ns=[], paths={},
                first_ts_ns=min(p.first_ts_ns for p in parts), last_ts_ns=max(p.last_ts_ns for p in parts))
    for p in parts:
        j.requests += p.requests
        j.errors += p.errors
        j.durations_ns.extend(p.durations_ns)
        j.roots_only = j.roots_only and p.roots_only
        j.also_called = j.service_internal = p.service_internal  # every name of the service
        for path, n in p.paths.items():
            j.paths[path] = j.paths.get(path, 0) + n
    j.durations_ns.sort()
    return j


# ---------------------------------------------------------------- objectives


def meets_with_margin(bad: int, total: int, objective: float) -> bool:
    """Whether ``bad`` of ``total`` is at most half the error budget of a
    ladder ``objective``: ``max(bad, 1) / total <= (100 - objective) / 200``.

    A bad count of zero counts as one: a clean history supports no more
    than its size shows (199 good requests do not show 99.99%; 20,000
    would), so an objective needs at least ``2 / budget`` requests."""
    return total > 0 and 20_000 * max(bad, 1) <= _BUDGET_BP[objective] * total


def recommend_objective(bad: int, total: int) -> tuple[float, bool]:
    """The tightest ladder objective met with margin, and True; or the
    loosest rung and False when none is."""
    for objective in OBJECTIVE_LADDER:
        if meets_with_margin(bad, total, objective):
            return objective, True
    return OBJECTIVE_LADDER[-1], False


def nice_threshold_ns(p99_ns: int) -> int:
    """The smallest "nice" threshold at least ``p99_ns`` (whole seconds past the table)."""
    for t in NICE_THRESHOLDS_NS:
        if t >= p99_ns:
            return t
    return -(-p99_ns // 1_000_000_000) * 1_000_000_000


def _min_events(objective: float, requests: int, window_ns: int) -> int:
    need = math.ceil(MIN_EVENTS_BAD * 10_000 / _BUDGET_BP[objective])
    hourly = requests * HOUR_NS // max(window_ns, HOUR_NS)
    return max(1, min(need, hourly))


# ---------------------------------------------------------------- proposals


def discover_slos(
    spans: Iterable[Span],
    *,
    min_requests: int = 100,
    max_operations: int = 20,
    period: str = "30d",
    sources: Sequence[str] = (),
) -> Discovery:
    """Journeys, cardinality refusals and proposed SLOs of the spans, with
    the SLO YAML (checked to load); see the module doc."""
    problems = []
    p = parse_period(period)
    if p is None or (p.rolling and not MIN_ROLLING_NS <= p.length_ns <= MAX_ROLLING_NS):
        problems.append(Problem("--period", f"bad period {period!r} (rolling 1h..90d like 30d, or month, quarter)"))
    if min_requests < 1:
        problems.append(Problem("--min-requests", "must be at least 1"))
    if max_operations < 1:
        problems.append(Problem("--max-operations", "must be at least 1"))
    if problems:
        raise ConfigError(problems)
    spans = list(spans)
    journeys = find_journeys(spans)
    by_service: dict[str, list[Journey]] = {}
    for j in journeys:
        by_service.setdefault(j.service, []).append(j)
    refusals: list[Refusal] = []
    candidates: list[Journey] = []
    for svc in sorted(by_service):
        ops = by_service[svc]
        if len(ops) > max_operations:
            examples = tuple(j.operation for j in ops[:3])
            refusals.append(Refusal(
                service=svc, operations=len(ops), examples=examples,
                reason=f"{len(ops)} distinct entry operations, more than --max-operations "
                       f"{max_operations} (e.g. {', '.join(repr(e) for e in examples)}): ids in "
                       "span names would make one SLO per id",
                suggestion="name spans by route template (http.route, e.g. 'GET /users/{id}') "
                           "and discover again; meanwhile one service-level SLO is proposed",
            ))
            candidates.append(_service_journey(svc, ops))
        else:
            candidates.extend(ops)
    proposals: list[SloProposal] = []
    too_few: list[Journey] = []
    for j in candidates:
        if j.requests < min_requests:
            too_few.append(j)
            continue
        proposals.extend(_propose(j, min_requests))
    proposals = _unique_names(proposals)
    d = Discovery(spans=len(spans), journeys=journeys, refusals=refusals, proposals=proposals,
                  too_few=too_few, period=period, min_requests=min_requests,
                  max_operations=max_operations,
                  service_level=[j for j in candidates if not j.operation])
    from ._discovery_yaml import render_discovery

    d.yaml = render_discovery(d, sources)
    d.slo_set()  # what is proposed loads, or this is a bug worth failing on
    return d


def _propose(j: Journey, min_requests: int) -> list[SloProposal]:
    total: dict[str, Any] = {} if not j.operation else {"name": j.operation}
    note = ""
    if j.also_called and j.roots_only:
        total["parent_span_id"] = ""  # the entry spans only, not the internal calls
    elif j.also_called:
        note = (f" Note: the SLI also counts {j.also_called} spans of this service that are not "
                "entries (not every entry is a root span, so no predicate tells them apart).")
    window = max(j.last_ts_ns - j.first_ts_ns, 1)
    base = _slug(j.operation) if j.operation else "service"
    out = []
    objective, met = recommend_objective(j.errors, j.requests)
    out.append(SloProposal(
        name=f"{base}-availability", service=j.service, kind="availability", operation=j.operation,
        objective=objective, met=met, total=j.requests, bad=j.errors, threshold_ns=None,
        min_events=_min_events(objective, j.requests, window), total_predicate=total,
        evidence=_evidence(j, "failed", j.errors, j.requests, objective, met) + note,
    ))
    ok = len(j.durations_ns)
    p99 = j.percentile_ns(99)
    if ok >= min_requests and p99 is not None:
        threshold = nice_threshold_ns(p99)
        slow = ok - _count_at_most(j.durations_ns, threshold)
        objective, met = recommend_objective(slow, ok)
        out.append(SloProposal(
            name=f"{base}-latency", service=j.service, kind="latency", operation=j.operation,
            objective=objective, met=met, total=ok, bad=slow, threshold_ns=threshold,
            min_events=_min_events(objective, ok, window), total_predicate={**total, "error": False},
            evidence=_evidence(j, f"slower than {format_ms(threshold)} (p99 {format_ms(p99)} "
                                  "rounded up)", slow, ok, objective, met) + note,
        ))
    return out


def _count_at_most(sorted_ns: list[int], limit: int) -> int:
    from bisect import bisect_right

    return bisect_right(sorted_ns, limit)


def _evidence(j: Journey, what: str, bad: int, total: int, objective: float, met: bool) -> str:
    budget = _BUDGET_BP[objective] / 100.0
    seen = f"{bad} of {total} requests {what} ({100.0 * bad / total:.3g}%)"
    when = f"{iso(j.first_ts_ns)} .. {iso(j.last_ts_ns)}"
    if met:
        why = (f"{objective} is the tightest of {', '.join(map(str, OBJECTIVE_LADDER))} whose "
               f"error budget ({budget:g}%) the history meets with margin (max(bad, 1) <= half the "
               "budget)")
    else:
        why = (f"NOT MET: the history does not meet even {objective} with margin (max(bad, 1) <= "
               f"half the budget, {budget / 2:g}%); fix the journey or loosen by hand")
    return f"Discovered from traces: {seen}, {when}. {why}."


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-") or "op"


def _unique_names(proposals: list[SloProposal]) -> list[SloProposal]:
    """Suffix names that two operations slug alike (``GET /a`` and ``get-a``)."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for p in proposals:
        key = (p.service, p.name)
        n = seen.get(key, 0) + 1
        seen[key] = n
        out.append(p if n == 1 else msgspec.structs.replace(p, name=f"{p.name}-{n}"))
    return out


def iso(ts_ns: int) -> str:
    """RFC 3339 UTC to the second."""
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_ms(ns: int) -> str:
    """A duration for people and for SLO files: ``250ms``, ``2.5s``, ``6.12ms``."""
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.4g}s"
    return f"{ns / 1e6:.4g}ms"

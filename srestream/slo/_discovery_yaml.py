"""The SLO YAML of a discovery (see :mod:`srestream.slo._discovery`).

An srestream SLO file: the evidence as comments at the top (journeys and
their call paths, cardinality refusals, journeys with too few requests)
and in each SLO's ``description``.  Strings are written as JSON strings
(valid YAML double-quoted scalars), so span names with colons, quotes or
newlines cannot break the file; the same discovery gives the same bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._discovery import Discovery, Journey, SloProposal

__all__ = ["render_discovery", "threshold_text"]

_MAX_PATHS = 12
"""Call paths listed per journey (the most taken first)."""


def threshold_text(ns: int) -> str:
    """A threshold as an SLO file writes it: ``250ms``, ``2.5s``, ``10s``, ``2.5ms``."""
    if ns % 1_000_000_000 == 0:
        return f"{ns // 1_000_000_000}s"
    if ns >= 1_000_000_000 and ns % 100_000_000 == 0:
        return f"{ns / 1e9:g}s"
    if ns % 1_000_000 == 0:
        return f"{ns // 1_000_000}ms"
    return f"{ns / 1e6:g}ms"


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _journey_lines(j: Journey, operations: int = 0) -> list[str]:
    """A journey's evidence and call paths; ``operations``: how many entry
    operations a service-level journey stands for."""
    from ._discovery import format_ms, iso

    op = _q(j.operation) if j.operation else f"(all {operations} entry operations, refused per operation)"
    pct = 100.0 * j.errors / j.requests if j.requests else 0.0
    lat = " ".join(f"p{p} {format_ms(v)}" for p in (50, 95, 99)
                   if (v := j.percentile_ns(p)) is not None) or "no successful request"
    head = (f"#   {_q(j.service)} {op}: {j.requests} requests, {j.errors} failed ({pct:.3g}%), "
            f"{lat}; {iso(j.first_ts_ns)} .. {iso(j.last_ts_ns)}")
    out = [head]
    if j.also_called:
        out.append(f"#     (also called internally {j.also_called} times)" if j.operation else
                   f"#     ({j.also_called} other spans of the service, not entries)")
    paths = sorted(j.paths.items(), key=lambda kv: (-kv[1], kv[0]))
    for path, n in paths[:_MAX_PATHS]:
        steps = " -> ".join(_q(s)[1:-1] for s in path)
        out.append(f"#     -> {steps} ({100.0 * n / j.requests:.3g}%)")
    if len(paths) > _MAX_PATHS:
        out.append(f"#     ... {len(paths) - _MAX_PATHS} more call paths")
    if not paths:
        out.append("#     (no calls below the entry span)")
    return out


def _slo_lines(p: SloProposal, period: str) -> list[str]:
    from ._discovery import format_ms

    what = _q(p.operation) if p.operation else "(service level)"
    flag = "" if p.met else "  -- NOT MET by the history, see description"
    lines = [
        f"  # {_q(p.service)} {what} {p.kind}: {p.bad} bad of {p.total}{flag}",
        f"  - name: {_q(p.name)}",
        f"    service: {_q(p.service)}",
        f"    objective: {p.objective}",
        f"    period: {_q(period)}",
        f"    description: {_q(p.evidence)}",
        "    sli:",
        f"      kind: {p.kind}",
        "      source: spans",
        f"      total: {json.dumps(p.total_predicate, ensure_ascii=False)}",
    ]
    if p.threshold_ns is not None:
        lines.append(f"      threshold: {threshold_text(p.threshold_ns)}  # observed p99 rounded up "
                     f"({format_ms(p.threshold_ns)})")
    lines += ["    alerting:", f"      min_events: {p.min_events}"]
    return lines


def render_discovery(d: Discovery, sources: Sequence[str] = ()) -> str:
    """The SLO file of a discovery, evidence in comments."""
    from ._discovery import MIN_EVENTS_BAD, OBJECTIVE_LADDER, iso

    files = ", ".join(os.path.basename(s) for s in sources) or "spans given in code"
    lines = [f"# SLOs proposed by `srestream discover` from {d.spans} spans ({files})."]
    if d.journeys:
        first = min(j.first_ts_ns for j in d.journeys)
        last = max(j.last_ts_ns for j in d.journeys)
        lines.append(f"# Observed history: {iso(first)} .. {iso(last)}.  Review before use: it "
                     "covers only what was recorded.")
    lines += [
        "# Objective: the tightest of " + ", ".join(map(str, OBJECTIVE_LADDER)) + " whose error",
        "#   budget the observed history meets with margin: max(bad, 1) / total <= half the",
        "#   budget (a clean history counts one bad event: it shows no more than its size).",
        "# Availability: good = the entry span did not fail.  Latency: good = duration <= threshold,",
        "#   over the requests that did not fail; threshold = observed p99 rounded up to",
        "#   1, 2.5, 5 x 10^k ms (... 50ms, 100ms, 250ms, 500ms, 1s, 2.5s, 5s, 10s ...).",
        f"# alerting.min_events: the events holding {MIN_EVENTS_BAD} bad ones at the budget rate, at most",
        "#   the journey's mean hourly traffic (no page on the first errors of a quiet window).",
        "#",
        "# Journeys (entry operation -> call path, share of its requests):",
    ]
    # A refused service is shown as one journey: its operations may be thousands of ids.
    refused = {r.service: r.operations for r in d.refusals}
    service_level = {j.service: j for j in d.service_level}
    for j in d.journeys:
        if j.service not in refused:
            lines += _journey_lines(j)
        elif j.service in service_level:
            lines += _journey_lines(service_level.pop(j.service), refused[j.service])
    if not d.journeys:
        lines.append("#   none: no entry span found")
    if d.refusals:
        lines += ["#", f"# Refused by the cardinality guard (--max-operations {d.max_operations}):"]
        for r in d.refusals:
            lines += [f"#   {_q(r.service)}: {_q(r.reason)[1:-1]}",
                      f"#     suggestion: {_q(r.suggestion)[1:-1]}"]
    if d.too_few:
        lines += ["#", f"# Not proposed, fewer than --min-requests {d.min_requests} requests:"]
        for j in d.too_few:
            op = _q(j.operation) if j.operation else "(service level)"
            lines.append(f"#   {_q(j.service)} {op}: {j.requests} requests")
    lines.append("slos:" if d.proposals else "slos: []")
    for p in d.proposals:
        lines += _slo_lines(p, d.period)
    return "\n".join(lines) + "\n"

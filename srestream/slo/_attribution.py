"""Error budget per incident (SPEC §3.6): the consumption that fell inside
an incident's interval, attributed to it, from the budget ledger.

For each incident (read by :mod:`._ground_truth`: a postmortem incidents
file or a sim ``truth.json``) and each SLO of its service and of its
``affected`` services (only SLOs named ``slo`` when the incident names
one), over the ledger buckets starting in ``[start, end)``:

* ``good``, ``total``, ``bad`` events inside the incident;
* ``budget_consumed``: the share of the SLO's budget *for the period the
  incident falls in* that those bad events spent.  Event-weighted:
  ``bad_in_incident / (budget x total_in_period)`` (:func:`consumed_ratio`
  with the period's total); time-sliced (the ledger holds one slice per
  minute, good or bad): ``bad_slices / (budget x period / 1 minute)``
  (:func:`time_sliced_consumed`).  A rolling period is the one ending at
  the incident's end (an incident longer than the period counts its last
  period only); a calendar period is the month or quarter in the SLO's
  time zone, and an incident crossing a period boundary gets one row per
  period, each with its own part of the interval and its own budget;
* ``period_budget_consumed``: everything the period consumed, and
  ``share_of_period_consumption``: the part of it inside the incident
  (None when the period had no bad event);
* ``outage_minutes``: minutes of full outage that would spend as much
  budget (``budget_consumed x budget minutes of the period``).

Overlapping incidents are not split: each is charged everything inside its
own interval, so consumption in a shared stretch counts for both (their
sum can exceed the period's).  Each row lists in ``overlaps`` the other
incidents charging the same SLO over an intersecting interval, so a reader
knows which figures share events; an incident lists in ``overlaps`` every
incident whose interval intersects its own.

Resolution: sums come from the finest rows the ledger still holds (whole
days and hours from the day and hour tables, which equal their minutes;
the ragged edges from minute rows).  When the minutes of an edge's hour
have been compacted away (the hour row covers more than the minute rows
left), the edge is counted at hour resolution: the counted interval grows
to the whole hour, and the row says so in ``hour_resolution_edges``
(``start``, ``end``) with the interval actually counted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

import msgspec

from .._errors import ConfigError, Problem
from ._budget import (
    budget_minutes,
    calendar_period_bounds,
    consumed_ratio,
    objective_ratio,
    time_sliced_consumed,
)
from ._ground_truth import TruthIncident
from ._report import ReportSLO, _iso

__all__ = [
    "IncidentBudget",
    "IncidentSLOBudget",
    "attribute_incidents",
    "ledger_sums",
    "render_incidents_markdown",
]

MINUTE_NS = 60_000_000_000
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS
SLICE_NS = MINUTE_NS
"""Length of one time slice in the ledger (the windows stage's buckets)."""


class IncidentSLOBudget(msgspec.Struct, frozen=True, kw_only=True):
    """The budget one SLO spent inside one incident (one period of it)."""

    slo: str
    service: str
    role: str
    """``service`` (the service at fault) or ``affected``."""
    objective: float
    period: str
    budgeting: str
    """``occurrences`` (event-weighted) or ``timeslices``."""
    period_start_ts_ns: int
    period_end_ts_ns: int
    counted_start_ts_ns: int
    counted_end_ts_ns: int
    """The interval actually summed: the incident's, clipped to the period,
    widened to whole hours at the edges named in ``hour_resolution_edges``."""
    good: int
    total: int
    bad: int
    budget_consumed: float
    period_budget_consumed: float
    share_of_period_consumption: float | None
    outage_minutes: float
    hour_resolution_edges: list[str] = []
    """Edges counted at hour resolution (their minutes compacted):
    ``start``, ``end``, and ``period start``/``period end`` for the
    period's own sums."""
    overlaps: list[str] = []
    """Other incidents charging this SLO over an intersecting interval."""


class IncidentBudget(msgspec.Struct, frozen=True, kw_only=True):
    incident_id: str
    service: str
    start_ts_ns: int
    end_ts_ns: int
    summary: str = ""
    affected: list[str] = []
    slo_filter: str = ""
    """The incident's ``slo``: only SLOs of that name were attributed."""
    slos: list[IncidentSLOBudget] = []
    no_slo: list[str] = []
    """Services of the incident (at fault or affected) without any SLO."""
    overlaps: list[str] = []


# ------------------------------------------------------------------ sums


def _floor(x: int, step: int) -> int:
    return x // step * step


def _ceil(x: int, step: int) -> int:
    return -(-x // step) * step


class _KeySums:
    """Range sums of one (SLO, service) over the ledger tables."""

    def __init__(self, db: sqlite3.Connection, slo: str, service: str) -> None:
        self.db = db
        self.key = (slo, service)
        self._complete: dict[int, bool] = {}

    def _sum(self, table: str, lo: int, hi: int) -> tuple[int, int]:
        if lo >= hi:
            return 0, 0
        good, total = self.db.execute(
            f"SELECT COALESCE(SUM(good), 0), COALESCE(SUM(total), 0) FROM {table} "
            "WHERE bucket_ts_ns >= ? AND bucket_ts_ns < ? AND slo = ? AND service = ?",
            (lo, hi, *self.key)).fetchone()
        return int(good), int(total)

    def minutes_complete(self, hour: int) -> bool:
        """Whether the minute rows of ``hour`` are all still there: they
        cover as much time as the hour row (compaction deletes minutes only)."""
        done = self._complete.get(hour)
        if done is None:
            (h,) = self.db.execute(
                "SELECT span_ns FROM sli_rollup_hour WHERE bucket_ts_ns = ? AND slo = ? "
                "AND service = ?", (hour, *self.key)).fetchone() or (0,)
            (m,) = self.db.execute(
                "SELECT COALESCE(SUM(span_ns), 0) FROM sli_rollup_minute WHERE bucket_ts_ns >= ? "
                "AND bucket_ts_ns < ? AND slo = ? AND service = ?",
                (hour, hour + HOUR_NS, *self.key)).fetchone()
            done = self._complete[hour] = int(h) == int(m)
        return done

    def _whole_hours(self, lo: int, hi: int) -> tuple[int, int]:
        """``[lo, hi)`` on hour boundaries: whole days from the day table."""
        d0, d1 = _ceil(lo, DAY_NS), _floor(hi, DAY_NS)
        parts = ([("sli_rollup_hour", lo, d0), ("sli_rollup_day", d0, d1),
                  ("sli_rollup_hour", d1, hi)] if d0 < d1 else [("sli_rollup_hour", lo, hi)])
        good = total = 0
        for table, a, b in parts:
            g, t = self._sum(table, a, b)
            good += g
            total += t
        return good, total

    def sums(self, start: int, end: int) -> tuple[int, int, int, int, list[str]]:
        """(good, total, counted start, counted end, edges at hour resolution)
        of the buckets starting in ``[start, end)``."""
        edges: list[str] = []
        h_start, h_end = _floor(start, HOUR_NS), _floor(end, HOUR_NS)
        if start != h_start and not self.minutes_complete(h_start):
            start = h_start
            edges.append("start")
        if end != h_end and not self.minutes_complete(h_end):
            end = h_end + HOUR_NS
            edges.append("end")
        if start >= end:
            return 0, 0, start, end, edges
        lo, hi = _ceil(start, HOUR_NS), _floor(end, HOUR_NS)
        if lo >= hi:  # inside one hour, its minutes all there
            g, t = self._sum("sli_rollup_minute", start, end)
            return g, t, start, end, edges
        good, total = self._whole_hours(lo, hi)
        for a, b in ((start, lo), (hi, end)):
            g, t = self._sum("sli_rollup_minute", a, b)
            good += g
            total += t
        return good, total, start, end, edges


def ledger_sums(db: sqlite3.Connection, slo: str, service: str, start: int, end: int
                ) -> tuple[int, int, int, int, list[str]]:
    """Good and total events of one SLO in the buckets starting in
    ``[start, end)``, at the finest resolution the ledger still holds:
    ``(good, total, counted_start, counted_end, hour_resolution_edges)``."""
    return _KeySums(db, slo, service).sums(start, end)


# ------------------------------------------------------------------ attribution


def _periods(slo: ReportSLO, start: int, end: int) -> list[tuple[int, int]]:
    """The periods ``[ps, pe)`` the incident ``[start, end)`` falls in."""
    if slo.period_ns is not None:
        return [(end - slo.period_ns, end)]
    out = []
    t = start
    while t < end:
        ps, pe = calendar_period_bounds(t, slo.calendar, slo.time_zone)
        out.append((ps, pe))
        t = pe
    return out


def _row(sums: _KeySums, slo: ReportSLO, role: str, inc: TruthIncident, ps: int, pe: int,
         overlaps: list[str]) -> IncidentSLOBudget:
    good, total, c0, c1, edges = sums.sums(max(inc.start_ts_ns, ps), min(inc.end_ts_ns, pe))
    p_good, p_total, _, _, p_edges = sums.sums(ps, pe)
    edges += [f"period {e}" for e in p_edges]
    bad, p_bad = total - good, p_total - p_good
    objective = objective_ratio(slo.objective)
    if slo.time_sliced:
        consumed = time_sliced_consumed(bad, SLICE_NS, objective, pe - ps)
        p_consumed = time_sliced_consumed(p_bad, SLICE_NS, objective, pe - ps)
    else:
        # bad_in_incident / (budget x total_in_period)
        consumed = consumed_ratio(p_total - bad, p_total, objective)
        p_consumed = consumed_ratio(p_good, p_total, objective)
    return IncidentSLOBudget(
        slo=slo.slo, service=slo.service, role=role, objective=slo.objective, period=slo.period,
        budgeting="timeslices" if slo.time_sliced else "occurrences",
        period_start_ts_ns=ps, period_end_ts_ns=pe, counted_start_ts_ns=c0, counted_end_ts_ns=c1,
        good=good, total=total, bad=bad, budget_consumed=consumed,
        period_budget_consumed=p_consumed,
        share_of_period_consumption=bad / p_bad if p_bad else None,
        outage_minutes=consumed * budget_minutes(objective, pe - ps),
        hour_resolution_edges=edges, overlaps=overlaps,
    )


def attribute_incidents(db: sqlite3.Connection, slos: Sequence[ReportSLO],
                        incidents: Iterable[TruthIncident]) -> list[IncidentBudget]:
    """The error budget each incident consumed, per SLO of its service and
    of its affected services (see the module doc), in the incidents' order.

    An incident naming an ``slo`` no SLO has is refused (a typo would read
    as "no SLO"): :class:`ConfigError` lists every such incident."""
    incs = list(incidents)
    names = {s.slo for s in slos}
    problems = [Problem(f"{i.where or i.incident_id}.slo",
                        f"no SLO is named {i.slo!r} (known: {', '.join(sorted(names))})")
                for i in incs if i.slo and i.slo not in names]
    if problems:
        raise ConfigError(problems)
    by_service: dict[str, list[ReportSLO]] = {}
    for s in slos:
        by_service.setdefault(s.service, []).append(s)

    def charged(inc: TruthIncident) -> list[tuple[ReportSLO, str]]:
        out = []
        roles = {inc.service: "service"}
        for a in inc.affected:
            roles.setdefault(a, "affected")  # a service listed as its own dependent: once
        for svc, role in roles.items():
            out += [(s, role) for s in by_service.get(svc, ()) if not inc.slo or s.slo == inc.slo]
        return out

    keys = [{(s.slo, s.service) for s, _ in charged(inc)} for inc in incs]
    sums: dict[tuple[str, str], _KeySums] = {}
    result = []
    for n, inc in enumerate(incs):
        others = [(m, o) for m, o in enumerate(incs) if m != n
                  and o.start_ts_ns < inc.end_ts_ns and inc.start_ts_ns < o.end_ts_ns]
        rows = []
        for slo, role in charged(inc):
            key = (slo.slo, slo.service)
            shared = [o.incident_id for m, o in others if key in keys[m]]
            ks = sums.get(key) or sums.setdefault(key, _KeySums(db, *key))
            rows += [_row(ks, slo, role, inc, ps, pe, shared)
                     for ps, pe in _periods(slo, inc.start_ts_ns, inc.end_ts_ns)]
        services = dict.fromkeys((inc.service, *inc.affected))
        result.append(IncidentBudget(
            incident_id=inc.incident_id, service=inc.service, start_ts_ns=inc.start_ts_ns,
            end_ts_ns=inc.end_ts_ns, summary=inc.summary, affected=list(inc.affected),
            slo_filter=inc.slo, slos=rows,
            no_slo=[s for s in services if not any(r.service == s for r in rows)],
            overlaps=[o.incident_id for _, o in others],
        ))
    return result


# ------------------------------------------------------------------ rendering


def _span(start: int, end: int) -> str:
    return f"{_iso(start)} → {_iso(end)}"


def render_incidents_markdown(incidents: Sequence[IncidentBudget]) -> str:
    """The ``Incidents`` section: per incident and SLO, the events inside
    it, the share of the period's budget they consumed, their share of all
    the period consumed, and minutes of full outage equivalent."""
    lines = ["## Incidents", ""]
    if not incidents:
        return "\n".join([*lines, "No incident in the incidents file.", ""])
    lines += [("| incident | interval | service | SLO | role | period | bad / total inside | "
               "budget consumed | share of the period's consumption | outage minutes | notes |"),
              "|---|---|---|---|---|---|---:|---:|---:|---:|---|"]
    for inc in incidents:
        head = f"| {inc.incident_id} | {_span(inc.start_ts_ns, inc.end_ts_ns)} "
        for r in inc.slos:
            notes = []
            if r.budgeting == "timeslices":
                notes.append("time slices")
            if (r.counted_start_ts_ns, r.counted_end_ts_ns) != (inc.start_ts_ns, inc.end_ts_ns):
                notes.append(f"counted {_span(r.counted_start_ts_ns, r.counted_end_ts_ns)}")
            if r.hour_resolution_edges:
                notes.append("at hour resolution: " + ", ".join(r.hour_resolution_edges))
            if r.overlaps:
                notes.append("overlaps " + ", ".join(r.overlaps))
            share = "—" if r.share_of_period_consumption is None \
                else f"{100 * r.share_of_period_consumption:.1f}%"
            lines.append(
                f"{head}| {r.service} | {r.slo} | {r.role} | {r.period} "
                f"({_iso(r.period_start_ts_ns)[:10]} → {_iso(r.period_end_ts_ns)[:10]}) | "
                f"{r.bad} / {r.total} | {100 * r.budget_consumed:.2f}% | {share} | "
                f"{r.outage_minutes:.1f} | {'; '.join(notes) or '—'} |")
        for svc in inc.no_slo:
            what = f"no SLO named {inc.slo_filter}" if inc.slo_filter else "no SLO"
            role = "service" if svc == inc.service else "affected"
            lines.append(f"{head}| {svc} | {what} | {role} | — | — | — | — | — | — |")
    return "\n".join(lines) + "\n"

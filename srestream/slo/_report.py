"""The compliance report (``srestream report``): per SLO, service, team,
component and SLI category,
over the trailing 7, 30 and 90 days and the SLO's own period, from the
budget ledger (:mod:`srestream.slo._ledger`).

For each SLO and window: good and total events, the SLI, whether it met
its objective, the budget consumed (bad events over the bad events the
objective allows for that traffic: 1.0 is exactly the whole budget, which
is also the mean burn rate), data coverage (the share of the window with
data: buckets the ledger never received count as no data), and the trend
against the window before it.  Services, teams, components and SLI
categories (availability, latency, ...) get counts of compliant and
breaching SLOs, their worst budget consumption and lowest coverage.

Windows are ``(at - N days, at]`` with ``at`` rounded down to the minute.
Each window is summed in SQL from the coarsest rows that fit it: whole UTC
days from the day table, the ragged hours from the hour table, the ragged
minutes from the minute table (minutes already compacted are gone, so an
edge older than the ledger's minute retention counts at hour resolution).
That is a few dozen indexed range queries whatever the history, which is
why 100 services x 3 SLOs x 90 days reports in well under a second.

With ``--incidents FILE`` the report also gives the budget each incident
consumed (:mod:`srestream.slo._attribution`): an ``Incidents`` section
after the SLOs in Markdown, an ``incidents`` list in JSON; without it the
output is unchanged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sqlite3
import zoneinfo
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from .._errors import ConfigError, Problem
from .._output import rfc3339_ms
from ._budget import budget_ratio

__all__ = [
    "REPORT_WINDOWS_DAYS",
    "ComplianceReport",
    "GroupCompliance",
    "ReportSLO",
    "SLOCompliance",
    "WindowFigures",
    "build_report",
    "load_report_slos",
    "render_json",
    "render_markdown",
    "run_report_command",
    "sparkline",
]

MINUTE_NS = 60_000_000_000
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS
REPORT_WINDOWS_DAYS = (7, 30, 90)
_TREND_BAND = 0.05
"""Budget-consumption change (as a share of the budget) below which a
trend is ``steady``."""


class ReportSLO(msgspec.Struct, frozen=True, kw_only=True):
    """What the report needs to know of one SLO."""

    slo: str
    service: str
    objective: float
    """Percent."""
    period: str
    period_ns: int | None
    """Rolling period length; None for calendar periods."""
    calendar: str = ""
    time_zone: str = "UTC"
    team: str = ""
    tier: str = ""
    component: str = ""
    category: str = ""
    """The SLI category: its kind (availability, latency, ...)."""
    time_sliced: bool = False
    """Whether the ledger holds time slices (one per minute, good or bad)
    rather than events for this SLO (used by the per-incident budgets)."""


class WindowFigures(msgspec.Struct, frozen=True, kw_only=True):
    window: str
    start_ts_ns: int
    end_ts_ns: int
    good: int
    total: int
    sli: float | None
    """Percent good; None without traffic."""
    compliant: bool | None
    budget_consumed: float
    """Bad events / allowed bad events (1.0 = the whole budget)."""
    budget_remaining: float
    coverage: float
    """Share of the window with data, 0..1."""
    trend: str | None = None
    """``better``, ``worse`` or ``steady`` against the previous window of the
    same length; None when that window had no traffic."""
    previous_budget_consumed: float | None = None


class SLOCompliance(msgspec.Struct, frozen=True, kw_only=True):
    slo: str
    service: str
    team: str
    tier: str
    component: str
    objective: float
    period: str
    period_window: WindowFigures
    windows: list[WindowFigures]
    daily: list[tuple[int, int, int]] = []
    """The trend line: ``(day_ts_ns, good, total)`` for each of the 90 UTC
    days before the report's day (days without rollups left out)."""
    category: str = ""


class GroupCompliance(msgspec.Struct, frozen=True, kw_only=True):
    """A service, team, component or SLI category, per trailing window."""

    name: str
    slos: int
    windows: list[dict[str, Any]]
    """Per window: ``window``, ``compliant``, ``breaching`` (SLO names),
    ``no_traffic``, ``max_budget_consumed``, ``min_coverage``."""


class ComplianceReport(msgspec.Struct, frozen=True, kw_only=True):
    at_ts_ns: int
    slos: list[SLOCompliance]
    services: list[GroupCompliance]
    teams: list[GroupCompliance]
    components: list[GroupCompliance] = []
    categories: list[GroupCompliance] = []
    """By SLI category (availability, latency, ...)."""
    unknown_in_ledger: list[str] = []
    """``service/slo`` keys with rollups but no SLO in the SLO file."""


# ------------------------------------------------------------------ SQL


def _ceil(x: int, step: int) -> int:
    return -(-x // step) * step


def _ranges(start: int, end: int) -> list[tuple[str, int, int]]:
    """Cover ``[start, end)`` with (table, lo, hi): whole days, whole hours
    on the edges, minutes on the ragged ends."""
    out: list[tuple[str, int, int]] = []
    if start >= end:
        return out
    h0, h1 = _ceil(start, HOUR_NS), end // HOUR_NS * HOUR_NS
    if h0 >= h1:
        return [("sli_rollup_minute", start, end)]
    d0, d1 = _ceil(start, DAY_NS), end // DAY_NS * DAY_NS
    out.append(("sli_rollup_minute", start, h0))
    if d0 < d1:
        out += [("sli_rollup_hour", h0, d0), ("sli_rollup_day", d0, d1), ("sli_rollup_hour", d1, h1)]
    else:
        out.append(("sli_rollup_hour", h0, h1))
    out.append(("sli_rollup_minute", h1, end))
    return [r for r in out if r[1] < r[2]]


_Sums = dict[tuple[str, str], list[int]]


def _add(acc: _Sums, key: tuple[str, str], good: int, total: int, covered: int) -> None:
    a = acc.get(key)
    if a is None:
        acc[key] = [good, total, covered]
    else:
        a[0] += good
        a[1] += total
        a[2] += covered


def _window_sums(db: sqlite3.Connection, windows: Sequence[tuple[int, int]]
                 ) -> dict[tuple[int, int], _Sums]:
    """For each window ``[start, end)``: (slo, service) -> [good, total,
    covered_ns].  The whole days of every window come from one scan of the
    day table (a conditional sum per window); the ragged hours and minutes
    from small range queries."""
    out: dict[tuple[int, int], _Sums] = {w: {} for w in windows}
    day_parts: list[tuple[tuple[int, int], int, int]] = []
    for w, acc in out.items():
        for table, lo, hi in _ranges(*w):
            if table == "sli_rollup_day":
                day_parts.append((w, lo, hi))
                continue
            rows = db.execute(
                f"SELECT slo, service, SUM(good), SUM(total), SUM(span_ns - no_data_ns) "
                f"FROM {table} WHERE bucket_ts_ns >= ? AND bucket_ts_ns < ? GROUP BY slo, service",
                (lo, hi))
            for slo, service, good, total, covered in rows:
                _add(acc, (slo, service), good, total, covered)
    if day_parts:
        cols = []
        params: list[int] = []
        for _, lo, hi in day_parts:
            inside = "(bucket_ts_ns >= ? AND bucket_ts_ns < ?)"
            cols += [f"SUM({inside} * good)", f"SUM({inside} * total)",
                     f"SUM({inside} * (span_ns - no_data_ns))"]
            params += [lo, hi] * 3
        lo = min(p[1] for p in day_parts)
        hi = max(p[2] for p in day_parts)
        rows = db.execute(f"SELECT slo, service, {', '.join(cols)} FROM sli_rollup_day "
                          "WHERE bucket_ts_ns >= ? AND bucket_ts_ns < ? GROUP BY slo, service",
                          (*params, lo, hi))
        for row in rows:
            key = (row[0], row[1])
            for i, (w, _, _) in enumerate(day_parts):
                good, total, covered = row[2 + 3 * i: 5 + 3 * i]
                if total or covered:
                    _add(out[w], key, good, total, covered)
    return out


def _daily(db: sqlite3.Connection, day_end: int, days: int) -> dict[tuple[str, str],
                                                                   list[tuple[int, int, int]]]:
    out: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    rows = db.execute(
        "SELECT slo, service, bucket_ts_ns, good, total FROM sli_rollup_day "
        "WHERE bucket_ts_ns >= ? AND bucket_ts_ns < ? ORDER BY bucket_ts_ns",  # the key order
        (day_end - days * DAY_NS, day_end))
    for slo, service, day, good, total in rows:
        out.setdefault((slo, service), []).append((day, good, total))
    return out


# ------------------------------------------------------------------ figures


def _figures(name: str, slo: ReportSLO, start: int, end: int, sums: list[int] | None,
             previous: WindowFigures | None = None) -> WindowFigures:
    good, total, covered = sums if sums is not None else (0, 0, 0)
    budget = budget_ratio(slo.objective)
    consumed = (total - good) / (budget * total) if total else 0.0
    trend = None
    prev_consumed = None
    if previous is not None and previous.total:
        prev_consumed = previous.budget_consumed
        delta = consumed - prev_consumed
        trend = "worse" if delta > _TREND_BAND else "better" if delta < -_TREND_BAND else "steady"
    sli = 100.0 * good / total if total else None
    return WindowFigures(
        window=name, start_ts_ns=start, end_ts_ns=end, good=good, total=total, sli=sli,
        compliant=None if sli is None else sli >= slo.objective,
        budget_consumed=consumed, budget_remaining=1.0 - consumed,
        coverage=min(1.0, covered / (end - start)) if end > start else 0.0,
        trend=trend, previous_budget_consumed=prev_consumed,
    )


def _period_start(slo: ReportSLO, at: int) -> int:
    if slo.period_ns is not None:
        return at - slo.period_ns
    tz = zoneinfo.ZoneInfo(slo.time_zone)
    local = dt.datetime.fromtimestamp(at / 1e9, tz)
    month = local.month if slo.calendar == "month" else 3 * ((local.month - 1) // 3) + 1
    start = dt.datetime(local.year, month, 1, tzinfo=tz)
    return int(start.timestamp()) * 1_000_000_000


def build_report(db: sqlite3.Connection, slos: Sequence[ReportSLO], at_ns: int) -> ComplianceReport:
    """Compute the report as of ``at_ns`` from an open ledger connection."""
    at = at_ns // MINUTE_NS * MINUTE_NS
    wanted = {(at - k * d * DAY_NS, at - (k - 1) * d * DAY_NS)
              for d in REPORT_WINDOWS_DAYS for k in (1, 2)}
    wanted |= {(_period_start(slo, at), at) for slo in slos}
    sums = _window_sums(db, sorted(wanted))

    def window(start: int, end: int) -> _Sums:
        return sums[(start, end)]

    daily = _daily(db, at // DAY_NS * DAY_NS, max(REPORT_WINDOWS_DAYS))
    out_slos = []
    for slo in slos:
        key = (slo.slo, slo.service)
        wins = []
        for days in REPORT_WINDOWS_DAYS:
            n = days * DAY_NS
            prev = _figures(f"{days}d", slo, at - 2 * n, at - n, window(at - 2 * n, at - n).get(key))
            wins.append(_figures(f"{days}d", slo, at - n, at, window(at - n, at).get(key), prev))
        ps = _period_start(slo, at)
        out_slos.append(SLOCompliance(
            slo=slo.slo, service=slo.service, team=slo.team, tier=slo.tier,
            component=slo.component, objective=slo.objective, period=slo.period,
            period_window=_figures(slo.period, slo, ps, at, window(ps, at).get(key)),
            windows=wins, daily=daily.get(key, []), category=slo.category,
        ))
    known = {(s.slo, s.service) for s in slos}
    # every stored rollup also lands in the day table: it names every key
    seen = set(db.execute("SELECT DISTINCT slo, service FROM sli_rollup_day").fetchall())
    unknown = sorted(f"{service}/{slo}" for slo, service in seen - known)
    return ComplianceReport(
        at_ts_ns=at, slos=out_slos,
        services=_groups(out_slos, lambda s: s.service),
        teams=_groups(out_slos, lambda s: s.team or "(no team)"),
        components=_groups(out_slos, lambda s: s.component or "(no component)"),
        categories=_groups(out_slos, lambda s: s.category or "(unknown)"),
        unknown_in_ledger=unknown,
    )


def _groups(slos: Iterable[SLOCompliance], key: Any) -> list[GroupCompliance]:
    by: dict[str, list[SLOCompliance]] = {}
    for s in slos:
        by.setdefault(key(s), []).append(s)
    out = []
    for name in sorted(by):
        members = by[name]
        wins = []
        for i, days in enumerate(REPORT_WINDOWS_DAYS):
            figs = [(m, m.windows[i]) for m in members]
            wins.append({
                "window": f"{days}d",
                "compliant": sum(1 for _, f in figs if f.compliant),
                "breaching": sorted(f"{m.service}/{m.slo}" for m, f in figs if f.compliant is False),
                "no_traffic": sum(1 for _, f in figs if f.compliant is None),
                "max_budget_consumed": max(f.budget_consumed for _, f in figs),
                "min_coverage": min(f.coverage for _, f in figs),
            })
        out.append(GroupCompliance(name=name, slos=len(members), windows=wins))
    return out


# ------------------------------------------------------------------ rendering

_json = msgspec.json.Encoder()


def _with_times(node: Any) -> Any:
    """Add an RFC 3339 sibling (``at``, ``start``...) to every ``*_ts_ns``
    of the dicts in ``node`` (lists of scalars, like ``daily``, stay as they are)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k.endswith("_ts_ns") and isinstance(v, int):
                out[k[: -len("_ts_ns")]] = rfc3339_ms(v)
            out[k] = _with_times(v) if isinstance(v, (dict, list)) else v
        return out
    if isinstance(node, list) and node and isinstance(node[0], dict):
        return [_with_times(x) for x in node]
    return node


def render_json(report: ComplianceReport, incidents: Sequence[Any] | None = None) -> str:
    """The report as one JSON document (times as ``*_ts_ns`` and RFC 3339);
    with ``incidents`` (:class:`IncidentBudget` list), an ``incidents`` list
    too (the document is otherwise unchanged)."""
    doc = msgspec.to_builtins(report)
    if incidents is not None:
        doc["incidents"] = msgspec.to_builtins(list(incidents))
    return _json.encode(_with_times(doc)).decode() + "\n"


def _pct(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}%"


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


_SPARK = "▁▂▃▄▅▆▇█"


def sparkline(daily: Sequence[tuple[int, int, int]], objective: float, last_day_ts_ns: int,
              days: int = 30) -> str:
    """Daily burn rate as a sparkline over the ``days`` days ending with
    ``last_day_ts_ns``: ▁ no burn, █ a day that burned its whole share of
    the budget or more; ``·`` a day without traffic."""
    if not daily:
        return "—"
    budget = budget_ratio(objective)
    last = last_day_ts_ns
    by_day = {d: (g, t) for d, g, t in daily}
    chars = []
    for i in range(days - 1, -1, -1):
        g, t = by_day.get(last - i * DAY_NS, (0, 0))
        if not t:
            chars.append("·")
            continue
        burn = (t - g) / (budget * t)
        chars.append(_SPARK[min(len(_SPARK) - 1, int(burn * (len(_SPARK) - 1) + 0.5))])
    return "".join(chars)


_ARROW = {"better": "↘ better", "worse": "↗ worse", "steady": "→ steady", None: "—"}


def render_markdown(report: ComplianceReport, incidents: Sequence[Any] | None = None) -> str:
    """A Markdown report: teams, services, components (when the SLOs name
    any), SLI categories, then every SLO; with ``incidents``, an
    ``Incidents`` section last (see :mod:`._attribution`)."""
    lines = [f"# SLO compliance report — {_iso(report.at_ts_ns)}", ""]
    n = len(report.slos)
    met = sum(1 for s in report.slos if s.period_window.compliant)
    lines += [f"{n} SLOs; {met} meet their objective over their period.", ""]
    sections = [("Teams", report.teams), ("Services", report.services)]
    if any(s.component for s in report.slos):
        sections.append(("Components", report.components))
    sections.append(("SLI categories", report.categories))
    for title, groups in sections:
        lines += [f"## {title}", "",
                  ("| name | SLOs | compliant 7d / 30d / 90d | breaching (30d) | worst budget "
                   "consumed (30d) | lowest coverage (30d) |"),
                  "|---|---:|---|---|---:|---:|"]
        for g in groups:
            gw = {x["window"]: x for x in g.windows}
            lines.append(
                f"| {g.name} | {g.slos} | {gw['7d']['compliant']} / {gw['30d']['compliant']} / "
                f"{gw['90d']['compliant']} | {', '.join(gw['30d']['breaching']) or '—'} | "
                f"{100 * gw['30d']['max_budget_consumed']:.1f}% | "
                f"{100 * gw['30d']['min_coverage']:.1f}% |")
        lines.append("")
    lines += ["## SLOs", "",
              ("| service | SLO | team | objective | period | SLI (period) | budget consumed "
               "(period) | SLI 7d | SLI 30d | SLI 90d | budget consumed 7d / 30d / 90d | "
               "trend 7d | coverage 7d / 30d / 90d | daily burn (30d) |"),
              "|---|---|---|---:|---|---:|---:|---:|---:|---:|---|---|---|---|"]
    last_day = report.at_ts_ns // DAY_NS * DAY_NS - DAY_NS
    for s in report.slos:
        w = s.windows
        p = s.period_window
        mark = "" if p.compliant is None else " ✅" if p.compliant else " ❌"
        lines.append(
            f"| {s.service} | {s.slo} | {s.team or '—'} | {s.objective:g}% | {s.period} | "
            f"{_pct(p.sli)}{mark} | {100 * p.budget_consumed:.1f}% | {_pct(w[0].sli)} | "
            f"{_pct(w[1].sli)} | {_pct(w[2].sli)} | "
            f"{' / '.join(f'{100 * x.budget_consumed:.1f}%' for x in w)} | {_ARROW[w[0].trend]} | "
            f"{' / '.join(f'{100 * x.coverage:.1f}%' for x in w)} | "
            f"{sparkline(s.daily, s.objective, last_day)} |")
    if report.unknown_in_ledger:
        lines += ["", "Rollups in the ledger for SLOs not in the SLO file: "
                  + ", ".join(report.unknown_in_ledger)]
    text = "\n".join(lines) + "\n"
    if incidents is not None:
        from ._attribution import render_incidents_markdown

        text += "\n" + render_incidents_markdown(incidents)
    return text


# ------------------------------------------------------------------ inputs


def load_report_slos(path: str) -> list[ReportSLO]:
    """The SLOs of an srestream SLO file, or of a Sloth/OpenSLO file."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except OSError as exc:
        raise ConfigError([Problem("$", f"cannot read: {exc.strerror}", path)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("$", f"not valid YAML: {exc}", path)]) from exc
    native = len(docs) == 1 and isinstance(docs[0], dict) and "slos" in docs[0] \
        and "service" not in docs[0] and "apiVersion" not in docs[0] \
        and not str(docs[0].get("version", "")).startswith("prometheus/")
    if native:
        from ._spec import parse_slos

        out = []
        for s in parse_slos(docs[0], file=path).slos:
            p = s.parsed_period()
            out.append(ReportSLO(
                slo=s.slo_id, service=s.service, objective=s.objective, period=p.text,
                period_ns=p.length_ns if p.rolling else None, calendar=p.unit,
                time_zone=p.time_zone, team=s.labels.team, tier=s.labels.tier,
                component=s.labels.component, category=s.sli.kind,
                time_sliced=s.sli.time_sliced))
        return out
    from ._importers import import_documents
    from ._rules import format_prom_duration

    out = []
    for i in import_documents(docs, file=path):
        out.append(ReportSLO(
            slo=i.name, service=i.service, objective=i.objective,
            period=i.calendar or format_prom_duration(i.period_ns or 0),
            period_ns=i.period_ns, calendar=i.calendar or "", time_zone=i.time_zone,
            team=i.labels.get("team", ""), tier=i.labels.get("tier", ""),
            component=i.labels.get("component", ""),
            category=getattr(i.sli, "kind", "ratio"),
            time_sliced=i.budgeting == "timeslices"))
    return out


def _parse_at(text: str) -> int:
    try:
        return round(float(text) * 1e9)
    except ValueError:
        pass
    try:
        d = dt.datetime.fromisoformat(text)  # 3.11 reads a trailing Z
    except ValueError as exc:
        raise ConfigError([Problem("--at", f"expected RFC 3339 or epoch seconds, got {text!r}")]) \
            from exc
    if d.tzinfo is None:
        raise ConfigError([Problem("--at", "give a UTC offset (e.g. 2024-05-01T00:00:00Z)")])
    return int(d.timestamp()) * 1_000_000_000 + d.microsecond * 1000


def newest_rollup_end(db: sqlite3.Connection) -> int | None:
    """End of the newest bucket in the ledger."""
    (m,) = db.execute("SELECT MAX(bucket_ts_ns + span_ns) FROM sli_rollup_minute").fetchone()
    if m is not None:
        return int(m)
    (h,) = db.execute("SELECT MAX(bucket_ts_ns) FROM sli_rollup_hour").fetchone()
    return None if h is None else int(h) + HOUR_NS


def run_report_command(args: argparse.Namespace) -> int:
    """``srestream report``: exit 0 with the report, 2 on bad input."""
    if not os.path.exists(args.store):
        raise ConfigError([Problem("--store", f"no such ledger file: {args.store}")])
    slos = load_report_slos(args.slos)
    db = sqlite3.connect(f"file:{args.store}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"sli_rollup_minute", "sli_rollup_hour", "sli_rollup_day"} <= tables:
            raise ConfigError([Problem("--store", f"{args.store} holds no budget ledger "
                                                  "(no budget_ledger sink wrote to it)")])
        at = _parse_at(args.at) if args.at else newest_rollup_end(db)
        if at is None:
            raise ConfigError([Problem("--store", "the ledger is empty: give --at or fill it")])
        report = build_report(db, slos, at)
        incidents = None
        if getattr(args, "incidents", None):
            from ._attribution import attribute_incidents
            from ._ground_truth import load_ground_truth

            truth = load_ground_truth(args.incidents)
            try:
                incidents = attribute_incidents(db, slos, truth.incidents)
            except ConfigError as exc:  # an unknown slo name: say which file
                raise ConfigError([msgspec.structs.replace(p, file=p.file or args.incidents)
                                   for p in exc.problems]) from None
    finally:
        db.close()
    text = render_json(report, incidents) if args.format == "json" \
        else render_markdown(report, incidents)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        print(text, end="")
    return 0

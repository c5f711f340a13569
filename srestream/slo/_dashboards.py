"""Grafana dashboards for SLOs: one dashboard JSON per service (SPEC §3.6,
observability as code).

Why generated rather than hand-built: the panels must query exactly the
series something else writes, and must draw the thresholds the SLO file
states.  Hand-made dashboards drift from both.  Here the thresholds come
from the same objects the engine uses (the budget policy levels, the
alert windows' burn-rate factors) and the metric names from the module
that writes the series:

* ``source="status"`` (default): srestream's own status metrics
  (:mod:`srestream.slo._status`, the ``slo_status`` sink and
  ``--metrics-addr``), for srestream SLO files and streamed Sloth/OpenSLO
  imports; selected by ``service`` and ``slo`` labels.
* ``source="rules"``: the recording rules ``srestream rules`` writes for
  a Sloth or OpenSLO file (names imported from
  :mod:`srestream.slo._rules`), selected by ``sloth_id``,
  ``sloth_service`` and ``sloth_slo``; the windows are the rules' own
  (same ``period``, ``windows`` and ``window_scaling`` options).  The
  rules record error ratios, not event counts, so the events panel shows
  the recorded error ratios instead, and coverage is the share of the
  period for which the 5m ratio was recorded.

Per SLO the dashboard has a row with: objective, budget remaining (a
gauge with thresholds at the budget policy's levels), data coverage,
events (or error ratios), forecast exhaustion time, the burn rate over
time with a threshold line per alert window factor, and the firing
alerts.  Every query uses the ``datasource`` dashboard variable (type
``datasource``, Prometheus), so one file imports into any Grafana ≥ 9.

The output is deterministic: panel ids in order, keys sorted, uid derived
from the service name, no timestamps.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal

import msgspec

from .._errors import ConfigError, Problem
from ._alerting import HOUR_NS, AlertWindow
from ._importers import ImportedSLO
from ._rules import (
    BUDGET_REMAINING_RECORD,
    CURRENT_BURN_RATE_RECORD,
    CURRENT_WINDOW_NS,
    ERROR_BUDGET_RECORD,
    OBJECTIVE_RECORD,
    RULE_ID_LABELS,
    WINDOW_LABEL,
    alert_name,
    build_rule_groups,
    format_float,
    format_prom_duration,
    period_ns_of,
    recorded_windows_ns,
    rule_alert_windows,
    rule_ids,
    sli_error_record,
)
from ._spec import DEFAULT_BUDGET_POLICY, PolicyRule
from ._status import (
    ALERT_FIRING_METRIC,
    BUDGET_REMAINING_METRIC,
    BURN_RATE_1H_METRIC,
    COVERAGE_METRIC,
    EVENTS_GOOD_METRIC,
    EVENTS_TOTAL_METRIC,
    EXHAUSTION_METRIC,
    OBJECTIVE_METRIC,
)

__all__ = ["SCHEMA_VERSION", "build_dashboards", "render_dashboard", "write_dashboards"]

SCHEMA_VERSION: Final = 39
"""The dashboard schema version Grafana 10.4/11 write; every panel option and
field used here exists since Grafana 9."""

Source = Literal["status", "rules"]

# srestream's status metric names (written by ._status).
_OBJECTIVE = OBJECTIVE_METRIC
_BUDGET_REMAINING = BUDGET_REMAINING_METRIC
_BURN_RATE_1H = BURN_RATE_1H_METRIC
_EVENTS_GOOD = EVENTS_GOOD_METRIC
_EVENTS_TOTAL = EVENTS_TOTAL_METRIC
_COVERAGE = COVERAGE_METRIC
_EXHAUSTION = EXHAUSTION_METRIC
_ALERT_FIRING = ALERT_FIRING_METRIC

_DS: Final = {"type": "prometheus", "uid": "${datasource}"}
_ACTION_COLOURS: Final = {"freeze": "red", "ticket": "orange", "notify": "yellow"}
_TIER_COLOURS: Final = {"page": "red", "ticket": "orange"}
_FORECAST_WINDOW_NS: Final = 6 * HOUR_NS
"""The rules-source forecast reads the longest recorded ratio up to this
(srestream's detector forecasts from the last 6h by default)."""


class _Slo(msgspec.Struct, frozen=True, kw_only=True):
    """What a dashboard row needs of one SLO, whatever its file format."""

    service: str
    name: str
    objective: float
    period: str
    period_ns: int
    description: str
    policy: tuple[PolicyRule, ...]
    windows: tuple[AlertWindow, ...]
    selector: dict[str, str]
    alert: str = ""
    """Rules source: the name of its burn-rate alert rules ("" when none)."""


# ------------------------------------------------------------------- queries


def _q(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _sel(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={_q(v)}" for k, v in labels.items()) + "}"


class _Queries(msgspec.Struct, frozen=True, kw_only=True):
    """The PromQL of each panel of one SLO: (expr, legend) pairs."""

    objective: tuple[str, str]
    budget_remaining: tuple[str, str]
    coverage: tuple[str, str]
    exhaustion_ms: tuple[str, str]
    events: tuple[tuple[str, str], ...]
    events_title: str
    events_unit: str
    burn_rates: tuple[tuple[str, str], ...]
    firing: tuple[str, str] | None


def _status_queries(slo: _Slo) -> _Queries:
    sel = _sel(slo.selector)
    return _Queries(
        objective=(f"{_OBJECTIVE}{sel}", "objective"),
        budget_remaining=(f"{_BUDGET_REMAINING}{sel}", "budget remaining"),
        coverage=(f"{_COVERAGE}{sel}", "data coverage"),
        exhaustion_ms=(f"{_EXHAUSTION}{sel} * 1000", "budget exhausted at"),
        events=((f"{_EVENTS_GOOD}{sel}", "good"), (f"{_EVENTS_TOTAL}{sel}", "total")),
        events_title="Events in the period (good / total)",
        events_unit="short",
        burn_rates=((f"{_BURN_RATE_1H}{sel}", "burn rate 1h"),),
        firing=(f"{_ALERT_FIRING}{sel}", "{{tier}} {{long_window}}/{{short_window}}")
        if slo.windows else None,
    )


def _rules_queries(slo: _Slo) -> _Queries:
    sel = _sel(slo.selector)
    by_slo = f" / on({', '.join(RULE_ID_LABELS)}) group_left "
    budget = f"{ERROR_BUDGET_RECORD}{sel}"

    def burn(window_ns: int) -> str:
        return f"{sli_error_record(window_ns)}{sel}{by_slo}{budget}"

    recorded = recorded_windows_ns(slo.windows)
    longs = sorted({w.long_window_ns for w in slo.windows})
    forecast_ns = max(ns for ns in recorded if ns <= _FORECAST_WINDOW_NS)  # 5m always is
    period_s = format_float(slo.period_ns / 1e9)
    steps = slo.period_ns // CURRENT_WINDOW_NS
    period = format_prom_duration(slo.period_ns)
    step = format_prom_duration(CURRENT_WINDOW_NS)
    remaining = f"{BUDGET_REMAINING_RECORD}{sel}"
    ratio5m = f"{sli_error_record(CURRENT_WINDOW_NS)}{sel}"
    # Time left = budget remaining x period / burn rate (budget fractions per period).
    forecast_burn = f"max without ({WINDOW_LABEL}) ({burn(forecast_ns)}) > 0"
    return _Queries(
        objective=(f"{OBJECTIVE_RECORD}{sel}", "objective"),
        budget_remaining=(remaining, "budget remaining"),
        coverage=(f"clamp_max(count_over_time({ratio5m}[{period}:{step}]) / {steps}, 1)",
                  "data coverage"),
        exhaustion_ms=(f"(time() + ({remaining} > 0) * {period_s} / ({forecast_burn})) * 1000",
                       f"budget exhausted at (burn rate over {format_prom_duration(forecast_ns)})"),
        events=tuple((f"{sli_error_record(ns)}{sel}", f"error ratio {format_prom_duration(ns)}")
                     for ns in recorded),
        events_title="SLI error ratio by window",
        events_unit="percentunit",
        burn_rates=((f"{CURRENT_BURN_RATE_RECORD}{sel}", "current (5m)"),
                    *((burn(ns), f"burn rate {format_prom_duration(ns)}") for ns in longs)),
        firing=(f'ALERTS{_sel({"alertname": slo.alert, "alertstate": "firing", **slo.selector})}',
                "{{sloth_severity}}") if slo.alert else None,
    )


# -------------------------------------------------------------------- panels


class _Layout:
    """Hands out panel ids in order and grid positions row by row."""

    def __init__(self) -> None:
        self.next_id = 1
        self.y = 0
        self.x = 0
        self.line_h = 0

    def place(self, w: int, h: int) -> tuple[int, dict[str, int]]:
        if self.x + w > 24:
            self.newline()
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.line_h = max(self.line_h, h)
        pid, self.next_id = self.next_id, self.next_id + 1
        return pid, pos

    def newline(self) -> None:
        self.y += self.line_h
        self.x = 0
        self.line_h = 0


def _targets(queries: Sequence[tuple[str, str]], *, instant: bool) -> list[dict[str, Any]]:
    return [{"datasource": _DS, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + i),
             "instant": instant, "range": not instant, "editorMode": "code"}
            for i, (expr, legend) in enumerate(queries)]


def _thresholds(base: str, steps: Iterable[tuple[float, str]]) -> dict[str, Any]:
    return {"mode": "absolute",
            "steps": [{"color": base, "value": None},
                      *({"color": c, "value": v} for v, c in steps)]}


def _panel(layout: _Layout, kind: str, title: str, w: int, h: int,
           queries: Sequence[tuple[str, str]], *, unit: str, thresholds: dict[str, Any],
           description: str = "", custom: Mapping[str, Any] | None = None,
           options: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
           ) -> dict[str, Any]:
    pid, pos = layout.place(w, h)
    defaults: dict[str, Any] = {"unit": unit, "thresholds": thresholds, **(extra or {})}
    if custom:
        defaults["custom"] = dict(custom)
    return {
        "id": pid, "type": kind, "title": title, "description": description, "gridPos": pos,
        "datasource": _DS,
        "targets": _targets(queries, instant=kind in ("stat", "gauge")),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": dict(options or {}),
    }


def _stat_options() -> dict[str, Any]:
    return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value", "graphMode": "none", "textMode": "auto", "justifyMode": "auto",
            "orientation": "auto"}


def _policy_thresholds(policy: Sequence[PolicyRule]) -> dict[str, Any]:
    """Budget remaining colours: at most a level, that level's action
    colour; above the highest level, green."""
    levels: dict[float, str] = {}
    for rule in sorted(policy, key=lambda r: r.remaining_at_most):
        levels.setdefault(rule.remaining_at_most / 100, _ACTION_COLOURS.get(rule.action, "red"))
    ordered = sorted(levels.items())
    if not ordered:
        return _thresholds("green", ())
    # A step colours values >= its value: each level starts the colour of the next level up.
    steps = [(v, ordered[i + 1][1] if i + 1 < len(ordered) else "green")
             for i, (v, _c) in enumerate(ordered)]
    return _thresholds(ordered[0][1], steps)


def _burn_thresholds(windows: Sequence[AlertWindow]) -> dict[str, Any]:
    factors: dict[float, str] = {}
    for w in sorted(windows, key=lambda w: (w.burn_rate, w.tier != "page")):
        factors.setdefault(round(w.burn_rate, 6), _TIER_COLOURS.get(w.tier, "orange"))
    return _thresholds("green", sorted(factors.items()))


def _decimals(objective: float) -> int:
    text = format_float(objective)
    return len(text.partition(".")[2])


def _slo_panels(layout: _Layout, slo: _Slo, q: _Queries) -> list[dict[str, Any]]:
    layout.newline()
    row_id, row_pos = layout.place(24, 1)
    panels: list[dict[str, Any]] = [{
        "id": row_id, "type": "row", "collapsed": False, "panels": [], "gridPos": row_pos,
        "title": f"{slo.name}: {format_float(slo.objective)}% over {slo.period}",
    }]
    layout.newline()
    stat = _stat_options()
    objective = _thresholds("blue", ())
    panels.append(_panel(layout, "stat", "Objective", 3, 6, [q.objective], unit="percentunit",
                         thresholds=objective, description=slo.description, options=stat,
                         extra={"decimals": _decimals(slo.objective)}))
    levels = ", ".join(f"{format_float(r.remaining_at_most)}% {r.action}"
                       for r in sorted(slo.policy, key=lambda r: -r.remaining_at_most))
    panels.append(_panel(
        layout, "gauge", "Error budget remaining", 5, 6, [q.budget_remaining],
        unit="percentunit", thresholds=_policy_thresholds(slo.policy),
        description=f"Budget policy: {levels}." if levels else "",
        options={"reduceOptions": stat["reduceOptions"], "showThresholdMarkers": True,
                 "showThresholdLabels": False, "orientation": "auto"},
        extra={"min": 0, "max": 1, "decimals": 1}))
    panels.append(_panel(layout, "stat", "Data coverage", 4, 6, [q.coverage], unit="percentunit",
                         thresholds=_thresholds("red", ((0.9, "orange"), (0.99, "green"))),
                         description="Share of the period that had data.", options=stat,
                         extra={"min": 0, "max": 1, "decimals": 1}))
    panels.append(_panel(layout, "stat", q.events_title, 6, 6, q.events, unit=q.events_unit,
                         thresholds=_thresholds("text", ()), options=stat))
    panels.append(_panel(layout, "stat", "Forecast budget exhaustion", 6, 6, [q.exhaustion_ms],
                         unit="dateTimeAsIso", thresholds=_thresholds("orange", ()),
                         description="When the budget runs out at the current burn rate "
                                     "(no value: not forecast to run out).",
                         options=stat, extra={"noValue": "not forecast"}))
    layout.newline()
    factors = ", ".join(f"{w.tier} {format_prom_duration(w.long_window_ns)}/"
                        f"{format_prom_duration(w.short_window_ns)} {format_float(w.burn_rate)}x"
                        for w in slo.windows)
    panels.append(_panel(
        layout, "timeseries", "Burn rate", 12 if q.firing else 24, 8, q.burn_rates, unit="suffix:x",
        thresholds=_burn_thresholds(slo.windows),
        description=f"Alert window factors: {factors}." if factors else "",
        custom={"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0, "showPoints": "never",
                "thresholdsStyle": {"mode": "line"}},
        options={"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                 "tooltip": {"mode": "multi", "sort": "desc"}},
        extra={"min": 0}))
    if q.firing:
        panels.append(_panel(
            layout, "state-timeline", "Firing alerts", 12, 8, [q.firing], unit="none",
            thresholds=_thresholds("red", ()),
            custom={"fillOpacity": 80, "lineWidth": 0},
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8,
                     "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
                     "tooltip": {"mode": "single", "sort": "none"}},
            extra={"mappings": [{"type": "value",
                                 "options": {"1": {"color": "red", "index": 0, "text": "firing"}}}],
                   "color": {"mode": "thresholds"}}))
    return panels


def _dashboard(service: str, slos: Sequence[_Slo], source: Source, datasource: str) -> dict[str, Any]:
    layout = _Layout()
    panels: list[dict[str, Any]] = []
    for slo in slos:
        q = _status_queries(slo) if source == "status" else _rules_queries(slo)
        panels.extend(_slo_panels(layout, slo, q))
    current = {"selected": True, "text": datasource, "value": datasource} if datasource else {}
    return {
        "annotations": {"list": []},
        "description": f"SLOs of {service}, generated by srestream dashboards "
                       f"({'status metrics' if source == 'status' else 'recording rules'}).",
        "editable": True,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": sorted({"slo", "srestream", service}),
        "templating": {"list": [{
            "current": current, "hide": 0, "includeAll": False, "label": "Data source",
            "multi": False, "name": "datasource", "options": [], "query": "prometheus",
            "refresh": 1, "regex": "", "skipUrlSync": False, "type": "datasource",
        }]},
        "time": {"from": "now-7d", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": f"SLOs: {service}",
        "uid": dashboard_uid(service),
        "version": 1,
    }


def dashboard_uid(service: str) -> str:
    """A stable Grafana uid (≤ 40 characters) for the dashboard of ``service``."""
    return "srestream-slo-" + hashlib.sha256(service.encode()).hexdigest()[:16]


# ------------------------------------------------------------------ loading


def _status_slos(path: str) -> list[_Slo]:
    from ._spec import alert_windows
    from ._validate import load_slos

    slo_set = load_slos(path)
    out = []
    for s in slo_set.slos:
        p = s.parsed_period()
        out.append(_Slo(service=s.service, name=s.name, objective=s.objective, period=p.text,
                        period_ns=p.length_ns, description=s.description,
                        policy=slo_set.policy_for(s), windows=tuple(alert_windows(s)),
                        selector={"service": s.service, "slo": s.name}))
    return out


def _rules_slos(path: str, period_ns: int, windows: Sequence[AlertWindow] | None,
                window_scaling: str) -> list[_Slo]:
    from ._importers import load_slo_file

    imported: list[ImportedSLO] = load_slo_file(path, default_period_ns=period_ns)
    # Refuses (with every SLO's path) what `srestream rules` refuses.
    build_rule_groups(imported, windows=windows, window_scaling=window_scaling)
    out = []
    for s in imported:
        p_ns = period_ns_of(s)
        wins = rule_alert_windows(s, windows, window_scaling)
        tiers = (("page", s.alerting.page), ("ticket", s.alerting.ticket))
        alerting = any(not t.disabled and any(w.tier == name for w in wins) for name, t in tiers)
        out.append(_Slo(service=s.service, name=s.name, objective=s.objective,
                        period=format_prom_duration(p_ns), period_ns=p_ns,
                        description=s.description, policy=DEFAULT_BUDGET_POLICY,
                        windows=tuple(wins), selector=rule_ids(s),
                        alert=alert_name(s) if alerting else ""))
    return out


def build_dashboards(
    slo_file: str,
    *,
    source: Source = "status",
    datasource: str = "",
    period_ns: int = 30 * 24 * HOUR_NS,
    windows: Sequence[AlertWindow] | None = None,
    window_scaling: str = "period",
) -> dict[str, dict[str, Any]]:
    """One Grafana dashboard model per service of ``slo_file``, keyed by
    service, SLOs in file order.  ``datasource`` preselects a Prometheus
    data source uid.  ``period_ns``, ``windows`` and ``window_scaling``
    (rules source only) are those given to ``srestream rules``.  Raises
    :class:`ConfigError` (with the file's path) for a bad SLO file."""
    if source == "status":
        slos = _status_slos(slo_file)
    elif source == "rules":
        slos = _rules_slos(slo_file, period_ns, windows, window_scaling)
    else:
        raise ConfigError([Problem("--source", f"expected status or rules, got {source!r}")])
    by_service: dict[str, list[_Slo]] = {}
    for s in slos:
        by_service.setdefault(s.service, []).append(s)
    return {svc: _dashboard(svc, group, source, datasource) for svc, group in sorted(by_service.items())}


def render_dashboard(model: Mapping[str, Any]) -> str:
    """The dashboard file text: sorted keys, two-space indent, one final newline."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _file_name(service: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in service).lstrip(".")
    return f"{safe or '_'}.json"


def write_dashboards(dashboards: Mapping[str, Mapping[str, Any]], out_dir: str) -> list[str]:
    """Write ``<service>.json`` per dashboard into ``out_dir`` (created),
    each atomically; returns the paths in service order.  Characters other
    than letters, digits, ``-``, ``_`` and ``.`` in a service name become
    ``_``; two services that would share a file are refused."""
    names: dict[str, str] = {}
    problems = []
    for service in sorted(dashboards):
        name = _file_name(service)
        if name in names:
            problems.append(Problem("$", f"services {names[name]!r} and {service!r} would both be "
                                         f"written to {name}"))
        names[name] = service
    if problems:
        raise ConfigError(problems)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, service in sorted(names.items(), key=lambda kv: kv[1]):
        path = os.path.join(out_dir, name)
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(render_dashboard(dashboards[service]))
        os.replace(tmp, path)
        paths.append(path)
    return paths

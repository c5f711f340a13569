"""Prometheus recording and alerting rules for SLOs whose SLI is PromQL.

The rules have the shape Sloth writes (same metric and label names:
``slo:sli_error:ratio_rate5m``, ``sloth_id``, ``sloth_window`` ...), so
dashboards and alert routes built for Sloth keep working, and so the
golden files of Sloth's own test suite check this exporter:

* per SLO, one recording rule per alert window (the error ratio over 5m,
  30m, 1h, 2h, 6h, 1d, 3d for a 30-day SLO) and one for the whole period,
  averaged from the 5m ratio;
* meta recordings: objective, error budget, period in days, current and
  period burn rate, budget remaining, an info series;
* two multi-window, multi-burn-rate alerts (page and ticket), each the
  ``or`` of two long/short window pairs, from
  :func:`srestream.slo._alerting.default_alert_windows` (or a Sloth
  ``AlertWindows`` file), the same windows srestream's own detector uses.

Why this route and not a template: the expressions are built from the same
window objects as the detector, so ``promtool test rules`` can check that
Prometheus and srestream fire at the same time (tests/slo_export).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import yaml

from .._errors import ConfigError, Problem
from ._alerting import DAY_NS, AlertWindow, burn_rate_factor, default_alert_windows
from ._importers import ImportedSLO, PromSLI

__all__ = [
    "BUDGET_REMAINING_RECORD",
    "CURRENT_BURN_RATE_RECORD",
    "ERROR_BUDGET_RECORD",
    "INFO_RECORD",
    "OBJECTIVE_RECORD",
    "PERIOD_BURN_RATE_RECORD",
    "PERIOD_DAYS_RECORD",
    "RULE_ID_LABELS",
    "WINDOW_LABEL",
    "alert_name",
    "build_rule_groups",
    "format_float",
    "format_prom_duration",
    "load_alert_windows",
    "period_ns_of",
    "recorded_windows_ns",
    "render_rules",
    "rule_alert_windows",
    "rule_ids",
    "sli_error_record",
]

# The names of the series the rules record (Sloth's), in one place: the
# Grafana dashboards (``srestream dashboards --source rules``) query these.
SLI_ERROR_RECORD_PREFIX: Final = "slo:sli_error:ratio_rate"
"""Followed by the window in Prometheus form: ``slo:sli_error:ratio_rate5m``."""
OBJECTIVE_RECORD: Final = "slo:objective:ratio"
ERROR_BUDGET_RECORD: Final = "slo:error_budget:ratio"
PERIOD_DAYS_RECORD: Final = "slo:time_period:days"
CURRENT_BURN_RATE_RECORD: Final = "slo:current_burn_rate:ratio"
PERIOD_BURN_RATE_RECORD: Final = "slo:period_burn_rate:ratio"
BUDGET_REMAINING_RECORD: Final = "slo:period_error_budget_remaining:ratio"
INFO_RECORD: Final = "sloth_slo_info"
RULE_ID_LABELS: Final = ("sloth_id", "sloth_service", "sloth_slo")
"""Labels naming the SLO on every recorded series and alert."""
WINDOW_LABEL: Final = "sloth_window"
CURRENT_WINDOW_NS: Final = 5 * 60_000_000_000
"""The window of the current burn rate (always recorded)."""

_MS = 1_000_000
_PROM_UNITS = (("y", 365 * DAY_NS, True), ("w", 7 * DAY_NS, True), ("d", DAY_NS, False),
               ("h", 3_600_000_000_000, False), ("m", 60_000_000_000, False),
               ("s", 1_000_000_000, False), ("ms", _MS, False))
_CALENDAR_NOMINAL_NS = {"month": 30 * DAY_NS, "quarter": 90 * DAY_NS, "year": 365 * DAY_NS}


def format_prom_duration(ns: int) -> str:
    """A duration as Prometheus prints it (``model.Duration.String``): years
    and weeks only when exact, so 7d is ``1w``, 28d ``4w`` and 30d ``30d``.

    >>> [format_prom_duration(d * DAY_NS) for d in (1, 7, 28, 30)]
    ['1d', '1w', '4w', '30d']
    """
    ms = ns // _MS
    if ms <= 0:
        return "0s"
    out = []
    for unit, size_ns, exact in _PROM_UNITS:
        size = size_ns // _MS
        if exact and ms % size:
            continue
        q = ms // size
        if q:
            out.append(f"{q}{unit}")
            ms -= q * size
    return "".join(out)


def format_float(x: float) -> str:
    """Shortest round-trip text of a float, integers without ``.0`` (as Go's
    ``%v`` prints them: ``6``, ``14.4``, ``5.6000000000000005``)."""
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def period_ns_of(slo: ImportedSLO) -> int:
    """The rolling period, or the nominal length of a calendar period (30d
    a month, 90d a quarter): PromQL ranges cannot follow a calendar."""
    if slo.period_ns is not None:
        return slo.period_ns
    return _CALENDAR_NOMINAL_NS[slo.calendar or "month"] * slo.calendar_count


def load_alert_windows(path: str) -> tuple[int, list[AlertWindow]]:
    """Read a Sloth ``AlertWindows`` file: (its SLO period, its 4 windows)."""
    from .._duration import parse_duration

    problems: list[Problem] = []
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([Problem("$", f"cannot read alert windows: {exc}", path)]) from exc
    spec = doc.get("spec") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("kind") != "AlertWindows" or not isinstance(spec, dict):
        raise ConfigError([Problem("$", "expected a Sloth AlertWindows document", path)])

    def dur(v: Any, p: str) -> int:
        try:
            # Sloth writes Prometheus durations; they are ours too (plus 'w').
            return parse_duration(str(v))
        except ValueError as exc:
            problems.append(Problem(p, str(exc), path))
            return 0

    period = dur(spec.get("sloPeriod"), "$.spec.sloPeriod")
    windows = []
    for tier in ("page", "ticket"):
        for speed in ("quick", "slow"):
            p = f"$.spec.{tier}.{speed}"
            w = (spec.get(tier) or {}).get(speed)
            if not isinstance(w, dict):
                problems.append(Problem(p, "missing", path))
                continue
            pct = w.get("errorBudgetPercent")
            if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 < pct <= 100:
                problems.append(Problem(f"{p}.errorBudgetPercent", "expected a percent in (0, 100]",
                                        path))
                continue
            long_ns = dur(w.get("longWindow"), f"{p}.longWindow")
            short_ns = dur(w.get("shortWindow"), f"{p}.shortWindow")
            if period and long_ns and short_ns:
                windows.append(AlertWindow(
                    tier=tier, severity=tier, name=f"{tier}_{speed}", long_window_ns=long_ns,
                    short_window_ns=short_ns, budget_consumed=pct / 100,
                    burn_rate=burn_rate_factor(pct / 100, period, long_ns)))
    if problems:
        raise ConfigError(problems)
    return period, windows


def _q(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _selector(ids: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={_q(v)}" for k, v in ids.items()) + "}"


def _window_pair(metric_short: str, metric_long: str, sel: str, factor: str, budget: str) -> str:
    return (
        f"    max({metric_short}{sel} > ({factor} * {budget})) without ({WINDOW_LABEL})\n"
        "    and\n"
        f"    max({metric_long}{sel} > ({factor} * {budget})) without ({WINDOW_LABEL})\n"
    )


def build_rule_groups(
    slos: Iterable[ImportedSLO],
    *,
    windows: Sequence[AlertWindow] | None = None,
    window_scaling: str = "period",
    extra_labels: Mapping[str, str] | None = None,
    version: str = "",
    mode: str = "srestream-rules",
) -> list[dict[str, Any]]:
    """Rule groups (plain dicts, ready for YAML) for ``slos``.

    ``windows`` overrides the alert windows of every SLO (a Sloth
    AlertWindows file); otherwise each SLO gets
    ``default_alert_windows(period, scaling=window_scaling)``.  Raises
    :class:`ConfigError` listing every SLO whose SLI is not PromQL.
    """
    problems: list[Problem] = []
    groups: list[dict[str, Any]] = []
    for slo in slos:
        if not isinstance(slo.sli, PromSLI):
            problems.append(Problem(
                slo.sli_path, f"SLO {slo.name!r}: its SLI ({slo.sli.kind} on "
                f"{slo.sli.source_type or 'an unknown source'}) is not a Prometheus query with "
                "{{.window}}: no Prometheus rules can compute it", slo.file))
            continue
        groups.extend(_slo_groups(slo, slo.sli, windows, window_scaling, extra_labels or {},
                                  version, mode))
    if problems:
        raise ConfigError(problems)
    return groups


def sli_error_record(window_ns: int) -> str:
    """The recorded error ratio over ``window_ns``: ``slo:sli_error:ratio_rate1h``."""
    return f"{SLI_ERROR_RECORD_PREFIX}{format_prom_duration(window_ns)}"


def rule_ids(slo: ImportedSLO) -> dict[str, str]:
    """The labels naming ``slo`` on its recorded series (:data:`RULE_ID_LABELS`)."""
    return dict(zip(RULE_ID_LABELS, (slo.slo_id, slo.service, slo.name), strict=True))


def rule_alert_windows(slo: ImportedSLO, windows: Sequence[AlertWindow] | None = None,
                       window_scaling: str = "period") -> list[AlertWindow]:
    """The window pairs the rules of ``slo`` alert on: ``windows`` (a Sloth
    AlertWindows file) or the Workbook catalogue for its period."""
    if windows is not None:
        return list(windows)
    return default_alert_windows(period_ns_of(slo), scaling=window_scaling)  # type: ignore[arg-type]


def recorded_windows_ns(wins: Sequence[AlertWindow]) -> list[int]:
    """The windows whose error ratio is recorded (besides the period):
    every short and long window, and 5m for the current burn rate."""
    return sorted({w.short_window_ns for w in wins} | {w.long_window_ns for w in wins}
                  | {CURRENT_WINDOW_NS})


def alert_name(slo: ImportedSLO) -> str:
    """The ``alert`` name of both burn-rate alerts of ``slo``."""
    return slo.alerting.name or f"{_camel(slo.service)}{_camel(slo.name)}BurnRate"


def _slo_groups(
    slo: ImportedSLO, sli: PromSLI, windows: Sequence[AlertWindow] | None, scaling: str,
    extra: Mapping[str, str], version: str, mode: str,
) -> list[dict[str, Any]]:
    period_ns = period_ns_of(slo)
    wins = rule_alert_windows(slo, windows, scaling)
    ids = rule_ids(slo)
    sel = _selector(ids)
    base_labels = {**extra, **slo.labels, **ids}
    budget = format_float((100 - slo.objective) / 100)
    objective_ratio = format_float(slo.objective / 100)
    period = format_prom_duration(period_ns)
    rate5m = sli_error_record(CURRENT_WINDOW_NS)
    by_slo = "/ on(sloth_id, sloth_slo, sloth_service) group_left\n"  # Sloth's order

    sli_rules: list[dict[str, Any]] = []
    for ns in recorded_windows_ns(wins):
        win = format_prom_duration(ns)
        sli_rules.append({"record": sli_error_record(ns),
                          "expr": sli.error_ratio_expr(win),
                          "labels": _sorted({**base_labels, WINDOW_LABEL: win})})
    sli_rules.append({
        "record": sli_error_record(period_ns),
        "expr": (f"sum_over_time({rate5m}{sel}[{period}])\n"
                 f"/ ignoring ({WINDOW_LABEL})\n"
                 f"count_over_time({rate5m}{sel}[{period}])\n"),
        "labels": _sorted({**base_labels, WINDOW_LABEL: period}),
    })
    meta_labels = _sorted(base_labels)
    meta = [
        {"record": OBJECTIVE_RECORD, "expr": f"vector({objective_ratio})", "labels": meta_labels},
        {"record": ERROR_BUDGET_RECORD, "expr": f"vector(1-{objective_ratio})",
         "labels": meta_labels},
        {"record": PERIOD_DAYS_RECORD, "expr": f"vector({period_ns // DAY_NS})",
         "labels": meta_labels},
        {"record": CURRENT_BURN_RATE_RECORD,
         "expr": f"{rate5m}{sel}\n{by_slo}{ERROR_BUDGET_RECORD}{sel}\n", "labels": meta_labels},
        {"record": PERIOD_BURN_RATE_RECORD,
         "expr": f"{sli_error_record(period_ns)}{sel}\n{by_slo}{ERROR_BUDGET_RECORD}{sel}\n",
         "labels": meta_labels},
        {"record": BUDGET_REMAINING_RECORD,
         "expr": f"1 - {PERIOD_BURN_RATE_RECORD}{sel}", "labels": meta_labels},
        {"record": INFO_RECORD, "expr": "vector(1)", "labels": _sorted({
            **base_labels, "sloth_mode": mode, "sloth_objective": format_float(slo.objective),
            "sloth_spec": slo.spec_format or "srestream/v1", "sloth_version": version})},
    ]
    out = [
        {"name": f"sloth-slo-sli-recordings-{slo.slo_id}", "rules": sli_rules},
        {"name": f"sloth-slo-meta-recordings-{slo.slo_id}", "rules": meta},
    ]
    alerts = []
    al = slo.alerting
    for tier_name, tier in (("page", al.page), ("ticket", al.ticket)):
        pairs = [w for w in wins if w.tier == tier_name]
        if tier.disabled or not pairs:
            continue
        terms = []
        for w in pairs:
            factor = format_float(w.burn_rate)
            terms.append("(\n" + _window_pair(
                sli_error_record(w.short_window_ns), sli_error_record(w.long_window_ns),
                sel, factor, budget) + ")\n")
        annotations = {
            "summary": "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn "
                       "rate is over expected.",
            "title": f"({tier_name}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO "
                     "error budget burn rate is too fast.",
            **al.annotations, **tier.annotations,
        }
        alerts.append({
            "alert": alert_name(slo),
            "expr": "or\n".join(terms),
            "labels": _sorted({**al.labels, **tier.labels, "sloth_severity": pairs[0].severity}),
            "annotations": _sorted(annotations),
        })
    if alerts:
        out.append({"name": f"sloth-slo-alerts-{slo.slo_id}", "rules": alerts})
    return out


def _camel(s: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in s.replace("_", "-").split("-"))


def _sorted(d: Mapping[str, str]) -> dict[str, str]:
    return dict(sorted(d.items()))


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """Multi-line strings (PromQL) as literal blocks, for readable rules."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def render_rules(groups: list[dict[str, Any]], *, source: str = "") -> str:
    """The rule file text: a header naming the generator, then the groups."""
    head = ("# Code generated by srestream rules" + (f" from {source}" if source else "")
            + ".\n# DO NOT EDIT.\n\n")
    body: str = yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False,
                          default_flow_style=False, width=100, allow_unicode=True)
    return head + body

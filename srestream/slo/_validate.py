"""Decoding and validation of SLO specifications.

Every problem is reported at once, each with its JSON path: fields are
decoded one by one (msgspec alone stops at the first bad field), each part
(SLI, alerting, policy) is checked as soon as it decodes so that a bad
field elsewhere in the same SLO does not hide its problems, and the checks
across SLOs (duplicate names, two objectives for one SLI and period) run
last.  See :mod:`srestream.slo._spec` for the file format.
"""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from .._duration import dec_hook
from .._errors import ConfigError, Problem
from ._alerting import MINUTE_NS, TIERS
from ._predicates import check_predicate
from ._spec import (
    _NEEDS_GOOD,
    DEFAULT_BUDGET_POLICY,
    MAX_ROLLING_NS,
    MIN_ROLLING_NS,
    POLICY_ACTIONS,
    SLI_KINDS,
    SPAN_KINDS,
    TWO_POPULATION_KINDS,
    AlertingSpec,
    AlertWindowSpec,
    Period,
    PolicyRule,
    ReviewSpec,
    SLILabels,
    SLISpec,
    SLOSet,
    SLOSpec,
    parse_period,
)

__all__ = ["load_slos", "parse_slos", "validate_slos"]


# ---------------------------------------------------------------- decoding


def _decode_struct(
    raw: Any,
    cls: type[msgspec.Struct],
    path: str,
    problems: list[Problem],
    file: str,
    nested: dict[str, Callable[[Any, str], Any]] | None = None,
) -> Any:
    """Decode ``raw`` into ``cls`` field by field so that every bad field is
    reported (msgspec alone stops at the first)."""
    if not isinstance(raw, dict):
        problems.append(Problem(path, f"expected a mapping, got {type(raw).__name__}", file))
        return None
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    kwargs: dict[str, Any] = {}
    ok = True
    for key, value in raw.items():
        fpath = f"{path}.{key}"
        f = fields.get(key)
        if f is None:
            problems.append(
                Problem(fpath, f"unknown field {key!r} (known: {', '.join(fields)})", file)
            )
            ok = False
            continue
        if nested and key in nested:
            val = nested[key](value, fpath)
            if val is None or (isinstance(val, list) and None in val):
                ok = False  # the part could not be decoded (its problems are listed)
                continue
            kwargs[f.name] = val
            continue
        try:
            kwargs[f.name] = msgspec.convert(value, f.type, dec_hook=dec_hook)
        except msgspec.ValidationError as exc:
            problems.append(Problem(fpath, str(exc).split(" - at ")[0], file))
            ok = False
    for key, f in fields.items():
        if f.required and key not in raw:
            problems.append(Problem(f"{path}.{key}", "missing required field", file))
            ok = False
    return cls(**kwargs) if ok else None


def _decode_list(
    raw: Any, item: Callable[[Any, str], Any], path: str, problems: list[Problem], file: str
) -> list[Any]:
    if not isinstance(raw, list):
        problems.append(Problem(path, f"expected a list, got {type(raw).__name__}", file))
        return []
    return [item(v, f"{path}[{i}]") for i, v in enumerate(raw)]


def _decode_slo(raw: Any, path: str, problems: list[Problem], file: str) -> SLOSpec | None:
    # Parts are checked as soon as they decode, so that a bad field elsewhere
    # in the same SLO does not hide their problems.
    period = None
    if isinstance(raw, dict) and isinstance(raw.get("period", "30d"), str):
        period = parse_period(raw.get("period", "30d"))

    def sli(v: Any, p: str) -> Any:
        spec = _decode_struct(v, SLISpec, p, problems, file)
        if spec is not None:
            problems.extend(_check_sli(spec, p, file))
        elif isinstance(v, dict):
            for name in ("total", "good", "bad"):
                if isinstance(v.get(name), dict):
                    problems.extend(check_predicate(v[name], f"{p}.{name}", file,
                                                    spans=v.get("source") == "spans"))
        return spec

    def labels(v: Any, p: str) -> Any:
        return _decode_struct(v, SLILabels, p, problems, file)

    def alerting(v: Any, p: str) -> Any:
        def windows(wv: Any, wp: str) -> Any:
            return _decode_list(
                wv, lambda x, xp: _decode_struct(x, AlertWindowSpec, xp, problems, file),
                wp, problems, file,
            )

        spec = _decode_struct(v, AlertingSpec, p, problems, file, {"windows": windows})
        if spec is not None:
            problems.extend(_check_alerting(spec, period, p, file))
        return spec

    def policy(v: Any, p: str) -> Any:
        rules = _decode_policy(v, p, problems, file)
        for j, rule in enumerate(rules):
            if rule is not None:
                problems.extend(_check_policy_rule(rule, f"{p}[{j}]", file))
        return rules

    def review(v: Any, p: str) -> Any:
        spec = _decode_struct(v, ReviewSpec, p, problems, file)
        if spec is not None:
            problems.extend(_check_review(spec, p, file))
        return spec

    return _decode_struct(  # type: ignore[no-any-return]
        raw, SLOSpec, path, problems, file,
        {"sli": sli, "labels": labels, "alerting": alerting, "budget_policy": policy,
         "review": review},
    )


def _decode_policy(raw: Any, path: str, problems: list[Problem], file: str) -> list[PolicyRule]:
    return _decode_list(
        raw, lambda x, xp: _decode_struct(x, PolicyRule, xp, problems, file), path, problems, file
    )


def parse_slos(doc: Any, *, file: str = "") -> SLOSet:
    """Decode and validate an SLO document (already loaded from YAML);
    raise :class:`ConfigError` listing every problem."""
    problems: list[Problem] = []
    if not isinstance(doc, dict):
        raise ConfigError([Problem("$", "expected a mapping with a 'slos' list", file)])
    policy: tuple[PolicyRule, ...] = DEFAULT_BUDGET_POLICY
    slos: list[SLOSpec | None] = []
    for key, value in doc.items():
        if key == "slos":
            slos = _decode_list(
                value, lambda x, xp: _decode_slo(x, xp, problems, file), "$.slos", problems, file
            )
        elif key == "budget_policy":
            policy = tuple(_decode_policy(value, "$.budget_policy", problems, file))
        elif key not in ("version", "description"):
            problems.append(
                Problem(f"$.{key}", "unknown field (known: slos, budget_policy, version, description)", file)
            )
    if "slos" not in doc:
        problems.append(Problem("$.slos", "missing required field", file))
    for i, rule in enumerate(policy):
        if rule is not None:
            problems.extend(_check_policy_rule(rule, f"$.budget_policy[{i}]", file))
    indexed = [(i, s) for i, s in enumerate(slos)]
    problems.extend(_check_slos(indexed, file, parts_checked=True))
    problems.sort(key=_path_order)
    if problems:
        raise ConfigError(problems)
    return SLOSet(
        slos=tuple(s for s in slos if s is not None),
        budget_policy=tuple(r for r in policy if r is not None),
        file=file,
    )


def load_slos(path: str | os.PathLike[str]) -> SLOSet:
    """Load and validate an SLO YAML file: an srestream SLO file, or a
    Sloth (``version: prometheus/v1``) or OpenSLO (``apiVersion:
    openslo/v1``) file whose SLIs are counter ratios in PromQL, translated
    to metric-sample SLIs (see :mod:`srestream.slo._promql_sli`)."""
    import yaml

    from ._promql_sli import is_imported_format, load_streaming_slos

    p = os.fspath(path)
    try:
        with open(p, encoding="utf-8") as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d is not None]
    except OSError as exc:
        raise ConfigError([Problem("$", f"cannot read SLO file: {exc.strerror}", p)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("$", f"invalid YAML: {exc}", p)]) from exc
    if is_imported_format(docs):
        return load_streaming_slos(docs, file=p)
    if len(docs) > 1:
        raise ConfigError([Problem("$", f"an SLO file holds one YAML document, this one holds {len(docs)}", p)])
    return parse_slos(docs[0] if docs else None, file=p)


def validate_slos(slos: Sequence[SLOSpec], *, file: str = "") -> SLOSet:
    """Validate SLO Structs built in code (importers use this); raise
    :class:`ConfigError` listing every problem."""
    problems = _check_slos(list(enumerate(slos)), file)
    if problems:
        raise ConfigError(problems)
    return SLOSet(slos=tuple(slos), file=file)


# ---------------------------------------------------------------- semantic checks


def _check_policy_rule(rule: PolicyRule, path: str, file: str) -> list[Problem]:
    out = []
    if rule.action not in POLICY_ACTIONS:
        out.append(
            Problem(f"{path}.action", f"unknown action {rule.action!r} (use {', '.join(POLICY_ACTIONS)})", file)
        )
    if not -100.0 <= rule.remaining_at_most <= 100.0:
        out.append(Problem(f"{path}.remaining_at_most", "must be a percent in [-100, 100]", file))
    return out


def _check_review(review: ReviewSpec, path: str, file: str) -> list[Problem]:
    """An owner, a cadence of at least a day, named approvers listed once."""
    out = []
    if not review.owner.strip():
        out.append(Problem(f"{path}.owner", "must name who reviews this SLO", file))
    if review.cadence.ns < 86_400_000_000_000:
        out.append(Problem(f"{path}.cadence", f"a review cadence of {review.cadence} is under a day "
                                              "(e.g. 30d, 90d)", file))
    seen: set[str] = set()
    for i, name in enumerate(review.approvers):
        if not name.strip():
            out.append(Problem(f"{path}.approvers[{i}]", "must not be empty", file))
        elif name in seen:
            out.append(Problem(f"{path}.approvers[{i}]", f"{name!r} is listed twice", file))
        seen.add(name)
    return out


def _check_sli(sli: SLISpec, path: str, file: str) -> list[Problem]:
    out: list[Problem] = []
    if sli.kind not in SLI_KINDS:
        out.append(Problem(f"{path}.kind", f"unknown SLI kind {sli.kind!r} (use {', '.join(SLI_KINDS)})", file))
        return out
    if sli.total is None and sli.kind != "freshness":
        out.append(Problem(f"{path}.total", "missing total predicate (use {} for every record)", file))
    spans = sli.on_spans
    if sli.good is None and sli.bad is None and sli.kind in _NEEDS_GOOD and not (
        spans and sli.kind == "availability"  # good: the span did not fail
    ):
        if sli.kind in TWO_POPULATION_KINDS:
            out.append(Problem(f"{path}.good", _TWO_POPULATIONS_MISSING[sli.kind], file))
        else:
            out.append(Problem(f"{path}.good", f"missing good predicate for this {sli.kind} SLI", file))
    if sli.kind in TWO_POPULATION_KINDS and not spans:
        out.extend(_check_options_apply(sli, path, file))
    if spans:
        out.extend(_check_span_sli(sli, path, file))
    out.extend(_check_metric_series(sli, path, file))
    for name in ("total", "good", "bad"):
        pred = getattr(sli, name)
        if pred is not None:
            out.extend(check_predicate(pred, f"{path}.{name}", file, spans=spans))
    if sli.kind in ("latency", "freshness") and (sli.threshold is None or sli.threshold.ns <= 0):
        out.append(Problem(f"{path}.threshold", f"a {sli.kind} SLI needs a positive threshold (e.g. 300ms)", file))
    if sli.kind == "freshness" and not sli.metric:
        out.append(Problem(f"{path}.metric", "a freshness SLI needs the metric name", file))
    if sli.kind == "throughput" and (sli.min_events_per_minute is None or sli.min_events_per_minute <= 0):
        out.append(Problem(f"{path}.min_events_per_minute", "a throughput SLI needs a positive minimum", file))
    if sli.source not in ("logs", "metrics", "spans"):
        out.append(Problem(f"{path}.source", f"unknown source {sli.source!r} (use logs, metrics or spans)", file))
    elif sli.source == "metrics" and sli.kind not in (*_NEEDS_GOOD, "freshness"):
        out.append(Problem(f"{path}.source", f"a {sli.kind} SLI cannot count metric samples (ratio kinds and freshness can)", file))
    if sli.budgeting not in ("occurrences", "timeslices"):
        out.append(Problem(f"{path}.budgeting", f"unknown budgeting {sli.budgeting!r} (use occurrences or timeslices)", file))
    elif sli.budgeting == "timeslices" and sli.kind != "throughput":
        t = sli.timeslice_target
        if t is None or not 0.0 < t <= 100.0:
            out.append(Problem(f"{path}.timeslice_target", "timeslices need a target percent in (0, 100]", file))
    return out


_TWO_POPULATIONS_MISSING = {
    "coverage": "a coverage SLI needs good (the records of work done: job_completed, "
                "records written) or bad (work dropped), counted apart from total (the work due)",
    "durability": "a durability SLI needs good (objects verified intact) or bad (objects "
                  "lost or corrupt), counted apart from total (objects checked or written)",
}

_KIND_OPTIONS = (
    ("threshold", "latency and freshness"),
    ("metric", "freshness"),
    ("min_events_per_minute", "throughput"),
)
"""Options of one SLI kind only: (option, the kinds it belongs to)."""


def _check_options_apply(sli: SLISpec, path: str, file: str) -> list[Problem]:
    """Options given to a coverage or durability SLI that belong to another kind."""
    out = []
    for name, kinds in _KIND_OPTIONS:
        value = getattr(sli, name)
        if value is not None and value != "":
            out.append(Problem(f"{path}.{name}", f"{name} is an option of {kinds} SLIs, not of "
                                                 f"{sli.kind} ones", file))
    return out


def _check_span_sli(sli: SLISpec, path: str, file: str) -> list[Problem]:
    """``source: spans``: the kinds that count spans, and options that
    belong to another kind or source (a threshold on an availability SLI
    would be silently ignored, so it is refused)."""
    if sli.kind not in SPAN_KINDS:
        return [Problem(f"{path}.source", f"a {sli.kind} SLI cannot count spans (source: spans "
                                          f"takes {', '.join(SPAN_KINDS)})", file)]
    out = []
    for name, kinds in _KIND_OPTIONS:
        value = getattr(sli, name)
        if value is None or value == "" or (name == "threshold" and sli.kind == "latency"):
            continue
        out.append(Problem(f"{path}.{name}", f"{name} is an option of {kinds} SLIs, not of "
                                             f"{sli.kind} ones over spans", file))
    return out


def _check_metric_series(sli: SLISpec, path: str, file: str) -> list[Problem]:
    """``bad`` and ``series``: options of counter (``source: metrics``) SLIs,
    and of coverage and durability SLIs over logs (``bad``)."""
    out: list[Problem] = []
    counters = sli.source == "metrics" and sli.kind in _NEEDS_GOOD
    if sli.bad is not None:
        if not counters and sli.kind not in TWO_POPULATION_KINDS:
            out.append(Problem(f"{path}.bad", "bad applies to coverage and durability SLIs, and to "
                                              "availability, ratio and correctness SLIs with "
                                              "source: metrics", file))
        elif sli.good is not None:
            out.append(Problem(f"{path}.bad", "give good or bad, not both", file))
    if sli.series not in ("service", "selected"):
        out.append(Problem(f"{path}.series", f"unknown series {sli.series!r} (use service or selected)", file))
    elif sli.series == "selected" and not counters:
        out.append(Problem(f"{path}.series", "selected series apply to availability, ratio, correctness, coverage and durability SLIs with source: metrics", file))
    return out


def _check_alerting(a: AlertingSpec, period: Period | None, path: str, file: str) -> list[Problem]:
    out: list[Problem] = []
    for i, t in enumerate(a.tiers):
        if t not in TIERS:
            out.append(Problem(f"{path}.tiers[{i}]", f"unknown tier {t!r} (use {', '.join(TIERS)})", file))
    for t in a.severities:
        if t not in (*TIERS, "forecast"):
            out.append(Problem(f"{path}.severities.{t}", f"unknown tier {t!r}", file))
    if a.window_scaling not in ("period", "none"):
        out.append(Problem(f"{path}.window_scaling", "use period or none", file))
    for name in ("pending_for", "keep_firing_for"):
        if getattr(a, name).ns < 0:
            out.append(Problem(f"{path}.{name}", "must not be negative", file))
    if a.min_events < 0:
        out.append(Problem(f"{path}.min_events", "must not be negative", file))
    if a.forecast_horizon is not None and a.forecast_horizon.ns <= 0:
        out.append(Problem(f"{path}.forecast_horizon", "must be positive", file))
    if a.forecast_window.ns < 10 * MINUTE_NS:
        out.append(Problem(f"{path}.forecast_window", "must be at least 10m", file))
    for i, w in enumerate(a.windows):
        wp = f"{path}.windows[{i}]"
        if w.tier not in TIERS:
            out.append(Problem(f"{wp}.tier", f"unknown tier {w.tier!r} (use {', '.join(TIERS)})", file))
        for name in ("long_window", "short_window"):
            v = getattr(w, name).ns
            if v <= 0 or v % MINUTE_NS:
                out.append(Problem(f"{wp}.{name}", "must be a positive whole number of minutes", file))
        if w.short_window.ns >= w.long_window.ns:
            out.append(Problem(f"{wp}.short_window", "must be shorter than long_window", file))
        if period is not None and w.long_window.ns > period.length_ns:
            out.append(
                Problem(
                    f"{wp}.long_window",
                    f"period {period.text} is shorter than this alert window ({w.long_window})",
                    file,
                )
            )
        if (w.budget_percent is None) == (w.burn_rate is None):
            out.append(Problem(wp, "give exactly one of budget_percent or burn_rate", file))
        elif w.budget_percent is not None and not 0.0 < w.budget_percent <= 100.0:
            out.append(Problem(f"{wp}.budget_percent", "must be in (0, 100]", file))
        elif w.burn_rate is not None and w.burn_rate <= 0:
            out.append(Problem(f"{wp}.burn_rate", "must be positive", file))
    return out


def _path_order(p: Problem) -> tuple[int, int]:
    """Problems of $.slos[i] in SLO order, file-level ones first."""
    if p.path.startswith("$.slos["):
        return (1, int(p.path[7 : p.path.index("]")]))
    return (0, 0)


def _check_slos(
    indexed: list[tuple[int, SLOSpec | None]], file: str, *, parts_checked: bool = False
) -> list[Problem]:
    problems: list[Problem] = []
    seen_names: dict[tuple[str, str], int] = {}
    seen_sli: dict[tuple[str, str, str, str], tuple[int, float]] = {}
    for i, slo in indexed:
        if slo is None:
            continue
        path = f"$.slos[{i}]"
        if not slo.name.strip():
            problems.append(Problem(f"{path}.name", "must not be empty", file))
        if not slo.service.strip():
            problems.append(Problem(f"{path}.service", "must not be empty", file))
        if not 0.0 < slo.objective < 100.0:
            hint = (" (a number with more than 16 nines reads as 100: a float holds no more)"
                    if slo.objective == 100.0 else "")
            problems.append(
                Problem(f"{path}.objective", f"objective {slo.objective} is outside (0, 100) percent{hint}", file)
            )
        period: Period | None = None
        try:
            zoneinfo.ZoneInfo(slo.time_zone)
            tz_ok = True
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(Problem(f"{path}.time_zone", f"unknown time zone {slo.time_zone!r}", file))
            tz_ok = False
        period = parse_period(slo.period, slo.time_zone)
        if period is None:
            problems.append(
                Problem(f"{path}.period", f"bad period {slo.period!r} (rolling like 30d, or month, quarter)", file)
            )
        elif period.rolling and not MIN_ROLLING_NS <= period.length_ns <= MAX_ROLLING_NS:
            problems.append(Problem(f"{path}.period", "a rolling period must be between 1h and 90d", file))
            period = None
        elif period.rolling and period.length_ns % MINUTE_NS:
            problems.append(Problem(f"{path}.period", "a rolling period must be whole minutes", file))
            period = None
        if not parts_checked:
            problems.extend(_check_sli(slo.sli, f"{path}.sli", file))
            problems.extend(_check_alerting(slo.alerting, period, f"{path}.alerting", file))
        if slo.review is not None and not parts_checked:
            problems.extend(_check_review(slo.review, f"{path}.review", file))
        if slo.budget_policy is not None and not parts_checked:
            for j, rule in enumerate(slo.budget_policy):
                problems.extend(_check_policy_rule(rule, f"{path}.budget_policy[{j}]", file))
        key = (slo.service, slo.name)
        duplicate = key in seen_names
        if duplicate:
            problems.append(
                Problem(
                    f"{path}.name",
                    f"duplicate SLO {slo.name!r} for service {slo.service!r} (first at $.slos[{seen_names[key]}])",
                    file,
                )
            )
        else:
            seen_names[key] = i
        if period is not None and tz_ok and not duplicate and 0.0 < slo.objective < 100.0:
            sli_key = (slo.service, repr(slo.sli), period.text, period.time_zone if not period.rolling else "")
            first = seen_sli.get(sli_key)
            if first is None:
                seen_sli[sli_key] = (i, slo.objective)
            elif first[1] != slo.objective:
                problems.append(
                    Problem(
                        f"{path}.objective",
                        f"two objectives for one SLI and period: {slo.objective} here, "
                        f"{first[1]} at $.slos[{first[0]}]",
                        file,
                    )
                )
    return problems

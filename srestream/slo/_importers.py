"""Importers: OpenSLO (v1, and the v1alpha shape Sloth reads) and Sloth
``prometheus/v1`` specs into :class:`ImportedSLO`.

Why an intermediate record: both formats describe SLIs as *queries* on a
metrics backend, while srestream's own spec describes them as predicates on
records.  :class:`ImportedSLO` keeps what both say (objective, period,
budgeting, the PromQL templates, alert names and labels) so that
``srestream rules`` can export Prometheus rules from it, ``srestream
report`` can report on it, and, when its queries are counter ratios
(``sum(rate(selector[{{.window}}]))``), :mod:`srestream.slo._promql_sli`
can turn it into an srestream SLO that the streaming stages evaluate.

Every problem is collected, with its JSON path (``$.slos[1].objective``;
``$[2].spec.timeWindow[0].duration`` for the third document of a file), and
raised at once as one :class:`~srestream.ConfigError`.

Gotchas handled on purpose (see tests/data/slo/README.md):

* OpenSLO durations: ``m`` is **minutes**, ``M`` is months (``1m`` on a
  calendar window is one minute, whatever the comment next to it says);
* OpenSLO targets are ratios in (0, 1); Sloth objectives are percents in
  (0, 100) — ``objective: 101`` and ``target: 1`` are refused;
* an inline ratio SLI takes no ``op``/``value`` on its objective (OpenSLO
  go-sdk rule): those belong to threshold SLIs.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec
import yaml

from .._errors import ConfigError, Problem

__all__ = [
    "WINDOW_TEMPLATE",
    "AlertTier",
    "ImportedSLO",
    "PromSLI",
    "QuerySLI",
    "SLOAlerting",
    "import_documents",
    "import_openslo",
    "import_sloth",
    "load_slo_file",
]

WINDOW_TEMPLATE = "{{.window}}"
"""The placeholder Sloth and OpenSLO queries use for the rate window."""

_DAY_NS = 86_400 * 1_000_000_000
_OPENSLO_UNITS_NS = {
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
    "d": _DAY_NS,
    "w": 7 * _DAY_NS,
}
_OPENSLO_CALENDAR_UNITS = {"M": "month", "Q": "quarter", "Y": "year"}
_V1ALPHA_UNITS_NS = {"Second": 1_000_000_000, "Minute": 60_000_000_000, "Hour": 3_600_000_000_000,
                     "Day": _DAY_NS, "Week": 7 * _DAY_NS}
_V1ALPHA_CALENDAR_UNITS = {"Month": "month", "Quarter": "quarter", "Year": "year"}


class PromSLI(msgspec.Struct, frozen=True, kw_only=True):
    """An SLI given as PromQL templates with ``{{.window}}`` in them.

    ``style`` keeps how the error ratio is built, so the exported rules read
    like the ones Sloth writes for the same input:

    * ``events``: ``(error) / (total)``;
    * ``raw``: the error ratio query itself;
    * ``good_total``: ``1 - (good / total)``;
    * ``raw_success``: ``1 - (ratio)`` for a success-ratio query.
    """

    style: Literal["events", "raw", "good_total", "raw_success"]
    error_query: str = ""
    good_query: str = ""
    total_query: str = ""
    ratio_query: str = ""
    paths: dict[str, str] = {}
    """Where each query was written in its file (``error``, ``good``,
    ``total``, ``ratio`` -> ``$.slos[1].sli.events.errorQuery``), so that a
    later problem with a query names it."""

    def error_ratio_expr(self, window: str) -> str:
        """The PromQL error ratio over ``window`` (e.g. ``"5m"``)."""
        def w(q: str) -> str:
            return q.replace(WINDOW_TEMPLATE, window)

        if self.style == "events":
            return f"({w(self.error_query)})\n/\n({w(self.total_query)})\n"
        if self.style == "raw":
            return f"({w(self.ratio_query)})"
        if self.style == "raw_success":
            return f"(\n  1 - (\n    {w(self.ratio_query).strip()}\n  )\n)"
        return (
            "(\n  1 - (\n    (\n      " + w(self.good_query).strip() + "\n    )\n    /\n    (\n      "
            + w(self.total_query).strip() + "\n    )\n  )\n)"
        )


class QuerySLI(msgspec.Struct, frozen=True, kw_only=True):
    """An SLI on a backend srestream cannot export rules for (a threshold
    metric, or a Datadog/AppDynamics/... query): kept for the spec, refused
    by ``srestream rules`` with the reason."""

    kind: Literal["ratio", "threshold"]
    source_type: str
    queries: dict[str, str] = {}
    op: str | None = None
    value: float | None = None


class AlertTier(msgspec.Struct, frozen=True, kw_only=True):
    disabled: bool = False
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class SLOAlerting(msgspec.Struct, frozen=True, kw_only=True):
    name: str = ""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    page: AlertTier = AlertTier()
    ticket: AlertTier = AlertTier()


class ImportedSLO(msgspec.Struct, frozen=True, kw_only=True):
    """One SLO read from a Sloth or OpenSLO file."""

    name: str
    service: str
    objective: float
    """Percent, in (0, 100)."""
    period_ns: int | None
    """Rolling period; None for a calendar period (see ``calendar``)."""
    sli: PromSLI | QuerySLI
    calendar: str | None = None
    """``month``, ``quarter`` or ``year`` for calendar periods."""
    calendar_count: int = 1
    time_zone: str = "UTC"
    budgeting: Literal["occurrences", "timeslices", "ratio_timeslices"] = "occurrences"
    time_slice_target: float | None = None
    time_slice_window_ns: int | None = None
    description: str = ""
    labels: dict[str, str] = {}
    alerting: SLOAlerting = SLOAlerting()
    spec_format: str = ""
    """``prometheus/v1``, ``openslo/v1`` or ``openslo/v1alpha``."""
    path: str = "$"
    """Where in its file this SLO was defined (for later problems)."""
    sli_path: str = "$"
    """Where its SLI was defined."""
    file: str = ""

    @property
    def slo_id(self) -> str:
        return f"{self.service}-{self.name}"


# --------------------------------------------------------------------------- helpers


class _Problems:
    """Collects problems for one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(Problem(path=path, message=message, file=self.file))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


def _is_label_name(s: str) -> bool:
    return bool(s) and (s[0].isalpha() or s[0] == "_") and all(
        c.isascii() and (c.isalnum() or c == "_") for c in s
    )


def _is_slo_name(s: str) -> bool:
    return bool(s) and all(c.isascii() and (c.isalnum() or c in "-_") for c in s)


def _is_dns_label(s: str) -> bool:
    return (
        0 < len(s) <= 63
        and all(c.isascii() and (c.islower() or c.isdigit() or c == "-") for c in s)
        and s[0] != "-" and s[-1] != "-"
    )


def _mapping(p: _Problems, node: Any, path: str, *, required: bool = True) -> Mapping[str, Any]:
    if node is None:
        if required:
            p.add(path, "missing")
        return {}
    if not isinstance(node, Mapping):
        p.add(path, f"expected a mapping, got {type(node).__name__}")
        return {}
    return node


def _known(p: _Problems, node: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    for key in node:
        if key not in allowed:
            p.add(f"{path}.{key}", f"unknown field (known: {', '.join(sorted(allowed))})")


def _string(p: _Problems, node: Mapping[str, Any], key: str, path: str, *,
            required: bool = True) -> str:
    v = node.get(key)
    if v is None:
        if required:
            p.add(f"{path}.{key}", "missing")
        return ""
    if not isinstance(v, str) or (required and not v.strip()):
        p.add(f"{path}.{key}", f"expected a non-empty string, got {v!r}")
        return ""
    return v


def _labels(p: _Problems, node: Any, path: str) -> dict[str, str]:
    m = _mapping(p, node, path, required=False)
    out: dict[str, str] = {}
    for k, v in m.items():
        if not isinstance(k, str) or not _is_label_name(k):
            p.add(f"{path}.{k}", "not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
            continue
        if isinstance(v, list):  # OpenSLO v1 labels are lists of values
            v = ",".join(str(x) for x in v)
        if isinstance(v, (Mapping, list)) or v is None:
            p.add(f"{path}.{k}", "a label value must be a string")
            continue
        out[k] = str(v)
    return out


def _template_query(p: _Problems, node: Mapping[str, Any], key: str, path: str) -> str:
    q = _string(p, node, key, path)
    if q and WINDOW_TEMPLATE not in q:
        p.add(f"{path}.{key}", f"the query needs the {WINDOW_TEMPLATE} placeholder for its rate window")
    return q


# --------------------------------------------------------------------------- files


def load_slo_file(path: str, *, default_period_ns: int = 30 * _DAY_NS) -> list[ImportedSLO]:
    """Read a Sloth or OpenSLO file (several YAML documents allowed)."""
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except OSError as exc:
        raise ConfigError([Problem("$", f"cannot read: {exc.strerror}", path)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("$", f"not valid YAML: {exc}", path)]) from exc
    return import_documents(docs, file=path, default_period_ns=default_period_ns)


def import_documents(
    docs: Sequence[Any], *, file: str = "", default_period_ns: int = 30 * _DAY_NS
) -> list[ImportedSLO]:
    """Import the YAML documents of one file.  A document may itself be a
    list of OpenSLO objects (the go-sdk examples are)."""
    p = _Problems(file)
    items: list[tuple[str, Any]] = []
    many = len(docs) > 1
    for i, d in enumerate(docs):
        base = f"$[{i}]" if many else "$"
        if isinstance(d, list):
            items.extend((f"{base}[{j}]" if many else f"$[{j}]", x) for j, x in enumerate(d))
        else:
            items.append((base, d))
    if not items:
        p.add("$", "no SLO document in this file")
    out: list[ImportedSLO] = []
    openslo: list[tuple[str, Mapping[str, Any]]] = []
    for path, d in items:
        if not isinstance(d, Mapping):
            p.add(path, f"expected a mapping, got {type(d).__name__}")
        elif str(d.get("version", "")).startswith("prometheus/") or (
                "service" in d and "slos" in d and "apiVersion" not in d):
            out.extend(_sloth(p, d, path, default_period_ns))
        elif "slos" in d and "apiVersion" not in d:
            _native(p, d, path)
        elif str(d.get("apiVersion", "")).startswith("openslo/"):
            openslo.append((path, d))
        else:
            p.add(path, "neither a Sloth spec (version: prometheus/v1) nor an OpenSLO object "
                        "(apiVersion: openslo/v1)")
    if openslo:
        out.extend(_openslo(p, openslo))
    if not out and not p.items:
        kinds = sorted({str(d.get("kind")) for _, d in items if isinstance(d, Mapping)})
        p.add("$", f"no SLO in this file (found: {', '.join(kinds)})")
    seen: dict[tuple[str, str], str] = {}
    for slo in out:
        key = (slo.service, slo.name)
        if key in seen:
            p.add(f"{slo.path}.name" if slo.spec_format == "prometheus/v1" else slo.path,
                  f"duplicate SLO {slo.name!r} of service {slo.service!r} (first at {seen[key]})")
        else:
            seen[key] = slo.path
    p.raise_if_any()
    return [msgspec.structs.replace(s, file=file) for s in out]


def _native(p: _Problems, d: Mapping[str, Any], path: str) -> None:
    """An srestream SLO file: its SLIs count records, so no query exists
    for Prometheus to evaluate; say so for each SLO (validating it too)."""
    from ._spec import parse_slos

    try:
        slo_set = parse_slos(dict(d), file=p.file)
    except ConfigError as exc:
        p.items.extend(exc.problems)
        return
    for i, slo in enumerate(slo_set.slos):
        article = "an" if slo.sli.kind[:1] in "aeiou" else "a"
        why = ("is srestream predicates over metric samples, not a PromQL query" if slo.sli.on_metrics
               else "counts records inside srestream, Prometheus has no series for it")
        p.add(f"{path}.slos[{i}].sli", f"SLO {slo.name!r} of {slo.service!r}: {article} "
              f"{slo.sli.kind} SLI {why}; export "
              "rules from a Sloth (prometheus/v1) or OpenSLO spec whose SLI is PromQL")


def import_sloth(doc: Any, *, file: str = "", default_period_ns: int = 30 * _DAY_NS) -> list[ImportedSLO]:
    """Import one Sloth ``prometheus/v1`` document."""
    return import_documents([doc], file=file, default_period_ns=default_period_ns)


def import_openslo(docs: Sequence[Any], *, file: str = "") -> list[ImportedSLO]:
    """Import OpenSLO objects (SLOs, and the SLIs they reference)."""
    return import_documents(docs, file=file)


# --------------------------------------------------------------------------- Sloth


_SLOTH_TOP = {"version", "service", "labels", "slos"}
_SLOTH_SLO = {"name", "objective", "description", "labels", "sli", "alerting"}
_SLOTH_ALERTING = {"name", "labels", "annotations", "page_alert", "pageAlert", "ticket_alert",
                   "ticketAlert"}


def _sloth(p: _Problems, d: Mapping[str, Any], path: str, period_ns: int) -> list[ImportedSLO]:
    _known(p, d, path, _SLOTH_TOP)
    if d.get("version") != "prometheus/v1":
        p.add(f"{path}.version", f"unsupported Sloth spec version {d.get('version')!r} "
                                 "(expected 'prometheus/v1')")
    service = _string(p, d, "service", path)
    labels = _labels(p, d.get("labels"), f"{path}.labels")
    slos = d.get("slos")
    if not isinstance(slos, list) or not slos:
        p.add(f"{path}.slos", "expected a non-empty list of SLOs")
        return []
    out = []
    for i, s in enumerate(slos):
        sp = f"{path}.slos[{i}]"
        s = _mapping(p, s, sp)
        if not s:
            continue
        _known(p, s, sp, _SLOTH_SLO)
        name = _string(p, s, "name", sp)
        if name and not _is_slo_name(name):
            p.add(f"{sp}.name", "use letters, digits, '-' and '_' only")
        objective = _objective_percent(p, s.get("objective"), f"{sp}.objective")
        sli = _sloth_sli(p, s.get("sli"), f"{sp}.sli")
        alerting = _sloth_alerting(p, s.get("alerting"), f"{sp}.alerting")
        desc = s.get("description", "")
        slo_labels = dict(labels)
        slo_labels.update(_labels(p, s.get("labels"), f"{sp}.labels"))
        if name and service and objective is not None and sli is not None:
            out.append(ImportedSLO(
                name=name, service=service, objective=objective, period_ns=period_ns, sli=sli,
                description=str(desc or ""), labels=slo_labels, alerting=alerting,
                spec_format="prometheus/v1", path=sp, sli_path=f"{sp}.sli",
            ))
    return out


def _objective_percent(p: _Problems, v: Any, path: str) -> float | None:
    if v is None:
        p.add(path, "missing")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        p.add(path, f"expected a number (percent), got {v!r}")
        return None
    if not 0 < v < 100:
        p.add(path, f"objective {v} is outside (0, 100): a percent such as 99.9")
        return None
    return float(v)


def _sloth_sli(p: _Problems, node: Any, path: str) -> PromSLI | None:
    m = _mapping(p, node, path)
    if not m:
        return None
    _known(p, m, path, {"events", "raw", "plugin"})
    kinds = [k for k in ("events", "raw", "plugin") if k in m]
    if len(kinds) != 1:
        p.add(path, f"exactly one of events, raw or plugin is needed (got {kinds or 'none'})")
        return None
    kind = kinds[0]
    kp = f"{path}.{kind}"
    body = _mapping(p, m[kind], kp)
    if kind == "plugin":
        p.add(kp, "Sloth SLI plugins are Go code: write the SLI as events or raw queries")
        return None
    if kind == "events":
        _known(p, body, kp, {"error_query", "total_query", "errorQuery", "totalQuery"})
        ek = "errorQuery" if "errorQuery" in body else "error_query"
        tk = "totalQuery" if "totalQuery" in body else "total_query"
        e = _template_query(p, body, ek, kp)
        t = _template_query(p, body, tk, kp)
        return PromSLI(style="events", error_query=e, total_query=t,
                       paths={"error": f"{kp}.{ek}", "total": f"{kp}.{tk}"}) if e and t else None
    _known(p, body, kp, {"error_ratio_query", "errorRatioQuery"})
    rk = "errorRatioQuery" if "errorRatioQuery" in body else "error_ratio_query"
    r = _template_query(p, body, rk, kp)
    return PromSLI(style="raw", ratio_query=r, paths={"ratio": f"{kp}.{rk}"}) if r else None


def _tier(p: _Problems, node: Any, path: str) -> AlertTier:
    m = _mapping(p, node, path, required=False)
    _known(p, m, path, {"disable", "labels", "annotations"})
    disable = m.get("disable", False)
    if not isinstance(disable, bool):
        p.add(f"{path}.disable", "expected true or false")
        disable = False
    return AlertTier(disabled=disable, labels=_labels(p, m.get("labels"), f"{path}.labels"),
                     annotations=_annotations(p, m.get("annotations"), f"{path}.annotations"))


def _annotations(p: _Problems, node: Any, path: str) -> dict[str, str]:
    m = _mapping(p, node, path, required=False)
    out = {}
    for k, v in m.items():
        if not isinstance(k, str) or not _is_label_name(k):
            p.add(f"{path}.{k}", "not a valid annotation name")
        elif not isinstance(v, str):
            p.add(f"{path}.{k}", "an annotation value must be a string")
        else:
            out[k] = v
    return out


def _sloth_alerting(p: _Problems, node: Any, path: str) -> SLOAlerting:
    m = _mapping(p, node, path, required=False)
    _known(p, m, path, _SLOTH_ALERTING)
    page = _tier(p, m.get("page_alert", m.get("pageAlert")),
                 f"{path}.{'pageAlert' if 'pageAlert' in m else 'page_alert'}")
    ticket = _tier(p, m.get("ticket_alert", m.get("ticketAlert")),
                   f"{path}.{'ticketAlert' if 'ticketAlert' in m else 'ticket_alert'}")
    name = _string(p, m, "name", path, required=False)
    if not name and not (page.disabled and ticket.disabled):
        p.add(f"{path}.name", "an alert name is needed unless page and ticket alerts are disabled")
    return SLOAlerting(name=name, labels=_labels(p, m.get("labels"), f"{path}.labels"),
                       annotations=_annotations(p, m.get("annotations"), f"{path}.annotations"),
                       page=page, ticket=ticket)


# --------------------------------------------------------------------------- OpenSLO


_OPENSLO_KINDS = {"SLO", "SLI", "Service", "AlertPolicy", "AlertCondition",
                  "AlertNotificationTarget", "DataSource"}


def _openslo(p: _Problems, objs: list[tuple[str, Mapping[str, Any]]]) -> list[ImportedSLO]:
    slis: dict[str, tuple[str, Mapping[str, Any]]] = {}
    slos: list[tuple[str, Mapping[str, Any]]] = []
    for path, o in objs:
        api = o.get("apiVersion")
        if api not in ("openslo/v1", "openslo/v1alpha"):
            p.add(f"{path}.apiVersion", f"unsupported OpenSLO version {api!r} "
                                        "(openslo/v1 or openslo/v1alpha)")
            continue
        kind = o.get("kind")
        if kind not in _OPENSLO_KINDS:
            p.add(f"{path}.kind", f"unknown OpenSLO kind {kind!r}")
            continue
        meta = _mapping(p, o.get("metadata"), f"{path}.metadata")
        name = _string(p, meta, "name", f"{path}.metadata")
        if name and api == "openslo/v1" and not _is_dns_label(name):
            p.add(f"{path}.metadata.name", "must be a DNS label (lowercase letters, digits, '-')")
        if kind == "SLI" and name:
            slis[name] = (path, o)
        elif kind == "SLO":
            slos.append((path, o))
    out: list[ImportedSLO] = []
    for path, o in slos:
        if o.get("apiVersion") == "openslo/v1alpha":
            out.extend(_openslo_v1alpha(p, o, path))
        else:
            out.extend(_openslo_v1(p, o, path, slis))
    return out


def _openslo_v1(p: _Problems, o: Mapping[str, Any], path: str,
                slis: Mapping[str, tuple[str, Mapping[str, Any]]]) -> list[ImportedSLO]:
    _known(p, o, path, {"apiVersion", "kind", "metadata", "spec"})
    meta = _mapping(p, o.get("metadata"), f"{path}.metadata")
    name = str(meta.get("name") or "")
    sp = f"{path}.spec"
    spec = _mapping(p, o.get("spec"), sp)
    if not spec:
        return []
    _known(p, spec, sp, {"description", "service", "indicator", "indicatorRef", "timeWindow",
                         "budgetingMethod", "objectives", "alertPolicies"})
    service = _string(p, spec, "service", sp)
    # the SLI: inline or by reference
    sli_node: Mapping[str, Any] = {}
    sli_path = f"{sp}.indicator"
    if ("indicator" in spec) == ("indicatorRef" in spec):
        p.add(sp, "exactly one of indicator or indicatorRef is needed")
    elif "indicator" in spec:
        sli_node = _mapping(p, spec["indicator"], sli_path)
    else:
        ref = spec["indicatorRef"]
        if ref not in slis:
            p.add(f"{sp}.indicatorRef", f"no SLI named {ref!r} in this file")
        else:
            sli_path, sli_node = slis[ref]
    sli_spec = _mapping(p, sli_node.get("spec"), f"{sli_path}.spec") if sli_node else {}
    sli = _openslo_v1_sli(p, sli_spec, f"{sli_path}.spec") if sli_spec else None
    # the period
    period_ns, calendar, count, tz = _openslo_v1_window(p, spec.get("timeWindow"), f"{sp}.timeWindow")
    # budgeting
    method = spec.get("budgetingMethod")
    budgeting = {"Occurrences": "occurrences", "Timeslices": "timeslices",
                 "RatioTimeslices": "ratio_timeslices"}.get(str(method))
    if budgeting is None:
        p.add(f"{sp}.budgetingMethod",
              f"expected Occurrences, Timeslices or RatioTimeslices, got {method!r}")
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        p.add(f"{sp}.objectives", "expected a non-empty list")
        return []
    out = []
    is_threshold = isinstance(sli, QuerySLI) and sli.kind == "threshold"
    for i, ob in enumerate(objectives):
        op_ = f"{sp}.objectives[{i}]"
        ob = _mapping(p, ob, op_)
        _known(p, ob, op_, {"displayName", "op", "value", "target", "targetPercent",
                            "timeSliceTarget", "timeSliceWindow", "indicator", "indicatorRef",
                            "compositeWeight"})
        objective = _openslo_target(p, ob, op_)
        has_op = "op" in ob or "value" in ob
        if sli is not None and not is_threshold and has_op:
            p.add(f"{op_}.{'op' if 'op' in ob else 'value'}",
                  "op/value apply to threshold SLIs only, not to a ratio SLI")
        slo_sli = sli
        if is_threshold and isinstance(sli, QuerySLI):
            op = ob.get("op")
            if op not in ("lt", "lte", "gt", "gte"):
                p.add(f"{op_}.op", f"a threshold SLI needs op lt, lte, gt or gte (got {op!r})")
            value = ob.get("value")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                p.add(f"{op_}.value", f"a threshold SLI needs a numeric value (got {value!r})")
                value = None
            slo_sli = msgspec.structs.replace(sli, op=op, value=value)
        ts_target = ob.get("timeSliceTarget")
        ts_window = None
        if budgeting in ("timeslices", "ratio_timeslices"):
            ts_window = _openslo_duration_ns(p, ob.get("timeSliceWindow"), f"{op_}.timeSliceWindow")
        if budgeting == "timeslices":
            if isinstance(ts_target, bool) or not isinstance(ts_target, (int, float)) \
                    or not 0 < ts_target <= 1:
                p.add(f"{op_}.timeSliceTarget", f"Timeslices budgeting needs a timeSliceTarget "
                                                f"in (0, 1], got {ts_target!r}")
                ts_target = None
        else:
            ts_target = None
        slo_name = name if len(objectives) == 1 else f"{name}-{i}"
        if service and slo_sli is not None and objective is not None and budgeting \
                and (period_ns or calendar):
            out.append(ImportedSLO(
                name=slo_name, service=service, objective=objective, period_ns=period_ns,
                calendar=calendar, calendar_count=count, time_zone=tz, sli=slo_sli,
                budgeting=budgeting,  # type: ignore[arg-type]
                time_slice_target=float(ts_target) if ts_target is not None else None,
                time_slice_window_ns=ts_window,
                description=str(spec.get("description") or ""),
                labels=_openslo_labels(meta), spec_format="openslo/v1", path=path,
                sli_path=sli_path,
            ))
    return out


def _openslo_labels(meta: Mapping[str, Any]) -> dict[str, str]:
    """OpenSLO v1 labels are lists of values; keep the valid ones, joined."""
    out = {}
    labels = meta.get("labels")
    if isinstance(labels, Mapping):
        for k, v in labels.items():
            if isinstance(k, str) and _is_label_name(k):
                out[k] = ",".join(map(str, v)) if isinstance(v, list) else str(v)
    return out


def _openslo_target(p: _Problems, ob: Mapping[str, Any], path: str) -> float | None:
    if ("target" in ob) == ("targetPercent" in ob):
        p.add(path, "exactly one of target or targetPercent is needed")
        return None
    if "target" in ob:
        t = ob["target"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < 1:
            p.add(f"{path}.target", f"target {t!r} is outside (0, 1): a ratio such as 0.999")
            return None
        return round(float(t) * 100, 10)
    return _objective_percent(p, ob["targetPercent"], f"{path}.targetPercent")


def _openslo_duration_ns(p: _Problems, v: Any, path: str) -> int | None:
    if not isinstance(v, str) or len(v) < 2 or not v[:-1].isdigit() or v[0] == "0" \
            or v[-1] not in _OPENSLO_UNITS_NS:
        p.add(path, f"expected an OpenSLO duration such as 1m (minutes), 2h, 28d or 2w, got {v!r}")
        return None
    return int(v[:-1]) * _OPENSLO_UNITS_NS[v[-1]]


def _openslo_v1_window(p: _Problems, node: Any, path: str) -> tuple[int | None, str | None, int, str]:
    if not isinstance(node, list) or len(node) != 1:
        p.add(path, "expected a list with exactly one time window")
        return None, None, 1, "UTC"
    wp = f"{path}[0]"
    w = _mapping(p, node[0], wp)
    _known(p, w, wp, {"duration", "isRolling", "calendar"})
    dur = w.get("duration")
    rolling = w.get("isRolling", False)
    if not isinstance(rolling, bool):
        p.add(f"{wp}.isRolling", "expected true or false")
        return None, None, 1, "UTC"
    if not isinstance(dur, str) or len(dur) < 2 or not dur[:-1].isdigit() or dur[0] == "0":
        p.add(f"{wp}.duration", f"expected a duration such as 28d, 2w or 1M, got {dur!r}")
        return None, None, 1, "UTC"
    count, unit = int(dur[:-1]), dur[-1]
    tz = "UTC"
    if not rolling:
        cal = _mapping(p, w.get("calendar"), f"{wp}.calendar")
        _known(p, cal, f"{wp}.calendar", {"startTime", "timeZone"})
        tz = str(cal.get("timeZone") or "UTC")
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            p.add(f"{wp}.calendar.timeZone", f"unknown time zone {tz!r}")
    elif "calendar" in w:
        p.add(f"{wp}.calendar", "a rolling window takes no calendar")
    if unit in _OPENSLO_CALENDAR_UNITS:
        if rolling:
            p.add(f"{wp}.duration", f"{dur!r} is a calendar unit; a rolling window needs s, m, h, "
                                    "d or w")
            return None, None, 1, tz
        return None, _OPENSLO_CALENDAR_UNITS[unit], count, tz
    if unit not in _OPENSLO_UNITS_NS:
        p.add(f"{wp}.duration", f"unknown unit {unit!r} (s, m = minutes, h, d, w, M = months, "
                                "Q, Y)")
        return None, None, 1, tz
    ns = count * _OPENSLO_UNITS_NS[unit]
    if ns < 3_600_000_000_000:
        hint = " ('m' is minutes in OpenSLO; a month is 'M')" if unit == "m" else ""
        p.add(f"{wp}.duration", f"period {dur} is shorter than the shortest alert window (1h){hint}")
        return None, None, 1, tz
    return ns, None, 1, tz


def _metric_source(p: _Problems, node: Any, path: str) -> tuple[str, str]:
    """(source type, query) of an OpenSLO v1 metric (``{metricSource: ...}``)."""
    m = _mapping(p, node, path)
    ms = _mapping(p, m.get("metricSource"), f"{path}.metricSource") if m else {}
    if not ms:
        return "", ""
    stype = str(ms.get("type") or "")
    if not stype:
        p.add(f"{path}.metricSource.type", "missing")
    spec = _mapping(p, ms.get("spec"), f"{path}.metricSource.spec")
    q = spec.get("query", "")
    if not isinstance(q, str):
        q = ""
    if not spec:
        return stype, ""
    if not q:
        q = msgspec.json.encode(dict(spec)).decode()
    return stype, q


def _openslo_v1_sli(p: _Problems, spec: Mapping[str, Any], path: str) -> PromSLI | QuerySLI | None:
    kinds = [k for k in ("ratioMetric", "thresholdMetric") if k in spec]
    if len(kinds) != 1:
        p.add(path, f"exactly one of ratioMetric or thresholdMetric is needed (got {kinds or 'none'})")
        return None
    if kinds[0] == "thresholdMetric":
        stype, q = _metric_source(p, spec["thresholdMetric"], f"{path}.thresholdMetric")
        return QuerySLI(kind="threshold", source_type=stype, queries={"query": q}) if stype else None
    rp = f"{path}.ratioMetric"
    r = _mapping(p, spec["ratioMetric"], rp)
    _known(p, r, rp, {"counter", "good", "bad", "total", "raw", "rawType"})
    parts: dict[str, tuple[str, str]] = {}
    if "raw" in r:
        if any(k in r for k in ("good", "bad", "total")):
            p.add(rp, "raw excludes good, bad and total")
            return None
        raw_type = r.get("rawType")
        if raw_type not in ("success", "failure"):
            p.add(f"{rp}.rawType", f"a raw ratio needs rawType success or failure (got {raw_type!r})")
            return None
        parts["raw"] = _metric_source(p, r["raw"], f"{rp}.raw")
    else:
        if ("good" in r) == ("bad" in r):
            p.add(rp, "exactly one of good or bad is needed, with total")
            return None
        if "total" not in r:
            p.add(f"{rp}.total", "missing")
            return None
        k = "good" if "good" in r else "bad"
        parts[k] = _metric_source(p, r[k], f"{rp}.{k}")
        parts["total"] = _metric_source(p, r["total"], f"{rp}.total")
    types = {t for t, _ in parts.values()}
    if "" in types or any(not q for _, q in parts.values()):
        return None
    if types == {"Prometheus"} or types == {"prometheus"}:
        for k, (_, q) in parts.items():
            if WINDOW_TEMPLATE not in q:
                p.add(f"{rp}.{k}.metricSource.spec.query",
                      f"the query needs the {WINDOW_TEMPLATE} placeholder for its rate window")
                return None
        paths = {("error" if k == "bad" else "ratio" if k == "raw" else k):
                 f"{rp}.{k}.metricSource.spec.query" for k in parts}
        if "raw" in parts:
            q = parts["raw"][1]
            return PromSLI(style="raw" if r["rawType"] == "failure" else "raw_success",
                           ratio_query=q, paths=paths)
        if "good" in parts:
            return PromSLI(style="good_total", good_query=parts["good"][1],
                           total_query=parts["total"][1], paths=paths)
        return PromSLI(style="events", error_query=parts["bad"][1], total_query=parts["total"][1],
                       paths=paths)
    return QuerySLI(kind="ratio", source_type=",".join(sorted(types)),
                    queries={k: q for k, (_, q) in parts.items()})


def _openslo_v1alpha(p: _Problems, o: Mapping[str, Any], path: str) -> list[ImportedSLO]:
    """The ``openslo/v1alpha`` SLO shape Sloth reads: ``ratioMetrics`` with
    ``good``/``total`` PromQL per objective, ``timeWindows`` as count + unit."""
    meta = _mapping(p, o.get("metadata"), f"{path}.metadata")
    name = str(meta.get("name") or "")
    sp = f"{path}.spec"
    spec = _mapping(p, o.get("spec"), sp)
    if not spec:
        return []
    _known(p, spec, sp, {"description", "service", "budgetingMethod", "objectives", "timeWindows",
                         "indicator"})
    service = _string(p, spec, "service", sp)
    if spec.get("budgetingMethod") != "Occurrences":
        p.add(f"{sp}.budgetingMethod", f"only Occurrences budgeting is read from openslo/v1alpha "
                                       f"(got {spec.get('budgetingMethod')!r})")
    tws = spec.get("timeWindows")
    period_ns: int | None = None
    calendar: str | None = None
    count = 1
    if not isinstance(tws, list) or len(tws) != 1 or not isinstance(tws[0], Mapping):
        p.add(f"{sp}.timeWindows", "expected a list with exactly one time window")
    else:
        tw = tws[0]
        c, unit = tw.get("count"), tw.get("unit")
        if isinstance(c, bool) or not isinstance(c, int) or c <= 0:
            p.add(f"{sp}.timeWindows[0].count", f"expected a positive integer, got {c!r}")
        elif unit in _V1ALPHA_UNITS_NS:
            period_ns = c * _V1ALPHA_UNITS_NS[unit]
            if tw.get("isRolling") is False or "calendar" in tw:
                p.add(f"{sp}.timeWindows[0]", "calendar windows need Month, Quarter or Year")
        elif unit in _V1ALPHA_CALENDAR_UNITS:
            calendar, count = _V1ALPHA_CALENDAR_UNITS[unit], c
        else:
            p.add(f"{sp}.timeWindows[0].unit", f"unknown unit {unit!r}")
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        p.add(f"{sp}.objectives", "expected a non-empty list")
        return []
    out = []
    for i, ob in enumerate(objectives):
        op_ = f"{sp}.objectives[{i}]"
        ob = _mapping(p, ob, op_)
        objective = _openslo_target(p, ob, op_)
        rm = _mapping(p, ob.get("ratioMetrics"), f"{op_}.ratioMetrics")
        queries = {}
        for k in ("good", "total"):
            q = _mapping(p, rm.get(k), f"{op_}.ratioMetrics.{k}") if rm else {}
            if q:
                if q.get("source", "prometheus") != "prometheus":
                    p.add(f"{op_}.ratioMetrics.{k}.source", "only prometheus sources are read")
                queries[k] = _template_query(p, q, "query", f"{op_}.ratioMetrics.{k}")
        if service and objective is not None and queries.get("good") and queries.get("total") \
                and (period_ns or calendar):
            out.append(ImportedSLO(
                name=f"{name}-{i}", service=service, objective=objective, period_ns=period_ns,
                calendar=calendar, calendar_count=count,
                sli=PromSLI(style="good_total", good_query=queries["good"],
                            total_query=queries["total"],
                            paths={k: f"{op_}.ratioMetrics.{k}.query" for k in queries}),
                description=str(spec.get("description") or ""), spec_format="openslo/v1alpha",
                path=op_, sli_path=f"{op_}.ratioMetrics",
            ))
    return out

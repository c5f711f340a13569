"""Imported Sloth/OpenSLO SLOs as streaming srestream SLOs.

Why: an SRE moving from Sloth or Pyrra has SLO files whose SLIs are PromQL.
Most are counter ratios, and a counter ratio is exactly what the SLI windows
stage counts from metric samples (``source: metrics``: each sample adds its
counter's increase).  So the queries of the common shapes become predicates
over the samples' ``name`` and ``labels.<key>``:

=====================================================  ==========================
PromQL (``{{.window}}`` as the range)                  srestream SLI
=====================================================  ==========================
``sum(rate(m{a="x", code=~"5.."}[{{.window}}]))``       ``{name: m, labels.a: x,
                                                        labels.code: {matches: 5..}}``
``increase(...)`` for ``rate(...)``                     the same (both count increases)
``sum by (...)``/``sum without (...)``                  the same: one ratio per SLO
error/total (Sloth ``events``, OpenSLO ``bad``)         ``bad`` and ``total``
good/total (OpenSLO ``good``)                           ``good`` and ``total``
``sum(rate(a[w])) / sum(rate(b[w]))`` (``raw``)         bad (or good) ``a``, total ``b``
=====================================================  ==========================

Matchers: ``=`` (``=""``: the label is absent), ``!=``, ``=~``, ``!~``
(anchored, as Prometheus reads them).  Each SLI reads ``series: selected``:
its series are chosen by these predicates alone, not by a ``service`` label,
and good or bad come from their own series (a histogram's ``_bucket`` over
its ``_count``).  Objective, period (rolling, calendar month or quarter),
time zone, labels (``team``, or else ``owner``; ``tier``; ``component``),
Occurrences or one-minute Timeslices budgeting, and the alert tiers (a
disabled Sloth page or ticket alert is left out; a tier's ``severity`` label
is its severity) carry over.

Anything else - ``histogram_quantile``, other functions, arithmetic beyond
one ratio, ``offset``/``@``, subqueries, a fixed range, a non-Prometheus
source, a threshold SLI - cannot be counted from samples: it is refused with
a problem naming the query's path in its file, while ``srestream rules`` and
``srestream report`` still read it.

>>> from srestream.slo._importers import import_sloth
>>> [slo] = import_sloth({"version": "prometheus/v1", "service": "api", "slos": [
...     {"name": "requests", "objective": 99.9, "alerting": {"name": "ApiErrors"}, "sli": {
...      "events": {"error_query": 'sum(rate(http_requests_total{job="api",code=~"5.."}[{{.window}}]))',
...                 "total_query": 'sum(rate(http_requests_total{job="api"}[{{.window}}]))'}}}]})
>>> spec = streaming_slo(slo)
>>> spec.sli.bad
{'name': 'http_requests_total', 'labels.job': 'api', 'labels.code': {'matches': '5..'}}
>>> spec.period, spec.objective, spec.sli.series
('30d', 99.9, 'selected')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from .._errors import ConfigError, Problem
from ._alerting import MINUTE_NS, TIERS
from ._importers import WINDOW_TEMPLATE, ImportedSLO, PromSLI, import_documents
from ._predicates import compile_regex
from ._spec import (
    MAX_ROLLING_NS,
    MIN_ROLLING_NS,
    AlertingSpec,
    SLILabels,
    SLISpec,
    SLOSet,
    SLOSpec,
)

__all__ = [
    "StreamingRefusal",
    "is_imported_format",
    "load_streaming_slos",
    "selector_predicates",
    "streaming_slo",
    "streaming_slo_set",
]

STREAMS: Final = (
    "only sum(rate(selector[{{.window}}])) (or increase) queries and one ratio of two of them "
    "stream; export Prometheus rules instead (srestream rules)"
)

_TOKEN: Final = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<window>\{\{\s*\.window\s*\}\})
    | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
    | (?P<number>[0-9][0-9A-Za-z.]*)
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<op>=~|!~|!=|==|>=|<=|[=(){}\[\],/*+\-^%@<>:])
    """,
    re.VERBOSE,
)
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'",
                   "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_COUNTER_FUNCTIONS: Final = ("rate", "increase")
_MATCH_OPS: Final = ("=", "!=", "=~", "!~")


class StreamingRefusal(ValueError):
    """A query srestream cannot count from metric samples, and why."""


class _BadQuery(StreamingRefusal):
    """A query Prometheus would refuse as well (a bad regular expression)."""


# --------------------------------------------------------------------------- PromQL


class _Tokens:
    """The tokens of one query, read left to right."""

    def __init__(self, query: str) -> None:
        self.items: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(query):
            mt = _TOKEN.match(query, pos)
            if mt is None:
                raise StreamingRefusal(f"unexpected {query[pos]!r} at character {pos + 1}")
            kind = mt.lastgroup or ""
            if kind != "space":
                self.items.append((kind, mt.group(), pos))
            pos = mt.end()
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.items[self.i] if self.i < len(self.items) else ("end", "", -1)

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, text: str, what: str) -> None:
        kind, value, pos = self.take()
        if value != text or kind not in ("op", "ident"):
            raise StreamingRefusal(f"expected {text!r} {what}, found {_describe(kind, value, pos)}")

    def at(self, text: str) -> bool:
        kind, value, _ = self.peek()
        return value == text and kind in ("op", "ident")


def _describe(kind: str, value: str, pos: int) -> str:
    if kind == "end":
        return "the end of the query"
    return f"{value!r} at character {pos + 1}"


def _unquote(text: str) -> str:
    if text[0] == "`":
        return text[1:-1]
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            esc = body[i + 1]
            if esc not in _ESCAPES:
                raise StreamingRefusal(f"unsupported escape \\{esc} in {text} (write \\\\{esc})")
            out.append(_ESCAPES[esc])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _refuse_unexpected(kind: str, value: str, pos: int, where: str) -> StreamingRefusal:
    if kind == "ident" and value in ("offset", "bool", "on", "ignoring", "group_left",
                                     "group_right", "and", "or", "unless"):
        return StreamingRefusal(f"{value!r} is not supported")
    if kind == "op" and value == "@":
        return StreamingRefusal("the @ modifier is not supported")
    if kind == "op" and value in ("+", "-", "*", "%", "^", "<", ">", "==", "!=", ">=", "<="):
        return StreamingRefusal(f"arithmetic or comparison ({value!r}) is not supported")
    return StreamingRefusal(f"unexpected {_describe(kind, value, pos)} {where}")


def _grouping(t: _Tokens) -> None:
    """``by (a, b)`` / ``without (a)``: one ratio per SLO, so the groups are
    summed together (read and dropped)."""
    if t.at("by") or t.at("without"):
        t.take()
        t.expect("(", "after by/without")
        while not t.at(")"):
            kind, value, pos = t.take()
            if kind != "ident":
                raise StreamingRefusal(f"expected a label name in by/without, found {_describe(kind, value, pos)}")
            if not t.at(")"):
                t.expect(",", "between label names")
        t.take()


def _counter_sum(t: _Tokens) -> dict[str, Any]:
    """``sum [by|without (...)] (rate|increase(selector[{{.window}}])) [by|without (...)]``,
    optionally in parentheses: its selector as a predicate."""
    if t.at("("):
        t.take()
        pred = _counter_sum(t)
        t.expect(")", "closing the parenthesis")
        return pred
    kind, value, pos = t.take()
    if kind != "ident" or value != "sum":
        if kind == "ident" and t.at("(") and value in _COUNTER_FUNCTIONS:
            raise StreamingRefusal(f"{value}(...) must be inside sum(...): a ratio of unsummed series "
                                   "is per series")
        if kind == "ident" and t.at("("):
            raise StreamingRefusal(f"the function {value}() is not supported (only rate and increase "
                                   "of a counter, in a sum)")
        if kind == "number":
            raise StreamingRefusal(f"arithmetic with numbers ({_describe(kind, value, pos)}) is not "
                                   "supported: write an error ratio as sum(rate(errors[w])) / "
                                   "sum(rate(requests[w]))")
        raise StreamingRefusal(f"expected sum(...), found {_describe(kind, value, pos)}")
    _grouping(t)
    t.expect("(", "after sum")
    kind, value, pos = t.take()
    if kind != "ident" or value not in _COUNTER_FUNCTIONS:
        if kind == "ident" and t.at("("):
            raise StreamingRefusal(f"the function {value}() is not supported (only rate and increase "
                                   "of a counter)")
        raise StreamingRefusal(f"expected rate(...) or increase(...) inside sum, found "
                               f"{_describe(kind, value, pos)}")
    t.expect("(", f"after {value}")
    pred = _selector(t)
    t.expect("[", "opening the range (a counter function needs one)")
    kind, value, pos = t.take()
    if kind != "window":
        raise StreamingRefusal(f"the range must be {WINDOW_TEMPLATE}, found {_describe(kind, value, pos)}")
    kind, value, pos = t.take()
    if value.startswith(":"):
        raise StreamingRefusal("subqueries are not supported")
    if (kind, value) != ("op", "]"):
        raise StreamingRefusal(f"expected ']' after the range, found {_describe(kind, value, pos)}")
    kind, value, pos = t.take()
    if (kind, value) != ("op", ")"):
        raise _refuse_unexpected(kind, value, pos, "after the range")
    kind, value, pos = t.take()
    if (kind, value) != ("op", ")"):
        raise _refuse_unexpected(kind, value, pos, "inside sum(...)")
    _grouping(t)
    return pred


def _selector(t: _Tokens) -> dict[str, Any]:
    """``metric{label op "value", ...}`` as a predicate."""
    pred: dict[str, Any] = {}
    kind, value, pos = t.peek()
    if kind == "ident":
        t.take()
        pred["name"] = value
    elif not t.at("{"):
        raise StreamingRefusal(f"expected a series selector, found {_describe(kind, value, pos)}")
    if t.at("{"):
        t.take()
        while not t.at("}"):
            kind, label, pos = t.take()
            if kind != "ident":
                raise StreamingRefusal(f"expected a label name, found {_describe(kind, label, pos)}")
            kind, op, pos = t.take()
            if op not in _MATCH_OPS:
                raise StreamingRefusal(f"expected =, !=, =~ or !~ after {label}, found {_describe(kind, op, pos)}")
            kind, text, pos = t.take()
            if kind != "string":
                raise StreamingRefusal(f"expected a quoted value after {label}{op}, found {_describe(kind, text, pos)}")
            _add_matcher(pred, label, op, _unquote(text))
            if not t.at("}"):
                t.expect(",", "between matchers")
        t.take()
    if not pred:
        raise StreamingRefusal("an empty selector selects nothing")
    return pred


def _add_matcher(pred: dict[str, Any], label: str, op: str, value: str) -> None:
    field = "name" if label == "__name__" else f"labels.{label}"
    if op in ("=~", "!~"):
        try:
            compile_regex(value)
        except ValueError as exc:
            raise _BadQuery(f"bad regular expression in {label}{op}{value!r}: {exc}") from exc
        new: tuple[str, Any] = ("matches" if op == "=~" else "not_matches", value)
    elif op == "=":
        new = ("in", ["", None]) if value == "" else ("eq", value)
    else:
        new = ("not_in", ["", None]) if value == "" else ("not_in", [value])
    cond = pred.get(field)
    if cond is None:
        if new[0] == "eq":
            pred[field] = value
        elif new[0] == "not_in" and value:
            pred[field] = {"ne": value}
        else:
            pred[field] = {new[0]: new[1]}
        return
    if not isinstance(cond, dict):
        cond = pred[field] = {"eq": cond}
    op_name, arg = new
    if op_name == "not_in":
        merged = [*cond.pop("not_in", []), *([cond.pop("ne")] if "ne" in cond else []), *arg]
        cond["not_in"] = merged
        return
    if op_name in cond:
        raise StreamingRefusal(f"two {op} matchers on {label} are not supported")
    cond[op_name] = arg


def selector_predicates(query: str, *, ratio: bool = False) -> list[dict[str, Any]]:
    """The predicates of a counter query: one for ``sum(rate(sel[w]))``,
    two (numerator, denominator) for a ``ratio``.  Raises
    :class:`StreamingRefusal` saying why a query is not of these shapes.

    >>> selector_predicates('sum by (code) (increase(req_total{code!~"2..|3.."}[{{.window}}]))')
    [{'name': 'req_total', 'labels.code': {'not_matches': '2..|3..'}}]
    """
    t = _Tokens(query)
    out = [_counter_sum(t)]
    if ratio:
        t.expect("/", "between the two sums of a ratio")
        out.append(_counter_sum(t))
    kind, value, pos = t.take()
    if kind != "end":
        if (kind, value) == ("op", "/") and not ratio:
            raise StreamingRefusal("a ratio is not expected here: give the events as one sum")
        raise _refuse_unexpected(kind, value, pos, "after the query")
    return out


# --------------------------------------------------------------------------- SLOs


def _sli(
    sli: PromSLI,
) -> tuple[dict[str, Any], str, dict[str, Any]] | list[tuple[str, StreamingRefusal]]:
    """(total, "good"|"bad", its predicate), or the (query key, refusal) of
    every query that cannot stream."""
    if sli.style in ("raw", "raw_success"):
        try:
            num, den = selector_predicates(sli.ratio_query, ratio=True)
        except StreamingRefusal as exc:
            return [("ratio", exc)]
        return den, ("bad" if sli.style == "raw" else "good"), num
    which, key = ("bad", "error") if sli.style == "events" else ("good", "good")
    queries = {key: sli.error_query if key == "error" else sli.good_query, "total": sli.total_query}
    preds: dict[str, dict[str, Any]] = {}
    refused: list[tuple[str, StreamingRefusal]] = []
    for k, q in queries.items():
        try:
            preds[k] = selector_predicates(q)[0]
        except StreamingRefusal as exc:
            refused.append((k, exc))
    if refused:
        return refused
    return preds["total"], which, preds[key]


def _period(slo: ImportedSLO) -> str:
    if slo.period_ns is not None:
        ns = slo.period_ns
        if ns % MINUTE_NS or not MIN_ROLLING_NS <= ns <= MAX_ROLLING_NS:
            raise StreamingRefusal("a rolling period must be whole minutes between 1h and 90d")
        from .._duration import format_duration

        return format_duration(ns)
    if slo.calendar not in ("month", "quarter") or slo.calendar_count != 1:
        raise StreamingRefusal(f"a calendar period of {slo.calendar_count} {slo.calendar} is not "
                               "supported (one month or one quarter)")
    return slo.calendar


def _budgeting(slo: ImportedSLO) -> tuple[str, float | None]:
    if slo.budgeting == "occurrences":
        return "occurrences", None
    if slo.budgeting == "timeslices" and slo.time_slice_window_ns == MINUTE_NS \
            and slo.time_slice_target is not None:
        return "timeslices", round(slo.time_slice_target * 100, 10)
    raise StreamingRefusal(f"{slo.budgeting} budgeting streams only as Timeslices of one minute "
                           "(timeSliceWindow: 1m)")


def _alerting(slo: ImportedSLO) -> AlertingSpec:
    al = slo.alerting
    tiers = {"page": al.page, "ticket": al.ticket}
    kept = [t for t in TIERS if not tiers[t].disabled]
    severities = {t: tiers[t].labels["severity"] for t in kept if tiers[t].labels.get("severity")}
    return AlertingSpec(enabled=bool(kept), tiers=kept, severities=severities)


def streaming_slo(slo: ImportedSLO) -> SLOSpec:
    """``slo`` as an srestream SLO over metric samples; raises
    :class:`ConfigError` naming the query (or the part of the SLO) that
    cannot stream, and why."""
    if not isinstance(slo.sli, PromSLI):
        raise ConfigError([Problem(slo.sli_path, f"SLO {slo.name!r}: its SLI ({slo.sli.kind} on "
                                   f"{slo.sli.source_type or 'an unknown source'}) is not a Prometheus "
                                   f"counter query, so srestream cannot count it from samples: {STREAMS}",
                                   slo.file)])
    problems: list[Problem] = []
    translated = _sli(slo.sli)
    if isinstance(translated, list):
        for key, exc in translated:
            message = (f"{exc} (Prometheus would refuse it too)" if isinstance(exc, _BadQuery)
                       else f"cannot stream this query: {exc}; {STREAMS}")
            problems.append(Problem(slo.sli.paths.get(key, slo.sli_path), f"SLO {slo.name!r}: {message}",
                                    slo.file))
    period = budgeting = None
    try:
        period = _period(slo)
    except StreamingRefusal as exc:
        problems.append(Problem(slo.path, f"SLO {slo.name!r}: {exc}", slo.file))
    try:
        budgeting = _budgeting(slo)
    except StreamingRefusal as exc:
        problems.append(Problem(slo.path, f"SLO {slo.name!r}: {exc}", slo.file))
    if problems or isinstance(translated, list) or period is None or budgeting is None:
        raise ConfigError(problems)
    total, which, events = translated
    labels = slo.labels
    return SLOSpec(
        name=slo.name,
        service=slo.service,
        objective=slo.objective,
        period=period,
        time_zone=slo.time_zone,
        description=slo.description,
        labels=SLILabels(team=labels.get("team") or labels.get("owner", ""),
                         tier=labels.get("tier", ""), component=labels.get("component", "")),
        sli=SLISpec(kind="ratio", source="metrics", series="selected", total=total,
                    good=events if which == "good" else None, bad=events if which == "bad" else None,
                    budgeting=budgeting[0], timeslice_target=budgeting[1]),
        alerting=_alerting(slo),
    )


def streaming_slo_set(slos: Sequence[ImportedSLO], *, file: str = "") -> SLOSet:
    """Every imported SLO as a streaming SLO, validated; raises one
    :class:`ConfigError` with every problem (each at its place in the
    imported file)."""
    from ._validate import validate_slos

    problems: list[Problem] = []
    out: list[SLOSpec] = []
    for slo in slos:
        try:
            out.append(streaming_slo(slo))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    try:
        return validate_slos(out, file=file)
    except ConfigError as exc:
        # Point back at the imported SLO: $.slos[i].x is the i-th translated SLO.
        raise ConfigError([_imported_place(p, slos, file) for p in exc.problems]) from None


def _imported_place(p: Problem, slos: Sequence[ImportedSLO], file: str) -> Problem:
    mt = re.match(r"\$\.slos\[(\d+)\]", p.path)
    if mt is None:
        return p
    slo = slos[int(mt.group(1))]
    # Other SLOs the message names ("first at $.slos[0]") by their place in the file too.
    message = re.sub(r"\$\.slos\[(\d+)\]", lambda m: slos[int(m.group(1))].path, p.message)
    field = p.path[mt.end():].lstrip(".")
    return Problem(slo.path, f"SLO {slo.name!r}{f' ({field} as srestream reads it)' if field else ''}: "
                   f"{message}", file or p.file)


def is_imported_format(docs: Sequence[Any]) -> bool:
    """Whether YAML documents are a Sloth spec (``version: prometheus/v1``)
    or OpenSLO objects (``apiVersion: openslo/...``; any ``apiVersion``, so
    that the importer says what it reads) rather than an srestream SLO
    file."""
    for d in docs:
        for o in d if isinstance(d, list) else [d]:
            if isinstance(o, dict) and (str(o.get("version", "")).startswith("prometheus/")
                                        or "apiVersion" in o):
                return True
    return False


def load_streaming_slos(docs: Sequence[Any], *, file: str = "") -> SLOSet:
    """The streaming SLOs of a Sloth or OpenSLO file's documents."""
    return streaming_slo_set(import_documents(docs, file=file), file=file)

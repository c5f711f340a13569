"""SLI predicates: ``{status: {lt: 500}}`` over record fields, compiled once.

A predicate is a mapping ``field -> condition``; all conditions must hold.
A condition is a scalar (equality), a list (membership) or a mapping of
operators: ``eq ne lt le gt ge in not_in exists matches not_matches``.
``matches``/``not_matches`` take a regular expression anchored at both ends
as Prometheus label matchers are (``{code: {matches: "5.."}}`` is
``code=~"5.."``), in the syntax RE2 and Python share; a missing field or
label matches as the empty string, as an absent label does in Prometheus.
Fields are the
normalized record fields (``status``, ``latency_ns``, ``level``,
``component``...), ``attrs.<key>`` for anything else a parser kept, and for
metric samples ``name``, ``value`` and ``labels.<key>``.  Span SLIs
(``source: spans``) read the span fields of :data:`SPAN_FIELDS`
(``service``, ``name``, ``error``, ``duration_ns`` = end - start...) and
``attrs.<key>``; a log field there is refused, with the reason.

Predicates are compiled to one Python function each (generated source, no
per-record dict walk): the SLI windows stage calls them for every record.

>>> p = compile_predicate({"status": {"lt": 500}, "attrs.route": "/pay"})
>>> from srestream import LogRecord
>>> p(LogRecord(ts_ns=0, status=200, attrs={"route": "/pay"}))
True
>>> p(LogRecord(ts_ns=0, status=None))
False
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from .._errors import Problem

__all__ = [
    "OPERATORS",
    "RECORD_FIELDS",
    "SPAN_FIELDS",
    "check_predicate",
    "compile_predicate",
    "compile_regex",
    "predicate_env",
    "predicate_source",
]

# Field -> whether it may be None on a record (typed fields of LogRecord/MetricSample).
RECORD_FIELDS: Final[dict[str, bool]] = {
    "ts_ns": False,
    "service": False,
    "level": False,
    "message": False,
    "component": False,
    "team": False,
    "environment": False,
    "status": True,
    "latency_ns": True,
    "trace_id": False,
    "span_id": False,
    "request_id": False,
    "template_id": False,
    "source": False,
    "name": False,
    "value": False,
}
_NUMERIC: Final = frozenset({"ts_ns", "level", "status", "latency_ns", "value"})
_PREFIXES: Final = ("attrs.", "labels.")
SPAN_FIELDS: Final[dict[str, bool]] = {
    "service": False,
    "name": False,
    "error": False,
    "duration_ns": False,
    "start_ts_ns": False,
    "end_ts_ns": False,
    "trace_id": False,
    "span_id": False,
    "parent_span_id": False,
    "status_message": False,
}
"""The fields of a :class:`~srestream.Span` a span SLI's predicates read
(none may be None); ``duration_ns`` is computed, ``end_ts_ns - start_ts_ns``."""
_SPAN_NUMERIC: Final = frozenset({"duration_ns", "start_ts_ns", "end_ts_ns"})
_DURATION_SOURCE: Final = "(r.end_ts_ns - r.start_ts_ns)"
OPERATORS: Final = {
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "in": "in",
    "not_in": "not in",
    "exists": "exists",
    "matches": "matches",
    "not_matches": "not matches",
}
_RE2_ONLY: Final = (("[[:", "POSIX classes such as [[:digit:]] (write [0-9])"),
                    ("\\p", "Unicode classes \\p{..}"), ("\\P", "Unicode classes \\P{..}"))
_NOT_RE2: Final = (("(?=", "lookahead"), ("(?!", "lookahead"), ("(?<=", "lookbehind"),
                   ("(?<!", "lookbehind"))


def compile_regex(pattern: str) -> re.Pattern[str]:
    """A Prometheus label regex, anchored at both ends; ``.`` matches any
    character (as ``(?s:...)`` in Prometheus 3).  Raises ``ValueError``
    saying why for a regex that is invalid, or that RE2 and Python would
    read differently (POSIX and Unicode classes, lookarounds, back
    references).

    >>> bool(compile_regex("5..").fullmatch("503")), bool(compile_regex("5..").fullmatch("1503"))
    (True, False)
    """
    for text, what in _RE2_ONLY:
        if text in pattern:
            raise ValueError(f"{what} are not supported here")
    for text, what in _NOT_RE2:
        if text in pattern:
            raise ValueError(f"{what} is not RE2 syntax (Prometheus would refuse it)")
    if re.search(r"\\[1-9]", pattern):
        raise ValueError("back references are not RE2 syntax (Prometheus would refuse it)")
    try:
        re.compile(pattern, re.DOTALL)  # so that the error's position is in the user's text
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return re.compile(f"(?:{pattern})", re.DOTALL)


def check_predicate(spec: Any, path: str, file: str = "", *, spans: bool = False) -> list[Problem]:
    """Every problem of one predicate mapping, each with its path
    (``spans``: a span SLI's predicate, over :data:`SPAN_FIELDS`)."""
    if not isinstance(spec, dict):
        return [Problem(path, f"expected a mapping of field: condition, got {spec!r}", file)]
    problems: list[Problem] = []
    for field, cond in spec.items():
        fpath = f"{path}.{field}"
        if spans:
            if not isinstance(field, str) or not (
                field in SPAN_FIELDS or (field.startswith("attrs.") and len(field) > 6)
            ):
                known = ", ".join(SPAN_FIELDS)
                why = (f"{field!r} is a log record or metric sample field, not a span field"
                       if isinstance(field, str) and (field in RECORD_FIELDS or field.startswith("labels."))
                       else f"unknown span field {field!r}")
                problems.append(Problem(fpath, f"{why} (source: spans reads {known}, attrs.<key>)", file))
                continue
        elif not isinstance(field, str) or not (
            field in RECORD_FIELDS or (field.startswith(_PREFIXES) and len(field) > 6)
        ):
            known = ", ".join(sorted(RECORD_FIELDS))
            hint = (" (a span field: give the SLI source: spans)"
                    if isinstance(field, str) and field in SPAN_FIELDS else "")
            problems.append(
                Problem(fpath, f"unknown field {field!r} (known: {known}, attrs.<key>, labels.<key>){hint}", file)
            )
            continue
        if isinstance(cond, dict):
            if not cond:
                problems.append(Problem(fpath, "empty condition", file))
            for op, value in cond.items():
                opath = f"{fpath}.{op}"
                if op not in OPERATORS:
                    problems.append(
                        Problem(opath, f"unknown operator {op!r} (use {', '.join(OPERATORS)})", file)
                    )
                elif op in ("in", "not_in") and not isinstance(value, list):
                    problems.append(Problem(opath, f"{op} needs a list, got {value!r}", file))
                elif op in ("matches", "not_matches"):
                    if not isinstance(value, str):
                        problems.append(Problem(opath, f"{op} needs a regular expression string, got {value!r}", file))
                    else:
                        try:
                            compile_regex(value)
                        except ValueError as exc:
                            problems.append(Problem(opath, f"bad regular expression {value!r}: {exc}", file))
                elif op == "exists" and not isinstance(value, bool):
                    problems.append(Problem(opath, f"exists needs true or false, got {value!r}", file))
                elif op in ("lt", "le", "gt", "ge") and (
                    isinstance(value, bool) or not isinstance(value, int | float | str)
                ):
                    problems.append(
                        Problem(opath, f"{op} needs a number or a string, got {value!r}", file)
                    )
        elif not (cond is None or isinstance(cond, str | int | float | bool | list)):
            problems.append(Problem(fpath, f"unsupported condition {cond!r}", file))
    return problems


def _safe_cmp(op: str) -> Callable[[Any, Any], bool]:
    import operator

    fn = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]

    def cmp(a: Any, b: Any) -> bool:
        if a is None:
            return False
        try:
            return bool(fn(a, b))
        except TypeError:
            return False

    return cmp


def compile_predicate(spec: dict[str, Any] | None, *, spans: bool = False) -> Callable[[Any], bool]:
    """One function ``record -> bool`` for a checked predicate mapping
    (an empty or None mapping matches every record; ``spans``: over span fields)."""
    if not spec:
        return _always
    env = predicate_env()
    src = "lambda r: " + predicate_source(spec, env, "p", spans=spans)
    fn: Callable[[Any], bool] = eval(compile(src, "<slo predicate>", "eval"), env)
    return fn


def predicate_env() -> dict[str, Any]:
    """The globals generated predicate code needs (safe comparisons)."""
    return {"_lt": _safe_cmp("<"), "_le": _safe_cmp("<="), "_gt": _safe_cmp(">"), "_ge": _safe_cmp(">="),
            "_matches": _matches}


def predicate_source(
    spec: dict[str, Any] | None, env: dict[str, Any], prefix: str, *, spans: bool = False
) -> str:
    """A Python expression over the record ``r`` that is true when ``spec``
    holds; its constants go into ``env`` under names starting with
    ``prefix`` (so that several predicates share one generated function).
    ``spans``: ``r`` is a :class:`~srestream.Span` (fields of :data:`SPAN_FIELDS`)."""
    if not spec:
        return "True"
    fields, numeric = (SPAN_FIELDS, _SPAN_NUMERIC) if spans else (RECORD_FIELDS, _NUMERIC)
    terms: list[str] = []
    for i, (field, cond) in enumerate(spec.items()):
        if field.startswith(_PREFIXES):
            # The key goes into env, never into the code text.
            container, key = field.split(".", 1)
            env[f"{prefix}_{i}_key"] = key
            expr, typed, nullable = f"r.{container}.get({prefix}_{i}_key)", False, True
        elif spans and field == "duration_ns":
            expr, typed, nullable = _DURATION_SOURCE, True, False
        else:
            expr, typed, nullable = f"r.{field}", True, fields[field]
        ops = cond if isinstance(cond, dict) else {("in" if isinstance(cond, list) else "eq"): cond}
        for j, (op, value) in enumerate(ops.items()):
            name = f"{prefix}_{i}_{j}"
            if op == "exists":
                terms.append(f"({expr} is {'not ' if value else ''}None)")
                continue
            if op in ("matches", "not_matches"):
                neg = "not " if op == "not_matches" else ""
                if field == "name" or field.startswith("labels."):
                    # Strings (or None) of few distinct values: remember each answer.
                    env[name] = RegexMemo(compile_regex(value))
                    terms.append(f"({neg}{name}[{expr}])")
                else:
                    env[name] = compile_regex(value)
                    terms.append(f"({neg}_matches({expr}, {name}))")
                continue
            sym = OPERATORS[op]
            env[name] = value
            if op in ("in", "not_in"):
                env[name] = frozenset(value) if all(_hashable(v) for v in value) else tuple(value)
                terms.append(f"({expr} {sym} {name})")
            elif sym in ("==", "!="):
                terms.append(f"({expr} {sym} {name})")
            elif typed and field in numeric and not isinstance(value, str):
                # Typed numeric fields hold an int (or None when nullable).
                guard = f"{expr} is not None and " if nullable else ""
                terms.append(f"({guard}{expr} {sym} {name})")
            else:
                terms.append(f"_{op}({expr}, {name})")
    return " and ".join(terms)


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


class RegexMemo(dict[Any, bool]):
    """``memo[value]``: whether ``value`` matches the anchored regex, each
    answer kept (up to :attr:`limit` values) so that a label value seen
    before costs one dict lookup, not a regex match."""

    limit: Final = 4096

    def __init__(self, rx: re.Pattern[str]) -> None:
        super().__init__()
        self.rx = rx

    def __missing__(self, value: Any) -> bool:
        ok = _matches(value, self.rx)
        if len(self) < self.limit:
            self[value] = ok
        return ok

    def __repr__(self) -> str:
        # Generated code is shared by predicates whose constants print the same.
        return f"RegexMemo({self.rx.pattern!r}, {self.rx.flags})"


def _matches(value: Any, rx: re.Pattern[str]) -> bool:
    """Whether ``value`` (None: the empty string; a number: its text)
    matches the anchored ``rx``."""
    if value is None:
        value = ""
    elif not isinstance(value, str):
        value = str(value)
    return rx.fullmatch(value) is not None


def _always(r: Any) -> bool:
    return True

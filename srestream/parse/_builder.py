"""Compiled record builders: the normalizer's hot path.

For one key *shape* (the keys of a line, in order) the mapping is known
before the line is seen: which keys to pop, which conversions to run, which
record fields stay empty.  :func:`compile_builder` writes that down as a
small Python function (the way dataclasses and msgspec generate their
``__init__``), so a line costs its pops and conversions and nothing for the
fields it does not have.  Shapes carrying trace headers (``traceparent``,
B3, a nested ``headers`` object) use the generic path, which handles them.

Generated source uses only constants from the plan (keys through
``repr``), never text from the data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._records import LogRecord
from ._levels import _LEVELS, level_number
from ._normalize import (
    T_B3, T_B3P, T_B3S, T_B3T, T_COMPONENT, T_ENV, T_HEADERS, T_LATENCY, T_LEVEL, T_MSG,
    T_PARENT, T_REQ, T_SERVICE, T_SPAN, T_STATUS, T_TEAM, T_TP, T_TRACE, T_TS, FieldError,
    _status, _text, parse_duration_ns,
)

if TYPE_CHECKING:
    from ._normalize import Builder, Normalizer

__all__ = ["compile_builder"]

_GENERIC_ONLY = {T_TP, T_B3, T_B3T, T_B3S, T_B3P, T_HEADERS, T_PARENT}

_TEXT_FIELDS = {
    T_MSG: "message", T_SERVICE: "service", T_COMPONENT: "component", T_TEAM: "team",
    T_ENV: "environment", T_REQ: "request_id", T_TRACE: "trace_id", T_SPAN: "span_id",
}


def compile_builder(norm: Normalizer, plan: tuple[tuple[int, str, int], ...]) -> Builder | None:
    """A specialised ``build(fields, source, position) -> LogRecord`` for
    ``plan``, or None when the plan needs the generic path."""
    present = {ti: (key, unit) for ti, key, unit in plan}
    if _GENERIC_ONLY & present.keys():
        return None
    ns: dict[str, Any] = {
        "_ts": norm.times.parse, "_LEVELS": _LEVELS, "_level_number": level_number,
        "_text": _text, "_status": _status, "_duration": parse_duration_ns,
        "_FieldError": FieldError, "_LogRecord": LogRecord, "_str": str, "_int": int,
        "_float": float, "_round": round,
    }
    lines = ["def build(fields, source, position):", "    pop = fields.pop"]
    add = lines.append
    if T_TS not in present:
        keys = ", ".join(k for k, e in norm._keymap.items() if e[0] == T_TS)
        add(f"    raise _FieldError({'no timestamp field (looked for ' + keys + ')'!r})")
    else:
        key = present[T_TS][0]
        add("    try:")
        add(f"        ts_ns = _ts(pop({key!r}))")
        add("    except ValueError as exc:")
        add(f"        raise _FieldError({'field ' + repr(key) + ': '!r} + str(exc)) from None")
    if T_LEVEL in present:
        add(f"    x = pop({present[T_LEVEL][0]!r})")
        add("    level = _LEVELS.get(x) if x.__class__ is _str else None")
        add("    if level is None:")
        add("        level = _level_number(x)")
    else:
        add("    level = 0")
    defaults = {T_SERVICE: norm.default_service, T_ENV: norm.default_environment}
    for ti, name in _TEXT_FIELDS.items():
        if ti in present:
            add(f"    x = pop({present[ti][0]!r})")
            add(f"    {name} = x if x.__class__ is _str else ('' if x is None else _text(x))")
        else:
            add(f"    {name} = {defaults.get(ti, '')!r}")
    if T_STATUS in present:
        key = present[T_STATUS][0]
        add(f"    x = pop({key!r})")
        add("    if x.__class__ is _int or x is None:")
        add("        status = x")
        add("    else:")
        add("        try:")
        add("            status = _status(x)")
        add("        except ValueError as exc:")
        add(f"            raise _FieldError({'field ' + repr(key) + ': '!r} + str(exc)) from None")
    else:
        add("    status = None")
    if T_LATENCY in present:
        key, unit = present[T_LATENCY]
        add(f"    x = pop({key!r})")
        add("    if x.__class__ is _int:")
        add(f"        latency_ns = x * {unit}")
        add("    elif x.__class__ is _float:")
        add(f"        latency_ns = _round(x * {unit})")
        add("    elif x is None:")
        add("        latency_ns = None")
        add("    else:")
        add("        try:")
        add(f"            latency_ns = _duration(x, {unit})")
        add("        except ValueError as exc:")
        add(f"            raise _FieldError({'field ' + repr(key) + ': '!r} + str(exc)) from None")
    else:
        add("    latency_ns = None")
    common = (
        "ts_ns=ts_ns, service=service, level=level, message=message, component=component, "
        "environment=environment, status=status, latency_ns=latency_ns, trace_id=trace_id, "
        "span_id=span_id, request_id=request_id, source=source, position=position, attrs=fields"
    )
    if norm.redactor is not None:
        ns["_red_text"] = norm.redactor.text
        ns["_red_attrs"] = norm.redactor.attrs
        add("    message = _red_text(message)")
        add("    if fields:")
        add("        _red_attrs(fields)")
    if norm.catalog is not None:
        ns["_catalog"] = norm.catalog.services
        add("    e = _catalog.get(service)")
        add("    if e is not None:")
        add(f"        return _LogRecord({common}, team=team or e.team, tier=e.tier, owner=e.owner, "
            "runbook_url=e.runbook_url, dependencies=e.dependencies)")
    add(f"    return _LogRecord({common}, team=team)")
    exec("\n".join(lines), ns)  # noqa: S102 - generated from the plan's constants only
    build: Builder = ns["build"]
    return build

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

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from .._records import LogRecord, RawLine
from ._json_fast import FastBatch, compile_fast_batch
from ._levels import level_number
from ._normalize import (
    T_B3,
    T_B3P,
    T_B3S,
    T_B3T,
    T_COMPONENT,
    T_ENV,
    T_HEADERS,
    T_LATENCY,
    T_LEVEL,
    T_MSG,
    T_PARENT,
    T_REQ,
    T_SERVICE,
    T_SPAN,
    T_STATUS,
    T_TEAM,
    T_TP,
    T_TRACE,
    T_TS,
    FieldError,
    _status,
    _text,
    parse_duration_ns,
)
from ._time import _POW, _sec_cache

if TYPE_CHECKING:
    from ._normalize import Builder, Normalizer

__all__ = ["compile_builder", "compile_struct_batch"]

_GENERIC_ONLY = {T_TP, T_B3, T_B3T, T_B3S, T_B3P, T_HEADERS, T_PARENT}

_TEXT_FIELDS = {
    T_MSG: "message",
    T_SERVICE: "service",
    T_COMPONENT: "component",
    T_TEAM: "team",
    T_ENV: "environment",
    T_REQ: "request_id",
    T_TRACE: "trace_id",
    T_SPAN: "span_id",
}


Fetch = Callable[[str], list[str]]
"""Code lines that put the value of a source key into ``x`` (None if absent)."""


def _body(
    norm: Normalizer,
    present: dict[int, tuple[str, int]],
    fetch: Fetch,
    attrs: str,
    ns: dict[str, Any],
) -> list[str]:
    """Statements (no indent) that build ``rec`` from the fetched fields;
    a bad field raises FieldError naming it."""
    lines: list[str] = []
    add = lines.append
    ts_missing = (
        "no timestamp field (looked for "
        + ", ".join(k for k, e in norm._keymap.items() if e[0] == T_TS)
        + ")"
    )
    if T_TS not in present:
        add(f"raise _FieldError({ts_missing!r})")
        return lines
    key = present[T_TS][0]
    lines += fetch(key)
    add("if x is _UNSET:")
    add(f"    raise _FieldError({ts_missing!r})")
    lines += _ts_inline(key)
    if T_LEVEL in present:
        lines += fetch(present[T_LEVEL][0])
        add("if x.__class__ is _int and 0 <= x <= 24:")
        add("    level = x")
        add("else:")
        add("    level = _levels.get(x) if x.__class__ is _str else None")
        add("    if level is None:")
        add("        level = _level_number(None if x is _UNSET else x)")
        add("        if x.__class__ is _str and len(_levels) < 4096:")
        add("            _levels[x] = level  # e.g. a host name in a Level column")
    else:
        add("level = 0")
    defaults = {T_SERVICE: norm.default_service, T_ENV: norm.default_environment}
    for ti, name in _TEXT_FIELDS.items():
        default = defaults.get(ti, "")
        if ti in present:
            lines += fetch(present[ti][0])
            add(
                f"{name} = x if x.__class__ is _str else "
                f"({default!r} if x is None or x is _UNSET else _text(x))"
            )
        else:
            add(f"{name} = {default!r}")
    if T_STATUS in present:
        key = present[T_STATUS][0]
        lines += fetch(key)
        add("if x.__class__ is _int:")
        add("    status = x")
        add("elif x is None or x is _UNSET:")
        add("    status = None")
        add("elif x.__class__ is _str and x.isdigit():")
        add("    status = _int(x)")
        add("else:")
        add("    try:")
        add("        status = _status(x)")
        add("    except ValueError as exc:")
        add(f"        raise _FieldError({'field ' + repr(key) + ': '!r} + str(exc)) from None")
    else:
        add("status = None")
    if T_LATENCY in present:
        key, unit = present[T_LATENCY]
        lines += fetch(key)
        add("if x.__class__ is _int:")
        add(f"    latency_ns = x * {unit}")
        add("elif x.__class__ is _float:")
        add("    try:")
        add(f"        latency_ns = _round(x * {unit})")
        add("    except OverflowError:")
        add(
            f"        raise _FieldError({'field ' + repr(key) + ': duration out of range: '!r} + repr(x)) from None"
        )
        add("elif x is None or x is _UNSET:")
        add("    latency_ns = None")
        add("elif x.__class__ is _str and x.isdigit():")
        add(f"    latency_ns = _int(x) * {unit}")
        add("elif x.__class__ is _str and x.replace('.', '', 1).isdigit():")
        add(f"    latency_ns = _round(_float(x) * {unit})")
        add("else:")
        add("    try:")
        add(f"        latency_ns = _duration(x, {unit})")
        add("    except ValueError as exc:")
        add(f"        raise _FieldError({'field ' + repr(key) + ': '!r} + str(exc)) from None")
    else:
        add("latency_ns = None")
    # Pass only what may differ from the record's defaults (fewer keywords, faster).
    args = ["ts_ns=ts_ns", "source=source", "position=position", f"attrs={attrs}"]
    for ti, name in _TEXT_FIELDS.items():
        if ti != T_TEAM and (ti in present or defaults.get(ti, "")):
            args.append(f"{name}={name}")
    args += [
        f"{n}={n}"
        for t, n in ((T_LEVEL, "level"), (T_STATUS, "status"), (T_LATENCY, "latency_ns"))
        if t in present
    ]
    common = ", ".join(args)
    if norm.redactor is not None:
        ns["_red_text"] = norm.redactor.text
        ns["_red_attrs"] = norm.redactor.attrs
        add("message = _red_text(message)")
        add(f"if {attrs}:")
        add(f"    _red_attrs({attrs})")
    if norm.catalog is not None:
        ns["_catalog"] = norm.catalog.services
        add("e = _catalog.get(service)")
        add("if e is not None:")
        add(
            f"    rec = _LogRecord({common}, team=team or e.team, tier=e.tier, owner=e.owner, "
            "runbook_url=e.runbook_url, dependencies=e.dependencies)"
        )
        add("else:")
        add(f"    rec = _LogRecord({common}, team=team)")
    else:
        add(
            f"rec = _LogRecord({common}, team=team)"
            if T_TEAM in present
            else f"rec = _LogRecord({common})"
        )
    return lines


def _ts_inline(key: str) -> list[str]:
    """Timestamp ``x`` -> ``ts_ns``.  RFC 3339 UTC with a fraction (most JSON
    logs) is done inline: in the same second as the line before (``_pfx``
    holds its ``YYYY-MM-DDTHH:MM:SS.`` and ns) with a fraction seen before
    (``_fracs``: ``'123Z'`` -> ns) it costs a ``startswith`` and a dict
    lookup; another second seen before, a few more steps; anything else
    goes to the configured parser."""
    return [
        "ts_ns = None",
        "if x.__class__ is _str:",
        "    if x.startswith(_pfx[0]):",
        "        f = _fracs_get(x[20:])",
        "        if f is not None:",
        "            ts_ns = _pfx[1] + f",
        "    if ts_ns is None and x[-1:] == 'Z' and x[19:20] == '.':",
        "        base = _secs_get(x[:19])",
        "        if base is not None:",
        "            frac = x[20:-1]",
        "            if frac.isdigit() and len(frac) <= 9:",
        "                f = _int(frac) * _POW[len(frac)]",
        "                ts_ns = base + f",
        "                _pfx[0] = x[:20]",
        "                _pfx[1] = base",
        "                if len(_fracs) < 4096:",
        "                    _fracs[x[20:]] = f",
        "if ts_ns is None:",
        "    try:",
        "        ts_ns = _ts(x)",
        "    except ValueError as exc:",
        f"        raise _FieldError({'field ' + repr(key) + ': '!r} + str(exc)) from None",
    ]


def _namespace(norm: Normalizer) -> dict[str, Any]:
    fracs: dict[str, int] = {}
    return {
        "_ts": norm.times.parse,
        "_levels": norm.level_names,
        "_level_number": level_number,
        "_text": _text,
        "_status": _status,
        "_duration": parse_duration_ns,
        "_FieldError": FieldError,
        "_LogRecord": LogRecord,
        "_str": str,
        "_int": int,
        "_float": float,
        "_round": round,
        "_UNSET": msgspec.UNSET,
        "_secs_get": _sec_cache.get if norm.times.time_format == "auto" else {}.get,
        "_POW": _POW,
        "_pfx": ["\0", 0] if norm.times.time_format == "auto" else ["\0never", 0],
        "_fracs": fracs,
        "_fracs_get": fracs.get,
    }


def _indent(lines: list[str], n: int) -> list[str]:
    pad = " " * n
    return [pad + ln for ln in lines]


def compile_builder(norm: Normalizer, plan: tuple[tuple[int, str, int], ...]) -> Builder | None:
    """A specialised ``build(fields, source, position) -> LogRecord`` for
    ``plan``, or None when the plan needs the generic path."""
    present = {ti: (key, unit) for ti, key, unit in plan}
    if _GENERIC_ONLY & present.keys():
        return None
    ns = _namespace(norm)
    body = _body(norm, present, lambda key: [f"x = pop({key!r})"], "fields", ns)
    lines = ["def build(fields, source, position):", "    pop = fields.pop"]
    lines += _indent(body, 4)
    lines.append("    return rec")
    exec("\n".join(lines), ns)  # noqa: S102 - generated from the plan's constants only
    build: Builder = ns["build"]
    return build


BatchBuilder = Callable[
    [Sequence[Any], Sequence[RawLine], Callable[[LogRecord], None], Callable[[RawLine, str], None]],
    None,
]


def _split_keys(
    norm: Normalizer, keys: Sequence[str], fields: Sequence[str]
) -> tuple[dict[int, tuple[str, int]], list[tuple[str, str]]] | None:
    """(target index -> (key, latency unit), unmapped (key, attribute)) of a
    learned key set; None when a key needs the generic path (trace
    headers) or two keys map to one field."""
    mapped: dict[int, tuple[str, int]] = {}
    extras: list[tuple[str, str]] = []
    for key, fname in zip(keys, fields):
        e = norm._keymap.get(key)
        if e is None:
            extras.append((key, fname))
            continue
        ti, _, unit = e
        if ti in _GENERIC_ONLY or ti in mapped:
            return None
        mapped[ti] = (key, unit)
    return mapped, extras


def _attrs_lines(extras: Sequence[tuple[str, str]]) -> list[str]:
    """Generated lines keeping the unmapped keys a line has in ``attrs`` (sorted)."""
    out: list[str] = []
    for key, fname in sorted(extras):
        out += [f"            x = k.{fname}", "            if x is not _UNSET:",
                f"                attrs[{key!r}] = x"]
    return out


def compile_struct_batch(
    norm: Normalizer, keys: Sequence[str], fields: Sequence[str], what: str
) -> BatchBuilder | None:
    """A batch loop over decoded Structs whose attribute ``fields[i]`` holds
    source key ``keys[i]`` (``msgspec.UNSET`` when a line lacks it).

    Output equals what :meth:`Normalizer.record` makes of the same line as
    a dict whose keys are in sorted order (the JSON dict path sorts for this
    reason), so which path a line takes never shows.  None when a key needs
    the generic path (trace headers) or two keys map to one field.
    """
    split = _split_keys(norm, keys, fields)
    if split is None:
        return None
    mapped, extras = split
    attr_of = dict(zip(keys, fields))
    ns = _namespace(norm)
    body = _body(norm, mapped, lambda key: [f"x = k.{attr_of[key]}"], "attrs", ns)
    lines = [
        "def build_batch(objs, batch, emit, dead):",
        "    for k, raw in zip(objs, batch):",
        "        source = raw.source",
        "        position = raw.position",
        "        try:",
        "            attrs = {}",
    ]
    lines += _attrs_lines(extras)
    lines += _indent(body, 12)
    lines += [
        "        except ValueError as exc:",
        f"            dead(raw, {what + ': '!r} + str(exc))",
        "            continue",
        "        emit(rec)",
    ]
    exec("\n".join(lines), ns)  # noqa: S102 - generated from constants (keys through repr)
    fn: BatchBuilder = ns["build_batch"]
    return fn


def compile_typed_batch(
    norm: Normalizer, keys: Sequence[str], fields: Sequence[str], what: str
) -> tuple[BatchBuilder, list[tuple[str, Any, Any]], FastBatch | None] | None:
    """The strict variant of :func:`compile_struct_batch`: the Struct types
    the mapped fields (text is ``str`` with the default filled in, status an
    int, latency a number), so msgspec checks in C what the loop would check
    per record.  Returns the loop, the Struct's ``(name, type, default)``
    fields and, when the normalizer is plain (no catalog, no redaction,
    ``auto`` times), the comprehension of :mod:`._json_fast` to try first;
    a line that does not fit the types fails the decode and goes the
    relaxed way, which makes the same record of it.
    """
    split = _split_keys(norm, keys, fields)
    if split is None:
        return None
    mapped, extras = split
    attr_of = dict(zip(keys, fields))
    defaults = {T_SERVICE: norm.default_service, T_ENV: norm.default_environment}
    spec: list[tuple[str, Any, Any]] = []
    for key, fname in zip(keys, fields):
        e = norm._keymap.get(key)
        ti = e[0] if e is not None else -1
        if ti == T_TS:
            spec.append((fname, str | int | float | None | msgspec.UnsetType, msgspec.UNSET))
        elif ti == T_LEVEL:
            spec.append((fname, str | int | None, None))
        elif ti in _TEXT_FIELDS:
            spec.append((fname, str, defaults.get(ti, "")))
        elif ti == T_STATUS:
            spec.append((fname, int | None, None))
        elif ti == T_LATENCY:
            spec.append((fname, int | float | None, None))
        else:
            spec.append((fname, Any, msgspec.UNSET))
    ns = _namespace(norm)
    lines = [
        "def build_batch(objs, batch, emit, dead):",
        "    for k, raw in zip(objs, batch):",
        "        try:",
        "            attrs = {}",
    ]
    lines += _attrs_lines(extras)
    body: list[str] = []
    ts_missing = (
        "no timestamp field (looked for "
        + ", ".join(k for k, e in norm._keymap.items() if e[0] == T_TS)
        + ")"
    )
    if T_TS not in mapped:
        body.append(f"raise _FieldError({ts_missing!r})")
    else:
        key = mapped[T_TS][0]
        body += [
            f"x = k.{attr_of[key]}",
            "if x is _UNSET:",
            f"    raise _FieldError({ts_missing!r})",
            *_ts_inline(key),
        ]
    args = ["ts_ns=ts_ns", "source=raw.source", "position=raw.position", "attrs=attrs"]
    if T_LEVEL in mapped:
        body += [
            f"x = k.{attr_of[mapped[T_LEVEL][0]]}",
            "level = _levels.get(x)",
            "if level is None:",
            "    level = _level_number(x)",
            "    if x.__class__ is _str and len(_levels) < 4096:",
            "        _levels[x] = level",
        ]
        args.append("level=level")
    for ti, name in _TEXT_FIELDS.items():
        if ti == T_TEAM:
            continue
        if ti in mapped:
            args.append(f"{name}=k.{attr_of[mapped[ti][0]]}")
        elif defaults.get(ti, ""):
            args.append(f"{name}={defaults[ti]!r}")
    if T_STATUS in mapped:
        args.append(f"status=k.{attr_of[mapped[T_STATUS][0]]}")
    if T_LATENCY in mapped:
        key, unit = mapped[T_LATENCY]
        body += [
            f"x = k.{attr_of[key]}",
            "try:",
            f"    latency_ns = None if x is None else _round(x * {unit})",
            "except OverflowError:",
            f"    raise _FieldError({'field ' + repr(key) + ': duration out of range: '!r} + repr(x)) from None",
        ]
        args.append("latency_ns=latency_ns")
    team = f"k.{attr_of[mapped[T_TEAM][0]]}" if T_TEAM in mapped else "''"
    if norm.redactor is not None:
        ns["_red_text"] = norm.redactor.text
        ns["_red_attrs"] = norm.redactor.attrs
        msg = f"k.{attr_of[mapped[T_MSG][0]]}" if T_MSG in mapped else "''"
        body += [f"message = _red_text({msg})", "if attrs:", "    _red_attrs(attrs)"]
        args = [a for a in args if not a.startswith("message=")] + ["message=message"]
    call = ", ".join(args)
    if norm.catalog is not None:
        ns["_catalog"] = norm.catalog.services
        service = (
            f"k.{attr_of[mapped[T_SERVICE][0]]}"
            if T_SERVICE in mapped
            else repr(norm.default_service)
        )
        body += [
            f"e = _catalog.get({service})",
            "if e is not None:",
            (
                f"    rec = _LogRecord({call}, team={team} or e.team, tier=e.tier, owner=e.owner, "
                "runbook_url=e.runbook_url, dependencies=e.dependencies)"
            ),
            "else:",
            f"    rec = _LogRecord({call}, team={team})",
        ]
    else:
        body.append(
            f"rec = _LogRecord({call}, team={team})"
            if T_TEAM in mapped
            else f"rec = _LogRecord({call})"
        )
    lines += _indent(body, 12)
    lines += [
        "        except ValueError as exc:",
        f"            dead(raw, {what + ': '!r} + str(exc))",
        "            continue",
        "        emit(rec)",
    ]
    exec("\n".join(lines), ns)  # noqa: S102 - generated from constants (keys through repr)
    fn: BatchBuilder = ns["build_batch"]
    fast: FastBatch | None = None
    if (
        T_TS in mapped
        and norm.catalog is None
        and norm.redactor is None
        and norm.times.time_format == "auto"
    ):
        fast = compile_fast_batch(
            attr_of,
            mapped,
            extras,
            _TEXT_FIELDS,
            defaults,
            {"ts": T_TS, "level": T_LEVEL, "status": T_STATUS, "latency": T_LATENCY},
            norm.times.zone,
        )
    return fn, spec, fast

"""The normalizer: a parser's fields -> one :class:`~srestream.LogRecord`.

Every parser (JSON lines, logfmt, syslog, access logs, header templates)
produces a dict of fields named as the format names them; the normalizer
maps them onto the record with a configurable :class:`FieldMapping` (for
each record field, the candidate source keys in order of preference),
parses the timestamp to UTC ns, puts the level on the one scale, reads
trace context (plain fields, W3C ``traceparent``, B3 single or multi
headers, also inside a nested ``headers`` object), enriches from the
service catalog and redacts PII.  Fields that are not mapped stay in
``attrs``.

A field that is present but unusable (a status that is not a number, a
malformed ``traceparent``) raises :class:`FieldError` naming the field:
the stage sends the whole line to the dead-letter output rather than
emit a record that would silently miscount an SLI.

Mapping is planned once per key *shape* (the tuple of keys of a line,
which is stable per service), so a line costs one tuple, one dict lookup
and a pop per mapped field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from .._records import Level, LogRecord
from ._catalog import ServiceCatalog
from ._levels import _LEVELS, level_number
from ._redact import Redactor
from ._time import TimestampParser
from ._trace import TraceContext, b3_from_headers, parse_b3, parse_traceparent

__all__ = ["FieldError", "FieldMapping", "Normalizer", "parse_duration_ns"]


class FieldError(ValueError):
    """A field is present but unusable; the message names the field."""


class FieldMapping(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """For each record field, the source keys it may come from, in order of
    preference.  Keys are matched exactly (header keys also in lower case)."""

    timestamp: tuple[str, ...] = ("ts", "timestamp", "time", "@timestamp", "ts_ns", "datetime")
    level: tuple[str, ...] = ("level", "severity", "lvl", "log.level", "loglevel", "Level")
    message: tuple[str, ...] = ("message", "msg", "log", "Content", "content")
    service: tuple[str, ...] = (
        "service",
        "service.name",
        "service_name",
        "app",
        "application",
        "app_name",
    )
    component: tuple[str, ...] = ("component", "logger", "logger_name", "module", "Component")
    team: tuple[str, ...] = ("team", "owner_team")
    environment: tuple[str, ...] = ("environment", "env", "deployment.environment")
    status: tuple[str, ...] = ("status", "status_code", "http.status_code", "http_status")
    latency: tuple[str, ...] = (
        "latency_ns",
        "latency_us",
        "latency_ms",
        "latency_s",
        "latency",
        "duration_ns",
        "duration_us",
        "duration_ms",
        "duration_s",
        "duration",
        "elapsed_ms",
        "response_time_ms",
        "request_time_s",
    )
    latency_unit: str = "ms"
    """Unit of a latency key without a unit suffix (ns, us, ms, s)."""
    request_id: tuple[str, ...] = (
        "request_id",
        "requestId",
        "req_id",
        "x-request-id",
        "X-Request-Id",
        "correlation_id",
    )
    trace_id: tuple[str, ...] = ("trace_id", "traceId", "trace.id", "traceid")
    span_id: tuple[str, ...] = ("span_id", "spanId", "span.id", "spanid")
    parent_span_id: tuple[str, ...] = ("parent_span_id", "parentSpanId", "parent_id")
    traceparent: tuple[str, ...] = ("traceparent",)
    b3: tuple[str, ...] = ("b3",)
    b3_trace_id: tuple[str, ...] = ("X-B3-TraceId", "x-b3-traceid")
    b3_span_id: tuple[str, ...] = ("X-B3-SpanId", "x-b3-spanid")
    b3_parent_span_id: tuple[str, ...] = ("X-B3-ParentSpanId", "x-b3-parentspanid")
    headers: tuple[str, ...] = ("headers", "http.request.headers", "request_headers")


_TARGETS = tuple(f for f in FieldMapping.__struct_fields__ if f != "latency_unit")
# Indices of the targets, in FieldMapping's field order.
T_TS: Final = 0
T_LEVEL: Final = 1
T_MSG: Final = 2
T_SERVICE: Final = 3
T_COMPONENT: Final = 4
T_TEAM: Final = 5
T_ENV: Final = 6
T_STATUS: Final = 7
T_LATENCY: Final = 8
T_REQ: Final = 9
T_TRACE: Final = 10
T_SPAN: Final = 11
T_PARENT: Final = 12
T_TP: Final = 13
T_B3: Final = 14
T_B3T: Final = 15
T_B3S: Final = 16
T_B3P: Final = 17
T_HEADERS: Final = 18
assert _TARGETS[T_HEADERS] == "headers" and _TARGETS[T_LATENCY] == "latency"
NT = len(_TARGETS)

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_SUFFIX_UNITS = {
    "_ns": 1,
    "_us": 1_000,
    "_micros": 1_000,
    "_ms": 1_000_000,
    "_millis": 1_000_000,
    "_s": 1_000_000_000,
    "_seconds": 1_000_000_000,
    "_sec": 1_000_000_000,
}


def parse_duration_ns(value: Any, unit_ns: int) -> int:
    """A latency -> ns: a number in ``unit_ns``, or text with a unit
    (``"12ms"``, ``"1.5s"``, ``"250us"``).

    >>> parse_duration_ns("1.5s", 1), parse_duration_ns(12, 1_000_000)
    (1500000000, 12000000)
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")  # noqa: TRY004 - bad data is a ValueError: its line goes to the dead letters
    if isinstance(value, int):
        return value * unit_ns
    if isinstance(value, float):
        try:
            return round(value * unit_ns)
        except OverflowError:
            raise ValueError(f"duration out of range: {value!r}") from None
    if isinstance(value, str):
        s = value.strip()
        num = s.rstrip("abcdefghijklmnopqrstuvwxyzµ")
        unit = s[len(num) :]
        try:
            n = float(num) if "." in num or "e" in num.lower() else int(num)
        except ValueError:
            raise ValueError(f"not a duration: {value!r}") from None
        if unit:
            u = _UNITS.get(unit)
            if u is None:
                raise ValueError(f"unknown duration unit {unit!r} in {value!r}")
            unit_ns = u
        try:
            return n * unit_ns if isinstance(n, int) else round(n * unit_ns)
        except OverflowError:
            raise ValueError(f"duration out of range: {value!r}") from None
    raise ValueError(f"not a duration: {value!r}")


def _status(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"not a status code: {value!r}")


def _text(v: Any) -> str:
    if v.__class__ is str:
        return str(v)
    if isinstance(v, dict | list):
        return msgspec.json.encode(v).decode()
    return str(v)


_MISSING: list[Any] = [None] * NT
_MAX_COMPILED = 256
"""Key shapes that get a compiled builder; beyond, the generic one (a
source whose every line has new keys must not compile per line)."""
Builder = Callable[[dict[str, Any], str, int], LogRecord]


class Normalizer:
    """Maps parsed fields onto LogRecords (see the module docstring).

    Stateful only through its timestamp parser's reference time (syslog year
    inference), which :meth:`snapshot` / :meth:`restore` carry.
    """

    __slots__ = (
        "_builders",
        "_compiled",
        "_header_keys",
        "_header_req",
        "_keymap",
        "_plans",
        "_unit",
        "catalog",
        "default_environment",
        "default_service",
        "json_path",
        "level_names",
        "redactor",
        "times",
    )

    def __init__(
        self,
        mapping: FieldMapping | None = None,
        *,
        times: TimestampParser | None = None,
        catalog: ServiceCatalog | None = None,
        redactor: Redactor | None = None,
        default_service: str = "",
        default_environment: str = "",
    ) -> None:
        mapping = mapping or FieldMapping()
        unit = _UNITS.get(mapping.latency_unit)
        if unit is None:
            raise ValueError(
                f"latency_unit must be one of {', '.join(_UNITS)}, got {mapping.latency_unit!r}"
            )
        self._unit = unit
        keymap: dict[str, tuple[int, int, int]] = {}
        for ti, target in enumerate(_TARGETS):
            for prio, key in enumerate(getattr(mapping, target)):
                if key in keymap and keymap[key][0] != ti:
                    raise ValueError(
                        f"key {key!r} is mapped to both {_TARGETS[keymap[key][0]]} and {target}"
                    )
                u = unit
                if ti == T_LATENCY:
                    for suf, n in _SUFFIX_UNITS.items():
                        if key.endswith(suf):
                            u = n
                            break
                keymap.setdefault(key, (ti, prio, u))
        self._keymap = keymap
        # header keys (lower case) inside a nested headers object
        self._header_keys = {
            k.lower(): ti
            for ti in (T_TP, T_B3, T_B3T, T_B3S, T_B3P, T_REQ)
            for k in getattr(mapping, _TARGETS[ti])
        }
        self._header_req = T_REQ
        self._plans: dict[tuple[str, ...], tuple[tuple[int, str, int], ...]] = {}
        self._builders: dict[tuple[str, ...], Builder] = {}
        self.json_path: Any = None
        """The JSON parser's learned Struct path (see ``_json``)."""
        self.level_names: dict[str, int] = dict(_LEVELS)
        """Level spellings seen, with their number (grows with new spellings, bounded)."""
        self._compiled = 0
        self.times = times or TimestampParser()
        self.catalog = catalog
        self.redactor = redactor if redactor is not None and redactor.enabled else None
        self.default_service = default_service
        self.default_environment = default_environment

    def snapshot(self) -> dict[str, Any]:
        return {"reference_ns": self.times.reference_ns}

    def restore(self, state: dict[str, Any]) -> None:
        self.times.reference_ns = int(state.get("reference_ns", 0))

    def _plan(self, shape: tuple[str, ...]) -> tuple[tuple[int, str, int], ...]:
        best: dict[int, tuple[int, str, int]] = {}
        km = self._keymap
        for k in shape:
            e = km.get(k)
            if e is not None:
                ti, prio, unit = e
                old = best.get(ti)
                if old is None or prio < old[0]:
                    best[ti] = (prio, k, unit)
        plan = tuple((ti, k, unit) for ti, (_, k, unit) in sorted(best.items()))
        if len(self._plans) >= 4096:
            self._plans.clear()
        self._plans[shape] = plan
        return plan

    def record(self, fields: dict[str, Any], source: str, position: int) -> LogRecord:
        """The record of one line's ``fields`` (the dict is consumed: what is
        not mapped becomes ``attrs``).  FieldError names a bad field."""
        shape = tuple(fields)
        build = self._builders.get(shape)
        if build is None:
            build = self._builder(shape)
        return build(fields, source, position)

    def _builder(self, shape: tuple[str, ...]) -> Builder:
        plan = self._plans.get(shape) or self._plan(shape)
        build: Builder | None = None
        if self._compiled < _MAX_COMPILED:
            build = compile_builder(self, plan)
            if build is not None:
                self._compiled += 1
        if build is None:

            def build(fields: dict[str, Any], source: str, position: int) -> LogRecord:
                return self._record_generic(fields, source, position, plan)

        if len(self._builders) >= 4096:
            self._builders.clear()
        self._builders[shape] = build
        return build

    def _record_generic(
        self,
        fields: dict[str, Any],
        source: str,
        position: int,
        plan: tuple[tuple[int, str, int], ...],
    ) -> LogRecord:
        v = _MISSING[:]
        pop = fields.pop
        lat_unit = self._unit
        for ti, key, unit in plan:
            v[ti] = pop(key)
            if ti == T_LATENCY:
                lat_unit = unit

        ts = v[T_TS]
        if ts is None and not any(ti == T_TS for ti, _, _ in plan):
            raise FieldError(
                "no timestamp field (looked for "
                + ", ".join(k for k, e in self._keymap.items() if e[0] == T_TS)
                + ")"
            )
        try:
            ts_ns = self.times.parse(ts)
        except ValueError as exc:
            raise FieldError(f"field {_key(plan, T_TS)!r}: {exc}") from None

        lv = v[T_LEVEL]
        level = (
            Level.UNKNOWN
            if lv is None
            else (_LEVELS.get(lv) or level_number(lv))
            if lv.__class__ is str
            else level_number(lv)
        )
        msg = v[T_MSG]
        message = "" if msg is None else _text(msg)
        x = v[T_SERVICE]
        service = self.default_service if x is None else _text(x)
        x = v[T_COMPONENT]
        component = "" if x is None else _text(x)
        x = v[T_TEAM]
        team = "" if x is None else _text(x)
        x = v[T_ENV]
        environment = self.default_environment if x is None else _text(x)
        x = v[T_REQ]
        request_id = "" if x is None else _text(x)

        status: int | None = None
        x = v[T_STATUS]
        if x is not None:
            try:
                status = _status(x)
            except ValueError as exc:
                raise FieldError(f"field {_key(plan, T_STATUS)!r}: {exc}") from None
        latency_ns: int | None = None
        x = v[T_LATENCY]
        if x is not None:
            try:
                latency_ns = parse_duration_ns(x, lat_unit)
            except ValueError as exc:
                raise FieldError(f"field {_key(plan, T_LATENCY)!r}: {exc}") from None

        x = v[T_TRACE]
        trace_id = "" if x is None else _text(x)
        x = v[T_SPAN]
        span_id = "" if x is None else _text(x)
        x = v[T_PARENT]
        parent = "" if x is None else _text(x)
        hdrs = v[T_HEADERS]
        if hdrs is not None:
            if isinstance(hdrs, dict):
                fields[_key(plan, T_HEADERS)] = hdrs  # headers stay in attrs
                self._from_headers(hdrs, v)
                if not request_id and v[T_REQ] is not None:
                    request_id = _text(v[T_REQ])
            else:
                fields[_key(plan, T_HEADERS)] = hdrs
        if not trace_id and (v[T_TP] is not None or v[T_B3] is not None or v[T_B3T] is not None):
            ctx = self._trace_context(v, plan)
            if ctx is not None:
                trace_id, span_id = ctx[0], ctx[1]
                parent = parent or ctx[2]
        if parent:
            fields["parent_span_id"] = parent

        red = self.redactor
        if red is not None:
            message = red.text(message)
            if fields:
                red.attrs(fields)
        if self.catalog is not None:
            entry = self.catalog.services.get(service)
            if entry is not None:
                return LogRecord(
                    ts_ns=ts_ns,
                    service=service,
                    level=level,
                    message=message,
                    component=component,
                    team=team or entry.team,
                    environment=environment,
                    status=status,
                    latency_ns=latency_ns,
                    trace_id=trace_id,
                    span_id=span_id,
                    request_id=request_id,
                    source=source,
                    position=position,
                    attrs=fields,
                    tier=entry.tier,
                    owner=entry.owner,
                    runbook_url=entry.runbook_url,
                    dependencies=entry.dependencies,
                )
        return LogRecord(
            ts_ns=ts_ns,
            service=service,
            level=level,
            message=message,
            component=component,
            team=team,
            environment=environment,
            status=status,
            latency_ns=latency_ns,
            trace_id=trace_id,
            span_id=span_id,
            request_id=request_id,
            source=source,
            position=position,
            attrs=fields,
        )

    def _from_headers(self, headers: dict[str, Any], v: list[Any]) -> None:
        hk = self._header_keys
        for k, x in headers.items():
            ti = hk.get(k.lower())
            if ti is not None and v[ti] is None:
                v[ti] = x[0] if isinstance(x, list) and x else x

    @staticmethod
    def _trace_context(v: list[Any], plan: tuple[tuple[int, str, int], ...]) -> TraceContext | None:
        if v[T_TP] is not None:
            try:
                return parse_traceparent(_text(v[T_TP]))
            except ValueError as exc:
                raise FieldError(f"field {_key(plan, T_TP, 'traceparent')!r}: {exc}") from None
        if v[T_B3] is not None:
            try:
                return parse_b3(_text(v[T_B3]))
            except ValueError as exc:
                raise FieldError(f"field {_key(plan, T_B3, 'b3')!r}: {exc}") from None
        if v[T_B3S] is None:
            raise FieldError(f"field {_key(plan, T_B3T, 'X-B3-TraceId')!r}: X-B3-SpanId is missing")
        try:
            return b3_from_headers(
                _text(v[T_B3T]), _text(v[T_B3S]), _text(v[T_B3P]) if v[T_B3P] is not None else ""
            )
        except ValueError as exc:
            raise FieldError(f"field {_key(plan, T_B3T, 'X-B3-TraceId')!r}: {exc}") from None


def _key(plan: tuple[tuple[int, str, int], ...], target: int, default: str = "") -> str:
    for ti, key, _ in plan:
        if ti == target:
            return key
    return default or _TARGETS[target]


from ._builder import compile_builder

"""OTLP JSON files, as the OpenTelemetry Collector's file exporter writes
them: one JSON object per line, each an export request holding
``resourceSpans``, ``resourceLogs`` or ``resourceMetrics``.

The OTLP/JSON encoding (opentelemetry-proto's JSON mapping): lowerCamelCase
keys, trace and span ids as hex strings, 64-bit integers (the ``*UnixNano``
times, ``intValue``) as decimal strings or numbers, enums as integers
(status code 2 is an error).  Unknown fields are ignored, as the
specification requires.

Each line becomes records of :mod:`srestream._records`:

* a span -> :class:`Span` (service from the resource's ``service.name``,
  ids lower-cased, ``error`` when the status code is 2, span attributes and
  ``span.kind`` in ``attrs``);
* a log record -> :class:`LogRecord` (time, or observed time when the time
  is unset; severity number, or the severity text mapped onto the same
  scale; a non-string body as JSON; the scope name as ``component``;
  ``deployment.environment(.name)`` as ``environment``);
* a gauge or sum point -> :class:`MetricSample`; a histogram point ->
  Prometheus-style ``<name>_bucket{le=...}`` (cumulative), ``<name>_count``
  and ``<name>_sum`` samples, so latency SLIs read OTLP and Prometheus alike.

A line that is not JSON or not an export request, and a span or log record
without the ids or times it needs, go to the dead-letter output with the
reason; the rest of the line still counts.  Files are replayed (``follow:
false``, checkpointed per line) or followed like the tail source.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import msgspec

from .._component import Batch, BuildContext, Outputs, SourceConfig
from .._duration import Duration
from .._records import Level, LogRecord, MetricSample, RawLine, Span
from .._registry import register
from ._files import FileReplay, expand_paths
from ._tail import FileTail

__all__ = ["OtlpFileReader", "OtlpFileSource", "otlp_records"]


class _Struct(msgspec.Struct, rename="camel", gc=False):
    pass


class _AnyValue(_Struct):
    string_value: str | None = None
    bool_value: bool | None = None
    int_value: int | str | None = None
    double_value: float | str | None = None
    array_value: _ArrayValue | None = None
    kvlist_value: _KvList | None = None
    bytes_value: str | None = None


class _ArrayValue(_Struct):
    values: list[_AnyValue] = []


class _KeyValue(_Struct):
    key: str
    value: _AnyValue | None = None


class _KvList(_Struct):
    values: list[_KeyValue] = []


class _Resource(_Struct):
    attributes: list[_KeyValue] = []


class _Scope(_Struct):
    name: str = ""
    version: str = ""


class _Status(_Struct):
    code: int | str = 0
    message: str = ""


class _Span(_Struct):
    trace_id: str = ""
    span_id: str = ""
    parent_span_id: str = ""
    name: str = ""
    kind: int | str = 0
    start_time_unix_nano: int | str = 0
    end_time_unix_nano: int | str = 0
    attributes: list[_KeyValue] = []
    status: _Status | None = None


class _ScopeSpans(_Struct):
    scope: _Scope | None = None
    spans: list[_Span] = []


class _ResourceSpans(_Struct):
    resource: _Resource | None = None
    scope_spans: list[_ScopeSpans] = []


class _LogRecord(_Struct):
    time_unix_nano: int | str = 0
    observed_time_unix_nano: int | str = 0
    severity_number: int | str = 0
    severity_text: str = ""
    body: _AnyValue | None = None
    attributes: list[_KeyValue] = []
    trace_id: str = ""
    span_id: str = ""


class _ScopeLogs(_Struct):
    scope: _Scope | None = None
    log_records: list[_LogRecord] = []


class _ResourceLogs(_Struct):
    resource: _Resource | None = None
    scope_logs: list[_ScopeLogs] = []


class _NumberPoint(_Struct):
    attributes: list[_KeyValue] = []
    time_unix_nano: int | str = 0
    as_double: float | str | None = None
    as_int: int | str | None = None


class _HistogramPoint(_Struct):
    attributes: list[_KeyValue] = []
    time_unix_nano: int | str = 0
    count: int | str = 0
    sum: float | str | None = None
    bucket_counts: list[int | str] = []
    explicit_bounds: list[float] = []


class _Numbers(_Struct):
    data_points: list[_NumberPoint] = []


class _Histogram(_Struct):
    data_points: list[_HistogramPoint] = []


class _Metric(_Struct):
    name: str = ""
    gauge: _Numbers | None = None
    sum: _Numbers | None = None
    histogram: _Histogram | None = None


class _ScopeMetrics(_Struct):
    scope: _Scope | None = None
    metrics: list[_Metric] = []


class _ResourceMetrics(_Struct):
    resource: _Resource | None = None
    scope_metrics: list[_ScopeMetrics] = []


class _Export(_Struct):
    resource_spans: list[_ResourceSpans] | None = None
    resource_logs: list[_ResourceLogs] | None = None
    resource_metrics: list[_ResourceMetrics] | None = None


_DECODER = msgspec.json.Decoder(_Export)
_ENCODER = msgspec.json.Encoder()

_SPAN_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_SEVERITY_TEXT = {
    "TRACE": Level.TRACE, "DEBUG": Level.DEBUG, "INFO": Level.INFO,
    "INFORMATION": Level.INFO, "NOTICE": Level.NOTICE, "WARN": Level.WARN,
    "WARNING": Level.WARN, "ERROR": Level.ERROR, "CRITICAL": Level.CRITICAL,
    "FATAL": Level.FATAL,
}
_STATUS_ERROR = {2, "2", "STATUS_CODE_ERROR"}


def _value(v: _AnyValue | None) -> Any:
    """An OTLP AnyValue as a plain Python value."""
    if v is None:
        return None
    if v.string_value is not None:
        return v.string_value
    if v.bool_value is not None:
        return v.bool_value
    if v.int_value is not None:
        return int(v.int_value)
    if v.double_value is not None:
        return float(v.double_value)
    if v.array_value is not None:
        return [_value(x) for x in v.array_value.values]
    if v.kvlist_value is not None:
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    if v.bytes_value is not None:
        return base64.b64decode(v.bytes_value).hex()
    return None


def _attrs(kvs: list[_KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def _ns(v: int | str) -> int:
    return int(v)


def _hex_id(v: str, size: int) -> str:
    """A trace (32) or span (16) id as lower-case hex; '' when unset; raise
    ValueError when it is not hex of that size."""
    if not v:
        return ""
    s = v.lower()
    if len(s) != size or s.strip("0123456789abcdef"):
        raise ValueError(f"id {v!r} is not {size} hex digits")
    return "" if s == "0" * size else s


class _Resourced:
    """What the resource says once for all its spans or logs."""

    __slots__ = ("environment", "service")

    def __init__(self, resource: _Resource | None) -> None:
        attrs = _attrs(resource.attributes) if resource is not None else {}
        self.service = str(attrs.get("service.name") or "")
        env = attrs.get("deployment.environment.name") or attrs.get("deployment.environment")
        self.environment = str(env or "")


def _spans(rs: _ResourceSpans, raw: RawLine, out: list[Any], dead: Callable[[Any, str], None]) -> None:
    res = _Resourced(rs.resource)
    for ss in rs.scope_spans:
        for sp in ss.spans:
            try:
                trace_id = _hex_id(sp.trace_id, 32)
                span_id = _hex_id(sp.span_id, 16)
                if not trace_id or not span_id:
                    raise ValueError("span without traceId or spanId")
                start, end = _ns(sp.start_time_unix_nano), _ns(sp.end_time_unix_nano)
                if not start or not end or end < start:
                    raise ValueError(f"span times are unset or reversed ({start}, {end})")
                attrs = _attrs(sp.attributes)
                kind = _SPAN_KINDS.get(int(sp.kind)) if str(sp.kind).isdigit() else str(sp.kind)
                if kind:
                    attrs["span.kind"] = kind
                status = sp.status or _Status()
                out.append(
                    Span(
                        trace_id=trace_id,
                        span_id=span_id,
                        parent_span_id=_hex_id(sp.parent_span_id, 16),
                        service=res.service,
                        name=sp.name,
                        start_ts_ns=start,
                        end_ts_ns=end,
                        error=status.code in _STATUS_ERROR,
                        status_message=status.message,
                        attrs=attrs,
                    )
                )
            except ValueError as exc:
                dead(sp, f"bad span: {exc}")


def _logs(rl: _ResourceLogs, raw: RawLine, out: list[Any], dead: Callable[[Any, str], None]) -> None:
    res = _Resourced(rl.resource)
    for sl in rl.scope_logs:
        component = sl.scope.name if sl.scope is not None else ""
        for lr in sl.log_records:
            try:
                ts = _ns(lr.time_unix_nano) or _ns(lr.observed_time_unix_nano)
                if not ts:
                    raise ValueError("log record without timeUnixNano or observedTimeUnixNano")
                level = int(lr.severity_number)
                if not level and lr.severity_text:
                    level = _SEVERITY_TEXT.get(lr.severity_text.upper(), Level.UNKNOWN)
                body = _value(lr.body)
                message = body if isinstance(body, str) else (
                    "" if body is None else _ENCODER.encode(body).decode()
                )
                out.append(
                    LogRecord(
                        ts_ns=ts,
                        service=res.service,
                        level=level,
                        message=message,
                        component=component,
                        environment=res.environment,
                        trace_id=_hex_id(lr.trace_id, 32),
                        span_id=_hex_id(lr.span_id, 16),
                        source=raw.source,
                        position=raw.position,
                        attrs=_attrs(lr.attributes),
                    )
                )
            except ValueError as exc:
                dead(lr, f"bad log record: {exc}")


def _labels(kvs: list[_KeyValue], service: str) -> dict[str, str]:
    labels = {k: v if isinstance(v, str) else _ENCODER.encode(v).decode()
              for k, v in _attrs(kvs).items()}
    if service:
        labels.setdefault("service", service)
    return labels


def _metrics(rm: _ResourceMetrics, raw: RawLine, out: list[Any],
             dead: Callable[[Any, str], None]) -> None:
    res = _Resourced(rm.resource)
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            numbers = m.gauge or m.sum
            try:
                if numbers is not None:
                    for p in numbers.data_points:
                        v = p.as_double if p.as_double is not None else p.as_int
                        if v is None:
                            raise ValueError("data point without asDouble or asInt")
                        out.append(MetricSample(name=m.name, ts_ns=_ns(p.time_unix_nano),
                                                value=float(v),
                                                labels=_labels(p.attributes, res.service)))
                elif m.histogram is not None:
                    for h in m.histogram.data_points:
                        _histogram(m.name, h, res.service, out)
                else:
                    raise ValueError("only gauge, sum and histogram metrics are read")
            except ValueError as exc:
                dead(m, f"bad metric {m.name!r}: {exc}")


def _histogram(name: str, h: _HistogramPoint, service: str, out: list[Any]) -> None:
    ts = _ns(h.time_unix_nano)
    labels = _labels(h.attributes, service)
    counts = [int(c) for c in h.bucket_counts]
    if counts and len(counts) != len(h.explicit_bounds) + 1:
        raise ValueError("bucketCounts must have one more entry than explicitBounds")
    running = 0
    bounds = [*map(repr, h.explicit_bounds), "+Inf"]
    for le, c in zip(bounds, counts):
        running += c
        out.append(MetricSample(name=f"{name}_bucket", ts_ns=ts, value=float(running),
                                labels={**labels, "le": le}))
    out.append(MetricSample(name=f"{name}_count", ts_ns=ts, value=float(int(h.count)),
                            labels=labels))
    if h.sum is not None:
        out.append(MetricSample(name=f"{name}_sum", ts_ns=ts, value=float(h.sum), labels=labels))


def otlp_records(raw: RawLine, outputs: Outputs) -> list[Any]:
    """The records of one OTLP JSON line; what cannot be read is dead-lettered."""
    out: list[Any] = []

    def dead(part: Any, reason: str) -> None:
        outputs.deadletter(_ENCODER.encode(part).decode(), raw.source, raw.position, reason)

    text = raw.text
    if not text.strip():
        return out
    try:
        export = _DECODER.decode(text)
    except msgspec.DecodeError as exc:
        outputs.deadletter(text, raw.source, raw.position, f"not OTLP JSON: {exc}")
        return out
    if export.resource_spans is None and export.resource_logs is None and (
        export.resource_metrics is None
    ):
        outputs.deadletter(text, raw.source, raw.position,
                           "not an OTLP export: no resourceSpans, resourceLogs or resourceMetrics")
        return out
    for rs in export.resource_spans or ():
        _spans(rs, raw, out, dead)
    for rl in export.resource_logs or ():
        _logs(rl, raw, out, dead)
    for rm in export.resource_metrics or ():
        _metrics(rm, raw, out, dead)
    return out


class OtlpFileReader:
    """Running logic: OTLP records from the lines of a replay or a tail.
    One output batch per line batch, so the line source's snapshot is the
    checkpoint."""

    def __init__(self, lines: FileReplay | FileTail, outputs: Outputs) -> None:
        self.lines = lines
        self.outputs = outputs

    def snapshot(self) -> Any:
        return self.lines.snapshot()

    def restore(self, state: Any) -> None:
        self.lines.restore(state)

    async def __call__(self) -> AsyncIterator[Batch]:
        outputs = self.outputs
        async with aclosing(self.lines()) as batches:
            async for batch in batches:
                out: list[Any] = []
                for raw in batch:
                    out.extend(otlp_records(raw, outputs))
                yield out


@register("Read OTLP JSON files (OpenTelemetry Collector file exporter): spans, logs, metrics.")
class OtlpFileSource(SourceConfig, frozen=True, kw_only=True, tag="otlp_file"):
    """Each line is one OTLP/JSON export request (what the Collector's file
    exporter writes).  Spans become ``span`` records (service from the
    resource's ``service.name``, hex ids, ``error`` when the status code is
    2), log records become ``log`` records, gauge/sum points and histograms
    (as ``_bucket``/``_count``/``_sum``) become ``metric`` records.  A line or
    a record that cannot be read goes to ``.deadletter`` with the reason."""

    side_outputs = ("deadletter",)
    paths: list[str]
    """Files or glob patterns, relative to the pipeline file."""
    follow: bool = False
    """Follow the files as the Collector appends to them (like ``tail``)
    instead of reading them once."""
    poll_interval: Duration = Duration.parse("1s")
    """With ``follow``: how often the files are checked for new lines."""

    def build(self, ctx: BuildContext) -> OtlpFileReader:
        lines: FileReplay | FileTail
        if self.follow:
            lines = FileTail(self.paths, base_dir=ctx.base_dir, batch_size=ctx.batch_size,
                             poll_interval_s=self.poll_interval.seconds, clock=ctx.clock)
        else:
            import os

            paths = expand_paths(self.paths, ctx.base_dir,
                                 where=f"$.sources.{ctx.component_id}.paths")
            lines = FileReplay(paths, batch_size=ctx.batch_size,
                               source_names=[os.path.relpath(p, ctx.base_dir) for p in paths])
        return OtlpFileReader(lines, ctx.outputs)

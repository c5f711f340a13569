"""JSON lines -> LogRecord.

A line is decoded once with msgspec; well-known fields (``ts``, ``level``,
``service``, ``message``...) fill the record, the rest stays in ``attrs``.
A line that is not a JSON object, or has no usable timestamp, goes to the
dead-letter output with its source, line number and reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import msgspec

from .._component import BuildContext, Outputs, StageConfig
from .._records import Level, LogRecord, RawLine
from .._registry import register
from ._time import parse_timestamp

__all__ = ["parse_json", "ParseJsonStage", "level_number"]

_LEVELS: dict[str, int] = {
    "trace": Level.TRACE,
    "debug": Level.DEBUG,
    "dbg": Level.DEBUG,
    "info": Level.INFO,
    "information": Level.INFO,
    "notice": Level.NOTICE,
    "warn": Level.WARN,
    "warning": Level.WARN,
    "error": Level.ERROR,
    "err": Level.ERROR,
    "critical": Level.CRITICAL,
    "crit": Level.CRITICAL,
    "fatal": Level.FATAL,
    "alert": Level.FATAL,
    "emerg": Level.FATAL,
    "panic": Level.FATAL,
}


def level_number(value: Any) -> int:
    """A level name (any case) or number onto the one scale of :class:`Level`."""
    if isinstance(value, str):
        return _LEVELS.get(value.lower(), Level.UNKNOWN)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return Level.UNKNOWN


_TS_KEYS = ("ts", "timestamp", "time", "@timestamp", "ts_ns")
_MAPPED = {
    "level", "severity", "lvl", "service", "service.name", "message", "msg", "component",
    "team", "environment", "env", "status", "latency_ms", "latency_ns", "trace_id",
    "span_id", "request_id", *_TS_KEYS,
}


def _record(obj: dict[str, Any], source: str, position: int) -> LogRecord:
    g = obj.get
    ts: Any = None
    for k in _TS_KEYS:
        ts = g(k)
        if ts is not None:
            break
    if ts is None:
        raise ValueError("no timestamp field (ts, timestamp, time, @timestamp)")
    ts_ns = parse_timestamp(ts)
    latency_ns = g("latency_ns")
    if latency_ns is None and (ms := g("latency_ms")) is not None:
        latency_ns = round(float(ms) * 1_000_000)
    status = g("status")
    return LogRecord(
        ts_ns=ts_ns,
        service=str(g("service") or g("service.name") or ""),
        level=level_number(g("level") or g("severity") or g("lvl")),
        message=str(g("message") or g("msg") or ""),
        component=str(g("component") or ""),
        team=str(g("team") or ""),
        environment=str(g("environment") or g("env") or ""),
        status=int(status) if status is not None else None,
        latency_ns=int(latency_ns) if latency_ns is not None else None,
        trace_id=str(g("trace_id") or ""),
        span_id=str(g("span_id") or ""),
        request_id=str(g("request_id") or ""),
        source=source,
        position=position,
        attrs={k: v for k, v in obj.items() if k not in _MAPPED},
    )


_decode = msgspec.json.Decoder().decode


def parse_json_batch(batch: Sequence[RawLine], outputs: Outputs) -> list[LogRecord]:
    out: list[LogRecord] = []
    append = out.append
    for raw in batch:
        try:
            obj = _decode(raw.text)
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
            append(_record(obj, raw.source, raw.position))
        except (msgspec.DecodeError, ValueError, TypeError) as exc:
            outputs.deadletter(raw.text, raw.source, raw.position, f"invalid JSON log line: {exc}")
    return out


async def parse_json(
    batches: AsyncIterator[Sequence[RawLine]], /, *, outputs: Outputs | None = None
) -> AsyncIterator[list[LogRecord]]:
    """Decode JSON log lines into LogRecords; bad lines go to ``outputs``'
    dead-letter output."""
    outputs = outputs if outputs is not None else Outputs("parse_json")
    async with aclosing(batches):
        async for batch in batches:
            yield parse_json_batch(batch, outputs)


@register("Decode JSON-lines logs into log records; bad lines go to .deadletter.")
class ParseJsonStage(StageConfig, frozen=True, kw_only=True, tag="parse_json"):
    side_outputs = ("deadletter",)

    def build(self, ctx: BuildContext) -> Any:
        outputs = ctx.outputs

        def stage(upstream: AsyncIterator[Sequence[RawLine]]) -> AsyncIterator[list[LogRecord]]:
            return parse_json(upstream, outputs=outputs)

        return stage

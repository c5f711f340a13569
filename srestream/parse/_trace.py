"""Trace context from the headers services propagate.

* W3C Trace Context ``traceparent: 00-<32 hex trace>-<16 hex span>-<flags>``;
* B3 single header ``b3: <trace>-<span>[-<sampled>[-<parent>]]`` (or just
  the sampling decision ``b3: 0``);
* B3 multi headers ``X-B3-TraceId``, ``X-B3-SpanId``, ``X-B3-ParentSpanId``,
  ``X-B3-Sampled``.

Ids come out as lower-case hex; a 64-bit B3 trace id is left-padded to
128 bits as the OpenTelemetry B3 propagator does, so the same trace has the
same id whichever header carried it.
"""

from __future__ import annotations

from typing import Self

__all__ = ["TraceContext", "b3_from_headers", "parse_b3", "parse_traceparent"]

_HEX = frozenset("0123456789abcdef")


class TraceContext(tuple[str, str, str]):
    """``(trace_id, span_id, parent_span_id)``; empty strings when absent."""

    __slots__ = ()

    def __new__(cls, trace_id: str, span_id: str, parent_span_id: str = "") -> Self:
        return super().__new__(cls, (trace_id, span_id, parent_span_id))

    @property
    def trace_id(self) -> str:
        return self[0]

    @property
    def span_id(self) -> str:
        return self[1]

    @property
    def parent_span_id(self) -> str:
        return self[2]


def _hex(value: str, sizes: tuple[int, ...], what: str) -> str:
    v = value.strip().lower()
    if len(v) not in sizes or not _HEX.issuperset(v):
        raise ValueError(f"{what} must be {' or '.join(map(str, sizes))} hex digits, got {value!r}")
    if v.strip("0") == "":
        raise ValueError(f"{what} is all zeros (invalid): {value!r}")
    return v


def parse_traceparent(value: str) -> TraceContext:
    """W3C ``traceparent`` -> TraceContext; ValueError says what is wrong.

    >>> parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").span_id
    '00f067aa0ba902b7'
    """
    parts = value.strip().split("-")
    if len(parts) < 4:
        raise ValueError(f"traceparent needs version-traceid-spanid-flags, got {value!r}")
    version = parts[0]
    if len(version) != 2 or not _HEX.issuperset(version.lower()) or version.lower() == "ff":
        raise ValueError(f"bad traceparent version {version!r}")
    if version == "00" and len(parts) != 4:
        raise ValueError(f"traceparent version 00 has exactly 4 parts, got {value!r}")
    trace_id = _hex(parts[1], (32,), "traceparent trace id")
    span_id = _hex(parts[2], (16,), "traceparent parent id")
    if len(parts[3]) != 2 or not _HEX.issuperset(parts[3].lower()):
        raise ValueError(f"bad traceparent flags {parts[3]!r}")
    return TraceContext(trace_id, span_id)


def _b3_trace(value: str) -> str:
    v = _hex(value, (16, 32), "B3 trace id")
    return v if len(v) == 32 else "0" * 16 + v


def parse_b3(value: str) -> TraceContext | None:
    """B3 single header -> TraceContext, or None when it carries only a
    sampling decision (``0``, ``1``, ``d``).

    >>> parse_b3("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")
    ('80f198ee56343ba864fe8b2a57d3eff7', 'e457b5a2e4d86bd1', '05e3ac9a4f6e3b90')
    """
    v = value.strip()
    if v in ("0", "1", "d"):
        return None
    parts = v.split("-")
    if len(parts) < 2 or len(parts) > 4:
        raise ValueError(f"b3 needs traceid-spanid[-sampled[-parentspanid]], got {value!r}")
    trace_id = _b3_trace(parts[0])
    span_id = _hex(parts[1], (16,), "B3 span id")
    if len(parts) >= 3 and parts[2] not in ("0", "1", "d"):
        raise ValueError(f"b3 sampling state must be 0, 1 or d, got {parts[2]!r}")
    parent = _hex(parts[3], (16,), "B3 parent span id") if len(parts) == 4 else ""
    return TraceContext(trace_id, span_id, parent)


def b3_from_headers(trace_id: str, span_id: str, parent_span_id: str = "") -> TraceContext:
    """B3 multi headers (``X-B3-TraceId``...) -> TraceContext."""
    return TraceContext(
        _b3_trace(trace_id),
        _hex(span_id, (16,), "X-B3-SpanId"),
        _hex(parent_span_id, (16,), "X-B3-ParentSpanId") if parent_span_id else "",
    )

"""The records that flow between stages.

Every record is a frozen msgspec Struct tagged on ``kind`` so that mixed
streams decode as one tagged union.  Event times are integers of nanoseconds
since the Unix epoch, UTC, in fields named ``*ts_ns`` (durations are other
``*_ns`` fields, e.g. ``latency_ns``).  Leaf records are
``gc=False``: they hold only scalars, strings and flat dicts, never cycles.

Records list only what stages need; anything a parser found beyond the
normalized fields stays in ``attrs``.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

__all__ = [
    "DeadLetter",
    "Event",
    "Level",
    "LogRecord",
    "MetricSample",
    "RawLine",
    "Record",
    "Span",
]


class Level:
    """Log severities on one numeric scale (OpenTelemetry severity numbers).

    Comparisons are plain int comparisons: ``rec.level >= Level.ERROR``.
    """

    TRACE: Final = 1
    DEBUG: Final = 5
    INFO: Final = 9
    NOTICE: Final = 10
    WARN: Final = 13
    ERROR: Final = 17
    CRITICAL: Final = 21
    FATAL: Final = 21
    UNKNOWN: Final = 0

    NAMES: Final = {
        0: "UNKNOWN",
        1: "TRACE",
        5: "DEBUG",
        9: "INFO",
        10: "NOTICE",
        13: "WARN",
        17: "ERROR",
        21: "FATAL",
    }


class RawLine(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="raw"):
    """One line as read from a source, before parsing.

    ``position`` is the 1-based line number within ``source``; ``offset`` is
    the byte offset just past the line (where a resumed read continues).
    """

    source: str
    position: int
    offset: int
    text: str


class LogRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="log"):
    """A parsed, normalized log record."""

    ts_ns: int
    service: str = ""
    level: int = Level.UNKNOWN
    message: str = ""
    component: str = ""
    team: str = ""
    environment: str = ""
    status: int | None = None
    latency_ns: int | None = None
    trace_id: str = ""
    span_id: str = ""
    request_id: str = ""
    template_id: str = ""
    source: str = ""
    position: int = 0
    attrs: dict[str, Any] = {}
    # From the service catalog (srestream.parse enrichment); empty when unknown.
    tier: str = ""
    owner: str = ""
    runbook_url: str = ""
    dependencies: tuple[str, ...] = ()


class Span(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="span"):
    """One span of a trace (OpenTelemetry semantics)."""

    trace_id: str
    span_id: str
    parent_span_id: str = ""
    service: str = ""
    name: str = ""
    start_ts_ns: int
    end_ts_ns: int
    error: bool = False
    status_message: str = ""
    attrs: dict[str, Any] = {}

    @property
    def ts_ns(self) -> int:
        """Event time of a span is its end: that is when its outcome is known."""
        return self.end_ts_ns


class MetricSample(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="metric"
):
    """One sample of one time series."""

    name: str
    ts_ns: int
    value: float
    labels: dict[str, str] = {}


class Event(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="event"):
    """Something pushed to or observed by the pipeline that is not a log line:
    a deploy, a CI run, an acknowledgement, an Alertmanager notification,
    a human action or a chat note.  ``event_type`` says which.
    """

    ts_ns: int
    event_type: str
    service: str = ""
    summary: str = ""
    source: str = ""
    attrs: dict[str, Any] = {}


class DeadLetter(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="deadletter"
):
    """A record a stage could not handle, with the reason, so nothing is lost.

    ``raw`` is the original text, ``source`` and ``position`` say where it
    came from (file and line number), ``stage`` which component refused it.
    """

    raw: str
    source: str
    position: int
    reason: str
    stage: str = ""


Record = RawLine | LogRecord | Span | MetricSample | Event | DeadLetter
"""The core records; later stages add their own (alerts, budgets, incidents)."""

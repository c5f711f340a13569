"""Writers of the simulated spans as log lines and OTLP traces.

Every writer takes the final spans of a chunk (sorted by end time) and
appends them to its file.  Lines are built with f-strings from values the
simulator controls (names and messages never hold quotes or backslashes),
which is what keeps generation at hundreds of thousands of lines per second.

* ``logs.jsonl``: one JSON object per line with the field names
  :func:`srestream.parse.parse_json` maps (``ts``, ``service``, ``level``,
  ``message``, ``component``, ``status``, ``latency_ms``, ``trace_id``,
  ``span_id``, ``request_id``, ``env``, plus ``team``).
* ``logs.logfmt``: the same fields as ``key=value`` pairs, ``msg`` quoted.
* ``logs.syslog``: RFC 5424 lines, the fields as structured data
  ``[sim@32473 ...]``, the message as MSG.
* ``traces.otlp.jsonl``: ``{"resourceSpans": [...]}`` lines as the
  OpenTelemetry Collector's file exporter writes them, one line per chunk
  (and per 2,000 spans at most), one resource per service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import IO, Any

from ._engine import Chunk
from ._graph import ServiceGraph

__all__ = ["JsonlWriter", "LineWriter", "LogfmtWriter", "OtlpWriter", "SyslogWriter", "rfc3339_ms"]

_UTC = UTC


def second_prefix(sec: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of an epoch second, UTC."""
    return datetime.fromtimestamp(sec, _UTC).strftime("%Y-%m-%dT%H:%M:%S")


def rfc3339_ms(ts_ns: int) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``."""
    ms = ts_ns // 1_000_000
    return f"{second_prefix(ms // 1000)}.{ms % 1000:03d}Z"


class LineWriter:
    """Base: an open text file and a count of lines written."""

    filename = ""

    def __init__(self, f: IO[str], graph: ServiceGraph, environment: str) -> None:
        self.f = f
        self.lines = 0
        self.names = [s.name for s in graph.services]
        self.teams = [s.team for s in graph.services]
        self.env = environment

    def write(self, chunk: Chunk) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.f.close()


class JsonlWriter(LineWriter):
    filename = "logs.jsonl"

    def __init__(self, f: IO[str], graph: ServiceGraph, environment: str) -> None:
        super().__init__(f, graph, environment)
        self.svc_part = [
            f'"service":"{s}","team":"{t}",' for s, t in zip(self.names, self.teams, strict=True)
        ]

    def write(self, chunk: Chunk) -> None:
        spans = chunk.seen
        if not spans:
            return
        svc_part = self.svc_part
        env = self.env
        last_sec = -1
        prefix = ""
        parts: list[str] = []
        app = parts.append
        for end, si, st, start, msg, comp, lvl, tid, sid, _p, _op in spans:
            ms = end // 1_000_000
            sec = ms // 1000
            if sec != last_sec:
                last_sec = sec
                prefix = second_prefix(sec)
            lat = (end - start) // 1000
            app(
                f'{{"ts":"{prefix}.{ms % 1000:03d}Z",{svc_part[si]}"level":"{lvl}",'
                f'"message":"{msg}","component":"{comp}","status":{st},'
                f'"latency_ms":{lat // 1000}.{lat % 1000:03d},"trace_id":"{tid}",'
                f'"span_id":"{sid}","request_id":"{tid[:16]}","env":"{env}"}}\n'
            )
        self.f.write("".join(parts))
        self.lines += len(parts)


class LogfmtWriter(LineWriter):
    filename = "logs.logfmt"

    def write(self, chunk: Chunk) -> None:
        spans = chunk.seen
        if not spans:
            return
        names, teams, env = self.names, self.teams, self.env
        last_sec = -1
        prefix = ""
        parts: list[str] = []
        app = parts.append
        for end, si, st, start, msg, comp, lvl, tid, sid, _p, _op in spans:
            ms = end // 1_000_000
            sec = ms // 1000
            if sec != last_sec:
                last_sec = sec
                prefix = second_prefix(sec)
            lat = (end - start) // 1000
            app(
                f"ts={prefix}.{ms % 1000:03d}Z level={lvl.lower()} service={names[si]} "
                f"team={teams[si]} component={comp} status={st} "
                f"latency_ms={lat // 1000}.{lat % 1000:03d} trace_id={tid} span_id={sid} "
                f'request_id={tid[:16]} env={env} msg="{msg}"\n'
            )
        self.f.write("".join(parts))
        self.lines += len(parts)


_SYSLOG_SEVERITY = {"INFO": 6, "WARN": 4, "ERROR": 3}
_FACILITY_LOCAL0 = 16


class SyslogWriter(LineWriter):
    filename = "logs.syslog"

    def write(self, chunk: Chunk) -> None:
        spans = chunk.seen
        if not spans:
            return
        names, env = self.names, self.env
        pri = {k: _FACILITY_LOCAL0 * 8 + v for k, v in _SYSLOG_SEVERITY.items()}
        last_sec = -1
        prefix = ""
        parts: list[str] = []
        app = parts.append
        for end, si, st, start, msg, comp, lvl, tid, sid, _p, _op in spans:
            ms = end // 1_000_000
            sec = ms // 1000
            if sec != last_sec:
                last_sec = sec
                prefix = second_prefix(sec)
            lat = (end - start) // 1000
            name = names[si]
            app(
                f"<{pri[lvl]}>1 {prefix}.{ms % 1000:03d}Z {name}-0 {name} - {comp} "
                f'[sim@32473 status="{st}" latency_ms="{lat // 1000}.{lat % 1000:03d}" '
                f'trace_id="{tid}" span_id="{sid}" request_id="{tid[:16]}" env="{env}"] {msg}\n'
            )
        self.f.write("".join(parts))
        self.lines += len(parts)


class OtlpWriter(LineWriter):
    filename = "traces.otlp.jsonl"
    max_spans_per_line = 2000

    def __init__(self, f: IO[str], graph: ServiceGraph, environment: str) -> None:
        super().__init__(f, graph, environment)
        self.spans = 0
        self.resource = [
            '{"resource":{"attributes":['
            f'{{"key":"service.name","value":{{"stringValue":"{s}"}}}},'
            f'{{"key":"deployment.environment","value":{{"stringValue":"{environment}"}}}}]}},'
            '"scopeSpans":[{"scope":{"name":"srestream.sim"},"spans":['
            for s in self.names
        ]

    def write(self, chunk: Chunk) -> None:
        spans = chunk.seen
        step = self.max_spans_per_line
        for i in range(0, len(spans), step):
            self._line(spans[i : i + step])

    def _line(self, spans: list[Any]) -> None:
        by_service: dict[int, list[str]] = {}
        for end, si, st, start, msg, _comp, _lvl, tid, sid, psid, op in spans:
            status = f'{{"code":2,"message":"{msg}"}}' if st >= 500 else "{}"
            parent = f'"parentSpanId":"{psid}",' if psid else ""
            text = (
                f'{{"traceId":"{tid}","spanId":"{sid}",{parent}"name":"{op}","kind":2,'
                f'"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}",'
                f'"attributes":[{{"key":"http.response.status_code",'
                f'"value":{{"intValue":"{st}"}}}}],'
                f'"status":{status}}}'
            )
            try:
                by_service[si].append(text)
            except KeyError:
                by_service[si] = [text]
        resources = [
            self.resource[si] + ",".join(texts) + "]}]}" for si, texts in sorted(by_service.items())
        ]
        self.f.write('{"resourceSpans":[' + ",".join(resources) + "]}\n")
        self.lines += 1
        self.spans += len(spans)

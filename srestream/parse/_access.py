"""Apache / Nginx access logs -> fields.

Common Log Format ``host ident user [time] "request" status bytes`` and
Combined (``... "referer" "user-agent"``), which is also nginx's default
``combined``.  Values after the user agent (nginx ``$request_time``,
``$upstream_response_time``...) are named by ``extra_fields``, in order.

Fields: ``client_ip``, ``ident``, ``user``, ``timestamp`` (Apache form,
parsed by the normalizer), ``request``, ``method``, ``path``, ``protocol``,
``status``, ``bytes``, ``referer``, ``user_agent``, ``message`` (the
request line) and ``level``: 5xx is ERROR, 4xx WARN, the rest INFO, so
``level >= ERROR`` means the same for access logs as for application logs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from .._component import BuildContext, Outputs
from .._records import Level, LogRecord, RawLine
from .._registry import register
from ._normalize import Normalizer
from ._stage import ParseLogic, ParseStageConfig, parse_batch, run_parser

__all__ = ["ParseAccessLogStage", "access_line_parser", "parse_access_line", "parse_access_log"]


def _quoted(s: str, i: int, what: str) -> tuple[str, int]:
    """The quoted string starting at ``s[i] == '"'`` (``\\"`` escapes
    allowed) and the index past its closing quote."""
    if s[i : i + 1] != '"':
        raise ValueError(f"{what}: expected a quoted string at column {i + 1}")
    j = s.find('"', i + 1)
    while j > 0 and s[j - 1] == "\\":
        j = s.find('"', j + 1)
    if j < 0:
        raise ValueError(f"{what}: unterminated quoted string at column {i + 1}")
    v = s[i + 1 : j]
    return (v.replace('\\"', '"') if "\\" in v else v), j + 1


def parse_access_line(line: str, extra_fields: Sequence[str] = ()) -> dict[str, Any]:
    """One access-log line (common or combined) -> fields.

    >>> f = parse_access_line('127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326')
    >>> f["method"], f["path"], f["status"], f["bytes"], f["user"]
    ('GET', '/a.gif', 200, 2326, 'frank')
    """
    if "\\" not in line:
        parts = line.split('"')
        n = len(parts)
        if n == 3 or n >= 7:
            out = _fast(parts[:7])
            if out is not None:
                if extra_fields and n >= 7:
                    _extras('"'.join(parts[6:]), 0, extra_fields, out)
                return out
    return _careful(line, extra_fields)


def _fast(parts: list[str]) -> dict[str, Any] | None:
    """Split on quotes (no escapes in the line): None if anything looks off,
    and the careful parser decides (and names the field)."""
    head = parts[0].split(" ")
    if len(head) != 5 or head[4] != "" or head[3][:1] != "[" or head[3][-1:] != "]":
        return None
    ts = head[3][1:-1]
    mid = parts[2].split(" ")
    if len(mid) != 4 or mid[0] != "" or len(mid[1]) != 3 or not mid[1].isdigit():
        return None
    if len(parts) == 3:
        if mid[3] != "":
            return None
    elif mid[3] != "" or parts[4] != " ":
        return None
    status = int(mid[1])
    request = parts[1]
    out: dict[str, Any] = {"client_ip": head[0], "timestamp": ts}
    if head[1] != "-":
        out["ident"] = head[1]
    if head[2] != "-":
        out["user"] = head[2]
    out["request"] = request
    out["message"] = request
    rq = request.split(" ")
    if len(rq) == 3:
        out["method"], out["path"], out["protocol"] = rq
    out["status"] = status
    out["level"] = Level.ERROR if status >= 500 else Level.WARN if status >= 400 else Level.INFO
    b = mid[2]
    if b.isdigit():
        out["bytes"] = int(b)
    elif b != "-":
        return None
    if len(parts) > 3:
        if parts[3] != "-":
            out["referer"] = parts[3]
        if parts[5] != "-":
            out["user_agent"] = parts[5]
    return out


def _careful(line: str, extra_fields: Sequence[str] = ()) -> dict[str, Any]:
    """Field by field, with escapes; ValueError names the field that fails."""
    host, ident, user, rest = (line.split(" ", 3) + ["", "", ""])[:4]
    if not rest.startswith("["):
        raise ValueError(
            "timestamp: expected '[dd/Mon/yyyy:hh:mm:ss zone]' after host, ident, user"
        )
    close = rest.find("]")
    if close < 0:
        raise ValueError("timestamp: missing ']'")
    out: dict[str, Any] = {"client_ip": host, "timestamp": rest[1:close]}
    if ident != "-":
        out["ident"] = ident
    if user != "-":
        out["user"] = user
    request, i = _quoted(rest, close + 2, "request")
    out["request"] = request
    out["message"] = request
    parts = request.split(" ")
    if len(parts) == 3:
        out["method"], out["path"], out["protocol"] = parts
    tail = rest[i + 1 :].split(" ", 2)
    if len(tail) < 2:
        raise ValueError("status: missing status and bytes after the request")
    status_text, bytes_text = tail[0], tail[1]
    if len(status_text) != 3 or not status_text.isdigit():
        raise ValueError(f"status: not a 3-digit status code: {status_text!r}")
    status = int(status_text)
    out["status"] = status
    out["level"] = Level.ERROR if status >= 500 else Level.WARN if status >= 400 else Level.INFO
    if bytes_text.isdigit():
        out["bytes"] = int(bytes_text)
    elif bytes_text != "-":
        raise ValueError(f"bytes: not a number: {bytes_text!r}")
    if len(tail) == 3 and tail[2]:
        more = tail[2]
        referer, j = _quoted(more, 0, "referer")
        if referer != "-":
            out["referer"] = referer
        agent, j = _quoted(more, j + 1, "user_agent")
        if agent != "-":
            out["user_agent"] = agent
        if extra_fields:
            _extras(more, j, extra_fields, out)
    return out


def _extras(s: str, i: int, names: Sequence[str], out: dict[str, Any]) -> None:
    for name in names:
        while i < len(s) and s[i] == " ":
            i += 1
        if i >= len(s):
            return
        if s[i] == '"':
            v, i = _quoted(s, i, name)
        else:
            j = s.find(" ", i)
            j = len(s) if j < 0 else j
            v, i = s[i:j], j
        if v != "-":
            out[name] = v


def access_line_parser(extra_fields: Sequence[str] = ()) -> Callable[[str], dict[str, Any]]:
    """A line parser with the given names for values after the user agent."""
    if not extra_fields:
        return parse_access_line
    names = tuple(extra_fields)
    return lambda line: parse_access_line(line, names)


async def parse_access_log(
    batches: AsyncIterator[Sequence[RawLine]],
    /,
    *,
    extra_fields: Sequence[str] = (),
    normalizer: Normalizer | None = None,
    outputs: Outputs | None = None,
) -> AsyncIterator[list[LogRecord]]:
    """Apache/Nginx access-log lines -> LogRecords; bad lines to dead letters."""
    outputs = outputs if outputs is not None else Outputs("parse_access_log")
    norm = normalizer if normalizer is not None else Normalizer()
    line_parser = access_line_parser(extra_fields)

    def parse(batch: Sequence[RawLine], outs: Outputs) -> list[LogRecord]:
        return parse_batch(batch, line_parser, norm, outs, "access log")

    async for out in run_parser(batches, parse, outputs):
        yield out


@register(
    "Parse Apache/Nginx access logs (common, combined) into normalized log records; bad lines go to .deadletter."
)
class ParseAccessLogStage(ParseStageConfig, frozen=True, kw_only=True, tag="parse_access_log"):
    """Common and combined access logs (Apache, nginx) are split on quotes
    (a careful parser handles escaped quotes and names the field that
    fails).  Status gives the level (5xx ERROR, 4xx WARN); values after the
    user agent are named by ``extra_fields`` (``request_time_s`` becomes the
    latency)."""

    extra_fields: tuple[str, ...] = ()
    """Names of the values after the user agent (e.g. ``request_time_s``)."""

    def build(self, ctx: BuildContext) -> ParseLogic:
        norm = self.create_normalizer(ctx)
        line_parser = access_line_parser(self.extra_fields)

        def parse(batch: Sequence[RawLine], outs: Outputs) -> list[LogRecord]:
            return parse_batch(batch, line_parser, norm, outs, "access log")

        return ParseLogic(parse, norm, ctx.outputs)

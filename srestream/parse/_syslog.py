"""syslog lines -> fields: RFC 5424 and RFC 3164 (BSD), told apart per line.

* RFC 5424: ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD-ID k="v"...] MSG``;
  ``-`` is the nil value; structured data becomes
  ``structured_data = {sd_id: {param: value}}`` (escapes ``\\"``, ``\\\\``,
  ``\\]`` decoded); a leading BOM of MSG is dropped.
* RFC 3164: ``[<PRI>]Mmm dd hh:mm:ss HOST TAG[PID]: MSG`` (the PRI is
  optional: files written by syslog daemons omit it); the year-less time is
  placed by the normalizer (year inferred near the reference time).

Fields: ``timestamp``, ``hostname``, ``app_name``, ``procid``, ``msgid``,
``message``, ``level`` (the severity on the one scale), ``facility`` and
``severity`` (numbers, when there is a PRI), ``structured_data``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from .._component import BuildContext, Outputs
from .._records import LogRecord, RawLine
from .._registry import register
from ._levels import syslog_severity_level
from ._normalize import Normalizer
from ._stage import ParseLogic, ParseStageConfig, parse_batch, run_parser

__all__ = ["ParseSyslogStage", "parse_syslog", "parse_syslog_line"]

_MONTHS = frozenset(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
)


def parse_syslog_line(line: str) -> dict[str, Any]:
    """One syslog line (5424 or 3164) -> fields; ValueError says what is wrong.

    >>> f = parse_syslog_line("<34>Oct 11 22:14:15 mymachine su[42]: 'su root' failed")
    >>> f["app_name"], f["procid"], f["severity"], f["message"]
    ('su', '42', 2, "'su root' failed")
    """
    out: dict[str, Any] = {}
    rest = line
    if line[:1] == "<":
        close = line.find(">", 1, 6)
        pri_text = line[1:close] if close > 0 else ""
        if not pri_text.isdigit() or int(pri_text) > 191:
            raise ValueError(f"bad PRI {line[: close + 1 if close > 0 else 6]!r}")
        pri = int(pri_text)
        out["facility"] = pri >> 3
        out["severity"] = pri & 7
        out["level"] = syslog_severity_level(pri & 7)
        rest = line[close + 1 :]
        if rest[:2] == "1 ":
            return _rfc5424(rest, out)
    return _rfc3164(rest, out)


def _rfc3164(rest: str, out: dict[str, Any]) -> dict[str, Any]:
    if (
        len(rest) < 16
        or rest[:3] not in _MONTHS
        or rest[3] != " "
        or rest[9] != ":"
        or rest[15] != " "
    ):
        raise ValueError("timestamp: expected 'Mmm dd hh:mm:ss' at the start of an RFC 3164 line")
    out["timestamp"] = rest[:15]
    host, _, body = rest[16:].partition(" ")
    if not host:
        raise ValueError("hostname: missing after the timestamp")
    out["hostname"] = host
    colon = body.find(": ")
    if colon < 0 and body.endswith(":"):
        colon = len(body) - 1
    tag = body[:colon] if colon > 0 else ""
    if tag and " " not in tag:
        if tag[-1] == "]" and "[" in tag:
            lb = tag.rfind("[")
            out["app_name"] = tag[:lb]
            out["procid"] = tag[lb + 1 : -1]
        else:
            out["app_name"] = tag
        out["message"] = body[colon + 2 :]
    else:
        out["message"] = body
    return out


def _rfc5424(rest: str, out: dict[str, Any]) -> dict[str, Any]:
    parts = rest.split(" ", 6)
    if len(parts) < 7:
        if len(parts) == 6:  # no SD and no MSG is not allowed: SD is mandatory
            raise ValueError("structured data: missing (use '-' for none)")
        raise ValueError(f"header: expected 7 space-separated parts, got {len(parts)}")
    _, ts, host, app, procid, msgid, tail = parts
    if ts != "-":
        out["timestamp"] = ts
    if host != "-":
        out["hostname"] = host
    if app != "-":
        out["app_name"] = app
    if procid != "-":
        out["procid"] = procid
    if msgid != "-":
        out["msgid"] = msgid
    if tail[:1] == "-":
        msg = tail[2:]
    elif tail[:1] == "[":
        sd, end = _structured_data(tail)
        out["structured_data"] = sd
        msg = tail[end + 1 :] if end < len(tail) else ""
    else:
        raise ValueError(f"structured data: expected '-' or '[', got {tail[:10]!r}")
    if msg[:1] == "\ufeff":
        msg = msg[1:]
    out["message"] = msg
    return out


def _structured_data(s: str) -> tuple[dict[str, dict[str, str]], int]:
    """Parse SD-ELEMENTs from the start of ``s``; return them and the index
    just past the last ``]``."""
    sd: dict[str, dict[str, str]] = {}
    i = 0
    n = len(s)
    while i < n and s[i] == "[":
        j = i + 1
        while j < n and s[j] not in " ]":
            j += 1
        sd_id = s[i + 1 : j]
        if not sd_id:
            raise ValueError(f"structured data: empty SD-ID at column {i + 1}")
        params: dict[str, str] = {}
        while j < n and s[j] == " ":
            eq = s.find("=", j + 1)
            if eq < 0 or eq + 1 >= n or s[eq + 1] != '"':
                raise ValueError(f'structured data: expected name="value" in [{sd_id}]')
            name = s[j + 1 : eq]
            k = eq + 2
            end = s.find('"', k)
            if end > 0 and "\\" not in s[k:end]:  # no escapes: one slice
                params[name] = s[k:end]
                j = end + 1
                continue
            buf: list[str] = []
            start = k
            while True:
                if k >= n:
                    raise ValueError(f"structured data: unterminated value of {sd_id}.{name}")
                c = s[k]
                if c == "\\" and k + 1 < n and s[k + 1] in '"\\]':
                    buf.append(s[start:k])
                    buf.append(s[k + 1])
                    k += 2
                    start = k
                    continue
                if c == '"':
                    break
                k += 1
            buf.append(s[start:k])
            params[name] = "".join(buf)
            j = k + 1
        if j >= n or s[j] != "]":
            raise ValueError(f"structured data: [{sd_id}] is not closed by ']'")
        sd[sd_id] = params
        i = j + 1
    if i < n and s[i] != " ":
        raise ValueError(f"structured data: unexpected {s[i]!r} at column {i + 1}")
    return sd, i


async def parse_syslog(
    batches: AsyncIterator[Sequence[RawLine]],
    /,
    *,
    normalizer: Normalizer | None = None,
    outputs: Outputs | None = None,
) -> AsyncIterator[list[LogRecord]]:
    """syslog lines (RFC 5424 or 3164) -> LogRecords; bad lines to dead letters."""
    outputs = outputs if outputs is not None else Outputs("parse_syslog")
    norm = normalizer if normalizer is not None else Normalizer()

    def parse(batch: Sequence[RawLine], outs: Outputs) -> list[LogRecord]:
        return parse_batch(batch, parse_syslog_line, norm, outs, "syslog")

    async for out in run_parser(batches, parse, outputs):
        yield out


@register(
    "Parse syslog lines (RFC 5424 with structured data, RFC 3164) into normalized log records; bad lines go to .deadletter."
)
class ParseSyslogStage(ParseStageConfig, frozen=True, kw_only=True, tag="parse_syslog"):
    """RFC 5424 (``<PRI>1 ...``, structured data as ``structured_data``)
    and RFC 3164 (``[<PRI>]Mmm dd hh:mm:ss host tag[pid]: msg``) are told
    apart per line.  The severity becomes the level; the app name the
    service.  A year-less time is placed in the year nearest the reference
    time, which then follows the data (Dec -> Jan), and is checkpointed."""

    def build(self, ctx: BuildContext) -> ParseLogic:
        norm = self.create_normalizer(ctx)

        def parse(batch: Sequence[RawLine], outs: Outputs) -> list[LogRecord]:
            return parse_batch(batch, parse_syslog_line, norm, outs, "syslog")

        return ParseLogic(parse, norm, ctx.outputs)

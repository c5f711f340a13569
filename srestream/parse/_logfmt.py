"""logfmt lines (``ts=... level=info msg="a b" latency_ms=12``) -> fields.

A line without quotes or backslashes (the common case) is split on
whitespace and each pair on its first ``=``: no per-character work.  A line
with quotes goes through a scanner that finds each quoted value's end with
``str.find`` and decodes its escapes (``\\"``, ``\\\\``, ``\\n``, ``\\t``,
``\\uXXXX``) as JSON string escapes.  A bare key (``debug``) is ``True``;
``key=`` is the empty string.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from .._component import BuildContext, Outputs
from .._records import LogRecord, RawLine
from .._registry import register
from ._normalize import Normalizer
from ._stage import ParseLogic, ParseStageConfig, parse_batch, run_parser

__all__ = ["ParseLogfmtStage", "parse_logfmt", "parse_logfmt_line"]

_json_str = msgspec.json.Decoder(str).decode


def parse_logfmt_line(line: str) -> dict[str, Any]:
    """One logfmt line -> ``{key: value}``; ValueError names the column of
    a malformed pair.

    >>> parse_logfmt_line('level=info msg="disk \\\\"full\\\\"" retry')
    {'level': 'info', 'msg': 'disk "full"', 'retry': True}
    """
    if "\\" in line:
        return _scan(line)  # escapes: the careful way
    out: dict[str, Any] = {}
    if '"' not in line:
        if "\t" in line:
            line = line.replace("\t", " ")  # tabs separate pairs like spaces (no other whitespace)
        for tok in line.split(" "):
            if tok:
                k, sep, v = tok.partition("=")
                if not k or not sep:
                    return _scan(line)  # a flag, or an empty key (the scanner says where)
                out[k] = v
        return out
    # Quotes without escapes: pieces alternate outside / inside quotes.
    parts = line.split('"')
    n = len(parts)
    if n % 2 == 0:
        return _scan(line)  # unbalanced: the scanner says where
    last = n - 1
    for i in range(0, n, 2):
        seg = parts[i]
        if "\t" in seg:
            seg = seg.replace("\t", " ")
        if i and seg[:1] != " " and (seg or i != last):
            return _scan(line)  # text glued to a closing quote
        toks = seg.split(" ")
        key = ""
        if i != last:
            key = toks.pop()
            if len(key) < 2 or key[-1] != "=" or "=" in key[:-1]:
                return _scan(line)  # a quote that does not open a value
        for tok in toks:
            if tok:
                k, sep, v = tok.partition("=")
                if not k or not sep:
                    return _scan(line)
                out[k] = v
        if key:
            out[key[:-1]] = parts[i + 1]
    return out


def _scan(line: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n = len(line)
    i = 0
    while i < n:
        c = line[i]
        if c == " " or c == "\t":
            i += 1
            continue
        j = i
        while j < n and line[j] not in " \t=":
            j += 1
        key = line[i:j]
        if not key:
            raise ValueError(f"empty key at column {i + 1}")
        if '"' in key:
            raise ValueError(f"quote inside key {key!r} at column {i + 1}")
        if j >= n or line[j] != "=":
            out[key] = True
            i = j
            continue
        j += 1  # past '='
        if j < n and line[j] == '"':
            end = j + 1
            escaped = False
            while True:
                end = line.find('"', end)
                if end < 0:
                    raise ValueError(f"unterminated quoted value of key {key!r} at column {j + 1}")
                k = end - 1
                backslashes = 0
                while line[k] == "\\":
                    backslashes += 1
                    k -= 1
                if backslashes % 2 == 0:
                    break
                escaped = True
                end += 1
            raw = line[j : end + 1]
            if escaped or "\\" in raw:
                try:
                    out[key] = _json_str(raw)
                except msgspec.DecodeError:
                    raise ValueError(
                        f"bad escape in value of key {key!r} at column {j + 1}"
                    ) from None
            else:
                out[key] = raw[1:-1]
            i = end + 1
            if i < n and line[i] not in " \t":
                raise ValueError(
                    f"text right after the quoted value of key {key!r} at column {i + 1}"
                )
        else:
            k = j
            while k < n and line[k] not in " \t":
                k += 1
            value = line[j:k]
            if '"' in value:
                raise ValueError(f"stray quote in value of key {key!r} at column {j + 1}")
            out[key] = value
            i = k
    return out


async def parse_logfmt(
    batches: AsyncIterator[Sequence[RawLine]],
    /,
    *,
    normalizer: Normalizer | None = None,
    outputs: Outputs | None = None,
) -> AsyncIterator[list[LogRecord]]:
    """logfmt lines -> LogRecords; bad lines to the dead-letter output."""
    outputs = outputs if outputs is not None else Outputs("parse_logfmt")
    norm = normalizer if normalizer is not None else Normalizer()

    def parse(batch: Sequence[RawLine], outs: Outputs) -> list[LogRecord]:
        return parse_batch(batch, parse_logfmt_line, norm, outs, "logfmt")

    async for out in run_parser(batches, parse, outputs):
        yield out


@register(
    "Parse logfmt lines (key=value, quoted values) into normalized log records; bad lines go to .deadletter."
)
class ParseLogfmtStage(ParseStageConfig, frozen=True, kw_only=True, tag="parse_logfmt"):
    """Lines are split on spaces and each pair on its first ``=`` (quoted
    values by splitting on quotes; escapes by a scanner that decodes them as
    JSON string escapes); a bare key is ``true``.  The pairs are normalized
    like JSON fields; malformed lines are dead letters with the column."""

    def build(self, ctx: BuildContext) -> ParseLogic:
        norm = self.create_normalizer(ctx)

        def parse(batch: Sequence[RawLine], outs: Outputs) -> list[LogRecord]:
            return parse_batch(batch, parse_logfmt_line, norm, outs, "logfmt")

        return ParseLogic(parse, norm, ctx.outputs)

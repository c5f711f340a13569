"""JSON lines -> LogRecord.

A batch is decoded with **one** msgspec call (the lines joined as the
elements of one JSON array, decoded straight into a list of dicts), which
is cheaper than decoding line by line; the normalizer then maps the
well-known fields and leaves the rest, untouched, as ``attrs``.  If the
batch holds a bad line the one call fails (or yields the wrong count) and
that batch is decoded line by line, so each bad line gets its own dead
letter with its position and reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from .._component import BuildContext, Outputs
from .._records import LogRecord, RawLine
from .._registry import register
from ._levels import level_number
from ._normalize import Normalizer
from ._stage import ParseLogic, ParseStageConfig, deadletter, run_parser

__all__ = ["parse_json", "parse_json_batch", "ParseJsonStage", "level_number"]

_decode_one = msgspec.json.Decoder(dict[str, Any]).decode
_decode_many = msgspec.json.Decoder(list[dict[str, Any]]).decode


def parse_json_batch(
    batch: Sequence[RawLine], outputs: Outputs, normalizer: Normalizer | None = None
) -> list[LogRecord]:
    """Decode and normalize one batch of JSON log lines."""
    norm = normalizer if normalizer is not None else _default_normalizer()
    objs: list[dict[str, Any]] | None
    try:
        objs = _decode_many("[" + ",".join([r.text for r in batch]) + "]")
        if len(objs) != len(batch):
            objs = None  # a line held two values (or none): find it line by line
    except (msgspec.DecodeError, msgspec.ValidationError):
        objs = None
    out: list[LogRecord] = []
    append = out.append
    record = norm.record
    if objs is not None:
        for raw, obj in zip(batch, objs):
            try:
                append(record(obj, raw.source, raw.position))
            except ValueError as exc:
                deadletter(outputs, norm, raw, f"JSON log line: {exc}")
        return out
    for raw in batch:
        try:
            obj = _decode_one(raw.text)
        except msgspec.ValidationError:
            deadletter(outputs, norm, raw, "invalid JSON log line: expected a JSON object")
            continue
        except msgspec.DecodeError as exc:
            deadletter(outputs, norm, raw, f"invalid JSON log line: {exc}")
            continue
        try:
            append(record(obj, raw.source, raw.position))
        except ValueError as exc:
            deadletter(outputs, norm, raw, f"JSON log line: {exc}")
    return out


_DEFAULT: list[Normalizer] = []


def _default_normalizer() -> Normalizer:
    if not _DEFAULT:
        _DEFAULT.append(Normalizer())
    return _DEFAULT[0]


async def parse_json(
    batches: AsyncIterator[Sequence[RawLine]],
    /,
    *,
    normalizer: Normalizer | None = None,
    outputs: Outputs | None = None,
) -> AsyncIterator[list[LogRecord]]:
    """Decode JSON log lines into LogRecords; bad lines go to ``outputs``'
    dead-letter output.  ``normalizer`` sets field mapping, time format,
    catalog and redaction (default: the standard mapping)."""
    outputs = outputs if outputs is not None else Outputs("parse_json")
    norm = normalizer if normalizer is not None else Normalizer()

    def parse(batch: Sequence[RawLine], outs: Outputs) -> list[LogRecord]:
        return parse_json_batch(batch, outs, norm)

    async for out in run_parser(batches, parse, outputs):
        yield out


@register("Decode JSON-lines logs into log records (field mapping, trace context, catalog, redaction); bad lines go to .deadletter.")
class ParseJsonStage(ParseStageConfig, frozen=True, kw_only=True, tag="parse_json"):
    def build(self, ctx: BuildContext) -> ParseLogic:
        norm = self.create_normalizer(ctx)

        def parse(batch: Sequence[RawLine], outs: Outputs) -> list[LogRecord]:
            return parse_json_batch(batch, outs, norm)

        return ParseLogic(parse, norm, ctx.outputs)

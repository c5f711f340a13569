"""JSON lines -> LogRecord.

A batch is decoded with **one** msgspec call: the lines joined as the
elements of one JSON array, decoded straight into a list of Structs with a
field per key seen so far (``forbid_unknown_fields``: a line with a new key
fails the call, its keys are learned, the Struct is rebuilt).  One
generated comprehension (``_json_fast``) then maps the well-known fields
(the normalizer's mapping) and puts every other key into ``attrs``, in
sorted key order; a batch it cannot take whole (a timestamp of another
form, a latency out of range) goes through the generated careful loop.  Keys that
need the generic normalizer (trace headers, two spellings of one field)
switch the stream to decoding dicts; the records are the same either way.

If the batch holds a bad line, the one call fails (or yields the wrong
count) and that batch is decoded line by line, so each bad line gets its
own dead letter with its position and reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from .._component import BuildContext, Outputs
from .._records import LogRecord, RawLine
from .._registry import register
from ._builder import BatchBuilder, compile_struct_batch, compile_typed_batch
from ._json_fast import FastBatch
from ._levels import level_number
from ._normalize import Normalizer
from ._stage import ParseLogic, ParseStageConfig, deadletter, run_parser

__all__ = ["ParseJsonStage", "level_number", "parse_json", "parse_json_batch"]

_decode_one = msgspec.json.Decoder(dict[str, Any]).decode
_decode_many = msgspec.json.Decoder(list[dict[str, Any]]).decode
_WHAT = "JSON log line"
MAX_STRUCT_KEYS = 128
"""Distinct keys the Struct path learns at most; beyond, the dict path."""


class _StructPath:
    """The fast path: lines decoded straight into a Struct with a field per
    key seen so far (unknown keys refused, so a new key is noticed and
    learned), then turned into records by one generated batch loop.

    Two Structs: the *typed* one lets msgspec check and default the mapped
    fields in C (text is a ``str``, status an ``int``...); a batch holding a
    line that does not fit goes through the *relaxed* one (every field
    ``Any``), whose loop converts like the normalizer does.  After
    ``MAX_TYPED_MISSES`` such batches the typed one is no longer tried.
    """

    __slots__ = (
        "fast",
        "fast_hits",
        "fast_misses",
        "keys",
        "known",
        "norm",
        "relaxed",
        "typed",
        "typed_misses",
        "usable",
    )

    MAX_TYPED_MISSES = 16
    MAX_FAST_MISSES = 16
    """Batches the comprehension of ``_json_fast`` may hand back to the
    careful loop before it is tried only while it succeeds on at least
    four batches out of five (counts restart with each learned key set)."""

    def __init__(self, norm: Normalizer) -> None:
        self.norm = norm
        self.keys: list[str] = []
        self.known: set[str] = set()
        self.typed: tuple[Any, BatchBuilder] | None = None
        self.relaxed: tuple[Any, BatchBuilder] | None = None
        self.usable = True
        self.typed_misses = 0
        self.fast: FastBatch | None = None
        self.fast_misses = 0
        self.fast_hits = 0

    def learn(self, dicts: Sequence[dict[str, Any]]) -> None:
        new = False
        for d in dicts:
            for k in d:
                if k not in self.known:
                    self.known.add(k)
                    self.keys.append(k)
                    new = True
        if not new:
            return
        if len(self.keys) > MAX_STRUCT_KEYS:
            self.usable = False
            return
        names = [f"f{i}" for i in range(len(self.keys))]
        build = compile_struct_batch(self.norm, self.keys, names, _WHAT)
        typed = compile_typed_batch(self.norm, self.keys, names, _WHAT)
        if build is None or typed is None:  # trace headers, or two keys for one field
            self.usable = False
            return
        rename = dict(zip(names, self.keys))
        loose = msgspec.defstruct(
            "JsonLine",
            [(n, Any, msgspec.UNSET) for n in names],
            rename=rename,
            forbid_unknown_fields=True,
            gc=False,
        )
        strict = msgspec.defstruct(
            "TypedJsonLine", typed[1], rename=rename, forbid_unknown_fields=True, gc=False
        )
        self.relaxed = (msgspec.json.Decoder(list[loose]).decode, build)  # type: ignore[valid-type]
        self.typed = (msgspec.json.Decoder(list[strict]).decode, typed[0])  # type: ignore[valid-type]
        self.fast = typed[2]
        self.fast_misses = self.fast_hits = 0

    def _decode(self, text: str) -> tuple[list[Any], BatchBuilder, FastBatch | None] | None:
        if self.typed is not None and self.typed_misses < self.MAX_TYPED_MISSES:
            try:
                return self.typed[0](text), self.typed[1], self.fast
            except msgspec.ValidationError:
                pass  # a new key, or a value of another type
        if self.relaxed is not None:
            try:
                found = self.relaxed[0](text), self.relaxed[1], None
            except msgspec.ValidationError:
                return None  # a new key (or not an object)
            if self.typed is not None:
                self.typed_misses += 1
            return found
        return None

    def run(
        self, text: str, batch: Sequence[RawLine], outputs: Outputs, out: list[LogRecord]
    ) -> list[dict[str, Any]] | None:
        """Parse the batch into ``out`` and return None; or return the batch
        decoded as dicts for the dict path (a key needs it); raises
        DecodeError/ValidationError when a line is bad."""
        found = self._decode(text)
        if found is None:
            dicts: list[dict[str, Any]] = _decode_many(text)
            if len(dicts) != len(batch):
                raise msgspec.DecodeError("line count")
            self.learn(dicts)
            if not self.usable:
                return dicts
            found = self._decode(text)
            if found is None:
                raise msgspec.DecodeError("not objects")
        objs, build, fast = found
        if len(objs) != len(batch):
            raise msgspec.DecodeError("line count")
        if fast is not None and (
            self.fast_misses <= self.MAX_FAST_MISSES or self.fast_misses * 4 <= self.fast_hits
        ):
            try:
                records = fast(objs, batch)
            except (TypeError, ValueError, OverflowError):
                records = None  # a line the careful loop must look at
            if records is not None:
                out += records
                self.fast_hits += 1
                return None
            self.fast_misses += 1
        norm = self.norm

        def dead(raw: RawLine, reason: str) -> None:
            deadletter(outputs, norm, raw, reason)

        build(objs, batch, out.append, dead)
        return None


def parse_json_batch(
    batch: Sequence[RawLine], outputs: Outputs, normalizer: Normalizer | None = None
) -> list[LogRecord]:
    """Decode and normalize one batch of JSON log lines."""
    norm = normalizer if normalizer is not None else _default_normalizer()
    out: list[LogRecord] = []
    if not batch:
        return out
    path = norm.json_path
    if path is None:
        path = norm.json_path = _StructPath(norm)
    texts = [r.text for r in batch]
    texts[0] = "[" + texts[0]
    texts[-1] += "]"  # (the brackets on the ends: one copy of the batch's text, not three)
    text = ",".join(texts)
    dicts: list[dict[str, Any]] | None = None
    try:
        if path.usable:
            dicts = path.run(text, batch, outputs, out)
            if dicts is None:
                return out
        else:
            dicts = _decode_many(text)
            if len(dicts) != len(batch):
                dicts = None  # a line held two values (or none): find it line by line
    except (msgspec.DecodeError, msgspec.ValidationError):
        dicts = None
    append = out.append
    record = norm.record
    if dicts is not None:
        for raw, obj in zip(batch, dicts):
            try:
                append(record(dict(sorted(obj.items())), raw.source, raw.position))
            except ValueError as exc:
                deadletter(outputs, norm, raw, f"{_WHAT}: {exc}")
        return out
    for raw in batch:  # a bad line in the batch: line by line, each its own reason
        try:
            obj = _decode_one(raw.text)
        except msgspec.ValidationError:
            deadletter(outputs, norm, raw, "invalid JSON log line: expected a JSON object")
            continue
        except msgspec.DecodeError as exc:
            deadletter(outputs, norm, raw, f"invalid JSON log line: {exc}")
            continue
        if path.usable:
            path.learn([obj])
        if path.usable:
            path.run("[" + raw.text + "]", [raw], outputs, out)
            continue
        try:
            append(record(dict(sorted(obj.items())), raw.source, raw.position))
        except ValueError as exc:
            deadletter(outputs, norm, raw, f"{_WHAT}: {exc}")
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


@register(
    "Decode JSON-lines logs into log records (field mapping, trace context, catalog, redaction); bad lines go to .deadletter."
)
class ParseJsonStage(ParseStageConfig, frozen=True, kw_only=True, tag="parse_json"):
    """Each batch of lines is decoded with one msgspec call into a Struct
    with a field per key seen so far (typed for the mapped fields, so
    msgspec checks and defaults them in C); a generated loop maps them onto
    log records (field mapping, timestamp to UTC ns, level on one scale,
    trace context, catalog, redaction) and keeps every other key in
    ``attrs`` (sorted).  A line with a new key is learned; a line that is
    not JSON, not an object, or has a bad field is a dead letter with its
    source, line number and reason (naming the field)."""

    def build(self, ctx: BuildContext) -> ParseLogic:
        norm = self.create_normalizer(ctx)

        def parse(batch: Sequence[RawLine], outs: Outputs) -> list[LogRecord]:
            return parse_json_batch(batch, outs, norm)

        return ParseLogic(parse, norm, ctx.outputs)

"""What every parse stage shares: the loop over a batch, dead letters, the
normalizer options and the running logic with its snapshot.

A line parser is a function ``text -> dict`` of fields that raises
:class:`ValueError` (with a reason naming the field or the position) when a
line does not fit its format.  :func:`parse_batch` runs it over a batch and
sends each refused line, redacted, to the dead-letter output, so one bad
line never stops the stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import Any

import msgspec

from .._component import BuildContext, Outputs, StageConfig
from .._errors import ConfigError, Problem
from .._records import LogRecord, RawLine
from ._catalog import ServiceCatalog, load_service_catalog
from ._normalize import FieldMapping, Normalizer
from ._redact import Redaction, Redactor
from ._time import TimestampParser, parse_timestamp

__all__ = [
    "BatchParser",
    "LineParser",
    "ParseLogic",
    "ParseStageConfig",
    "parse_batch",
    "run_parser",
]

LineParser = Callable[[str], dict[str, Any]]
BatchParser = Callable[[Sequence[RawLine], Outputs], list[LogRecord]]


def parse_batch(
    batch: Sequence[RawLine],
    parse_line: LineParser,
    normalizer: Normalizer,
    outputs: Outputs,
    what: str,
) -> list[LogRecord]:
    """Parse and normalize each line; refused lines go to ``outputs``'
    dead-letter output with ``what`` (the format) in the reason."""
    out: list[LogRecord] = []
    append = out.append
    record = normalizer.record
    for raw in batch:
        try:
            append(record(parse_line(raw.text), raw.source, raw.position))
        except ValueError as exc:
            deadletter(outputs, normalizer, raw, f"{what}: {exc}")
    return out


def deadletter(outputs: Outputs, normalizer: Normalizer, raw: RawLine, reason: str) -> None:
    """A refused line, redacted like the records: a dead letter is output too."""
    red = normalizer.redactor
    text = red.text(raw.text) if red is not None else raw.text
    outputs.deadletter(
        text, raw.source, raw.position, red.text(reason) if red is not None else reason
    )


async def run_parser(
    batches: AsyncIterator[Sequence[RawLine]], parse: BatchParser, outputs: Outputs
) -> AsyncIterator[list[LogRecord]]:
    """The stage loop: one output batch per input batch."""
    async with aclosing(batches):  # type: ignore[type-var]
        async for batch in batches:
            yield parse(batch, outputs)


class ParseLogic:
    """Running logic of a parse stage.  Its only state is the normalizer's
    reference time (syslog year inference), in the snapshot."""

    def __init__(self, parse: BatchParser, normalizer: Normalizer, outputs: Outputs) -> None:
        self.parse = parse
        self.normalizer = normalizer
        self.outputs = outputs

    def __call__(
        self, upstream: AsyncIterator[Sequence[RawLine]]
    ) -> AsyncIterator[list[LogRecord]]:
        return run_parser(upstream, self.parse, self.outputs)

    def snapshot(self) -> dict[str, Any]:
        return self.normalizer.snapshot()

    def restore(self, state: dict[str, Any]) -> None:
        self.normalizer.restore(state)


class ParseStageConfig(StageConfig, frozen=True, kw_only=True):
    """Options every parse stage has (the normalizer's)."""

    side_outputs = ("deadletter",)

    fields: FieldMapping = msgspec.field(default_factory=FieldMapping)
    """Where each record field comes from (candidate keys in order)."""
    time_format: str = "auto"
    """auto, rfc3339, epoch_s/ms/us/ns, syslog, apache, ctime or a strptime format."""
    time_zone: str | None = None
    """IANA zone of timestamps that carry no offset (default UTC)."""
    reference_time: str | None = None
    """RFC 3339 time that syslog timestamps without a year are placed near
    (default: the wall clock at start); then it follows the data."""
    default_service: str = ""
    """Service of lines that name none (e.g. one file per service)."""
    default_environment: str = ""
    """Environment of lines that name none."""
    catalog: str | None = None
    """Service catalog file (YAML/JSON): team, tier, owner, dependencies, runbook_url."""
    redaction: Redaction | None = None
    """PII redaction (emails, IPs, bearer tokens, custom regex); off when absent."""

    def create_normalizer(self, ctx: BuildContext) -> Normalizer:
        """The normalizer, or ConfigError listing every bad option."""
        where = f"$.stages.{ctx.component_id}"
        problems: list[Problem] = []
        times: TimestampParser | None = None
        try:
            ref = (
                parse_timestamp(self.reference_time) if self.reference_time else ctx.clock.now_ns()
            )
        except ValueError as exc:
            problems.append(Problem(f"{where}.reference_time", str(exc)))
            ref = 0
        zone = self.time_zone
        if zone:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                problems.append(Problem(f"{where}.time_zone", f"unknown IANA time zone {zone!r}"))
                zone = None
        try:
            times = TimestampParser(self.time_format, time_zone=zone, reference_ns=ref)
        except ValueError as exc:
            problems.append(Problem(f"{where}.time_format", str(exc)))
        catalog: ServiceCatalog | None = None
        if self.catalog:
            try:
                catalog = load_service_catalog(ctx.resolve(self.catalog), where=f"{where}.catalog")
            except ConfigError as exc:
                problems.extend(exc.problems)
        redactor = None
        if self.redaction is not None:
            import re

            for i, rule in enumerate(self.redaction.rules):
                try:
                    re.compile(rule.pattern)
                except re.error as exc:
                    problems.append(
                        Problem(f"{where}.redaction.rules[{i}].pattern", f"bad regex: {exc}")
                    )
        try:
            normalizer = Normalizer(
                self.fields,
                times=times,
                catalog=catalog,
                default_service=self.default_service,
                default_environment=self.default_environment,
            )
        except ValueError as exc:
            problems.append(Problem(f"{where}.fields", str(exc)))
        if problems:
            raise ConfigError(problems)
        if self.redaction is not None:
            redactor = Redactor(self.redaction)
            normalizer.redactor = redactor if redactor.enabled else None
        return normalizer

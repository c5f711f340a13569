"""Catalog enrichment and PII redaction for records that did not come
through a parser (OTLP logs, records from another pipeline): the same
service catalog and redaction rules as the parse stages, as a stage of its
own.  Records that are not LogRecords pass through unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import msgspec

from .._component import BuildContext, StageConfig
from .._errors import ConfigError, Problem
from .._records import LogRecord
from .._registry import register
from ._catalog import ServiceCatalog, load_service_catalog
from ._redact import Redaction, Redactor

__all__ = ["EnrichLogsStage", "enrich_batch", "enrich_logs"]


def enrich_batch(
    batch: Sequence[Any], catalog: ServiceCatalog | None, redactor: Redactor | None
) -> list[Any]:
    """The batch with LogRecords enriched from ``catalog`` and redacted."""
    out: list[Any] = []
    append = out.append
    replace = msgspec.structs.replace
    services = catalog.services if catalog is not None else {}
    for rec in batch:
        if not isinstance(rec, LogRecord):
            append(rec)
            continue
        changes: dict[str, Any] = {}
        entry = services.get(rec.service)
        if entry is not None:
            changes = {
                "tier": entry.tier,
                "owner": entry.owner,
                "runbook_url": entry.runbook_url,
                "dependencies": entry.dependencies,
            }
            if not rec.team:
                changes["team"] = entry.team
        if redactor is not None:
            message = redactor.text(rec.message)
            if message is not rec.message:
                changes["message"] = message
            if rec.attrs:
                attrs = redactor.attrs(dict(rec.attrs))  # a copy: the record is not ours
                if attrs != rec.attrs:
                    changes["attrs"] = attrs
        append(replace(rec, **changes) if changes else rec)
    return out


async def enrich_logs(
    batches: AsyncIterator[Sequence[Any]],
    /,
    *,
    catalog: ServiceCatalog | None = None,
    redaction: Redaction | None = None,
) -> AsyncIterator[list[Any]]:
    """Enrich LogRecords from the service catalog and redact PII."""
    redactor = Redactor(redaction) if redaction is not None else None
    if redactor is not None and not redactor.enabled:
        redactor = None
    async with aclosing(batches):  # type: ignore[type-var]
        async for batch in batches:
            yield enrich_batch(batch, catalog, redactor)


@register(
    "Enrich log records from a service catalog and redact PII (for records not from a parse stage, e.g. OTLP)."
)
class EnrichLogsStage(StageConfig, frozen=True, kw_only=True, tag="enrich_logs"):
    """For each log record of a service in the catalog, sets tier, owner,
    runbook URL, dependencies and (when the record has none) team; redacts
    the message and string attributes.  Other records pass unchanged."""

    catalog: str | None = None
    """Service catalog file (YAML/JSON): team, tier, owner, dependencies, runbook_url."""
    redaction: Redaction | None = None
    """PII redaction (emails, IPs, bearer tokens, custom regex); off when absent."""

    def build(self, ctx: BuildContext) -> Any:
        where = f"$.stages.{ctx.component_id}"
        problems: list[Problem] = []
        catalog = None
        if self.catalog:
            try:
                catalog = load_service_catalog(ctx.resolve(self.catalog), where=f"{where}.catalog")
            except ConfigError as exc:
                problems.extend(exc.problems)
        if self.redaction is not None:
            import re

            for i, rule in enumerate(self.redaction.rules):
                try:
                    re.compile(rule.pattern)
                except re.error as exc:
                    problems.append(
                        Problem(f"{where}.redaction.rules[{i}].pattern", f"bad regex: {exc}")
                    )
        if problems:
            raise ConfigError(problems)
        redaction = self.redaction

        def stage(upstream: AsyncIterator[Sequence[Any]]) -> AsyncIterator[list[Any]]:
            return enrich_logs(upstream, catalog=catalog, redaction=redaction)

        return stage

"""The ``mine_templates`` stage: label each log record with its template id.

Every :class:`~srestream.LogRecord` passing through gets ``template_id`` set
(a new frozen record, made with :func:`msgspec.structs.replace`); other
records, and log records with an empty message, pass unchanged.  A
multi-line message (a stack trace) is one record and gets one template.  A template seen for the first time is also emitted
on the side output ``templates`` as a :class:`TemplateRecord`, which is how
the anomaly detectors learn about new templates.  With ``template_attribute``
set, the template text is also put in each record's ``attrs`` under that
name (off by default: it copies every record's attrs).  With
``template_updates``, a template that generalises (a constant becomes
``<*>``) is announced again, same id, ``updated`` true.

>>> import anyio
>>> from srestream import LogRecord
>>> from srestream.testing import run_stage
>>> recs = [LogRecord(ts_ns=i, message=f"worker {i} started in {i}ms") for i in range(3)]
>>> out = anyio.run(run_stage, mine_templates, recs)
>>> len({r.template_id for r in out})
1
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import msgspec

from .._component import Outputs
from .._records import LogRecord
from ._miner import TemplateMiner
from ._records import TemplateRecord

__all__ = ["label_batch", "mine_templates"]

_replace = msgspec.structs.replace


def label_batch(
    miner: TemplateMiner,
    batch: Sequence[Any],
    outputs: Outputs | None,
    *,
    template_attribute: str = "",
    template_updates: bool = False,
) -> list[Any]:
    """Label one batch in order; new templates (and, with
    ``template_updates``, generalised ones) go to ``outputs`` ``templates``."""
    add = miner.add
    out: list[Any] = []
    append = out.append
    for rec in batch:
        if rec.__class__ is not LogRecord or not rec.message:
            append(rec)
            continue
        cluster, status = add(rec.message, ts_ns=rec.ts_ns, service=rec.service)
        if template_attribute:
            attrs = dict(rec.attrs)
            attrs[template_attribute] = cluster.template
            append(_replace(rec, template_id=cluster.template_id, attrs=attrs))
        else:
            append(_replace(rec, template_id=cluster.template_id))
        if status and outputs is not None and (status == 1 or template_updates):
            outputs.emit_one(
                "templates",
                TemplateRecord(
                    ts_ns=rec.ts_ns,
                    template_id=cluster.template_id,
                    template=cluster.template,
                    first_ts_ns=cluster.first_ts_ns,
                    service=cluster.service,
                    updated=status == 2,
                    count=cluster.count,
                    source=rec.source,
                    position=rec.position,
                ),
            )
    return out


async def mine_templates(
    batches: AsyncIterator[Sequence[Any]],
    /,
    *,
    miner: TemplateMiner | None = None,
    template_attribute: str = "",
    template_updates: bool = False,
    outputs: Outputs | None = None,
) -> AsyncIterator[list[Any]]:
    """Set ``template_id`` on every log record, mining templates online.

    Pass your own ``miner`` to choose its limits or to snapshot/restore it;
    one output batch is yielded per input batch.
    """
    miner = miner if miner is not None else TemplateMiner()
    async with aclosing(batches):  # type: ignore[type-var]
        async for batch in batches:
            yield label_batch(
                miner,
                batch,
                outputs,
                template_attribute=template_attribute,
                template_updates=template_updates,
            )

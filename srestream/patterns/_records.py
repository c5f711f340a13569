"""Records the template miner emits besides the log records it labels."""

from __future__ import annotations

import msgspec

__all__ = ["TemplateRecord"]


class TemplateRecord(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="template"
):
    """A template seen for the first time (side output ``templates``).

    ``first_ts_ns`` is the event time of the first line that created it and
    ``service`` that line's service; ``ts_ns``, ``source`` and ``position``
    are those of the line that caused this record; ``count`` is how many
    lines the template had matched by then (1 for a new one).  ``updated``
    is true when the record announces a generalised template text under an
    id announced before (only with the stage's ``template_updates``).  An
    anomaly detector reads these to flag new templates.
    """

    ts_ns: int
    template_id: str
    template: str
    first_ts_ns: int
    service: str = ""
    count: int = 1
    updated: bool = False
    source: str = ""
    position: int = 0

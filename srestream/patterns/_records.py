"""Records the template miner emits besides the log records it labels."""

from __future__ import annotations

import msgspec

__all__ = ["TemplateRecord"]


class TemplateRecord(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="template"
):
    """A template seen for the first time (side output ``templates``).

    ``ts_ns`` and ``first_ts_ns`` are the event time of the first line that
    created it; ``service`` is that line's service; ``count`` is how many
    lines the template had matched when the record was emitted (1 for a new
    one).  An anomaly detector reads these to flag new templates.
    """

    ts_ns: int
    template_id: str
    template: str
    first_ts_ns: int
    service: str = ""
    count: int = 1
    source: str = ""
    position: int = 0

"""The output contract (SPEC §4): JSON lines, snake_case fields, and for
every time-point field (named ``ts_ns`` or ``*_ts_ns``) a sibling without
the ``_ns`` suffix holding the same time as RFC 3339 UTC with milliseconds
(``ts_ns`` -> ``ts``, ``opened_ts_ns`` -> ``opened_ts``).  Durations
(``latency_ns``) stay integers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec
import orjson

__all__ = ["encode_lines", "output_file_for", "rfc3339_ms", "to_output"]

# Which file of an output directory each record kind goes to.
_FILES: dict[str, str] = {
    "deadletter": "deadletter.jsonl",
    "alert": "alerts.jsonl",
    "budget": "budgets.jsonl",
    "incident": "incidents.jsonl",
    "notification": "notifications.jsonl",
    "log": "logs.jsonl",
    "span": "spans.jsonl",
    "metric": "metrics.jsonl",
    "event": "events.jsonl",
    "anomaly": "anomalies.jsonl",
    "template": "templates.jsonl",
    "root_cause": "root_causes.jsonl",
    "policy_action": "policy_actions.jsonl",
}


def output_file_for(record: Any) -> str:
    """The file (relative to an output directory) a record belongs in.
    Timeline entries go to ``timeline/<incident_id>.jsonl``."""
    kind = _kind(type(record))
    if kind == "timeline":
        return f"timeline/{record.incident_id}.jsonl"
    return _FILES.get(kind) or f"{kind}.jsonl"


def rfc3339_ms(ns: int) -> str:
    """Nanoseconds UTC as RFC 3339 with milliseconds.

    >>> rfc3339_ms(1700000000123456789)
    '2023-11-14T22:13:20.123Z'
    """
    s, rem = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{rem // 1_000_000:03d}Z"


_plans: dict[type, tuple[tuple[str, bool], ...]] = {}
_kinds: dict[type, str] = {}


def _kind(cls: type) -> str:
    k = _kinds.get(cls)
    if k is None:
        cfg = getattr(cls, "__struct_config__", None)
        tag = cfg.tag if cfg is not None else None
        k = _kinds[cls] = tag if isinstance(tag, str) else cls.__name__.lower()
    return k


def _plan(cls: type) -> tuple[tuple[str, bool], ...]:
    p = _plans.get(cls)
    if p is None:
        p = _plans[cls] = tuple(
            (f, f.endswith("ts_ns")) for f in cls.__struct_fields__  # type: ignore[attr-defined]
        )
    return p


def to_output(record: Any) -> dict[str, Any]:
    """The output dict of one record (Struct), following the contract."""
    if not isinstance(record, msgspec.Struct):
        return record if isinstance(record, dict) else {"value": record}
    out: dict[str, Any] = {}
    for name, is_time in _plan(type(record)):
        v = getattr(record, name)
        if is_time:
            out[name[:-3]] = rfc3339_ms(v) if isinstance(v, int) else None
        out[name] = msgspec.to_builtins(v) if isinstance(v, msgspec.Struct | list | tuple) else v
    return out


def _default(obj: Any) -> Any:
    return msgspec.to_builtins(obj)


def encode_lines(records: Sequence[Any]) -> bytes:
    """Records as JSON lines (each line ends with a newline)."""
    dumps = orjson.dumps
    opt = orjson.OPT_APPEND_NEWLINE
    return b"".join([dumps(to_output(r), default=_default, option=opt) for r in records])

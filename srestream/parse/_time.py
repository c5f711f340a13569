"""Timestamps to integer nanoseconds UTC.

The issue-3 normalizer extends this module with syslog, Apache and strptime
forms; this part handles RFC 3339 / ISO 8601 and epoch numbers.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

__all__ = ["parse_timestamp", "epoch_to_ns"]

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)


def epoch_to_ns(value: float) -> int:
    """An epoch number in s, ms, µs or ns (told apart by magnitude) -> ns."""
    v = abs(value)
    if v < 1e11:  # seconds (until year 5138)
        return round(value * 1_000_000_000) if isinstance(value, float) else int(value) * 1_000_000_000
    if v < 1e14:
        return round(value * 1_000_000) if isinstance(value, float) else int(value) * 1_000_000
    if v < 1e17:
        return round(value * 1_000) if isinstance(value, float) else int(value) * 1_000
    return int(value)


_day_cache: dict[str, int] = {}


def _rfc3339(s: str) -> int:
    # Fast path: 'YYYY-MM-DDTHH:MM:SS[.fff...](Z|±HH:MM)'.
    if len(s) >= 20 and s[10] in "T " and s[13] == ":" and s[16] == ":":
        day = s[:10]
        base = _day_cache.get(day)
        if base is None:
            base = int(datetime.fromisoformat(day).replace(tzinfo=_UTC).timestamp()) * 1_000_000_000
            if len(_day_cache) > 4096:
                _day_cache.clear()
            _day_cache[day] = base
        secs = int(s[11:13]) * 3600 + int(s[14:16]) * 60 + int(s[17:19])
        i = 19
        frac = 0
        if i < len(s) and s[i] in ".,":
            j = i + 1
            while j < len(s) and s[j].isdigit():
                j += 1
            digits = s[i + 1 : j][:9]
            frac = int(digits.ljust(9, "0")) if digits else 0
            i = j
        tz = s[i:]
        if tz in ("Z", "z", "+00:00", ""):
            off = 0
        elif len(tz) == 6 and tz[0] in "+-" and tz[3] == ":":
            off = (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) * (1 if tz[0] == "+" else -1)
        elif len(tz) == 5 and tz[0] in "+-":
            off = (int(tz[1:3]) * 3600 + int(tz[3:5]) * 60) * (1 if tz[0] == "+" else -1)
        else:
            raise ValueError(f"bad time zone {tz!r} in timestamp {s!r}")
        return base + (secs - off) * 1_000_000_000 + frac
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_UTC)
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def parse_timestamp(value: Any) -> int:
    """RFC 3339 text or an epoch number -> ns UTC; ValueError if neither.

    >>> parse_timestamp("2024-03-10T01:59:59.5-05:00")
    1710053999500000000
    >>> parse_timestamp(1710053999500)
    1710053999500000000
    """
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return epoch_to_ns(value)
    if isinstance(value, str):
        s = value.strip()
        if s and (s[0].isdigit() and s.replace(".", "", 1).isdigit()):
            return epoch_to_ns(float(s) if "." in s else int(s))
        try:
            return _rfc3339(s)
        except ValueError as exc:
            raise ValueError(f"not a timestamp: {value!r}") from exc
    raise ValueError(f"not a timestamp: {value!r}")

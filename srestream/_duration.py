"""Durations in configuration: always a string with a unit (``"30s"``, ``"5m"``,
``"1h30m"``, ``"28d"``).  A bare number is refused: ``3600`` could be seconds
or milliseconds, and an SLO is no place to guess.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Duration", "format_duration", "parse_duration"]

_UNITS_NS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    "d": 86400 * 1_000_000_000,
    "w": 7 * 86400 * 1_000_000_000,
}


class Duration(int):
    """A duration in integer nanoseconds, written in config with a unit.

    >>> Duration.parse("1h30m").seconds
    5400.0
    >>> str(Duration.parse("90s"))
    '1m30s'
    """

    __slots__ = ()

    @classmethod
    def parse(cls, text: str) -> Duration:
        return cls(parse_duration(text))

    @classmethod
    def of_seconds(cls, seconds: float) -> Duration:
        return cls(round(seconds * 1_000_000_000))

    @property
    def seconds(self) -> float:
        return int(self) / 1e9

    @property
    def ns(self) -> int:
        return int(self)

    def __str__(self) -> str:
        return format_duration(int(self))

    def __repr__(self) -> str:
        return f"Duration({format_duration(int(self))!r})"


def parse_duration(text: str) -> int:
    """Parse ``"1h30m"``-style text into nanoseconds; raise ValueError with
    the reason otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"a duration needs a unit, e.g. '{text}s' or '{text}ms' (got {text!r})")
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    total = 0
    i = 0
    n = len(s)
    while i < n:
        j = i
        while j < n and (s[j].isdigit() or s[j] == "."):
            j += 1
        if j == i:
            raise ValueError(f"bad duration {text!r}: expected a number at {s[i:]!r}")
        number = s[i:j]
        k = j
        while k < n and s[k].isalpha():
            k += 1
        unit = s[j:k]
        if not unit:
            raise ValueError(f"a duration needs a unit, e.g. '{text}s' (got {text!r})")
        if unit not in _UNITS_NS:
            raise ValueError(
                f"bad duration {text!r}: unknown unit {unit!r} (use ns, us, ms, s, m, h, d, w)"
            )
        total += round(float(number) * _UNITS_NS[unit])
        i = k
    return total


def format_duration(ns: int) -> str:
    """Format nanoseconds compactly: 5400s -> '1h30m'."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNITS_NS[unit]
        if ns >= size:
            q, ns = divmod(ns, size)
            parts.append(f"{q}{unit}")
    for unit in ("ms", "us", "ns"):
        size = _UNITS_NS[unit]
        if ns >= size:
            q, ns = divmod(ns, size)
            parts.append(f"{q}{unit}")
    return sign + "".join(parts)


def dec_hook(type_: type, obj: Any) -> Any:
    """msgspec decode hook for config types."""
    if type_ is Duration:
        if isinstance(obj, Duration):
            return obj
        return Duration(parse_duration(obj))
    raise NotImplementedError(f"cannot decode {type_!r}")


def enc_hook(obj: Any) -> Any:
    """msgspec encode hook for config types."""
    if isinstance(obj, Duration):
        return str(obj)
    raise NotImplementedError(f"cannot encode {type(obj)!r}")

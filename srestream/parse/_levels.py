"""Log levels onto the one scale of :class:`srestream.Level`.

Names in any case (``WARN``, ``warning``, ``E``...), OpenTelemetry
severity numbers (1-24) and syslog severities (0 emergency .. 7 debug,
:func:`syslog_severity_level`) all land on the same integers, so
``rec.level >= Level.ERROR`` means the same whatever the source.
"""

from __future__ import annotations

from typing import Any

from .._records import Level

__all__ = ["level_number", "syslog_severity_level"]

_BASE: dict[str, int] = {
    "trace": Level.TRACE,
    "finest": Level.TRACE,
    "finer": Level.TRACE,
    "verbose": Level.TRACE,
    "debug": Level.DEBUG,
    "dbg": Level.DEBUG,
    "fine": Level.DEBUG,
    "d": Level.DEBUG,
    "info": Level.INFO,
    "information": Level.INFO,
    "informational": Level.INFO,
    "i": Level.INFO,
    "notice": Level.NOTICE,
    "warn": Level.WARN,
    "warning": Level.WARN,
    "w": Level.WARN,
    "error": Level.ERROR,
    "err": Level.ERROR,
    "e": Level.ERROR,
    "severe": Level.ERROR,
    "critical": Level.CRITICAL,
    "crit": Level.CRITICAL,
    "fatal": Level.FATAL,
    "alert": Level.FATAL,
    "emerg": Level.FATAL,
    "emergency": Level.FATAL,
    "panic": Level.FATAL,
    "f": Level.FATAL,
}
# Exact spellings first (no .lower() on the hot path), then any case.
_LEVELS: dict[str, int] = {**_BASE, **{k.upper(): v for k, v in _BASE.items()}}
_LEVELS.update({k.title(): v for k, v in _BASE.items()})

# syslog severity 0..7 (RFC 5424 table 2)
_SYSLOG = (
    Level.FATAL,
    Level.FATAL,
    Level.CRITICAL,
    Level.ERROR,
    Level.WARN,
    Level.NOTICE,
    Level.INFO,
    Level.DEBUG,
)


def syslog_severity_level(severity: int) -> int:
    """A syslog severity (0 emergency .. 7 debug) on the one scale."""
    return _SYSLOG[severity]


def level_number(value: Any) -> int:
    """A level name (any case) or number onto the one scale of :class:`Level`.

    >>> level_number("WARNING"), level_number("err"), level_number(17)
    (13, 17, 17)
    """
    if isinstance(value, str):
        n = _LEVELS.get(value)
        if n is None:
            n = _LEVELS.get(value.strip().lower(), Level.UNKNOWN)
        return n
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value <= 24 else Level.UNKNOWN
    return Level.UNKNOWN

"""The JSON batch's fastest path: one list comprehension per batch.

The careful loop of :func:`~._builder.compile_typed_batch` costs a few
hundred ns of bytecode per line (branches for every form a timestamp may
take, a ``try`` per line, an ``append`` call per record).  Most batches
are plain: every timestamp is RFC 3339 text, no latency is out of range.
For those, :func:`compile_fast_batch` generates a function that builds the
records in one comprehension, with the timestamp done as two dict lookups
(the text up to the second -> its ns, the rest -> fraction minus offset,
both learned on a miss by ``__missing__``) and ``attrs`` as one dict
display when the line has every unmapped key (a small function otherwise).

Anything else in a batch makes the function raise (TypeError, ValueError,
OverflowError) before any record leaves it; the caller then runs the
careful loop over the same batch, which makes the records (and dead
letters) it always made.  The caches only ever hold what the careful path
would compute, so which path a batch takes never shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import tzinfo
from typing import Any

import msgspec

from .._records import LogRecord, RawLine
from ._levels import _LEVELS, level_number
from ._time import _NS, _POW, _offset_seconds, _second_base

__all__ = ["FastBatch", "compile_fast_batch"]

FastBatch = Callable[[Sequence[Any], Sequence[RawLine]], "list[LogRecord] | None"]
"""``(objs, batch) -> records``; an exception (or None): use the careful loop."""

_CACHE_MAX = 1 << 16
_DIGIT_AT = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)


class _SecondCache(dict[str, "int | None"]):
    """``'YYYY-MM-DDTHH:MM:SS'`` -> ns of that second; None for text that
    is not exactly that form (ASCII digits, ``T``/``t``/space), whose line
    then takes the careful path."""

    __slots__ = ()

    def __missing__(self, head: str) -> int | None:
        base: int | None = None
        if (
            len(head) == 19
            and head.isascii()
            and head[4] == "-"
            and head[7] == "-"
            and head[10] in "Tt "
            and head[13] == ":"
            and head[16] == ":"
            and all("0" <= head[i] <= "9" for i in _DIGIT_AT)
        ):
            try:
                base = _second_base(head)
            except ValueError:  # month 13, Feb 30...: the careful path names it
                base = None
        if len(self) >= _CACHE_MAX:
            self.clear()
        self[head] = base
        return base


class _FractionCache(dict[str, "int | None"]):
    """The text after the second (``'.123Z'``, ``'Z'``, ``'.5+05:30'``,
    ``''``) -> ns to add to the second's ns (fraction minus offset); None
    when the careful path must decide (no digits after the dot, a bad
    offset, a naive time while a time zone is configured)."""

    __slots__ = ("zone",)

    def __init__(self, zone: tzinfo | None) -> None:
        super().__init__()
        self.zone = zone

    def __missing__(self, rest: str) -> int | None:
        value = self._parse(rest)
        if len(self) >= _CACHE_MAX:
            self.clear()
        self[rest] = value
        return value

    def _parse(self, rest: str) -> int | None:
        # The same reading as _time.rfc3339_to_ns after the seconds.
        n = len(rest)
        frac = 0
        i = 0
        if n and rest[0] in ".,":
            j = 1
            while j < n and "0" <= rest[j] <= "9":
                j += 1
            digits = rest[1:j]
            if not digits:
                return None
            frac = int(digits[:9]) * _POW[min(len(digits), 9)]
            i = j
        tz = rest[i:]
        if not tz:
            return frac if self.zone is None else None
        if tz == "Z" or tz == "z":
            return frac
        try:
            return frac - _offset_seconds(tz, rest) * _NS
        except ValueError:
            return None


class _LevelCache(dict[Any, int]):
    """Level value -> number; a spelling not seen before is computed once
    (bounded, like the careful path's ``level_names``)."""

    __slots__ = ()

    def __missing__(self, value: Any) -> int:
        n = level_number(value)
        if len(self) < 4096:
            self[value] = n
        return n


def compile_fast_batch(
    attr_of: dict[str, str],
    mapped: dict[int, tuple[str, int]],
    extras: Sequence[tuple[str, str]],
    text_fields: dict[int, str],
    defaults: dict[int, str],
    targets: dict[str, int],
    zone: tzinfo | None,
) -> FastBatch:
    """The comprehension for a typed Struct whose attribute ``attr_of[key]``
    holds ``key``; ``mapped`` maps target index -> (key, latency unit),
    ``extras`` the unmapped ``(key, attribute)`` pairs, ``targets`` the
    indices of ts, level, team, status and latency."""
    t_ts, t_level, t_status, t_latency = (
        targets["ts"],
        targets["level"],
        targets["status"],
        targets["latency"],
    )
    ns: dict[str, Any] = {
        "_LogRecord": LogRecord,
        "_UNSET": msgspec.UNSET,
        "_secs": _SecondCache(),
        "_fracs": _FractionCache(zone),
        "_lv": _LevelCache(_LEVELS),
        "_zip": zip,
    }
    kw: dict[str, str] = {}
    ts_attr = attr_of[mapped[t_ts][0]]
    # In the second of the line before (``p <= x < q``: x starts with its
    # 'YYYY-MM-DDTHH:MM:SS.', two comparisons, no slice) one lookup; else
    # the second's lookup too, which becomes the one to compare with.
    kw["ts_ns"] = (
        f"(b + _fracs[x[19:]]) if p <= (x := k.{ts_attr}) < q else "
        "((b := _secs[(h := x[:19])]) + _fracs[x[19:]] + 0 * len((p := h + '.', q := h + '/')))"
    )
    for ti, name in text_fields.items():
        if ti in mapped:
            kw[name] = f"k.{attr_of[mapped[ti][0]]}"
        elif defaults.get(ti, ""):
            kw[name] = repr(defaults[ti])
    if t_level in mapped:
        kw["level"] = f"_lv[k.{attr_of[mapped[t_level][0]]}]"
    if t_status in mapped:
        kw["status"] = f"k.{attr_of[mapped[t_status][0]]}"
    if t_latency in mapped:
        key, unit = mapped[t_latency]
        # ``x.__round__()`` is what ``round(x)`` calls, without the builtin's
        # own dispatch (~35 ns less per line).
        kw["latency_ns"] = f"None if (y := k.{attr_of[key]}) is None else (y * {unit}).__round__()"
    kw["source"] = "r.source"
    kw["position"] = "r.position"
    # Unmapped keys, in sorted order: a dict display when the line has them
    # all (one test each), else a small function that leaves out the absent.
    ordered = sorted(extras)
    kw["attrs"] = "{" + ", ".join(f"{key!r}: k.{a}" for key, a in ordered) + "}"
    lines = ["def _attrs(k):", "    d = {}"]
    for key, a in ordered:
        lines += [f"    x = k.{a}", "    if x is not _UNSET:", f"        d[{key!r}] = x"]
    lines.append("    return d")
    if ordered:
        present = " and ".join(f"k.{a} is not _UNSET" for _, a in ordered)
        kw["attrs"] = f"{kw['attrs']} if {present} else _attrs(k)"
    order = LogRecord.__struct_fields__
    call = ", ".join(f"{f}={kw[f]}" for f in order if f in kw)
    lines += [
        "def fast_batch(objs, batch):",
        "    p = q = ''",
        "    b = 0",
        f"    return [_LogRecord({call}) for k, r in _zip(objs, batch)]",
    ]
    exec("\n".join(lines), ns)  # noqa: S102 - generated from constants (keys through repr)
    fn: FastBatch = ns["fast_batch"]
    return fn

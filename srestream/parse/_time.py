"""Timestamps to integer nanoseconds UTC.

Forms understood:

* RFC 3339 / ISO 8601 with any offset (``Z``, ``+05:30``, ``-0700``), ``T``
  or space between date and time, ``.`` or ``,`` before the fraction;
* epoch numbers in s, ms, µs or ns (told apart by magnitude), as numbers or
  digit strings;
* syslog without a year (``Dec 31 23:59:59``): the year is the one that puts
  the time closest to a reference time, so a December line read in January
  lands in the previous year and the other way round;
* Apache access logs ``10/Oct/2000:13:55:36 -0700`` and ctime
  ``Sun Dec 04 04:47:44 2005`` (Apache error logs);
* custom :func:`time.strptime` formats (:class:`TimestampParser`).

Hot paths cache the expensive part (the date, or the whole second) so a
line costs a few slices and one dict lookup.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

__all__ = [
    "TimestampParser",
    "apache_to_ns",
    "epoch_to_ns",
    "parse_timestamp",
    "syslog_to_ns",
]

_UTC = UTC
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_POW = [10 ** (9 - i) for i in range(10)]
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    )
}
_CACHE_MAX = 1 << 16
_HALF_YEAR_NS = 182 * 86_400 * 1_000_000_000


def _unit_of(magnitude: float) -> int:
    if magnitude < 1e11:  # seconds (until year 5138)
        return _NS
    if magnitude < 1e14:
        return 1_000_000
    if magnitude < 1e17:
        return 1_000
    return 1


_MIN_NS = -62_135_596_800 * _NS  # 0001-01-01
_MAX_NS = 253_402_300_800 * _NS  # 10000-01-01


def _in_range(ns: int, value: object) -> int:
    if not _MIN_NS <= ns < _MAX_NS:
        raise ValueError(f"timestamp out of range (years 1-9999): {value!r}")
    return ns


def epoch_to_ns(value: float) -> int:
    """An epoch number in s, ms, µs or ns (told apart by magnitude) -> ns."""
    if isinstance(value, float) and math.isnan(value):
        raise ValueError("timestamp is NaN")
    unit = _unit_of(abs(value))
    if isinstance(value, int):
        return _in_range(value * unit, value)
    try:
        whole = int(value)  # the fraction apart, so 1710054000.25 s is exact
    except OverflowError:
        raise ValueError(f"timestamp out of range: {value!r}") from None
    return _in_range(whole * unit + round((value - whole) * unit), value)


def _epoch_text_to_ns(s: str) -> int:
    """Digits with an optional fraction, exactly (no float rounding)."""
    whole, _, frac = s.partition(".")
    unit = _unit_of(int(whole))
    ns = int(whole) * unit
    if frac:
        ns += int(frac) * unit // 10 ** len(frac)
    return _in_range(ns, s)


def _to_ns(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_UTC)
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * _NS + delta.microseconds * 1000


_sec_cache: dict[str, int] = {}


def _second_base(head: str) -> int:
    """'YYYY-MM-DDTHH:MM:SS' -> ns (cached: many lines share a second)."""
    base = _sec_cache.get(head)
    if base is None:
        if not (
            head[4] == "-"
            and head[7] == "-"
            and head[10] in "Tt "
            and head[13] == ":"
            and head[16] == ":"
        ):
            raise ValueError(f"not an RFC 3339 date-time: {head!r}")
        dt = datetime(
            int(head[0:4]),
            int(head[5:7]),
            int(head[8:10]),
            int(head[11:13]),
            int(head[14:16]),
            int(head[17:19]),
            tzinfo=_UTC,
        )
        base = _to_ns(dt)
        if len(_sec_cache) >= _CACHE_MAX:
            _sec_cache.clear()
        _sec_cache[head] = base
    return base


def _offset_seconds(tz: str, s: str) -> int:
    n = len(tz)
    if n == 6 and tz[3] == ":":
        hh, mm = tz[1:3], tz[4:6]
    elif n == 5:
        hh, mm = tz[1:3], tz[3:5]
    elif n == 3:
        hh, mm = tz[1:3], "00"
    else:
        raise ValueError(f"bad UTC offset {tz!r} in timestamp {s!r}")
    if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
        raise ValueError(f"bad UTC offset {tz!r} in timestamp {s!r}")
    off = int(hh) * 3600 + int(mm) * 60
    if tz[0] == "-":
        return -off
    if tz[0] != "+":
        raise ValueError(f"bad UTC offset {tz!r} in timestamp {s!r}")
    return off


def rfc3339_to_ns(s: str, naive_tz: tzinfo | None = None) -> int:
    """RFC 3339 / ISO 8601 text -> ns UTC.  A time without an offset is in
    ``naive_tz`` (UTC by default)."""
    if len(s) >= 19 and s[10] in "T t" and s[13] == ":":
        base = _second_base(s[:19])
        n = len(s)
        if n == 19:
            return base if naive_tz is None else _local(base, naive_tz)
        frac = 0
        i = 19
        if s[19] in ".,":
            j = 20
            while j < n and "0" <= s[j] <= "9":
                j += 1
            digits = s[20:j]
            if not digits:
                raise ValueError(f"empty fraction in timestamp {s!r}")
            frac = int(digits[:9]) * _POW[min(len(digits), 9)]
            i = j
        if i == n:
            return base + frac if naive_tz is None else _local(base, naive_tz) + frac
        tz = s[i:]
        if tz == "Z" or tz == "z":
            return base + frac
        return base - _offset_seconds(tz, s) * _NS + frac
    if len(s) == 10 and s[4] == "-" and s[7] == "-":  # a bare date
        base = _second_base(s + " 00:00:00")
        return base if naive_tz is None else _local(base, naive_tz)
    raise ValueError(f"not an RFC 3339 timestamp: {s!r}")


def _local(utc_ns_as_if_utc: int, tz: tzinfo) -> int:
    """Reinterpret a wall-clock time (given as if it were UTC) in ``tz``."""
    s, rem = divmod(utc_ns_as_if_utc, _NS)
    wall = datetime(1970, 1, 1) + timedelta(seconds=s)
    return _to_ns(wall.replace(tzinfo=tz)) + rem


def syslog_to_ns(text: str, reference_ns: int, naive_tz: tzinfo | None = None) -> int:
    """``'Dec 31 23:59:59'`` (or ``'Jan  1 00:00:01.123'``) -> ns UTC, in the
    year that puts it closest to ``reference_ns`` (handles Dec -> Jan)."""
    parts = text.split()
    if len(parts) != 3:
        raise ValueError(f"not a syslog timestamp (Mmm dd hh:mm:ss): {text!r}")
    mon = _MONTHS.get(parts[0][:3].title())
    if mon is None:
        raise ValueError(f"unknown month {parts[0]!r} in timestamp {text!r}")
    clock = parts[2]
    if len(clock) < 8 or clock[2] != ":" or clock[5] != ":":
        raise ValueError(f"bad time of day {clock!r} in timestamp {text!r}")
    day = int(parts[1])
    ref_year = (datetime(1970, 1, 1) + timedelta(microseconds=reference_ns // 1000)).year
    best = 0
    best_gap = -1
    for year in (ref_year - 1, ref_year, ref_year + 1):
        try:
            iso = f"{year:04d}-{mon:02d}-{day:02d}T{clock}"
            ns = rfc3339_to_ns(iso, naive_tz)
        except ValueError:
            continue  # Feb 29 in a year without it
        gap = abs(ns - reference_ns)
        if best_gap < 0 or gap < best_gap:
            best, best_gap = ns, gap
    if best_gap < 0:
        raise ValueError(f"no year makes a valid date of {text!r}")
    return best


_apache_day_cache: dict[str, int] = {}


def apache_to_ns(s: str) -> int:
    """``'10/Oct/2000:13:55:36 -0700'`` (brackets allowed) -> ns UTC."""
    if s[:1] == "[":
        s = s[1:-1] if s[-1:] == "]" else s[1:]
    if len(s) < 20 or s[2] != "/" or s[6] != "/" or s[11] != ":":
        raise ValueError(f"not an Apache timestamp (dd/Mon/yyyy:hh:mm:ss zone): {s!r}")
    date = s[:11]
    day_ns = _apache_day_cache.get(date)
    if day_ns is None:
        mon = _MONTHS.get(s[3:6])
        if mon is None:
            raise ValueError(f"unknown month {s[3:6]!r} in timestamp {s!r}")
        day_ns = _to_ns(datetime(int(s[7:11]), mon, int(s[0:2]), tzinfo=_UTC))
        if len(_apache_day_cache) >= _CACHE_MAX:
            _apache_day_cache.clear()
        _apache_day_cache[date] = day_ns
    secs = int(s[12:14]) * 3600 + int(s[15:17]) * 60 + int(s[18:20])
    frac = 0
    i = 20
    if len(s) > 20 and s[20] == ".":
        j = 21
        while j < len(s) and s[j].isdigit():
            j += 1
        frac = int(s[21:j][:9]) * _POW[min(j - 21, 9)]
        i = j
    tz = s[i:].strip()
    off = _offset_seconds(tz, s) if tz and tz not in ("Z", "GMT", "UTC") else 0
    return day_ns + (secs - off) * _NS + frac


def _ctime_to_ns(s: str) -> int:
    """``'Sun Dec 04 04:47:44 2005'`` (Apache error log, ctime) -> ns UTC."""
    p = s.split()
    if len(p) != 5 or p[1] not in _MONTHS:
        raise ValueError(f"not a ctime timestamp: {s!r}")
    return rfc3339_to_ns(f"{int(p[4]):04d}-{_MONTHS[p[1]]:02d}-{int(p[2]):02d}T{p[3]}")


def _is_number(s: str) -> bool:
    return s.isdigit() or (s.count(".") == 1 and s.replace(".", "", 1).isdigit())


def parse_timestamp(value: Any, *, reference_ns: int | None = None) -> int:
    """Any supported timestamp form -> ns UTC; ValueError if none fits.

    ``reference_ns`` is the time a syslog timestamp without a year is
    closest to (default: now).

    >>> parse_timestamp("2024-03-10T01:59:59.5-05:00")
    1710053999500000000
    >>> parse_timestamp(1710053999500)
    1710053999500000000
    >>> parse_timestamp("10/Oct/2000:13:55:36 -0700")
    971211336000000000
    """
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")  # noqa: TRY004 - bad data is a ValueError: its line goes to the dead letters
    if isinstance(value, int | float):
        return epoch_to_ns(value)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")  # noqa: TRY004 - bad data is a ValueError: its line goes to the dead letters
    s = value.strip()
    if not s:
        raise ValueError("empty timestamp")
    try:
        c = s[0]
        if "0" <= c <= "9":
            if len(s) > 4 and s[4] == "-":
                return rfc3339_to_ns(s)
            if len(s) > 2 and s[2] == "/":
                return apache_to_ns(s)
            if _is_number(s):
                return _epoch_text_to_ns(s)
        elif c == "[":
            return apache_to_ns(s)
        elif c.isalpha():
            if s[:3] in _MONTHS:
                import time as _time

                ref = reference_ns if reference_ns is not None else _time.time_ns()
                return syslog_to_ns(s, ref)
            return _ctime_to_ns(s)
    except (ValueError, IndexError, OverflowError) as exc:
        raise ValueError(f"not a timestamp: {value!r} ({exc})") from None
    raise ValueError(f"not a timestamp: {value!r}")


class TimestampParser:
    """A configured timestamp parser, built once per stage.

    ``time_format`` is ``"auto"`` (every form of :func:`parse_timestamp`),
    ``"rfc3339"``, ``"epoch_s"``/``"epoch_ms"``/``"epoch_us"``/``"epoch_ns"``,
    ``"syslog"``, ``"apache"``, ``"ctime"``, or a :func:`time.strptime`
    format containing ``%``.  ``time_zone`` (an IANA name) applies to
    timestamps that carry no offset; ``reference_ns`` starts the year
    inference of syslog timestamps and then follows the data (the last
    timestamp parsed), which is why it is part of a stage's snapshot.

    >>> p = TimestampParser("%y%m%d %H%M%S")
    >>> p("081109 203615")
    1226262975000000000
    """

    __slots__ = (
        "_frac_sep",
        "_head",
        "_sec_cache",
        "_text_cache",
        "parse",
        "reference_ns",
        "time_format",
        "zone",
    )

    def __init__(
        self, time_format: str = "auto", *, time_zone: str | None = None, reference_ns: int = 0
    ) -> None:
        self.time_format = time_format
        self.zone: tzinfo | None = None
        if time_zone:
            from zoneinfo import ZoneInfo

            self.zone = ZoneInfo(time_zone)
        self.reference_ns = reference_ns
        self._sec_cache: dict[str, int] = {}
        self._text_cache: dict[str, int] = {}
        self._frac_sep = ""
        self._head = time_format
        fmts = {
            "auto": self._auto,
            "rfc3339": self._rfc3339,
            "epoch_s": lambda v: self._epoch(v, _NS),
            "epoch_ms": lambda v: self._epoch(v, 1_000_000),
            "epoch_us": lambda v: self._epoch(v, 1_000),
            "epoch_ns": lambda v: self._epoch(v, 1),
            "syslog": self._syslog,
            "apache": lambda v: apache_to_ns(str(v)),
            "ctime": lambda v: _ctime_to_ns(str(v)),
        }
        fn = fmts.get(time_format)
        if fn is None:
            if "%" not in time_format:
                raise ValueError(
                    f"unknown time format {time_format!r}: use auto, rfc3339, epoch_s, epoch_ms, "
                    "epoch_us, epoch_ns, syslog, apache, ctime or a strptime format with %"
                )
            if time_format.endswith("%f") and len(time_format) > 2 and time_format[-3] != "%":
                self._frac_sep = time_format[-3]
                self._head = time_format[:-3]
            sample = datetime(2000, 1, 2, 3, 4, 5, tzinfo=_UTC)
            datetime.strptime(sample.strftime(self._head), self._head)
            # (a format that cannot read what it writes is refused now, not on the first line)
            fn = self._strptime
        self.parse: Callable[[Any], int] = fn
        """The parse function itself (one call less than ``self(value)``)."""

    def __call__(self, value: Any) -> int:
        """Parse one timestamp; ValueError names the value if it does not fit."""
        return self.parse(value)

    def _auto(self, value: Any) -> int:
        if value.__class__ is str:
            # Fast path: 'YYYY-MM-DDTHH:MM:SS.fffZ' with its second already seen.
            if len(value) > 21 and value[-1] == "Z" and value[19] == ".":
                base = _sec_cache.get(value[:19])
                if base is not None:
                    frac = value[20:-1]
                    if frac.isdigit() and len(frac) <= 9:
                        fast: int = base + int(frac) * _POW[len(frac)]
                        return fast
            if value[:3] in _MONTHS and value[3:4] == " ":
                return self._syslog(value)
            # Whole-second forms (Apache, ctime, ...) repeat within a second: cache them.
            ns = self._text_cache.get(value)
            if ns is not None:
                return ns
            if self.zone is not None and value[:1].isdigit() and "-" in value[:5]:
                ns = rfc3339_to_ns(value.strip(), self.zone)
            else:
                ns = parse_timestamp(value)
            if len(self._text_cache) >= _CACHE_MAX:
                self._text_cache.clear()
            self._text_cache[value] = ns
            return ns
        return parse_timestamp(value)

    def _rfc3339(self, value: Any) -> int:
        if not isinstance(value, str):
            raise ValueError(f"not an RFC 3339 timestamp: {value!r}")  # noqa: TRY004 - bad data is a ValueError: its line goes to the dead letters
        return rfc3339_to_ns(value, self.zone)

    def _syslog(self, value: Any) -> int:
        text = str(value)
        ref = self.reference_ns or _now()
        ns = self._text_cache.get(text)
        if ns is not None and abs(ns - ref) < _HALF_YEAR_NS:
            self.reference_ns = ns
            return ns
        # Fast path: 'Mmm dd hh:mm:ss' on a day already placed, whose year is
        # still the nearest one (within half a year of the reference).
        ns = None
        if len(text) == 15 and text[9] == ":" and text[12] == ":" and self.zone is None:
            day = self._sec_cache.get(text[:6])
            if (
                day is not None
                and text[7:9].isdigit()
                and text[10:12].isdigit()
                and text[13:].isdigit()
            ):
                ns = day + (int(text[7:9]) * 3600 + int(text[10:12]) * 60 + int(text[13:15])) * _NS
                if abs(ns - ref) >= _HALF_YEAR_NS:
                    ns = None
        if ns is None:
            ns = syslog_to_ns(text, ref, self.zone)
        if len(text) == 15 and self.zone is None:
            if len(self._sec_cache) >= _CACHE_MAX:
                self._sec_cache.clear()
            self._sec_cache[text[:6]] = ns - ns % _DAY_NS
        if len(self._text_cache) >= _CACHE_MAX:
            self._text_cache.clear()
        self._text_cache[text] = ns
        self.reference_ns = ns  # the year follows the data (Dec -> Jan)
        return ns

    @staticmethod
    def _epoch(value: Any, unit_ns: int) -> int:
        if isinstance(value, str):
            value = float(value) if "." in value else int(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"not an epoch number: {value!r}")  # noqa: TRY004 - bad data is a ValueError: its line goes to the dead letters
        try:
            ns = int(value) * unit_ns if isinstance(value, int) else round(value * unit_ns)
        except (OverflowError, ValueError):
            raise ValueError(f"timestamp out of range: {value!r}") from None
        return _in_range(ns, value)

    def _strptime(self, value: Any) -> int:
        if not isinstance(value, str):
            raise ValueError(f"expected text in format {self.time_format!r}, got {value!r}")  # noqa: TRY004 - bad data is a ValueError: its line goes to the dead letters
        frac = 0
        head = value
        if self._frac_sep:
            head, sep, digits = value.rpartition(self._frac_sep)
            if not sep or not digits.isdigit():
                raise ValueError(f"{value!r} does not match format {self.time_format!r}")
            frac = int(digits[:9]) * _POW[min(len(digits), 9)]
        base = self._sec_cache.get(head)
        if base is None:
            try:
                dt = datetime.strptime(head, self._head)
            except ValueError:
                raise ValueError(f"{value!r} does not match format {self.time_format!r}") from None
            if dt.tzinfo is None and self.zone is not None:
                dt = dt.replace(tzinfo=self.zone)
            base = _to_ns(dt)
            if len(self._sec_cache) >= _CACHE_MAX:
                self._sec_cache.clear()
            self._sec_cache[head] = base
        return base + frac


def _now() -> int:
    import time

    return time.time_ns()

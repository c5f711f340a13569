"""Tokenising and masking log messages before template mining.

One generic configuration for every system, no per-source regex list: a
token is split on whitespace, and only the tokens that contain a digit are
looked at further (a constant word almost never has one, a variable almost
always does).  Such a token keeps its shape (``key=``, brackets, trailing
punctuation, the constant segments of a path or URL) and its variable parts
become typed masks:

>>> mask_token("rhost=218.188.2.4")
'rhost=<IP>'
>>> mask_token("(uid=0)")
'(uid=<NUM>)'
>>> mask_token("blk_-6952295868487656571")
'<ID>'
>>> mask_token("3ef1c2a0-8b1e-4a55-9c1e-6d0c2ab4f7e1")
'<UUID>'
>>> mask_token("took=250ms,")
'took=<DURATION>,'
>>> mask_token("/var/log/app-7.log")
'/var/log/<ID>'
>>> mask_token("https://shop.example.com/api/v2/orders/1234?page=3")
'https://shop.example.com/api/v2/orders/<NUM>?page=<NUM>'
>>> mask_token("mice.c(1012)]:")
'mice.c(<NUM>)]:'

Masked tokens start with ``<`` and end with ``>``: the miner treats them as
variables when it routes a line through its prefix tree.  A multi-line
message (a stack trace) is one record: its first line is tokenised in full,
the following lines that are not stack frames (exception headers,
``Caused by:``) are appended after a ``⏎`` token, and frames are dropped,
so the same exception thrown from different depths is one template.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any, Final

__all__ = ["NEWLINE_TOKEN", "Tokenizer", "is_variable", "mask_token"]

NEWLINE_TOKEN: Final = "⏎"
"""Stands for the line breaks of a multi-line message in its token list."""

_HAS_DIGIT = re.compile(r"\d").search

# Typed masks, tried in order on the core of a token (its punctuation
# wrapper removed).  Each pattern must match the whole core.
_TYPED: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (
        "<UUID>",
        re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    ),
    ("<IP>", re.compile(r"/?(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?")),
    (
        "<TIME>",
        re.compile(
            r"(?:\d{4}-\d{2}-\d{2}(?:[T_]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[-+]\d{2}:?\d{2})?)?"
            r"|\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)"
        ),
    ),
    ("<IP>", re.compile(r"\[?[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}\]?(?::\d{1,5})?")),
    ("<NUM>", re.compile(r"[-+]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?%?")),
    ("<HEX>", re.compile(r"(?:0[xX])?[0-9a-fA-F]{6,}|0[xX][0-9a-fA-F]+")),
    (
        "<DURATION>",
        re.compile(r"[-+]?\d+(?:\.\d+)?(?:ns|us|µs|ms|s|sec|secs|m|min|mins|h|hr|hrs|d)"),
    ),
    (
        "<SIZE>",
        re.compile(r"\d+(?:\.\d+)?\s?(?:[KkMGTP]i?[Bb]?|[Bb]|bytes)"),
    ),
    ("<ID>", re.compile(r"[\w.\-#@$]*\d[\w.\-#@$]*")),
)

_OPEN: Final = "([{<\"'"
_CLOSE: Final = ")]}>\"',;:.!?"
# A digit-bearing run inside a token that matched no typed mask.
_SEGMENT = re.compile(r"[\w.\-+]*\d[\w.\-+]*")
# Masks joined by separators (``<NUM>:<NUM>:<NUM>``, ``<NUM>##<NUM>``) are one variable.
_RUN = re.compile(r"<[A-Z*]+>(?:[^\w\s<>]{1,2}<[A-Z*]+>)+")


# All typed masks as one alternation: one regex call per token, first match wins.
_TYPED_ANY = re.compile("|".join(f"(?P<m{i}>{p.pattern})" for i, (_, p) in enumerate(_TYPED)))
_TYPED_NAMES: Final = {f"m{i}": name for i, (name, _) in enumerate(_TYPED)}


def _typed(core: str) -> str | None:
    if core.isdigit():
        return "<NUM>"
    m = _TYPED_ANY.fullmatch(core)
    return _TYPED_NAMES[m.lastgroup] if m is not None and m.lastgroup else None


def _mask_value(text: str) -> str:
    """Mask a token (or a value after ``key=``) that contains a digit."""
    if "=" in text:
        key, _, value = text.partition("=")
        if not _HAS_DIGIT(key):
            return key + "=" + (_mask_value(value) if _HAS_DIGIT(value) else value)
    start = 0
    end = len(text)
    while start < end and text[start] in _OPEN:
        start += 1
    while end > start and text[end - 1] in _CLOSE:
        end -= 1
    core = text[start:end]
    name = _typed(core) if core else None
    if name is None:
        if "/" in core:
            name = "/".join([_mask_path_part(p) for p in core.split("/")])
        else:
            name = _RUN.sub("<*>", _SEGMENT.sub(_segment_mask, core))
    return text[:start] + name + text[end:]


_VERSION = re.compile(r"[vV]\d+(?:\.\d+)*").fullmatch
# Where a version may be kept with its digits, the shape caches step aside.
_VERSIONISH = re.compile(rb"[vV]\d").search


def _mask_path_part(part: str) -> str:
    """One segment of a path or URL: API versions (``v1``) and segments
    without digits stay, so ``/v1/users/42`` is the route ``/v1/users/<NUM>``."""
    if not _HAS_DIGIT(part) or _VERSION(part):
        return part
    return _typed(part) or _RUN.sub("<*>", _SEGMENT.sub(_segment_mask, part))


def _segment_mask(m: re.Match[str]) -> str:
    return _typed(m.group()) or "<ID>"


def mask_token(token: str) -> str:
    """The masked form of one whitespace-free token (itself when it has no digit)."""
    return _mask_value(token) if _HAS_DIGIT(token) else token


def is_variable(token: str) -> bool:
    """Whether a (masked or template) token is a variable: ``<*>``, ``<NUM>``..."""
    return token[:1] == "<" and token[-1:] == ">" and len(token) > 2


_FRAME_PREFIXES: Final = ("at ", 'File "', "...", "Traceback (", "\tat ", "goroutine ")


# Digits 1-9 to 1: masking looks at where digits are, never at which digits
# they are, so ``blk_-6952`` and ``blk_-1234`` share one cache entry.  A 0
# stays a 0: the hex mask's ``0x`` prefix is the one literal digit it reads.
# (On UTF-8 bytes: ``bytes.translate`` is an order of magnitude faster than
# ``str.translate``, and no byte of a multi-byte character is an ASCII digit.)
_ZERO: Final = bytes.maketrans(b"23456789", b"11111111")
_MAX_CACHED_LINE: Final = 512


class Tokenizer:
    """Splits and masks messages, caching the masked form of each token.

    Two bounded caches (cleared when full), both transparent since masking
    is a pure function of the token: one by token, and one by the token's
    *shape* (digits turned to 0) for tokens with digits, so that variables,
    which are new strings on every line, are still masked by a dict lookup.
    A cold cache changes nothing but speed.
    """

    __slots__ = ("_cache", "_lines", "_shapes", "max_cache", "max_line_cache", "max_tokens")

    def __init__(
        self, *, max_cache: int = 100_000, max_line_cache: int = 32_768, max_tokens: int = 128
    ) -> None:
        self._cache: dict[str, str] = {}
        self._shapes: dict[bytes, str] = {}
        self._lines: dict[bytes, tuple[str, ...]] = {}
        self.max_cache = max_cache
        self.max_line_cache = max_line_cache
        self.max_tokens = max_tokens

    def cache_sizes(self) -> tuple[int, int]:
        """(tokens, lines) held by the caches: both bounded."""
        return len(self._cache) + len(self._shapes), len(self._lines)

    def tokens(self, message: str) -> tuple[str, ...]:
        """The masked tokens of ``message`` (multi-line messages folded).

        Lines that differ only in their digits (most lines of a template)
        share one entry of a bounded cache keyed by the line's shape.
        """
        shape = message.encode("utf-8", "surrogatepass").translate(_ZERO)
        lines = self._lines
        hit = lines.get(shape)
        if hit is not None:
            return hit
        result = self._tokens(message)
        # Long lines are left out: the line cache stays small in bytes too.
        if len(shape) <= _MAX_CACHED_LINE and _VERSIONISH(shape) is None:
            if len(lines) >= self.max_line_cache:
                lines.clear()
            lines[shape] = result
        return result

    def _mask_new(self, token: str) -> str:
        """Mask a token the first cache does not know."""
        raw = token.encode("utf-8", "surrogatepass")
        shape = raw.translate(_ZERO)
        if shape == raw:  # no digit but 0 and 1: keep it by itself
            if len(self._cache) > self.max_cache:
                self._cache.clear()
            m = self._cache[token] = mask_token(token)
            return m
        shapes = self._shapes
        m = shapes.get(shape)  # type: ignore[assignment]
        if m is None:
            m = mask_token(token)
            # A path's API version (``/v1/``) keeps its digits: not shape-only.
            if _VERSIONISH(shape) is None:
                if len(shapes) > self.max_cache:
                    shapes.clear()
                shapes[shape] = m
        return m

    def _tokens(self, message: str) -> tuple[str, ...]:
        if "\n" in message:
            return self._multiline(message)
        cache = self._cache
        get = cache.get
        parts = message.split()
        out: list[Any] = [get(t) for t in parts]
        if None in out:
            mask_new = self._mask_new
            for i, t in enumerate(parts):
                if out[i] is None:
                    out[i] = mask_new(t)
        if len(out) > self.max_tokens:
            del out[self.max_tokens :]
        if not _CALENDAR.isdisjoint(out):
            out = _join_dates(out)
        if "<NUM>" in out:
            out = _join_units(out)
        if len(out) > 2 and len(set(out)) < len(out):
            # A list of like values (``blk_1 blk_2 blk_3``) is one variable.
            out[1:] = [t for p, t in pairwise(out) if t != p or t[0] != "<" or t[-1] != ">"]
        return tuple(out)

    def _multiline(self, message: str) -> tuple[str, ...]:
        lines = message.splitlines()
        head = self.tokens(lines[0]) if lines else ()
        out = list(head)
        skip_source = False
        for line in lines[1:]:
            stripped = line.strip()
            if skip_source and line[:1] in " \t":
                # The source line Python prints under each ``File "..."`` frame.
                skip_source = False
                continue
            skip_source = stripped.startswith('File "')
            if not stripped or stripped.startswith(_FRAME_PREFIXES) or _is_frame(stripped):
                continue
            out.append(NEWLINE_TOKEN)
            out.extend(self.tokens(stripped))
            if len(out) >= self.max_tokens:
                break
        return tuple(out[: self.max_tokens])


_UNITS: Final = {
    **dict.fromkeys(("B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB", "bytes"), "<SIZE>"),
    **dict.fromkeys(
        (
            "ns",
            "us",
            "µs",
            "ms",
            "s",
            "sec",
            "secs",
            "seconds",
            "min",
            "mins",
            "minutes",
            "h",
            "hours",
        ),
        "<DURATION>",
    ),
}


_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_LONG: Final = (
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
    "January", "February", "March", "April", "June", "July", "August", "September",
    "October", "November", "December", "Sept",
)  # fmt: skip
_CALENDAR: Final = frozenset(
    w + suffix for w in (*_DAYS, *_MONTHS, *_LONG) for suffix in ("", ",", ".")
)
_DATE_PARTS: Final = _CALENDAR | {m + suffix for m in ("<NUM>", "<TIME>") for suffix in ("", ",")}


def _join_dates(tokens: list[Any]) -> list[Any]:
    """``Sun Jul 3 12:34:56 2005`` is one time: a run of day and month names,
    numbers and times with at least one name and one number is one ``<TIME>``
    (names of days and months are variables of a date, not constants)."""
    out: list[Any] = []
    i = 0
    n = len(tokens)
    while i < n:
        j = i
        names = masks = 0
        while j < n and tokens[j] in _DATE_PARTS:
            if tokens[j] in _CALENDAR:
                names += 1
            else:
                masks += 1
            j += 1
        if names and masks:
            out.append("<TIME>," if tokens[j - 1][-1] == "," else "<TIME>")
            i = j
        elif j > i:
            out.extend(tokens[i:j])
            i = j
        else:
            out.append(tokens[i])
            i += 1
    return out


def _join_units(tokens: list[Any]) -> list[Any]:
    """``<NUM> KB,`` is one size and ``<NUM> ms`` one duration: a number and
    its unit are a single variable (``1024.0 B`` and ``3.4 KB`` alike)."""
    last = len(tokens) - 1
    joined: list[tuple[int, str]] = []
    i = tokens.index("<NUM>")
    while True:
        step = 1
        if i < last:
            unit = tokens[i + 1]
            core = unit.rstrip(_CLOSE)
            kind = _UNITS.get(core)
            if kind is not None:
                joined.append((i, kind + unit[len(core) :]))
                step = 2
        try:
            i = tokens.index("<NUM>", i + step)
        except ValueError:
            break
    for i, masked in reversed(joined):
        tokens[i : i + 2] = [masked]
    return tokens


def _is_frame(line: str) -> bool:
    """A stack frame line of the usual runtimes (Java ``at``, Python
    ``File``, Go ``pkg.fn(...)`` + ``/path.go:12``, ``... 12 more``)."""
    return (
        line.endswith(" more")
        and line.startswith("...")
        or (line.startswith("/") and ".go:" in line)
    )

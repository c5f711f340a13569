"""Cutting bytes read from a file into :class:`RawLine` records.

Shared by the replay and tail sources.  The hot path: a chunk that is pure
ASCII (the common case for logs) is decoded once and split as a string, so
byte offsets are character counts; anything else is split as bytes and
decoded line by line (invalid UTF-8 is replaced, never fatal).  A trailing
``\\r`` is dropped from each line.
"""

from __future__ import annotations

from itertools import accumulate

from .._records import RawLine

__all__ = ["cut_lines", "last_line"]


def cut_lines(
    name: str, data: bytes, line_no: int, offset: int, out: list[RawLine]
) -> tuple[int, int, bytes]:
    """Append one RawLine per complete (newline-terminated) line of ``data``
    to ``out``, numbering from ``line_no + 1`` and counting byte offsets
    from ``offset``.  Return ``(line_no, offset, rest)``: the last line
    number and the byte offset just past the last complete line, and the
    incomplete tail that the caller holds until more data arrives.

    >>> out = []
    >>> cut_lines("app.log", b"one\\r\\ntwo\\npart", 0, 0, out)
    (2, 9, b'part')
    >>> [(r.position, r.offset, r.text) for r in out]
    [(1, 5, 'one'), (2, 9, 'two')]
    """
    end = data.rfind(b"\n")
    if end < 0:
        return line_no, offset, data
    body = data[:end]
    rest = data[end + 1 :]
    has_cr = b"\r" in body
    if body.isascii():
        texts = body.decode("ascii").split("\n")
        offsets = list(accumulate([len(t) + 1 for t in texts], initial=offset))
    else:
        raw = body.split(b"\n")
        offsets = list(accumulate([len(b) + 1 for b in raw], initial=offset))
        texts = [b.decode("utf-8", "replace") for b in raw]
    if has_cr:
        texts = [t[:-1] if t[-1:] == "\r" else t for t in texts]
    first = line_no + 1
    out.extend(
        [
            RawLine(source=name, position=p, offset=o, text=t)
            for p, o, t in zip(range(first, first + len(texts)), offsets[1:], texts)
        ]
    )
    return line_no + len(texts), offsets[-1], rest


def last_line(name: str, data: bytes, line_no: int, offset: int) -> RawLine:
    """The final line of a file that does not end with a newline."""
    if data[-1:] == b"\r":
        text = data[:-1].decode("utf-8", "replace")
    else:
        text = data.decode("utf-8", "replace")
    return RawLine(source=name, position=line_no + 1, offset=offset + len(data), text=text)

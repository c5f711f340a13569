from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from srestream._records import RawLine


def _raws(lines: Sequence[str], source: str = "app.log") -> list[RawLine]:
    out = []
    offset = 0
    for i, text in enumerate(lines, 1):
        offset += len(text.encode()) + 1
        out.append(RawLine(source=source, position=i, offset=offset, text=text))
    return out


@pytest.fixture
def raws() -> Callable[..., list[RawLine]]:
    """Lines as a source yields them (1-based positions, byte offsets past each)."""
    return _raws

"""logfmt: plain pairs, quoting, escapes, bare keys, and bad lines."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srestream import Level
from srestream._component import Outputs
from srestream.parse import parse_logfmt, parse_logfmt_line
from srestream.testing import run_stage


@pytest.mark.parametrize(
    "line, fields",
    [
        ("a=1 b=two", {"a": "1", "b": "two"}),
        ("  a=1\tb=2  ", {"a": "1", "b": "2"}),
        ('msg="hello world" x=1', {"msg": "hello world", "x": "1"}),
        (r'msg="say \"hi\"" x=1', {"msg": 'say "hi"', "x": "1"}),
        (r'path="C:\\tmp\\x"', {"path": "C:\\tmp\\x"}),
        (r'msg="line1\nline2\ttab \u00e9"', {"msg": "line1\nline2\ttab é"}),
        ('empty= quoted="" flag', {"empty": "", "quoted": "", "flag": True}),
        ("url=http://x/?a=b&c=d", {"url": "http://x/?a=b&c=d"}),
        ('msg="a=b c=d"', {"msg": "a=b c=d"}),
        ("k=v k=w", {"k": "w"}),
        ("", {}),
    ],
)
def test_pairs(line: str, fields: dict[str, Any]) -> None:
    assert parse_logfmt_line(line) == fields


@pytest.mark.parametrize(
    "line, words",
    [
        ('msg="unterminated', "unterminated quoted value of key 'msg'"),
        ('msg="a"b', "text right after the quoted value of key 'msg'"),
        ("=v", "empty key"),
        ('a=x"y', "stray quote in value of key 'a'"),
        (r'msg="bad \q escape"', "bad escape in value of key 'msg'"),
    ],
)
def test_malformed_lines_say_where(line: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        parse_logfmt_line(line)


async def test_stage_normalizes_and_dead_letters(raws: Any) -> None:
    lines = [
        'ts=2024-03-10T07:00:00.250Z level=warn service=checkout msg="slow \\"db\\"" latency_ms=12.5 status=200 request_id=r1 user=bob',
        'ts=2024-03-10T07:00:01Z level=error msg="oops',
        "level=info msg=no-time",
        "ts=2024-03-10T07:00:02Z status=abc",
        "ts=2024-03-10T07:00:03Z latency_ms=fast",
    ]
    outputs = Outputs("parse")
    out = await run_stage(parse_logfmt, raws(lines), outputs=outputs)
    (rec,) = out
    assert rec.service == "checkout" and rec.level == Level.WARN
    assert rec.message == 'slow "db"' and rec.latency_ns == 12_500_000 and rec.status == 200
    assert rec.request_id == "r1" and rec.attrs == {"user": "bob"}
    assert rec.position == 1 and rec.source == "app.log"
    dead = {d.position: d.reason for d in outputs.take()["deadletter"]}
    assert "unterminated quoted value of key 'msg'" in dead[2]
    assert "no timestamp field" in dead[3]
    assert "field 'status'" in dead[4]
    assert "field 'latency_ms'" in dead[5]


_key = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.-0123456789", min_size=1, max_size=8)
_value = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
    max_size=12,
)


def _render(value: str) -> str:
    if value and not any(c in ' "=\\' or c.isspace() for c in value):
        return value
    return msgspec.json.encode(value).decode()  # quoted, with escapes


@given(st.dictionaries(_key, _value, max_size=8))
@settings(max_examples=300, deadline=None)
def test_rendered_pairs_parse_back(fields: dict[str, str]) -> None:
    line = " ".join(f"{k}={_render(v)}" for k, v in fields.items())
    assert parse_logfmt_line(line) == fields


@given(st.text(alphabet='ab= "\\\t', max_size=20))
@settings(max_examples=500, deadline=None)
def test_fast_path_agrees_with_the_scanner(line: str) -> None:
    from srestream.parse._logfmt import _scan

    try:
        expected: object = _scan(line)
    except ValueError:
        expected = ValueError
    try:
        got: object = parse_logfmt_line(line)
    except ValueError:
        got = ValueError
    assert got == expected

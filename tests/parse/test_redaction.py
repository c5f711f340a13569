"""PII redaction happens inside the parse stage: records, attrs and dead
letters leave it redacted."""

from __future__ import annotations

import json
from typing import Any

from srestream._component import Outputs
from srestream.parse import (
    Normalizer,
    Redaction,
    RedactionRule,
    Redactor,
    parse_json,
    parse_logfmt,
)
from srestream.testing import run_stage

ALL = Redaction(
    rules=[
        RedactionRule(
            name="card", pattern=r"\b(?:\d{4}-){3}\d{4}\b", contains="-", replacement="[CARD]"
        )
    ]
)


def test_each_kind_is_redacted() -> None:
    r = Redactor(ALL)
    assert r.text("mail bob.smith+x@example.co.uk now") == "mail [EMAIL] now"
    assert r.text("from 10.0.12.255:8080 ok") == "from [IPV4]:8080 ok"
    assert (
        r.text("v6 2001:db8::8a2e:370:7334 and fe80::1 and ::1")
        == "v6 [IPV6] and [IPV6] and [IPV6]"
    )
    assert (
        r.text("Authorization: Bearer eyJhbGciOi.J9-x_y~z+/= end")
        == "Authorization: Bearer [TOKEN] end"
    )
    assert r.text("card 4111-1111-1111-1111 paid") == "card [CARD] paid"


def test_what_is_not_pii_stays() -> None:
    r = Redactor(ALL)
    for text in [
        "at 12:30:45 version 1.2.3",
        "ratio 0.5.1",
        "999.1.1.1 is no address",
        "user@localhost",
        "mac 00:1a:2b:3c:4d:5e",
        "build 2024-03-10",
    ]:
        assert r.text(text) == text


def test_kinds_can_be_turned_off() -> None:
    r = Redactor(Redaction(emails=False, ipv4=True, ipv6=False, bearer_tokens=False))
    assert r.text("a@b.io 1.2.3.4") == "a@b.io [IPV4]"
    assert not Redactor(
        Redaction(emails=False, ipv4=False, ipv6=False, bearer_tokens=False)
    ).enabled


async def test_records_attrs_and_dead_letters_leave_redacted(raws: Any) -> None:
    norm = Normalizer()
    norm.redactor = Redactor(ALL)
    lines = [
        json.dumps(
            {
                "ts": "2024-03-10T07:00:00Z",
                "msg": "login bob@example.com from 10.1.2.3",
                "client": {"ip": "192.168.0.7", "emails": ["x@y.org"]},
                "auth": "Bearer abc123",
            }
        ),
        '{"ts": "2024-03-10T07:00:01Z", "msg": "alice@example.com", broken',
        json.dumps({"ts": "2024-03-10T07:00:02Z", "status": "mail eve@example.com"}),
    ]
    outputs = Outputs("parse")
    out = await run_stage(parse_json, raws(lines), outputs=outputs, normalizer=norm)
    (rec,) = out
    assert rec.message == "login [EMAIL] from [IPV4]"
    assert rec.attrs == {
        "client": {"ip": "[IPV4]", "emails": ["[EMAIL]"]},
        "auth": "Bearer [TOKEN]",
    }
    dead = outputs.take()["deadletter"]
    assert [d.position for d in dead] == [2, 3]
    for d in dead:
        assert "@example.com" not in d.raw and "@example.com" not in d.reason
    assert "[EMAIL]" in dead[0].raw


async def test_redaction_in_logfmt_stage(raws: Any) -> None:
    norm = Normalizer()
    norm.redactor = Redactor(Redaction())
    out = await run_stage(
        parse_logfmt, raws(['ts=1710054000 msg="from 10.9.8.7" user=a@b.com']), normalizer=norm
    )
    assert out[0].message == "from [IPV4]" and out[0].attrs == {"user": "[EMAIL]"}

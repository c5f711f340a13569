"""syslog: RFC 5424 (with structured data) and RFC 3164, year inference
across New Year, and bad lines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from srestream import Level
from srestream._component import Outputs
from srestream.parse import Normalizer, TimestampParser, parse_syslog, parse_syslog_line
from srestream.parse._time import rfc3339_to_ns
from srestream.testing import run_stage


def test_rfc5424_examples_from_the_rfc() -> None:
    # RFC 5424 section 6.5, examples 1 and 3.
    f = parse_syslog_line(
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
        "\ufeff'su root' failed for lonvick on /dev/pts/8"
    )
    assert f == {
        "facility": 4,
        "severity": 2,
        "level": Level.CRITICAL,
        "timestamp": "2003-10-11T22:14:15.003Z",
        "hostname": "mymachine.example.com",
        "app_name": "su",
        "msgid": "ID47",
        "message": "'su root' failed for lonvick on /dev/pts/8",
    }
    f = parse_syslog_line(
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
        '[examplePriority@32473 class="high"] An application event'
    )
    assert f["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
        "examplePriority@32473": {"class": "high"},
    }
    assert f["message"] == "An application event" and f["level"] == Level.NOTICE


def test_rfc5424_sd_escapes_and_no_message() -> None:
    f = parse_syslog_line(r'<13>1 2024-01-01T00:00:00Z h app 12 - [x@1 q="a \"b\" c\] \\d"]')
    assert f["structured_data"] == {"x@1": {"q": 'a "b" c] \\d'}}
    assert f["message"] == "" and f["procid"] == "12"


def test_rfc3164_with_and_without_pri() -> None:
    f = parse_syslog_line("<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed")
    assert (f["timestamp"], f["hostname"], f["app_name"], f["procid"]) == (
        "Oct 11 22:14:15",
        "mymachine",
        "su",
        "230",
    )
    f = parse_syslog_line("Jun  9 06:06:20 combo kernel: Linux version 2.6.5")
    assert f == {
        "timestamp": "Jun  9 06:06:20",
        "hostname": "combo",
        "app_name": "kernel",
        "message": "Linux version 2.6.5",
    }
    f = parse_syslog_line("Jun  9 06:06:20 combo no tag here: just text")
    assert "app_name" not in f and f["message"] == "no tag here: just text"


@pytest.mark.parametrize(
    "line, words",
    [
        ("<999>1 2024-01-01T00:00:00Z h a - - - x", "bad PRI"),
        ("<13>1 2024-01-01T00:00:00Z h a - -", "structured data"),
        ('<13>1 2024-01-01T00:00:00Z h a - - [x@1 q="open', "unterminated value of x@1.q"),
        ("<13>1 2024-01-01T00:00:00Z h a - - {json}", "expected '-' or '['"),
        ("hello world", "timestamp"),
    ],
)
def test_bad_lines_say_what(line: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[")):
        parse_syslog_line(line)


async def test_stage_infers_year_across_new_year(raws: Any) -> None:
    ref = rfc3339_to_ns("2024-12-31T12:00:00Z")
    norm = Normalizer(times=TimestampParser("auto", reference_ns=ref))
    lines = [
        "<14>Dec 31 23:59:59 web1 nginx[7]: last of the year",
        "<11>Jan  1 00:00:01 web1 nginx[7]: first of the year",
        "<13>1 2025-01-01T00:00:02+01:00 web1 api - - - with offset",
        "<13>1 - web1 api - - - no time",
    ]
    outputs = Outputs("parse")
    out = await run_stage(parse_syslog, raws(lines), normalizer=norm, outputs=outputs)
    utc = UTC
    assert [r.ts_ns for r in out] == [
        rfc3339_to_ns(datetime(2024, 12, 31, 23, 59, 59, tzinfo=utc).isoformat()),
        rfc3339_to_ns(datetime(2025, 1, 1, 0, 0, 1, tzinfo=utc).isoformat()),
        rfc3339_to_ns(datetime(2024, 12, 31, 23, 0, 2, tzinfo=utc).isoformat()),
    ]
    assert [r.service for r in out] == ["nginx", "nginx", "api"]
    assert [r.level for r in out] == [Level.INFO, Level.ERROR, Level.NOTICE]
    assert out[0].attrs == {"facility": 1, "severity": 6, "hostname": "web1", "procid": "7"}
    (dead,) = outputs.take()["deadletter"]
    assert dead.position == 4 and "no timestamp field" in dead.reason


async def test_reference_time_is_in_the_snapshot(raws: Any) -> None:
    from srestream._component import BuildContext
    from srestream.parse import ParseSyslogStage

    cfg = ParseSyslogStage(inputs=["x"], reference_time="2024-12-31T00:00:00Z")
    logic = cfg.build(BuildContext(component_id="p", outputs=Outputs("p")))
    out = await run_stage(logic, raws(["<14>Dec 31 23:59:59 h a: x"]))
    state = logic.snapshot()
    again = cfg.build(BuildContext(component_id="p", outputs=Outputs("p")))
    again.restore(state)
    out2 = await run_stage(again, raws(["<14>Jan  1 00:00:05 h a: y"]))
    assert out2[0].ts_ns - out[0].ts_ns == 6 * 10**9

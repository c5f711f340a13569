"""Apache/Nginx access logs: common, combined, nginx extras, bad lines."""

from __future__ import annotations

from typing import Any

import pytest

from srestream import Level
from srestream._component import BuildContext, Outputs
from srestream.parse import ParseAccessLogStage, parse_access_line, parse_access_log
from srestream.parse._time import rfc3339_to_ns
from srestream.testing import run_stage

COMMON = '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
COMBINED = COMMON + ' "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"'


def test_common_and_combined() -> None:
    f = parse_access_line(COMMON)
    assert f == {
        "client_ip": "127.0.0.1",
        "user": "frank",
        "timestamp": "10/Oct/2000:13:55:36 -0700",
        "request": "GET /apache_pb.gif HTTP/1.0",
        "message": "GET /apache_pb.gif HTTP/1.0",
        "method": "GET",
        "path": "/apache_pb.gif",
        "protocol": "HTTP/1.0",
        "status": 200,
        "level": Level.INFO,
        "bytes": 2326,
    }
    f = parse_access_line(COMBINED)
    assert f["referer"] == "http://www.example.com/start.html"
    assert f["user_agent"] == "Mozilla/4.08 [en] (Win98; I ;Nav)"


def test_nginx_combined_with_escaped_quotes_dashes_and_extras() -> None:
    line = (
        '10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /q?x=\\"1\\" HTTP/1.1" 503 - "-" '
        '"curl/8.0" 0.250 "upstream-a"'
    )
    f = parse_access_line(line, ("request_time_s", "upstream"))
    assert f["path"] == '/q?x="1"' and f["status"] == 503 and "bytes" not in f
    assert "referer" not in f and f["user_agent"] == "curl/8.0"
    assert f["request_time_s"] == "0.250" and f["upstream"] == "upstream-a"
    assert f["level"] == Level.ERROR and "user" not in f


@pytest.mark.parametrize(
    "line, words",
    [
        ('127.0.0.1 - - 10/Oct/2000 "GET / HTTP/1.0" 200 1', "timestamp"),
        ("127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] GET / 200 1", "request"),
        ('127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 2000 1', "status"),
        ('127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 lots', "bytes"),
        ('127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1 "ref', "referer"),
    ],
)
def test_bad_lines_name_the_field(line: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_access_line(line)


async def test_stage_from_config_with_latency_and_levels(raws: Any) -> None:
    cfg = ParseAccessLogStage(inputs=["x"], extra_fields=["request_time_s"], default_service="edge")
    outputs = Outputs("access")
    logic = cfg.build(BuildContext(component_id="access", outputs=outputs))
    lines = [
        COMBINED + " 0.012",
        COMMON.replace(" 200 ", " 404 "),
        COMMON.replace("10/Oct/2000", "10/Foo/2000"),
    ]
    out = await run_stage(logic, raws(lines))
    assert [r.status for r in out] == [200, 404]
    assert [r.level for r in out] == [Level.INFO, Level.WARN]
    assert out[0].latency_ns == 12_000_000 and out[1].latency_ns is None
    assert out[0].ts_ns == rfc3339_to_ns("2000-10-10T20:55:36Z")
    assert out[0].service == "edge" and out[0].attrs["client_ip"] == "127.0.0.1"
    (dead,) = outputs.take()["deadletter"]
    assert dead.position == 3 and "field 'timestamp'" in dead.reason and "Foo" in dead.reason


async def test_function_stage(raws: Any) -> None:
    out = await run_stage(parse_access_log, raws([COMMON]))
    assert out[0].message == "GET /apache_pb.gif HTTP/1.0"


@pytest.mark.parametrize(
    "line",
    [
        COMMON,
        COMBINED,
        COMBINED + " 0.5 x",
        COMMON.replace("frank", "-").replace(" 2326", " -"),
        '::1 - - [10/Oct/2000:13:55:36 +0000] "-" 400 0 "-" "-"',
        '1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET /a b c HTTP/1.1" 200 5 "-" "x"',
        '1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-"',
        '1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1"  200 5',
        '1.2.3.4 - - [10/Oct/2000:13:55:36 +0000]  "GET / HTTP/1.1" 200 5',
        '1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "r" "a" "extra"',
    ],
)
def test_quick_split_and_careful_parser_agree(line: str) -> None:
    from srestream.parse._access import _careful

    def outcome(fn: Any) -> Any:
        try:
            return fn(line)
        except ValueError as exc:
            return ("error", str(exc).split(":")[0])

    assert outcome(parse_access_line) == outcome(_careful)

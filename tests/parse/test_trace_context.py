"""Trace context from W3C traceparent, B3 single and multi headers, plain
fields and nested header objects; malformed headers are dead letters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from srestream._component import Outputs
from srestream._records import RawLine
from srestream.parse import parse_b3, parse_json, parse_logfmt, parse_traceparent
from srestream.testing import run_stage

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TS = "2024-03-10T07:00:00Z"


async def one(line: dict[str, object]) -> tuple[list[Any], dict[str, list[Any]]]:
    outputs = Outputs("parse")
    raw = RawLine(source="app.log", position=1, offset=0, text=json.dumps(line))
    out = await run_stage(parse_json, [raw], outputs=outputs)
    return out, outputs.take()


@pytest.mark.parametrize(
    "fields",
    [
        {"traceparent": f"00-{TRACE}-{SPAN}-01"},
        {"traceparent": f"00-{TRACE.upper()}-{SPAN.upper()}-00"},
        {"b3": f"{TRACE}-{SPAN}-1"},
        {"b3": f"{TRACE}-{SPAN}"},
        {"X-B3-TraceId": TRACE, "X-B3-SpanId": SPAN, "X-B3-Sampled": "1"},
        {"x-b3-traceid": TRACE, "x-b3-spanid": SPAN},
        {"trace_id": TRACE, "span_id": SPAN},
        {"traceId": TRACE, "spanId": SPAN},
        {"headers": {"Traceparent": f"00-{TRACE}-{SPAN}-01", "X-Request-Id": "req-9"}},
        {"headers": {"X-B3-TraceId": TRACE, "X-B3-SpanId": SPAN}},
        {"headers": {"b3": [f"{TRACE}-{SPAN}-d"]}},
    ],
    ids=lambda f: ",".join(f),
)
async def test_every_form_gives_the_same_ids(fields: dict[str, object]) -> None:
    out, side = await one({"ts": TS, "msg": "hi", **fields})
    assert side == {}
    (rec,) = out
    assert (rec.trace_id.lower(), rec.span_id.lower()) == (TRACE, SPAN)


async def test_b3_parent_and_64_bit_trace_ids() -> None:
    out, _ = await one({"ts": TS, "b3": f"{TRACE[16:]}-{SPAN}-1-05e3ac9a4f6e3b90"})
    (rec,) = out
    assert rec.trace_id == "0" * 16 + TRACE[16:]  # padded like the OpenTelemetry propagator
    assert rec.attrs["parent_span_id"] == "05e3ac9a4f6e3b90"
    out, _ = await one(
        {
            "ts": TS,
            "X-B3-TraceId": TRACE,
            "X-B3-SpanId": SPAN,
            "X-B3-ParentSpanId": "05e3ac9a4f6e3b90",
        }
    )
    assert out[0].attrs["parent_span_id"] == "05e3ac9a4f6e3b90"


async def test_request_id_from_nested_headers() -> None:
    out, _ = await one({"ts": TS, "headers": {"X-Request-Id": "req-42"}})
    assert out[0].request_id == "req-42"
    assert out[0].attrs["headers"] == {"X-Request-Id": "req-42"}


async def test_b3_sampling_only_header_carries_no_ids() -> None:
    out, side = await one({"ts": TS, "b3": "0"})
    assert side == {} and out[0].trace_id == ""


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"traceparent": f"00-{TRACE}-{SPAN}"}, "traceparent"),
        ({"traceparent": f"00-{'0' * 32}-{SPAN}-01"}, "traceparent"),
        ({"traceparent": f"00-{TRACE[:-1]}x-{SPAN}-01"}, "traceparent"),
        ({"b3": f"{TRACE}-{SPAN}-yes"}, "b3"),
        ({"b3": f"{TRACE}"}, "b3"),
        ({"X-B3-TraceId": TRACE}, "X-B3-TraceId"),
        ({"X-B3-TraceId": "xyz", "X-B3-SpanId": SPAN}, "X-B3-TraceId"),
    ],
)
async def test_malformed_trace_headers_are_dead_letters_naming_the_field(
    fields: dict[str, object], field: str
) -> None:
    out, side = await one({"ts": TS, **fields})
    assert out == []
    (dead,) = side["deadletter"]
    assert f"'{field}'" in dead.reason
    assert dead.position == 1 and dead.source == "app.log"


def test_header_parsers_directly() -> None:
    assert parse_traceparent(f"00-{TRACE}-{SPAN}-01") == (TRACE, SPAN, "")
    # A future version may carry more parts; version ff is invalid.
    assert parse_traceparent(f"01-{TRACE}-{SPAN}-01-extra").trace_id == TRACE
    with pytest.raises(ValueError, match="version"):
        parse_traceparent(f"ff-{TRACE}-{SPAN}-01")
    assert parse_b3("d") is None
    assert parse_b3(f"{TRACE}-{SPAN}-d").span_id == SPAN


async def test_trace_context_in_logfmt(raws: Any) -> None:
    out = await run_stage(parse_logfmt, raws([f"ts={TS} traceparent=00-{TRACE}-{SPAN}-01 msg=x"]))
    assert out[0].trace_id == TRACE and out[0].span_id == SPAN

"""The normalizer: field mapping, units, levels, service catalog and the
stage configs (options checked, every problem reported), run in a graph."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srestream import Level
from srestream._component import BuildContext, Outputs
from srestream._errors import ConfigError
from srestream._pipeline import parse_pipeline
from srestream._runner import Runner
from srestream.parse import (
    FieldMapping,
    Normalizer,
    ParseJsonStage,
    ParseTemplateStage,
    Redaction,
    RedactionRule,
    level_number,
    load_service_catalog,
    parse_json,
)
from srestream.parse._time import rfc3339_to_ns
from srestream.testing import run_stage

TS = "2024-03-10T07:00:00Z"


async def parse_lines(
    raws: Any, objs: list[dict[str, Any]], **kw: Any
) -> tuple[list[Any], list[Any]]:
    outputs = Outputs("parse")
    out = await run_stage(parse_json, raws([json.dumps(o) for o in objs]), outputs=outputs, **kw)
    return out, outputs.take().get("deadletter", [])


async def test_default_mapping_and_attrs(raws: Any) -> None:
    out, dead = await parse_lines(
        raws,
        [
            {
                "@timestamp": TS,
                "severity": "Warning",
                "service.name": "cart",
                "message": "slow",
                "logger": "cart.db",
                "team": "shop",
                "env": "prod",
                "status_code": "503",
                "duration_ms": 250,
                "requestId": "r-1",
                "traceId": "ab" * 16,
                "spanId": "cd" * 8,
                "path": "/cart",
                "nested": {"a": [1, 2]},
            }
        ],
    )
    assert dead == []
    (r,) = out
    assert (r.ts_ns, r.level, r.service, r.message, r.component, r.team, r.environment) == (
        rfc3339_to_ns(TS),
        Level.WARN,
        "cart",
        "slow",
        "cart.db",
        "shop",
        "prod",
    )
    assert (r.status, r.latency_ns, r.request_id, r.trace_id, r.span_id) == (
        503,
        250_000_000,
        "r-1",
        "ab" * 16,
        "cd" * 8,
    )
    assert r.attrs == {"path": "/cart", "nested": {"a": [1, 2]}}


async def test_custom_mapping_and_latency_units(raws: Any) -> None:
    mapping = FieldMapping(
        service=("svc",),
        latency=("took",),
        latency_unit="us",
        timestamp=("when",),
        message=("text",),
    )
    norm = Normalizer(mapping)
    out, dead = await parse_lines(
        raws,
        [
            {"when": 1710054000123, "svc": "a", "took": 1500, "text": "x", "service": "stays"},
            {"when": 1710054000, "svc": "b", "took": "2.5ms"},
            {"when": 1710054000, "svc": "c", "took": "1.5s", "text": {"k": 1}},
        ],
        normalizer=norm,
    )
    assert dead == []
    assert [r.service for r in out] == ["a", "b", "c"]
    assert [r.latency_ns for r in out] == [1_500_000, 2_500_000, 1_500_000_000]
    assert out[0].ts_ns == 1710054000123 * 10**6
    assert out[0].attrs == {"service": "stays"}
    assert out[2].message == '{"k":1}'


async def test_priority_between_candidates_is_the_mapping_order(raws: Any) -> None:
    out, _ = await parse_lines(raws, [{"msg": "second", "ts": TS, "message": "first"}])
    assert out[0].message == "first" and out[0].attrs == {"msg": "second"}


async def test_unusable_fields_are_dead_letters_naming_the_field(raws: Any) -> None:
    out, dead = await parse_lines(
        raws,
        [
            {"ts": TS, "status": "teapot"},
            {"ts": TS, "latency_ms": [1]},
            {"ts": "soon"},
            {"msg": "no time"},
            {"ts": TS, "msg": "fine"},
            {"ts": TS, "latency_ms": 1e308},
        ],
    )
    assert [r.message for r in out] == ["fine"]
    reasons = {d.position: d.reason for d in dead}
    assert "field 'status'" in reasons[1] and "teapot" in reasons[1]
    assert "field 'latency_ms'" in reasons[2]
    assert "field 'ts'" in reasons[3] and "soon" in reasons[3]
    assert "no timestamp field" in reasons[4]
    assert "field 'latency_ms': duration out of range" in reasons[6]
    assert all(d.source == "app.log" for d in dead)


def test_levels_on_one_scale() -> None:
    assert [
        level_number(x)
        for x in (
            "TRACE",
            "debug",
            "Info",
            "NOTICE",
            "warn",
            "WARNING",
            "err",
            "ERROR",
            "critical",
            "FATAL",
            "panic",
            " info ",
        )
    ] == [
        Level.TRACE,
        Level.DEBUG,
        Level.INFO,
        Level.NOTICE,
        Level.WARN,
        Level.WARN,
        Level.ERROR,
        Level.ERROR,
        Level.CRITICAL,
        Level.FATAL,
        Level.FATAL,
        Level.INFO,
    ]
    assert level_number("combo") == Level.UNKNOWN and level_number(99) == Level.UNKNOWN
    assert level_number(17) == Level.ERROR and level_number(True) == Level.UNKNOWN


CATALOG = """\
services:
  checkout:
    team: payments
    tier: 1
    owner: alice
    dependencies: [payments-api, inventory]
    runbook_url: https://runbooks.example.com/checkout
  search: {team: discovery, tier: 2}
"""


async def test_catalog_enrichment(raws: Any, tmp_path: pathlib.Path) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    cfg = ParseJsonStage(inputs=["x"], catalog="catalog.yaml")
    logic = cfg.build(BuildContext(component_id="p", outputs=Outputs(), base_dir=str(tmp_path)))
    lines = [
        json.dumps(o)
        for o in (
            {"ts": TS, "service": "checkout"},
            {"ts": TS, "service": "checkout", "team": "override"},
            {"ts": TS, "service": "search"},
            {"ts": TS, "service": "unknown"},
        )
    ]
    out = await run_stage(logic, raws(lines))
    assert [(r.team, r.tier, r.owner) for r in out] == [
        ("payments", "1", "alice"),
        ("override", "1", "alice"),
        ("discovery", "2", ""),
        ("", "", ""),
    ]
    assert out[0].dependencies == ("payments-api", "inventory")
    assert out[0].runbook_url == "https://runbooks.example.com/checkout"


def test_bad_options_are_all_reported_with_paths(tmp_path: pathlib.Path) -> None:
    (tmp_path / "catalog.yaml").write_text("services:\n  a: {team: x, colour: blue}\n")
    cfg = ParseTemplateStage(
        inputs=["x"],
        template="no fields here",
        time_format="dd-mm",
        time_zone="Mars/Olympus",
        catalog="catalog.yaml",
        reference_time="tomorrow",
        redaction=Redaction(rules=[RedactionRule(name="r", pattern="(")]),
    )
    with pytest.raises(ConfigError) as info:
        cfg.build(BuildContext(component_id="p", outputs=Outputs(), base_dir=str(tmp_path)))
    paths = {p.path for p in info.value.problems}
    assert paths >= {
        "$.stages.p.template",
        "$.stages.p.time_format",
        "$.stages.p.catalog",
        "$.stages.p.reference_time",
        "$.stages.p.redaction.rules[0].pattern",
    }
    with pytest.raises(ConfigError, match="colour"):
        load_service_catalog(str(tmp_path / "catalog.yaml"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_service_catalog(str(tmp_path / "missing.yaml"))


PIPELINE = """\
name: parse_demo
runtime:
  batch_size: 3
sources:
  app:
    type: replay
    paths: [app.log]
stages:
  fold:
    type: fold_stack_traces
    inputs: [app]
  parse:
    type: parse_template
    inputs: [fold]
    template: '<Date> <Time> <Level> \\[<Thread>\\] <Component>: <Content>'
    default_service: checkout
    catalog: catalog.yaml
    redaction: {}
sinks:
  out:
    type: directory
    path: out
    inputs: [parse, parse.deadletter]
"""


async def test_in_a_pipeline_with_folding_catalog_redaction(tmp_path: pathlib.Path) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "app.log").write_text(
        "2024-03-10 07:00:00,001 ERROR [main] com.shop.Pay: charge failed for bob@example.com\r\n"
        "java.lang.IllegalStateException: declined\r\n"
        "\tat com.shop.Pay.charge(Pay.java:42)\r\n"
        "garbage line from 10.0.0.1\r\n"
        "2024-03-10 07:00:01,000 INFO [main] com.shop.Pay: ok\r\n"
    )
    (tmp_path / "p.yaml").write_text(PIPELINE)
    pipeline = parse_pipeline(PIPELINE, path=str(tmp_path / "p.yaml"))
    await Runner(pipeline, out_dir=str(tmp_path / "out")).run()
    logs = [json.loads(x) for x in (tmp_path / "out" / "logs.jsonl").read_text().splitlines()]
    dead = [json.loads(x) for x in (tmp_path / "out" / "deadletter.jsonl").read_text().splitlines()]
    assert [r["position"] for r in logs] == [1, 5]
    assert logs[0]["message"] == (
        "charge failed for [EMAIL]\njava.lang.IllegalStateException: "
        "declined\n\tat com.shop.Pay.charge(Pay.java:42)"
    )
    assert logs[0]["team"] == "payments" and logs[0]["level"] == Level.ERROR
    assert logs[0]["ts"] == "2024-03-10T07:00:00.001Z"
    (d,) = dead
    assert d["position"] == 4 and d["raw"] == "garbage line from [IPV4]"
    assert d["stage"] == "parse" and "template" in d["reason"]


async def test_enrich_logs_stage_for_records_from_elsewhere(tmp_path: pathlib.Path) -> None:
    from srestream import LogRecord
    from srestream.parse import EnrichLogsStage

    (tmp_path / "catalog.yaml").write_text(CATALOG)
    cfg = EnrichLogsStage(inputs=["otlp"], catalog="catalog.yaml", redaction=Redaction())
    stage = cfg.build(BuildContext(component_id="e", outputs=Outputs(), base_dir=str(tmp_path)))
    attrs = {"client": "10.0.0.9", "n": 1}
    recs = [
        LogRecord(ts_ns=1, service="checkout", message="mail a@b.io", attrs=attrs),
        LogRecord(ts_ns=2, service="other", message="nothing here"),
        "not a log record",
    ]
    out = await run_stage(stage, recs)
    assert out[0].team == "payments" and out[0].tier == "1" and out[0].message == "mail [EMAIL]"
    assert out[0].attrs == {"client": "[IPV4]", "n": 1}
    assert attrs == {"client": "10.0.0.9", "n": 1}  # the input record is untouched
    assert out[1] is recs[1] and out[2] == "not a log record"


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "info",
            "WARN",
            "503",
            "12ms",
            "1.5",
            "7",
            "x",
            "2024-03-10T07:00:00.5Z",
            "1710054000",
            "Dec 31 23:59:59",
            "",
        ]
    ),
    st.lists(st.integers(), max_size=2),
)
_keys = st.sampled_from(
    [
        "ts",
        "time",
        "level",
        "msg",
        "message",
        "service",
        "app",
        "status",
        "latency_ms",
        "duration",
        "env",
        "team",
        "request_id",
        "trace_id",
        "x",
        "y",
    ]
)


@given(st.dictionaries(_keys, _values, max_size=8))
@settings(max_examples=400, deadline=None)
def test_compiled_builders_equal_the_generic_path(fields: dict[str, Any]) -> None:
    """The generated per-shape code is an optimisation: same record, same error."""
    norm = Normalizer(default_service="dflt")
    norm.times.reference_ns = rfc3339_to_ns("2024-06-01T00:00:00Z")

    def outcome(fn: Any) -> Any:
        try:
            return msgspec.json.encode(fn())
        except ValueError as exc:
            return str(exc)

    plan = norm._plan(tuple(fields))
    generic = outcome(lambda: norm._record_generic(dict(fields), "s", 1, plan))
    compiled = outcome(lambda: norm.record(dict(fields), "s", 1))
    assert compiled == generic

"""Every output format carries the same spans; OTLP call trees add up;
OpenMetrics loads into Prometheus' TSDB with promtool."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
from collections import Counter, defaultdict
from typing import Any

import pytest

from srestream.parse import parse_timestamp


def _logfmt(line: str) -> dict[str, str]:
    head, msg = line.split(' msg="', 1)
    out = dict(kv.split("=", 1) for kv in head.split(" "))
    out["msg"] = msg[:-1]
    return out


def _syslog(line: str) -> dict[str, str]:
    pri_ver, ts, host, app, procid, msgid, rest = line.split(" ", 6)
    sd, msg = rest[1:].split("] ", 1)
    sd_id, *params = sd.split(" ")
    out = {k: v.strip('"') for k, v in (p.split("=", 1) for p in params)}
    out.update(
        pri=pri_ver[1 : pri_ver.index(">")],
        version=pri_ver[-1],
        ts=ts,
        host=host,
        app=app,
        procid=procid,
        msgid=msgid,
        sd_id=sd_id,
        msg=msg,
    )
    return out


def test_logfmt_and_syslog_hold_the_same_records_as_jsonl(small: Any) -> None:
    logs = small.logs
    lf = (small.path / "logs.logfmt").read_text().splitlines()
    sl = (small.path / "logs.syslog").read_text().splitlines()
    assert len(logs) == len(lf) == len(sl) == small.truth["files"]["logs.logfmt"]
    sev = {"INFO": "134", "WARN": "132", "ERROR": "131"}  # local0 * 8 + severity
    for j, a, b in zip(logs, map(_logfmt, lf), map(_syslog, sl), strict=True):
        assert a["ts"] == b["ts"] == j["ts"]
        assert a["service"] == b["app"] == j["service"]
        assert a["level"] == j["level"].lower() and b["pri"] == sev[j["level"]]
        assert int(a["status"]) == int(b["status"]) == j["status"]
        assert float(a["latency_ms"]) == float(b["latency_ms"]) == j["latency_ms"]
        assert a["trace_id"] == b["trace_id"] == j["trace_id"]
        assert a["span_id"] == b["span_id"] == j["span_id"]
        assert a["request_id"] == b["request_id"] == j["request_id"]
        assert a["component"] == b["msgid"] == j["component"]
        assert a["msg"] == b["msg"] == j["message"]
        assert b["version"] == "1" and b["sd_id"] == "sim@32473"


def _otlp_spans(path: pathlib.Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            attrs = {a["key"]: a["value"]["stringValue"] for a in rs["resource"]["attributes"]}
            for sp in rs["scopeSpans"][0]["spans"]:
                out.append({**sp, "service": attrs["service.name"]})
    return out


def test_otlp_spans_match_the_logs_and_latency_adds_up_along_the_call_path(small: Any) -> None:
    spans = _otlp_spans(small.path / "traces.otlp.jsonl")
    logs = {(r["trace_id"], r["span_id"]): r for r in small.logs}
    assert len(spans) == len(logs)
    by_id = {(s["traceId"], s["spanId"]): s for s in spans}
    assert by_id.keys() == logs.keys()
    children: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for s in spans:
        rec = logs[s["traceId"], s["spanId"]]
        start, end = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
        assert rec["service"] == s["service"]
        assert parse_timestamp(rec["ts"]) // 1_000_000 == end // 1_000_000
        assert rec["latency_ms"] == (end - start) // 1000 / 1000
        code = int(s["attributes"][0]["value"]["intValue"])
        assert code == rec["status"]
        assert (s["status"].get("code") == 2) == (code >= 500)
        if "parentSpanId" in s:
            children[s["traceId"], s["parentSpanId"]].append(s)
    checked = 0
    for key, kids in children.items():
        parent = by_id.get(key)
        if parent is None:
            continue  # the parent ended after the scenario's end
        p0, p1 = int(parent["startTimeUnixNano"]), int(parent["endTimeUnixNano"])
        spent = 0
        for k in sorted(kids, key=lambda k: int(k["startTimeUnixNano"])):
            k0, k1 = int(k["startTimeUnixNano"]), int(k["endTimeUnixNano"])
            assert p0 < k0 <= k1 < p1
            spent += k1 - k0
        assert p1 - p0 > spent  # calls are sequential: the parent covers them all
        # A caller that failed because of its callee names it.
        failed_kids = [k for k in kids if k["status"].get("code") == 2]
        msg = parent["status"].get("message", "")
        if msg.startswith("upstream "):
            assert any(
                msg == f"upstream {k['service']} returned {k['attributes'][0]['value']['intValue']}"
                for k in failed_kids
            )
        checked += 1
    assert checked > 1000
    roots = [s for s in spans if "parentSpanId" not in s]
    assert {s["service"] for s in roots} == {"web"}
    assert {logs[s["traceId"], s["spanId"]]["request_id"] for s in roots} == {
        s["traceId"][:16] for s in roots
    }


def _samples(path: pathlib.Path) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    lines = path.read_text().splitlines()
    assert lines[-1] == "# EOF"
    for line in lines:
        if not line.startswith("#"):
            series, value, ts = line.rsplit(" ", 2)
            out[series].append((float(ts), float(value)))
    return out


def test_openmetrics_counters_end_at_the_log_counts(small: Any) -> None:
    samples = _samples(small.path / "metrics.om.txt")
    counts = Counter((r["service"], r["status"]) for r in small.logs)
    totals = {}
    for series, pts in samples.items():
        times = [t for t, _ in pts]
        assert times == sorted(times)
        values = [v for _, v in pts]
        assert values == sorted(values), f"{series} is a counter: it never goes down"
        if series.startswith("http_requests_total{"):
            svc = series.split('service="')[1].split('"')[0]
            code = int(series.split('code="')[1].split('"')[0])
            totals[svc, code] = values[-1]
    assert totals == {k: float(v) for k, v in counts.items()}
    # The histogram's count equals the requests of its service.
    for svc in {s for s, _ in counts}:
        n = samples[f'http_request_duration_seconds_count{{service="{svc}"}}'][-1][1]
        assert n == sum(v for (s, _), v in counts.items() if s == svc)
        inf = samples[f'http_request_duration_seconds_bucket{{service="{svc}",le="+Inf"}}'][-1][1]
        assert inf == n


@pytest.mark.integration
def test_promtool_loads_the_openmetrics_into_tsdb_blocks(
    small: Any, tmp_path: pathlib.Path
) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not installed: run tests/install-servers.sh")
    out = tmp_path / "tsdb"
    proc = subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(small.path / "metrics.om.txt"),
            str(out),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    blocks = [p for p in out.iterdir() if (p / "meta.json").exists()]
    assert blocks
    meta = [json.loads((b / "meta.json").read_text()) for b in blocks]
    assert sum(m["stats"]["numSeries"] for m in meta) >= len({r["service"] for r in small.logs})
    assert min(m["minTime"] for m in meta) == small.truth["start_ns"] // 1_000_000


def test_srestream_reads_the_otlp_traces_without_dead_letters(small: Any) -> None:
    from srestream._component import Outputs
    from srestream._records import RawLine, Span
    from srestream.io._otlp import otlp_records

    outputs = Outputs("otlp")
    spans: list[Span] = []
    text = (small.path / "traces.otlp.jsonl").read_text().splitlines()
    for i, line in enumerate(text):
        spans.extend(
            otlp_records(RawLine(source="t", position=i + 1, offset=0, text=line), outputs)
        )
    assert not outputs.take()
    logs = {(r["trace_id"], r["span_id"]): r for r in small.logs}
    assert len(spans) == len(logs)
    for s in spans:
        rec = logs[s.trace_id, s.span_id]
        assert s.service == rec["service"]
        assert s.error == (rec["status"] >= 500)
        assert (s.end_ts_ns - s.start_ts_ns) // 1000 / 1000 == rec["latency_ms"]
    assert (
        sum(1 for s in spans if s.parent_span_id)
        == len(spans) - small.truth["service_counts"]["web"]["total"]
    )


def test_events_are_accepted_by_the_http_receiver_format(small: Any) -> None:
    """events.jsonl lines are what srestream's /events endpoint takes."""
    from srestream.io._http import events_from_payload

    lines = (small.path / "events.jsonl").read_bytes().splitlines()
    kinds = set()
    for line in lines:
        (ev,) = events_from_payload("/events", line, now_ns=0)
        obj = json.loads(line)
        assert ev.ts_ns == parse_timestamp(obj["ts"]) and ev.event_type == obj["event_type"]
        assert ev.service == obj["service"] and ev.summary == obj["summary"]
        kinds.add(ev.event_type)
    assert {"ack", "chat_note", "human_action", "resolve"} <= kinds


async def test_srestream_parsers_read_jsonl_logfmt_and_syslog_as_the_same_records(
    small: Any,
) -> None:
    from srestream._records import RawLine
    from srestream.parse import parse_json
    from srestream.parse._logfmt import parse_logfmt
    from srestream.parse._syslog import parse_syslog
    from srestream.testing import run_stage

    def raws(name: str) -> list[RawLine]:
        text = (small.path / name).read_text().splitlines()
        return [RawLine(source=name, position=i + 1, offset=0, text=t) for i, t in enumerate(text)]

    js = await run_stage(parse_json, raws("logs.jsonl"))
    lf = await run_stage(parse_logfmt, raws("logs.logfmt"))
    sl = await run_stage(parse_syslog, raws("logs.syslog"))
    assert len(js) == len(lf) == len(sl) == len(small.logs)
    fields = (
        "ts_ns",
        "service",
        "level",
        "message",
        "component",
        "team",
        "environment",
        "status",
        "latency_ns",
        "trace_id",
        "span_id",
        "request_id",
    )
    for a, b, c in zip(js, lf, sl, strict=True):
        assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
        assert (c.ts_ns, c.service, c.level, c.message) == (a.ts_ns, a.service, a.level, a.message)
        sd = c.attrs["structured_data"]["sim@32473"]
        assert (int(sd["status"]), sd["trace_id"], sd["span_id"]) == (
            a.status,
            a.trace_id,
            a.span_id,
        )

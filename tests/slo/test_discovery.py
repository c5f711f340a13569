"""Span SLIs and SLO discovery (SPEC §3.5), on simulator traces written in
the test (``srestream sim`` with OTLP output) and on OTLP files written
here: discovery finds the scenario's entry journeys, proposes objectives
that follow from the observed error rates (recomputed here from the
spans), writes YAML that loads and runs without alerting on the fault-free
history it came from, and refuses a high-cardinality operation set with
its reason.  Span SLIs count what this test counts, at any batch size."""

from __future__ import annotations

import itertools
import json
import math
import pathlib
from collections import Counter, defaultdict
from fractions import Fraction
from typing import Any

import pytest
import yaml

from srestream._cli import main as cli_main
from srestream._component import Outputs
from srestream._errors import ConfigError
from srestream._records import LogRecord, RawLine, Span
from srestream.parse._json import parse_json_batch
from srestream.slo import (
    Alert,
    BurnRateDetector,
    SliRollup,
    SliWindows,
    discover_slos,
    load_slos,
    parse_slos,
    read_trace_files,
)

ROOT = pathlib.Path(__file__).parent.parent.parent
MS = 1_000_000
LADDER = (99.99, 99.95, 99.9, 99.5, 99.0, 98.0, 95.0, 90.0)


def _scenario_text(rps: float, faults: bool) -> str:
    """pipelines/scenarios/small.yaml, 1 hour, two frontends, busier, with or
    without its orders-db outage (at 30m for 20m)."""
    doc = yaml.safe_load((ROOT / "pipelines" / "scenarios" / "small.yaml").read_text())
    doc["duration"] = "1h"
    doc["services"]["frontends"] = 2
    doc["traffic"]["requests_per_second"] = rps
    if not faults:
        doc["faults"] = []
    else:
        doc["faults"][0]["onset"] = "30m"  # within the hour
    doc["outputs"] = ["jsonl", "otlp"]
    return yaml.safe_dump(doc)


@pytest.fixture(scope="module")
def quiet_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fault-free hour of the small scenario, simulated with OTLP traces."""
    from srestream.sim._graph import build_graph
    from srestream.sim._scenario import load_scenario

    d = tmp_path_factory.mktemp("quiet")
    (d / "scenario.yaml").write_text(_scenario_text(2.0, faults=False))
    assert cli_main(["sim", str(d / "scenario.yaml"), "--out", str(d / "out"),
                     "--formats", "jsonl,otlp", "--quiet"]) == 0
    sc = load_scenario(d / "scenario.yaml")
    spans, unreadable = read_trace_files([d / "out" / "traces.otlp.jsonl"])
    assert unreadable == 0 and len(spans) > 10_000
    return {"dir": d, "graph": build_graph(sc.services, sc.seed), "spans": spans,
            "traces": d / "out" / "traces.otlp.jsonl", "logs": d / "out" / "logs.jsonl"}


# ---------------------------------------------------------------- span SLIs


_SPAN_SLOS = """
slos:
  - name: entry-availability
    service: {svc}
    objective: 99
    sli: {{kind: availability, source: spans, total: {{parent_span_id: ""}}}}
  - name: fast
    service: {svc}
    objective: 99
    sli: {{kind: latency, source: spans, total: {{error: false}}, threshold: 80ms}}
  - name: ok-and-quick-ish
    service: {svc}
    objective: 95
    sli:
      kind: ratio
      source: spans
      total: {{attrs.http.response.status_code: {{ge: 200}}, name: {{matches: "GET .*"}}}}
      good: {{duration_ns: {{lt: 40000000}}, error: false}}
  - name: logs-availability
    service: {svc}
    objective: 99
    sli: {{kind: availability, total: {{}}, good: {{status: {{lt: 500}}}}}}
"""


def _expected(spans: list[Span], logs: list[LogRecord], svc: str) -> dict[str, tuple[int, int]]:
    """(good, total) of each SLO of _SPAN_SLOS, counted here record by record."""
    mine = [s for s in spans if s.service == svc]
    dur = [(s, s.end_ts_ns - s.start_ts_ns) for s in mine]
    entry = [s for s in mine if not s.parent_span_id]
    ok = [(s, d) for s, d in dur if not s.error]
    ratio_total = [(s, d) for s, d in dur
                   if s.attrs["http.response.status_code"] >= 200 and s.name.startswith("GET ")]
    my_logs = [r for r in logs if r.service == svc]
    return {
        "entry-availability": (sum(not s.error for s in entry), len(entry)),
        "fast": (sum(d <= 80 * MS for _, d in ok), len(ok)),
        "ok-and-quick-ish": (sum(d < 40 * MS and not s.error for s, d in ratio_total), len(ratio_total)),
        "logs-availability": (sum(r.status is not None and r.status < 500 for r in my_logs), len(my_logs)),
    }


def _read_logs(path: pathlib.Path) -> list[LogRecord]:
    lines = path.read_text().splitlines()
    raw = [RawLine(source="logs.jsonl", position=i + 1, offset=0, text=t) for i, t in enumerate(lines)]
    return list(parse_json_batch(raw, Outputs()))


def test_span_slis_count_exactly_what_the_spans_hold_at_any_batch_size(quiet_world: dict[str, Any]) -> None:
    spans: list[Span] = quiet_world["spans"]
    logs = _read_logs(quiet_world["logs"])
    svc = next(s.name for s in quiet_world["graph"].services if s.kind == "frontend")
    slos = parse_slos(yaml.safe_load(_SPAN_SLOS.format(svc=svc)))
    # One stream: the logs and the spans of the same requests, in event time.
    stream: list[Span | LogRecord] = sorted([*spans, *logs], key=lambda r: r.ts_ns)
    want = _expected(spans, logs, svc)
    assert all(t > 100 and 0 < g < t for g, t in want.values()), want  # the predicates select something
    results = []
    for size in (1, 7, 1024):
        win = SliWindows(slos)
        rollups: list[SliRollup] = []
        for i in range(0, len(stream), size):
            rollups += win.process(stream[i : i + size])
        rollups += win.flush()
        got: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in rollups:
            got[r.slo][0] += r.good
            got[r.slo][1] += r.total
        assert {k: tuple(v) for k, v in got.items()} == want
        assert win.late_records == 0
        results.append(rollups)
    assert results[0] == results[1] == results[2]


def test_span_sli_misuse_is_refused_with_paths() -> None:
    doc = {"slos": [
        {"name": "a", "service": "web", "objective": 99,
         "sli": {"kind": "availability", "source": "spans", "total": {}, "threshold": "1s"}},
        {"name": "b", "service": "web", "objective": 99,
         "sli": {"kind": "latency", "source": "spans", "total": {"status": {"lt": 500}}, "threshold": "1s"}},
        {"name": "c", "service": "web", "objective": 99,
         "sli": {"kind": "throughput", "source": "spans", "total": {}, "min_events_per_minute": 5}},
        {"name": "d", "service": "web", "objective": 99,
         "sli": {"kind": "availability", "total": {"duration_ns": {"gt": 5}}, "good": {}}},
        {"name": "e", "service": "web", "objective": 99,
         "sli": {"kind": "ratio", "source": "spans", "total": {"labels.code": "500"}}},
        {"name": "f", "service": "web", "objective": 99,
         "sli": {"kind": "latency", "source": "spans", "total": {}}},
        {"name": "g", "service": "web", "objective": 99,
         "sli": {"kind": "availability", "source": "traces", "total": {}}},
    ]}
    with pytest.raises(ConfigError) as exc:
        parse_slos(doc)
    got = {p.path: p.message for p in exc.value.problems}
    assert "threshold is an option of latency" in got["$.slos[0].sli.threshold"]
    assert "not a span field" in got["$.slos[1].sli.total.status"]
    assert "cannot count spans" in got["$.slos[2].sli.source"]
    assert "source: spans" in got["$.slos[3].sli.total.duration_ns"]  # a span field on a log SLI
    assert "not a span field" in got["$.slos[4].sli.total.labels.code"]
    assert "missing good predicate" in got["$.slos[4].sli.good"]
    assert "positive threshold" in got["$.slos[5].sli.threshold"]
    assert "unknown source" in got["$.slos[6].sli.source"]
    # Availability over spans needs no good predicate: good = the span did not fail.
    parse_slos({"slos": [{"name": "ok", "service": "web", "objective": 99,
                          "sli": {"kind": "availability", "source": "spans", "total": {}}}]})


# ---------------------------------------------------------------- discovery


def _recommend(bad: int, total: int) -> float | None:
    """The ladder rule, recomputed: the tightest objective whose half budget
    holds max(bad, 1) / total; None when no rung does."""
    for obj in LADDER:
        if Fraction(max(bad, 1), total) <= (100 - Fraction(str(obj))) / 200:
            return obj
    return None


def _nice(ns: int) -> int:
    for e in range(6):
        for m in (Fraction(1), Fraction(5, 2), Fraction(5)):
            t = int(m * 10**e * MS)
            if t >= ns:
                return t
    raise AssertionError(ns)


def test_discovery_finds_the_scenarios_journeys_and_objectives_from_the_history(
    quiet_world: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    graph = quiet_world["graph"]
    spans: list[Span] = quiet_world["spans"]
    out = tmp_path / "slos.yaml"
    assert cli_main(["discover", str(quiet_world["traces"]), "--out", str(out),
                     "--min-requests", "200"]) == 0
    slos = load_slos(out)
    d = discover_slos(spans, min_requests=200, sources=[str(quiet_world["traces"])])
    assert d.yaml == out.read_text()  # deterministic bytes, CLI and API alike

    # The journeys are the frontends' endpoints: where the simulator's requests enter.
    frontends = {s.name: s for s in graph.services if s.kind == "frontend"}
    assert len(frontends) == 2
    want = {(f.name, ep) for f in frontends.values() for ep in f.endpoints}
    assert {(j.service, j.operation) for j in d.journeys} == want
    # Call paths start at a dependency of the entry service, and each step calls a dependency.
    deps = {s.name: set(s.dependencies) for s in graph.services}
    for j in d.journeys:
        assert j.paths
        for path in j.paths:
            services = [j.service, *(step.split(" ", 1)[0] for step in path)]
            assert all(b in deps[a] for a, b in itertools.pairwise(services)), path

    # Objectives follow from the observed history, recomputed from the spans.
    entries: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for s in spans:
        if not s.parent_span_id:
            entries[(s.service, s.name)].append(s)
    by_name = {(s.service, s.name): s for s in slos.slos}
    assert len(by_name) == 2 * len(want)
    for (svc, op), es in entries.items():
        errors = sum(s.error for s in es)
        ok = sorted(s.end_ts_ns - s.start_ts_ns for s in es if not s.error)
        slug = op.lower().replace(" /", "-").replace("/", "-")
        avail = by_name[(svc, f"{slug}-availability")]
        assert avail.sli.on_spans and avail.sli.total == {"name": op}
        assert avail.objective == _recommend(errors, len(es))
        threshold = _nice(ok[math.ceil(0.99 * len(ok)) - 1])
        lat = by_name[(svc, f"{slug}-latency")]
        assert lat.sli.threshold is not None and lat.sli.threshold.ns == threshold
        assert lat.objective == _recommend(sum(x > threshold for x in ok), len(ok))
        assert f"{errors} of {len(es)} requests failed" in avail.description

    # The proposals run on the history they came from: they count the entry
    # requests, and a fault-free stretch raises no alert.
    win = SliWindows(slos, allowed_lateness_ns=30_000_000_000)
    burn = BurnRateDetector(slos)
    produced: list[Any] = []
    totals: Counter[str] = Counter()
    for i in range(0, len(spans) + 1024, 1024):
        rollups = win.process(spans[i : i + 1024]) if i < len(spans) else win.flush()
        for r in rollups:
            totals[f"{r.service}/{r.slo}"] += r.total
        produced += burn.process(rollups)
    produced += burn.flush()
    for (svc, op), es in entries.items():
        slug = op.lower().replace(" /", "-").replace("/", "-")
        assert totals[f"{svc}/{slug}-availability"] == len(es)
    assert not [a for a in produced if isinstance(a, Alert)]

    # The same SLOs do page on the same world with its orders-db outage.
    from srestream.sim import simulate
    from srestream.sim._scenario import load_scenario

    (tmp_path / "outage.yaml").write_text(_scenario_text(2.0, faults=True))
    simulate(load_scenario(tmp_path / "outage.yaml"), tmp_path / "outage", formats=["otlp"])
    faulty, _ = read_trace_files([tmp_path / "outage" / "traces.otlp.jsonl"])
    win, burn = SliWindows(slos, allowed_lateness_ns=30_000_000_000), BurnRateDetector(slos)
    produced = []
    for i in range(0, len(faulty), 1024):
        produced += burn.process(win.process(faulty[i : i + 1024]))
    pages = [a for a in produced if isinstance(a, Alert) and a.tier == "page" and a.state == "firing"]
    assert pages and all(a.slo.endswith("-availability") for a in pages)


def _otlp_line(service: str, spans: list[dict[str, Any]]) -> str:
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}],
    }]})


def _span(tid: int, sid: int, name: str, start_ms: int, dur_ms: int, *, parent: int = 0,
          kind: int = 2, error: bool = False) -> dict[str, Any]:
    t0 = 1_767_600_000_000 + start_ms  # ms
    out: dict[str, Any] = {
        "traceId": f"{tid:032x}", "spanId": f"{sid:016x}", "name": name, "kind": kind,
        "startTimeUnixNano": str(t0 * MS), "endTimeUnixNano": str((t0 + dur_ms) * MS),
        "status": {"code": 2} if error else {},
    }
    if parent:
        out["parentSpanId"] = f"{parent:016x}"
    return out


def test_a_high_cardinality_operation_set_is_refused_with_its_reason(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """users names its spans with the user id (40 names): refused per
    operation, one service-level SLO instead; shop's two routes are entered
    from a browser's root CLIENT span, so shop (not the browser) is the entry."""
    lines = []
    sid = 0
    for i in range(400):
        sid += 2
        lines.append(_otlp_line("users", [
            _span(i + 1, sid, f"GET /users/{i % 40}", i * 1000, 20, error=i % 100 == 0),
            _span(i + 1, sid + 1, "SELECT users", i * 1000 + 5, 10, parent=sid, kind=1),  # internal
        ]))
        sid += 2
        lines.append(_otlp_line("browser", [_span(10_000 + i, sid, "HTTP GET", i * 1000, 50, kind=3)]))
        lines.append(_otlp_line("shop", [_span(10_000 + i, sid + 1, ("GET /cart", "POST /pay")[i % 2],
                                               i * 1000 + 1, 40, parent=sid)]))
    path = tmp_path / "traces.otlp.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "slos.yaml"
    assert cli_main(["discover", str(path), "--out", str(out), "--max-operations", "20",
                     "--min-requests", "100"]) == 0
    err = capsys.readouterr().err
    assert "refused per-operation SLOs for 'users': 40 distinct entry operations" in err
    assert "route template" in err
    spans, _ = read_trace_files([path])
    d = discover_slos(spans, max_operations=20, min_requests=100)
    assert [(r.service, r.operations) for r in d.refusals] == [("users", 40)]
    assert all(e.startswith("GET /users/") for e in d.refusals[0].examples)
    text = out.read_text()
    assert "GET /users/" in text and "cardinality guard" in text
    assert "GET /users/39" not in text  # the ids are summarized, not listed one by one
    slos = load_slos(out)
    users = [s for s in slos.slos if s.service == "users"]
    assert sorted(s.name for s in users) == ["service-availability", "service-latency"]
    # All the entry spans, and not the service's internal spans.
    assert [s.sli.total for s in users] == [{"parent_span_id": ""}, {"parent_span_id": "", "error": False}]
    assert users[0].objective == _recommend(4, 400)  # 4 failed of 400: 1% -> 98
    win = SliWindows(slos)
    counted: Counter[str] = Counter()
    for r in win.process(sorted(spans, key=lambda s: s.end_ts_ns)) + win.flush():
        counted[f"{r.service}/{r.slo}"] += r.total
    assert counted["users/service-availability"] == 400
    assert counted["shop/get-cart-availability"] == counted["shop/post-pay-availability"] == 200
    assert {s.sli.total.get("name") for s in slos.slos if s.service == "shop" and s.sli.total} == {
        "GET /cart", "POST /pay"}
    assert not [s for s in slos.slos if s.service == "browser"]
    # At the limit, the names are journeys of their own.
    d = discover_slos(spans, max_operations=40, min_requests=10)
    assert not d.refusals and sum(j.service == "users" for j in d.journeys) == 40
    with pytest.raises(ConfigError):
        discover_slos(spans, period="7")

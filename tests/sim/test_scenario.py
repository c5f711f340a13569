"""Scenario files are strict; the graph and the traffic have the promised shape;
``srestream sim`` works from the command line."""

from __future__ import annotations

import json
import pathlib
from collections import Counter
from typing import Any

import pytest

from srestream._cli import main as cli
from srestream._errors import ConfigError
from srestream.parse import parse_timestamp
from srestream.sim import build_graph, parse_scenario, simulate
from srestream.sim._scenario import ServiceCounts

ROOT = pathlib.Path(__file__).parent.parent.parent
SMALL = ROOT / "pipelines" / "scenarios" / "small.yaml"

_BAD = """
name: bad
start: "2026-01-05T00:00:00Z"
duration: 1h
services: {count: 8}
slos:
  - {name: lat, sli: latency, objective: 99}
  - {name: lat, sli: availability, objective: 100}
faults:
  - {kind: dependency_outage, service: order-db, onset: 30m, duration: 10m}
  - {kind: slow_burn, service: cart, onset: 2h, duration: 10m, error_ratio: 1.5}
  - {kind: data_gap, services: [nope], onset: 50m, duration: 20m}
"""


def test_every_semantic_problem_is_reported_at_once_with_its_path() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_scenario(_BAD, path="bad.yaml")
    got = {(p.path, p.message.split(" (did")[0].split(";")[0]) for p in exc.value.problems}
    assert got == {
        ("$.slos[0].threshold_ms", "a latency SLI needs a positive threshold_ms"),
        ("$.slos[1].name", "duplicate SLO name 'lat'"),
        ("$.slos[1].objective", "must be within (0, 100), got 100.0"),
        ("$.faults[0].service", "unknown service 'order-db'"),
        ("$.faults[1].onset", "must fall within the scenario duration"),
        ("$.faults[1].duration", "the fault must end within the scenario"),
        ("$.faults[1].error_ratio", "must be within [0, 1], got 1.5"),
        ("$.faults[2].services[0]", "unknown service 'nope'"),
        ("$.faults[2].duration", "the fault must end within the scenario"),
    }
    assert all(p.file == "bad.yaml" for p in exc.value.problems)
    hint = next(p.message for p in exc.value.problems if p.path == "$.faults[0].service")
    assert "did you mean 'orders-db'?" in hint


@pytest.mark.parametrize(
    ("patch", "path", "words"),
    [
        ("traffic: {requests_per_second: 1, burst: 3}", "$.traffic", "burst"),
        ("faults: [{kind: meteor, onset: 1m, duration: 1m}]", "$.faults[0].kind", "meteor"),
        (
            "faults: [{kind: slow_burn, service: cart, onset: 60, duration: 1m}]",
            "$.faults[0].onset",
            "unit",
        ),
        ("services: {count: 301}", "$.services.count", "[5, 300]"),
        ("traffic: {diurnal_amplitude: 1.0}", "$.traffic.diurnal_amplitude", "[0, 1)"),
        ("services: {count: 5, datastores: 4}", "$.services", "mid service"),
    ],
)
def test_type_errors_and_bad_values_name_their_path(patch: str, path: str, words: str) -> None:
    text = f'name: x\nstart: "2026-01-05T00:00:00Z"\nduration: 1h\n{patch}\n'
    with pytest.raises(ConfigError) as exc:
        parse_scenario(text)
    (problem,) = exc.value.problems
    assert problem.path == path and words in problem.message


@pytest.mark.parametrize("count", [5, 8, 37, 300])
def test_graph_is_a_layered_dag_where_every_service_but_the_frontends_has_a_caller(
    count: int,
) -> None:
    g = build_graph(ServiceCounts(count=count), seed=count)
    assert len(g.services) == len({s.name for s in g.services}) == count
    kind = {s.name: s.kind for s in g.services}
    assert set(kind.values()) == {"frontend", "gateway", "mid", "datastore"}
    called = {d for s in g.services for d in s.dependencies}
    assert {n for n, k in kind.items() if k != "frontend"} <= called
    allowed = {
        "frontend": {"gateway"},
        "gateway": {"mid"},
        "mid": {"mid", "datastore"},
        "datastore": set(),
    }
    for s in g.services:
        assert {kind[d] for d in s.dependencies} <= allowed[s.kind]
    # Acyclic: a depth-first walk from every frontend ends.
    deps = {s.name: s.dependencies for s in g.services}

    def depth(n: str, seen: frozenset[str]) -> int:
        assert n not in seen, f"cycle through {n}"
        return 1 + max((depth(d, seen | {n}) for d in deps[n]), default=0)

    assert max(depth(n, frozenset()) for n, k in kind.items() if k == "frontend") <= 7
    assert build_graph(ServiceCounts(count=count), seed=count) == g


def test_traffic_follows_the_diurnal_curve(tmp_path: pathlib.Path) -> None:
    sc = parse_scenario(
        'name: day\nstart: "2026-01-05T00:00:00Z"\nduration: 1d\nservices: {count: 5}\n'
        "traffic: {requests_per_second: 0.2, diurnal_amplitude: 0.8, peak_hour_utc: 15}\n"
        "outputs: [jsonl]\n"
    )
    simulate(sc, tmp_path)
    per_hour = Counter(
        json.loads(x)["ts"][11:13]
        for x in (tmp_path / "logs.jsonl").read_text().splitlines()
        if '"service":"web"' in x
    )
    # rate ∝ 1 + 0.8 cos(2π (h - 15) / 24): 1.8 at 15h, 0.2 at 3h.
    assert per_hour["15"] > 4 * per_hour["03"]
    assert per_hour["14"] > per_hour["09"] > per_hour["04"]


def test_cli_writes_the_scenario_and_refuses_bad_input(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert (
        cli(["sim", str(SMALL), "--out", str(out), "--seed", "99", "--formats", "jsonl,otlp"]) == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "events.jsonl",
        "logs.jsonl",
        "scenario.json",
        "traces.otlp.jsonl",
        "truth.json",
    ]
    truth: dict[str, Any] = json.loads((out / "truth.json").read_text())
    assert truth["seed"] == 99 and truth["scenario"] == "small-outage"
    assert "spans" in capsys.readouterr().err
    assert cli(["sim", str(SMALL), "--out", str(out), "--formats", "jsonl,csv"]) == 2
    assert "csv" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(_BAD)
    assert cli(["sim", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "$.faults[0].service" in err and "$.slos[1].objective" in err
    assert not (tmp_path / "x").exists()
    assert cli(["sim", str(SMALL)]) == 2
    assert "--out" in capsys.readouterr().err


def test_cli_prints_the_service_graph(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["sim", str(SMALL), "--graph"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    graph = build_graph(ServiceCounts(count=8, frontends=1, gateways=1, datastores=2), seed=7)
    assert [r[:3] for r in rows] == [[s.name, s.kind, s.team] for s in graph.services]
    assert rows[0][3:] == ["->", "api-gateway"]


def test_events_and_logs_share_the_timestamp_format(tmp_path: pathlib.Path) -> None:
    simulate(parse_scenario(SMALL.read_text()), tmp_path, formats=["jsonl"])
    for name in ("logs.jsonl", "events.jsonl"):
        for line in (tmp_path / name).read_text().splitlines()[:200]:
            ts = json.loads(line)["ts"]
            assert len(ts) == 24 and ts.endswith("Z") and ts[19] == "."
            assert parse_timestamp(ts) % 1_000_000 == 0


def test_a_rerun_in_fewer_formats_leaves_no_stale_output(tmp_path: pathlib.Path) -> None:
    sc = parse_scenario(SMALL.read_text())
    simulate(sc, tmp_path, formats=["jsonl", "syslog"])
    (tmp_path / "notes.txt").write_text("mine")
    simulate(sc, tmp_path, formats=["otlp"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "events.jsonl",
        "notes.txt",
        "scenario.json",
        "traces.otlp.jsonl",
        "truth.json",
    ]

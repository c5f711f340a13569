"""Determinism and ground truth: same seed, same bytes; truth counts equal
counts recomputed from the emitted logs."""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
from collections import Counter
from typing import Any

import msgspec
import pytest

from srestream._component import Outputs
from srestream._records import RawLine
from srestream.parse._json import parse_json_batch
from srestream.sim import Scenario, load_scenario, scenario_from_dict, simulate

ROOT = pathlib.Path(__file__).parent.parent.parent
SCENARIOS = ROOT / "pipelines" / "scenarios"
DATA = ROOT / "tests" / "data" / "scenario_small"
MIN_NS = 60_000_000_000


def _digests(d: pathlib.Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def _short() -> Scenario:
    """all-faults.yaml cut to its first 75 minutes (slow burn, bad deploy, a
    data gap), quick to run."""
    obj = msgspec.yaml.decode((SCENARIOS / "all-faults.yaml").read_bytes())
    obj["duration"] = "75m"
    obj["faults"][0]["duration"] = "30m"
    obj["faults"] = obj["faults"][:2] + [{"kind": "data_gap", "onset": "70m", "duration": "2m"}]
    return scenario_from_dict(obj)


def test_same_seed_gives_same_bytes_in_every_format(tmp_path: pathlib.Path) -> None:
    sc = _short()
    simulate(sc, tmp_path / "a")
    simulate(sc, tmp_path / "b")
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert set(a) == {
        "logs.jsonl",
        "logs.logfmt",
        "logs.syslog",
        "traces.otlp.jsonl",
        "metrics.om.txt",
        "events.jsonl",
        "truth.json",
        "scenario.json",
    }
    assert a == b
    simulate(sc, tmp_path / "c", seed=sc.seed + 1)
    c = _digests(tmp_path / "c")
    assert c["logs.jsonl"] != a["logs.jsonl"]
    assert c["traces.otlp.jsonl"] != a["traces.otlp.jsonl"]


def test_same_bytes_in_a_fresh_process_with_another_hash_seed(tmp_path: pathlib.Path) -> None:
    """No dependence on PYTHONHASHSEED or on anything but the seed."""
    out = tmp_path / "cli"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from srestream._cli import main; raise SystemExit(main())",
            "sim",
            str(SCENARIOS / "small.yaml"),
            "--out",
            str(out),
            "--formats",
            "jsonl",
            "--quiet",
        ],
        check=True,
        env=env,
        timeout=60,
    )
    simulate(load_scenario(SCENARIOS / "small.yaml"), tmp_path / "here", formats=["jsonl"])
    assert _digests(out) == _digests(tmp_path / "here")


def test_committed_small_scenario_is_what_the_generator_writes(tmp_path: pathlib.Path) -> None:
    simulate(load_scenario(SCENARIOS / "small.yaml"), tmp_path, formats=["jsonl"])
    committed = {k: v for k, v in _digests(DATA).items() if k != "README.md"}
    assert committed == _digests(tmp_path)


def test_committed_small_scenario_stays_small() -> None:
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 2_000_000


def _recount(logs: list[dict[str, object]], truth: dict[str, object]) -> None:
    start_min = truth["start_ns"] // MIN_NS  # type: ignore[operator]
    by_service: dict[object, list[dict[str, object]]] = {}
    for rec in logs:
        by_service.setdefault(rec["service"], []).append(rec)
    for slo in truth["slos"]:  # type: ignore[attr-defined]
        n = len(slo["minutes"]["total"])
        good, total = [0] * n, [0] * n
        for rec in by_service.get(slo["service"], []):
            m = rec["ts_ns"] // MIN_NS - start_min  # type: ignore[operator]
            total[m] += 1
            if slo["sli"] == "availability":
                good[m] += rec["status"] < 500  # type: ignore[operator]
            else:
                good[m] += rec["latency_ms"] <= slo["threshold_ms"]  # type: ignore[operator]
        assert (slo["good"], slo["total"]) == (sum(good), sum(total)), slo["name"]
        assert slo["minutes"]["good"] == good, slo["name"]
        assert slo["minutes"]["total"] == total, slo["name"]


def test_truth_counts_equal_counts_recomputed_through_parse_json(all_faults: Any) -> None:
    """The logs go through srestream's own JSON parser, so the field names
    are the ones it maps; nothing is dead-lettered."""
    lines = (all_faults.path / "logs.jsonl").read_text().splitlines()
    outputs = Outputs("parse")
    recs = parse_json_batch(
        [
            RawLine(source="logs.jsonl", position=i + 1, offset=0, text=t)
            for i, t in enumerate(lines)
        ],
        outputs,
    )
    assert not outputs.take()
    assert len(recs) == len(lines) == all_faults.truth["files"]["logs.jsonl"]
    logs = [
        {
            "service": r.service,
            "ts_ns": r.ts_ns,
            "status": r.status,
            "latency_ms": r.latency_ns / 1e6 if r.latency_ns is not None else None,
        }
        for r in recs
    ]
    assert all(r.trace_id and r.span_id and r.request_id and r.component for r in recs)
    assert {r.environment for r in recs} == {"prod"}
    assert [r.ts_ns for r in recs] == sorted(r.ts_ns for r in recs), "logs are in event-time order"
    _recount(logs, all_faults.truth)
    counts = Counter(r.service for r in recs)
    errors = Counter(r.service for r in recs if r.status is not None and r.status >= 500)
    for name, c in all_faults.truth["service_counts"].items():
        assert (c["total"], c["errors"]) == (counts[name], errors[name]), name


def test_small_truth_counts_equal_counts_from_its_logs(small: Any) -> None:
    from srestream.parse import parse_timestamp

    logs = [
        {**r, "ts_ns": parse_timestamp(r["ts"])}  # type: ignore[arg-type]
        for r in small.logs
    ]
    _recount(logs, small.truth)
    assert small.truth["root_causes"] == ["orders-db"]


def test_fault_impact_equals_counts_inside_the_effect_window(
    all_faults: Any, all_faults_logs: list[dict[str, Any]]
) -> None:
    by_service: dict[str, list[dict[str, Any]]] = {}
    for r in all_faults_logs:
        by_service.setdefault(r["service"], []).append(r)
    slos = {s["name"]: s for s in all_faults.truth["slos"]}
    checked = 0
    for f in all_faults.truth["faults"]:
        for imp in f.get("impact", []):
            slo = slos[imp["slo"]]
            recs = [
                r
                for r in by_service[imp["service"]]
                if f["effect_start_ns"] <= r["ts_ns"] < f["end_ns"]
            ]
            if slo["sli"] == "availability":
                good = sum(r["status"] < 500 for r in recs)
            else:
                good = sum(r["latency_ms"] <= slo["threshold_ms"] for r in recs)
            assert (imp["good"], imp["total"]) == (good, len(recs)), (f["fault_id"], imp["slo"])
            want = (1 - good / len(recs)) / (1 - slo["objective"] / 100)
            assert imp["burn_rate"] == pytest.approx(want)
            checked += 1
    assert checked > 10


@pytest.mark.parametrize(
    "name", ["small.yaml", "all-faults.yaml", "platform-day.yaml", "week-burn.yaml"]
)
def test_every_shipped_scenario_validates(name: str) -> None:
    sc = load_scenario(SCENARIOS / name)
    assert sc.faults

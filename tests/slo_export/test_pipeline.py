"""End to end: replay logs -> sli_windows -> windows.rollups -> budget_ledger
sink -> `srestream report`, whose totals must equal the counts in the logs."""

from __future__ import annotations

import json
import pathlib
import sqlite3

import orjson

from srestream._cli import main as cli_main

S = 1_000_000_000
T0 = 1_700_006_400 * S  # 2023-11-15T00:00:00Z
SLOS = """
slos:
  - name: availability
    service: checkout
    objective: 99.9
    period: 30d
    sli: {kind: availability, total: {}, good: {status: {lt: 500}}}
    labels: {team: payments}
  - name: availability
    service: search
    objective: 99.5
    period: 7d
    sli: {kind: availability, total: {}, good: {status: {lt: 500}}}
    labels: {team: discovery}
"""


def write_logs(path: pathlib.Path) -> dict[str, tuple[int, int]]:
    """2 hours, 1 request/s per service; checkout fails 10 minutes; search
    sends nothing for 15 minutes (a gap).  Returns (good, total) per service."""
    lines = []
    counts = {"checkout": [0, 0], "search": [0, 0]}
    for i in range(2 * 3600):
        ts = T0 + i * S
        for svc in ("checkout", "search"):
            if svc == "search" and 3600 <= i < 4500:
                continue
            bad = svc == "checkout" and 1800 <= i < 2400
            counts[svc][0] += not bad
            counts[svc][1] += 1
            lines.append(orjson.dumps({"ts": ts, "service": svc, "status": 500 if bad else 200}))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return {k: (v[0], v[1]) for k, v in counts.items()}


def run(tmp_path: pathlib.Path, name: str, batch_size: int) -> pathlib.Path:
    d = tmp_path / name
    d.mkdir()
    (d / "slos.yaml").write_text(SLOS)
    (d / "pipeline.yaml").write_text("""
name: ledger_test
sources:
  logs: {type: replay, paths: [../logs.jsonl]}
stages:
  parse: {type: parse_json, inputs: [logs]}
  windows: {type: sli_windows, inputs: [parse], slos: slos.yaml}
sinks:
  ledger: {type: budget_ledger, inputs: [windows.rollups], path: ledger.sqlite}
""")
    code = cli_main(["replay", str(d / "pipeline.yaml"), "--batch-size", str(batch_size),
                     "--store", str(d / "state.sqlite"), "--quiet", "--progress", "never"])
    assert code == 0
    return d


def ledger_rows(path: pathlib.Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return [row for t in ("sli_rollup_minute", "sli_rollup_hour", "sli_rollup_day")
                for row in db.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3")]


def test_replay_fills_the_ledger_and_the_report_counts_every_request(
        tmp_path: pathlib.Path) -> None:
    counts = write_logs(tmp_path / "logs.jsonl")
    a = run(tmp_path, "a", 1024)
    b = run(tmp_path, "b", 7)
    assert ledger_rows(a / "ledger.sqlite") == ledger_rows(b / "ledger.sqlite")  # deterministic
    # with --out, the ledger sits with the run's outputs (and its store)
    out_dir = tmp_path / "out"
    assert cli_main(["replay", str(a / "pipeline.yaml"), "--out", str(out_dir), "--quiet",
                     "--progress", "never"]) == 0
    assert ledger_rows(out_dir / "ledger.sqlite") == ledger_rows(a / "ledger.sqlite")

    out = a / "report.json"
    end = "2023-11-15T02:00:00Z"
    assert cli_main(["report", "--store", str(a / "ledger.sqlite"), "--slos", str(a / "slos.yaml"),
                     "--format", "json", "--at", end, "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    by_service = {s["service"]: s for s in doc["slos"]}
    for svc, (good, total) in counts.items():
        w7 = by_service[svc]["windows"][0]
        assert (w7["good"], w7["total"]) == (good, total)
    checkout = by_service["checkout"]["windows"][0]
    # 600 failed of 7200 against a 0.1% budget: 83.3 budgets' worth
    assert abs(checkout["budget_consumed"] - 600 / (0.001 * 7200)) < 1e-6
    # the 15-minute gap of search shows as lost coverage (2h of data minus 15 min over 7 days)
    search = by_service["search"]["windows"][0]
    assert abs(checkout["coverage"] - 2 * 3600 / (7 * 86400)) < 1e-9
    assert abs(search["coverage"] - (2 * 3600 - 15 * 60) / (7 * 86400)) < 1e-9

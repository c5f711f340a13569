"""The windows stage against the simulator's ground truth: the recorded
scenario (tests/data/scenario_small) comes with per-minute good/total for
each of its SLOs counted independently from logs.jsonl (truth.json)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from srestream._component import Outputs
from srestream._records import RawLine
from srestream.parse._json import parse_json_batch
from srestream.slo import SliWindows, parse_slos

DATA = pathlib.Path(__file__).parent.parent / "data" / "scenario_small"


def _slo_doc(truth: dict[str, Any]) -> dict[str, Any]:
    slos = []
    for s in truth["slos"]:
        kind = s["sli"]
        name = s["name"][len(s["service"]) + 1 :]
        sli: dict[str, Any] = (
            {"kind": "availability", "total": {}, "good": {"status": {"lt": 500}}}
            if kind == "availability"
            else {"kind": "latency", "total": {}, "threshold": f"{s['threshold_ms']:g}ms"}
        )
        slos.append({"name": name, "service": s["service"], "objective": s["objective"], "sli": sli})
    return {"slos": slos}


def test_per_minute_counts_match_the_simulators_truth() -> None:
    truth = json.loads((DATA / "truth.json").read_text())
    slos = parse_slos(_slo_doc(truth))
    lines = (DATA / "logs.jsonl").read_text().splitlines()
    raws = [RawLine(source="logs.jsonl", position=i + 1, offset=0, text=t) for i, t in enumerate(lines)]
    win = SliWindows(slos, allowed_lateness_ns=10_000_000_000)
    out = []
    for i in range(0, len(raws), 500):
        out += win.process(parse_json_batch(raws[i : i + 500], Outputs()))
    out += win.flush()
    assert win.late_records == 0
    minute = 60_000_000_000
    checked = 0
    for s in truth["slos"]:
        name = s["name"][len(s["service"]) + 1 :]
        start = s["minutes"]["start_ns"]
        mine = {r.bucket_ts_ns: (r.good, r.total) for r in out
                if r.slo == name and r.service == s["service"] and r.resolution_ns == minute}
        for k, (g, t) in enumerate(zip(s["minutes"]["good"], s["minutes"]["total"], strict=True)):
            got = mine.get(start + k * minute, (0, 0))
            assert got == (g, t), (s["name"], k)
            checked += 1
        assert sum(g for g, _ in mine.values()) == s["good"]
        assert sum(t for _, t in mine.values()) == s["total"]
    assert checked == 8 * 120

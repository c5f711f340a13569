"""End to end on a simulated world with known faults (pipelines/scenarios/
all-faults.yaml, generated in the test by srestream.sim): the burn-rate
stage pages on the outage and the bad deploy inside their effect windows,
tickets the slow burn without paging on it, and reports the data gap as
lost coverage."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from srestream._component import Outputs
from srestream._records import RawLine
from srestream.parse._json import parse_json_batch
from srestream.slo import Alert, Budget, BurnRateDetector, SliWindows, parse_slos

from .test_ground_truth import _slo_doc

ROOT = pathlib.Path(__file__).parent.parent.parent
MIN = 60_000_000_000


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[Any], SliWindows]:
    from srestream.sim import simulate
    from srestream.sim._scenario import load_scenario

    out = tmp_path_factory.mktemp("all_faults")
    simulate(load_scenario(ROOT / "pipelines" / "scenarios" / "all-faults.yaml"), out, formats=["jsonl"])
    truth = json.loads((out / "truth.json").read_text())
    slos = parse_slos(_slo_doc(truth))
    win = SliWindows(slos, allowed_lateness_ns=10_000_000_000)
    burn = BurnRateDetector(slos, budget_interval_ns=10 * MIN)
    produced: list[Any] = []
    batch: list[RawLine] = []
    with open(out / "logs.jsonl", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            batch.append(RawLine(source="logs.jsonl", position=n, offset=0, text=line.rstrip("\n")))
            if len(batch) == 2048:
                produced += burn.process(win.process(parse_json_batch(batch, Outputs())))
                batch = []
    produced += burn.process(win.process(parse_json_batch(batch, Outputs())))
    produced += burn.process(win.flush())
    produced += burn.flush()
    return truth, produced, win


def _fault(truth: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(f for f in truth["faults"] if f["kind"] == kind)


def test_pages_on_the_outage_and_the_bad_deploy_within_their_windows(world: Any) -> None:
    truth, produced, _ = world
    pages = [a for a in produced if isinstance(a, Alert) and a.tier == "page" and a.state == "firing"]
    for kind in ("dependency_outage", "bad_deploy"):
        f = _fault(truth, kind)
        services = {f["root_cause"], *f["affected_services"]}
        hits = [a for a in pages if a.service in services
                and f["effect_start_ns"] <= a.ts_ns <= f["end_ns"] + 5 * MIN]
        assert hits, kind
        # Detection within minutes of the effect, not at its end.
        assert min(a.ts_ns for a in hits) - f["effect_start_ns"] <= 10 * MIN, kind


def test_the_slow_burn_tickets_but_does_not_page(world: Any) -> None:
    truth, produced, _ = world
    f = _fault(truth, "slow_burn")
    mine = [a for a in produced if isinstance(a, Alert) and a.service == f["root_cause"]
            and a.slo == "availability" and a.state == "firing"]
    assert any(a.tier == "ticket" for a in mine)
    assert not any(a.tier == "page" for a in mine)


def test_the_monitoring_gap_is_no_data_and_lowers_coverage(world: Any) -> None:
    truth, produced, win = world
    gap = next(f for f in truth["faults"] if f["kind"] == "data_gap" and not f["params"].get("services"))
    assert win.late_records == 0
    web = [b for b in produced if isinstance(b, Budget) and b.slo == "availability" and b.service == "web"]
    before = [b for b in web if b.ts_ns <= gap["effect_start_ns"]]
    after = [b for b in web if b.ts_ns >= gap["end_ns"]]
    assert before[-1].coverage == 1.0
    # Coverage counts from the first data: 10 minutes lost out of the time observed.
    gap_ns = gap["end_ns"] - gap["effect_start_ns"]
    assert after[0].coverage == pytest.approx(1.0 - gap_ns / (after[0].ts_ns - truth["start_ns"]), abs=0.01)
    assert after[0].coverage < 0.96

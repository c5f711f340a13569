"""The README's demo: it runs, it finds the incident, and it is deterministic."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent.parent
DEMO = ROOT / "pipelines" / "demo.yaml"


def replay(out: pathlib.Path, *extra: str) -> dict[str, bytes]:
    r = subprocess.run(
        [sys.executable, "-m", "srestream", "replay", str(DEMO), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.jsonl"))}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return replay(tmp_path_factory.mktemp("demo"))


def test_demo_pages_on_the_outage(demo: dict[str, bytes]) -> None:
    alerts = [json.loads(x) for x in demo["alerts.jsonl"].splitlines()]
    truth = json.loads((ROOT / "tests/data/scenario_small/truth.json").read_text())
    onset = min(f["onset_ns"] for f in truth["faults"])
    pages = [a for a in alerts if a["severity"] == "page" and a["state"] == "firing"]
    assert pages, "the outage must page"
    assert {a["service"] for a in pages} >= {"web", "orders-db"}
    # Paged within minutes of the fault's onset, never before it.
    first = min(a["ts_ns"] for a in pages)
    assert onset <= first <= onset + 10 * 60 * 10**9
    for a in alerts:
        for field in ("ts", "slo", "service", "severity", "state", "burn_rate", "long_window",
                      "short_window", "budget_remaining", "dedup_key"):
            assert field in a, field
    # The root cause of the recorded incident is ranked first on every page.
    root = truth["faults"][0]["root_cause"]
    for a in pages:
        assert a["root_cause_candidates"][0]["service"] == root, a["root_cause_candidates"]


def test_demo_reports_budgets_and_policy_actions(demo: dict[str, bytes]) -> None:
    budgets = [json.loads(x) for x in demo["budgets.jsonl"].splitlines()]
    assert {b["service"] for b in budgets} == {"web", "checkout", "orders-db"}
    for b in budgets:
        for field in ("ts", "slo", "service", "objective", "period", "good", "total",
                      "budget_remaining", "burn_rate_1h", "exhaustion_ts"):
            assert field in b, field
        assert 0 <= b["good"] <= b["total"]
    actions = [json.loads(x) for x in demo["policy_actions.jsonl"].splitlines()]
    assert any(a["action"] == "freeze" and a["service"] == "orders-db" for a in actions)


@pytest.mark.parametrize("batch", ["1", "7"])
def test_demo_is_byte_identical_at_other_batch_sizes(
    tmp_path: pathlib.Path, demo: dict[str, bytes], batch: str
) -> None:
    assert replay(tmp_path, "--batch-size", batch) == demo

"""The end-to-end benchmark (bench/pipeline.py, SPEC §5) runs the real graph
runner on a small simulated workload and reports sane figures: records/s,
the ratio to msgspec decoding, record→alert latency percentiles, and pages
on both faults of the workload; the harness picks it up with its latency
columns."""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import msgspec
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:  # `bench` is a top-level directory, not an installed package
    sys.path.insert(0, str(ROOT))

import bench._common
from bench import pipeline
from bench._harness import discover, headline


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # A workload of its own, so the test neither needs nor disturbs bench/.cache.
    mp = pytest.MonkeyPatch()
    mp.setattr(bench._common, "CACHE", tmp_path_factory.mktemp("bench_cache"))
    try:
        return pipeline.main(["--records", "20000", "--runs", "1"])
    finally:
        mp.undo()


def test_reports_throughput_against_msgspec_decoding(figures: dict[str, Any]) -> None:
    assert figures["benchmark"] == "pipeline"
    assert 19_000 <= figures["records"] <= 20_000
    assert figures["records_per_s"] > 0
    assert figures["msgspec_decode_records_per_s"] > 0
    # The ratio is reported to 4 decimals (bench._common.result).
    assert figures["ratio_to_msgspec_decode"] == pytest.approx(
        figures["records_per_s"] / figures["msgspec_decode_records_per_s"], abs=1e-4
    )
    assert figures["peak_rss_kb"] > 0


def test_reports_record_to_alert_latency(figures: dict[str, Any]) -> None:
    p50, p99 = figures["p50_latency_ms"], figures["p99_latency_ms"]
    assert p99 >= p50 >= 0
    # No alert can take longer than the whole run to reach the sink.
    assert figures["max_latency_ms"] <= figures["seconds"] * 1000
    assert figures["alerts_timed"] > 0
    assert figures["alerts_timed"] + figures["alerts_at_end_of_input"] <= figures["alerts"]


def test_the_outage_and_the_bad_deploy_each_paged(figures: dict[str, Any]) -> None:
    pages = figures["pages_per_fault"]
    assert pages["dependency_outage"] > 0
    assert pages["bad_deploy"] > 0
    assert figures["budgets"] > 0


def test_the_harness_runs_it_and_shows_its_latency_columns(figures: dict[str, Any]) -> None:
    assert "pipeline" in discover()
    row = headline(figures)
    assert row["p50_latency_ms"] == figures["p50_latency_ms"]
    assert row["p99_latency_ms"] == figures["p99_latency_ms"]
    assert row["records_per_s"] == figures["records_per_s"]


def test_a_pipeline_that_does_not_page_gets_no_figures() -> None:
    truth = {
        "faults": [
            {
                "kind": "dependency_outage",
                "root_cause": "db",
                "affected_services": ["web"],
                "effect_start_ns": 0,
                "end_ns": 10 * pipeline.MINUTE_NS,
            },
            {
                "kind": "bad_deploy",
                "root_cause": "api",
                "affected_services": [],
                "effect_start_ns": 20 * pipeline.MINUTE_NS,
                "end_ns": 30 * pipeline.MINUTE_NS,
            },
        ]
    }
    page = {"tier": "page", "state": "firing", "service": "web", "ts_ns": pipeline.MINUTE_NS}
    run = pipeline.RunResult(
        seconds=1.0,
        records_in=5,
        latencies_ms=[1.0],
        to_burn_ms=[],
        from_burn_ms=[],
        at_end=0,
        alerts=[page],
        budgets=1,
    )
    with pytest.raises(pipeline.BrokenPipeline, match="bad_deploy"):
        pipeline.check_run(run, truth, 5)
    deploy_page = {**page, "service": "api", "ts_ns": 21 * pipeline.MINUTE_NS}
    ok = pipeline.RunResult(**{**msgspec.structs.asdict(run), "alerts": [page, deploy_page]})
    pipeline.check_run(ok, truth, 5)
    with pytest.raises(pipeline.BrokenPipeline, match="lines reached"):
        pipeline.check_run(ok, truth, 6)

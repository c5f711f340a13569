"""The benchmark harness runs modules in fresh processes and reports their figures."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent.parent


def _bench(tmp_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SRESTREAM_BENCH_CACHE": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=110,
    )


def test_harness_runs_baseline_and_a_subset_in_fresh_processes(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "figures.json"
    proc = _bench(tmp_path, "sim", "--records", "5000", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["results"]
    assert [r["benchmark"] for r in rows] == ["baseline", "sim"]
    for r in rows:
        assert r["ok"]
        assert r["records_per_s"] > 0
        assert 0 < r["ratio_to_msgspec_decode"]
        assert r["peak_rss_kb"] > 10_000  # a Python process, measured by the harness
        assert r["figures"]["records"] == 5000
    assert rows[0]["figures"]["matches_truth"] is True
    # The table names every row; the workload went into the cache once.
    assert "| baseline" in proc.stdout and "| sim" in proc.stdout
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_harness_refuses_an_unknown_benchmark(tmp_path: pathlib.Path) -> None:
    proc = _bench(tmp_path, "no_such_bench", "--quick")
    assert proc.returncode == 2
    assert "no_such_bench" in proc.stderr and "baseline" in proc.stderr


def test_headline_reads_the_figures_under_their_usual_names() -> None:
    from bench._harness import headline

    std = headline(
        {
            "records": 10,
            "records_per_s": 50.0,
            "ratio_to_msgspec_decode": 0.5,
            "p50_latency_ms": 1.0,
            "p99_latency_ms": 9.0,
        }
    )
    assert std == {
        "records": 10,
        "records_per_s": 50.0,
        "ratio_to_msgspec_decode": 0.5,
        "p50_latency_ms": 1.0,
        "p99_latency_ms": 9.0,
    }
    # Variants: lines/s, a decode rate without a ratio, a p99 with a qualifier.
    var = headline(
        {
            "lines": 4,
            "lines_per_s": 100.0,
            "msgspec_decode_lines_per_s": 400.0,
            "p99_batch_latency_ms": 3.0,
        }
    )
    assert var == {
        "records": 4,
        "records_per_s": 100.0,
        "ratio_to_msgspec_decode": 0.25,
        "p50_latency_ms": None,
        "p99_latency_ms": 3.0,
    }
    # A decode rate is never taken for the benchmark's own rate.
    assert headline({"msgspec_decode_records_per_s": 9.0})["records_per_s"] is None


def test_a_module_that_generated_its_workload_is_flagged_for_a_clean_rerun(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench._harness import run_one

    monkeypatch.setenv("SRESTREAM_BENCH_CACHE", str(tmp_path / "cache"))
    first = run_one("baseline", ["--records", "3000", "--runs", "1"], timeout=100)
    again = run_one("baseline", ["--records", "3000", "--runs", "1"], timeout=100)
    assert first["ok"] and again["ok"]
    assert first["generated_workload"] is True
    assert again["generated_workload"] is False
    assert again["figures"]["records"] == 3000

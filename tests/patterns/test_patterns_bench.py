"""bench/patterns.py stays runnable (the figures themselves come from the bench, not tests)."""

from __future__ import annotations

import importlib.util

from bench import patterns as bench_patterns


def test_bench_runs_and_reports_its_figures() -> None:
    figures = bench_patterns.main(["--records", "3000", "--runs", "1"])
    assert figures["records"] == 3000 and figures["lines_per_s"] > 0
    assert figures["grouping_accuracy"]["mean"] >= 0.95
    if importlib.util.find_spec("drain3") is None:
        assert figures["drain3_lines_per_s"] is None and figures["ratio_to_drain3"] is None
    else:
        assert figures["drain3_lines_per_s"] > 0


def test_bench_stream_keeps_templates_and_changes_numbers() -> None:
    lines = bench_patterns.make_stream(40_000)
    base = bench_patterns.load_contents()
    assert len(lines) == 40_000 and lines[: len(base)] == base
    replay = lines[len(base) : 2 * len(base)]
    assert replay != base
    assert [len(x.split()) for x in replay] == [len(x.split()) for x in base]

"""Benchmark of ``srestream backtest`` (``srestream.slo.backtest``).

Input: the standard workload (``bench._common.workload``: 100 services, two
hours, a datastore outage and a bad deploy, ``--records`` JSON lines) and
the SLO file ``bench.pipeline`` builds from its truth.json (availability
and latency SLOs); the ground truth is the same truth.json.

Figures (medians of ``--runs``):

* ``records_per_s``: the whole backtest of the SLO file alone (replay
  source -> parse_json -> SLI windows -> burn rate -> scoring), from files;
* ``variants_4_records_per_s``: the same with three objective variants
  besides the baseline (they share the SLI windows: one parse, one
  windows pass, four burn-rate detectors); ``variant_cost_ratio`` is
  seconds with four variants / seconds with one;
* ``cpu_records_per_s``, ``variants_4_cpu_records_per_s`` and
  ``variant_cpu_cost_ratio``: the same by process CPU time, steadier on a
  shared, noisy machine;
* ``msgspec_decode_records_per_s`` / ``ratio_to_msgspec_decode``;
* ``page_recall``, ``page_precision``, ``page_delay_median_s``: the
  baseline's page-tier scores (a run without recall 1 is refused: the
  outage and the deploy must both page);
* ``peak_rss_kb``.

Run: ``python -m bench.backtest [--records 200000] [--runs 3]``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio

from bench._common import arg_parser, decode_rate, median, read_lines, result, workload
from bench.pipeline import slo_file


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from srestream.slo import (
        BacktestVariant,
        backtest,
        load_ground_truth,
        load_slos,
        objective_variant,
    )

    args = arg_parser(__doc__.splitlines()[0]).parse_args(argv)
    wl = workload(args.records)
    base = BacktestVariant(name="baseline", slos=load_slos(slo_file(wl)))
    truth = load_ground_truth(str(wl.truth))
    many = [base, *(objective_variant(base, o) for o in (99.99, 99.5, 99.0))]

    def run(variants: list[BacktestVariant]) -> tuple[float, float, Any]:
        t, c = time.perf_counter(), time.process_time()
        report = anyio.run(lambda: backtest([str(wl.logs)], variants, truth))
        return time.perf_counter() - t, time.process_time() - c, report

    one, four, cpu_one, cpu_four = [], [], [], []
    report = None
    for _ in range(max(1, args.runs)):
        secs, cpu, report = run([base])
        one.append(secs)
        cpu_one.append(cpu)
        secs, cpu, _ = run(many)
        four.append(secs)
        cpu_four.append(cpu)
    assert report is not None
    [page] = [s for s in report.variants[0].summary if s.tier == "page"]
    if page.recall != 1.0:
        raise SystemExit(f"backtest: the baseline missed {page.missed}; figures refused")
    records = report.history.records
    secs_one, secs_four = median(one), median(four)
    return result(
        "backtest",
        records=records,
        seconds=secs_one,
        decode_records_per_s=decode_rate(read_lines(wl.logs), args.runs),
        runs=args.runs,
        variants_4_records_per_s=round(records / secs_four, 1),
        variant_cost_ratio=round(secs_four / secs_one, 3),
        cpu_records_per_s=round(records / median(cpu_one), 1),
        variants_4_cpu_records_per_s=round(records / median(cpu_four), 1),
        variant_cpu_cost_ratio=round(median(cpu_four) / median(cpu_one), 3),
        page_recall=page.recall,
        page_precision=page.precision,
        page_delay_median_s=(page.delay_median_ns or 0) / 1e9,
    )


if __name__ == "__main__":
    print(json.dumps(main()))

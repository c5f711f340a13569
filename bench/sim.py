"""Simulator generation speed (issue 6 asks for at least 200k lines/s).

Generates the standard benchmark scenario (100 services, an outage and a bad
deploy) into a temporary directory, not the cache, and reports:

* ``lines_per_s`` / ``records_per_s``: JSONL log lines per second, JSONL only
  (ground truth included: it is always computed); ``cpu_lines_per_s`` the
  same per second of this process's CPU time (steadier on a shared machine);
* ``all_formats_lines_per_s``: lines of every output (JSONL, logfmt, syslog,
  OTLP, OpenMetrics) per second when all are written, and
  ``all_formats_spans_per_s``;
* the msgspec decode rate of the generated lines, for scale.

Run: ``python -m bench.sim [--records N] [--runs 3] [--services 100]``.
"""

from __future__ import annotations

import json
import tempfile
import time
from typing import Any

from bench._common import arg_parser, decode_rate, median, read_lines, result, workload_scenario
from srestream.sim import scenario_from_dict, simulate


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = arg_parser(__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=100, help="services in the graph (5..300)")
    args = ap.parse_args(argv)
    sc = scenario_from_dict(workload_scenario(args.records, services=args.services))
    jsonl_secs, jsonl_cpu, all_secs, all_lines = [], [], [], []
    lines: list[bytes] = []
    spans = 0
    for _ in range(max(1, args.runs)):
        with tempfile.TemporaryDirectory() as d:
            cpu0 = time.process_time()
            r = simulate(sc, d, formats=["jsonl"], max_spans=args.records)
            jsonl_cpu.append(time.process_time() - cpu0)
            jsonl_secs.append(r.seconds)
            spans = r.spans
            if not lines:
                lines = read_lines(f"{d}/logs.jsonl")
        with tempfile.TemporaryDirectory() as d:
            r = simulate(
                sc,
                d,
                formats=["jsonl", "logfmt", "syslog", "otlp", "openmetrics"],
                max_spans=args.records,
            )
            all_secs.append(r.seconds)
            all_lines.append(sum(r.files.values()))
    all_med = median(all_secs)
    return result(
        "sim",
        records=spans,
        seconds=median(jsonl_secs),
        decode_records_per_s=decode_rate(lines, args.runs),
        runs=args.runs,
        lines_per_s=round(spans / median(jsonl_secs), 1),
        cpu_lines_per_s=round(spans / median(jsonl_cpu), 1),
        all_formats_lines_per_s=round(median(all_lines) / all_med, 1),
        all_formats_spans_per_s=round(spans / all_med, 1),
        services=args.services,
        target_lines_per_s=200_000,
    )


if __name__ == "__main__":
    print(json.dumps(main()))

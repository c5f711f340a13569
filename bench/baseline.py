"""Baseline: the SLI computation as a plain Python loop.

msgspec decodes each JSON log line of the standard workload into a small
Struct (ts, service, status), and two dict counters keep good (status < 500)
and total per (service, minute).  Every benchmark table shows this row so
that each stage's overhead over "the obvious loop" is visible; the loop is
also checked against the workload's ``truth.json`` so it computes the real
thing.

Run: ``python -m bench.baseline [--records N] [--runs 3]``.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from bench._common import arg_parser, decode_rate, read_lines, result, timed, workload


class _Line(msgspec.Struct):
    ts: str
    service: str
    status: int


def count_good_total(
    lines: list[bytes],
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """(good, total) per (service, minute 'YYYY-MM-DDTHH:MM')."""
    decode = msgspec.json.Decoder(_Line).decode
    good: dict[tuple[str, str], int] = {}
    total: dict[tuple[str, str], int] = {}
    for line in lines:
        rec = decode(line)
        key = (rec.service, rec.ts[:16])
        total[key] = total.get(key, 0) + 1
        if rec.status < 500:
            good[key] = good.get(key, 0) + 1
    return good, total


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = arg_parser(__doc__.splitlines()[0]).parse_args(argv)
    wl = workload(args.records)
    lines = read_lines(wl.logs)
    secs, _ = timed(lambda: count_good_total(lines), args.runs)
    good, total = count_good_total(lines)
    truth = wl.load_truth()["service_counts"]
    per_service: dict[str, list[int]] = {}
    for (svc, _m), n in total.items():
        per_service.setdefault(svc, [0, 0])[1] += n
    for (svc, _m), n in good.items():
        per_service[svc][0] += n
    agrees = all(
        per_service.get(s, [0, 0]) == [c["total"] - c["errors"], c["total"]]
        for s, c in truth.items()
    )
    return result(
        "baseline",
        records=len(lines),
        seconds=secs,
        decode_records_per_s=decode_rate(lines, args.runs),
        runs=args.runs,
        matches_truth=agrees,
    )


if __name__ == "__main__":
    print(json.dumps(main()))

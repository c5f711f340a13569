"""Benchmark: a full compliance report (``srestream report``) for 100
services x 3 SLOs x 90 days of rollups.  Target: under 1 s.

The ledger is filled once through the real ingest path
(:func:`srestream.slo._ledger.write_rollups`) and cached under
``bench/.cache/``: hour rollups for days 0..83, minute rollups for the last
7 days (the default minute retention), then :func:`compact` as the sink
would.  The timed part is what ``srestream report`` does after reading the
SLO file: open the ledger, compute every window of every SLO, service and
team, and render both Markdown and JSON.

``--records N`` is the number of minute rollups the 90 days represent
(default 100 x 3 x 90 x 1440 = 38.88 M); services = N / (3 x 90 x 1440).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from typing import Any

from bench._common import CACHE, arg_parser, result, timed
from srestream.slo._ledger import (
    DAY_NS,
    HOUR_NS,
    MINUTE_NS,
    compact,
    open_ledger_db,
    write_rollups,
)
from srestream.slo._records import SliRollup
from srestream.slo._report import ReportSLO, build_report, render_json, render_markdown

SLOS_PER_SERVICE = (("availability", 99.9), ("latency", 99.0), ("freshness", 99.5))
DAYS = 90
MINUTE_DAYS = 7
START_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
_FORMAT = 2  # bump when the fill changes


def _slos(services: int) -> list[ReportSLO]:
    return [
        ReportSLO(slo=slo, service=f"svc-{i:03d}", objective=obj,
                  period="30d" if slo != "freshness" else "month",
                  period_ns=30 * DAY_NS if slo != "freshness" else None,
                  calendar="" if slo != "freshness" else "month",
                  team=f"team-{i % 12:02d}", tier=str(1 + i % 3))
        for i in range(services) for slo, obj in SLOS_PER_SERVICE
    ]


def _fill(path: str, services: int) -> None:
    rnd = random.Random(42)
    db = open_ledger_db(path)
    keys = [(s.slo, s.service) for s in _slos(services)]
    end = START_NS + DAYS * DAY_NS
    minutes_from = end - MINUTE_DAYS * DAY_NS
    batch: list[SliRollup] = []

    def flush() -> None:
        write_rollups(db, batch)
        batch.clear()

    for h in range((DAYS - MINUTE_DAYS) * 24):  # old history: already compacted to hours
        ts = START_NS + h * HOUR_NS
        for slo, service in keys:
            total = rnd.randint(30_000, 60_000)
            batch.append(SliRollup(slo=slo, service=service, bucket_ts_ns=ts, resolution_ns=HOUR_NS,
                                   good=total - rnd.randint(0, 60), total=total,
                                   no_data_ns=rnd.choice((0,) * 30 + (MINUTE_NS,))))
        if len(batch) >= 50_000:
            flush()
    for m in range(MINUTE_DAYS * 1440):
        ts = minutes_from + m * MINUTE_NS
        for slo, service in keys:
            total = rnd.randint(500, 1000)
            batch.append(SliRollup(slo=slo, service=service, bucket_ts_ns=ts,
                                   resolution_ns=MINUTE_NS, good=total - (rnd.random() < 0.5),
                                   total=total))
        if len(batch) >= 50_000:
            flush()
    flush()
    compact(db, now_ns=end, minute_retention_ns=MINUTE_DAYS * DAY_NS, retention_ns=400 * DAY_NS)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def ledger(services: int) -> str:
    """The cached ledger file for ``services`` services (filled if missing)."""
    path = CACHE / f"report-ledger-v{_FORMAT}-{services}svc-{DAYS}d.sqlite"
    if not path.exists():
        os.makedirs(CACHE, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(tmp + suffix):
                os.remove(tmp + suffix)
        _fill(tmp, services)
        os.replace(tmp, path)
    return str(path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    per_service = len(SLOS_PER_SERVICE) * DAYS * 1440
    ap = arg_parser("full compliance report from the budget ledger",
                    default_records=100 * per_service)
    args = ap.parse_args(argv)
    services = max(1, round(args.records / per_service))
    t = time.perf_counter()
    path = ledger(services)
    fill_seconds = time.perf_counter() - t
    slos = _slos(services)
    # a ragged "now" (not on an hour): every window needs day, hour and minute rows
    at = START_NS + DAYS * DAY_NS - 83 * MINUTE_NS

    sizes: dict[str, int] = {}

    def run() -> None:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            report = build_report(db, slos, at)
        finally:
            db.close()
        sizes["md"] = len(render_markdown(report))
        sizes["json"] = len(render_json(report))
        sizes["slos"] = len(report.slos)

    secs, all_runs = timed(run, args.runs)
    cli_secs = _cli_seconds(path, slos, at)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("sli_rollup_minute", "sli_rollup_hour", "sli_rollup_day")}
    return result(
        "report", records=services * per_service, seconds=secs, decode_records_per_s=None,
        runs=args.runs, services=services, slos=sizes["slos"], days=DAYS,
        report_seconds_median=round(secs, 4), report_seconds_runs=[round(x, 4) for x in all_runs],
        target_seconds=1.0, under_target=secs < 1.0, ledger_rows=rows,
        ledger_fill_seconds=round(fill_seconds, 1), markdown_bytes=sizes["md"],
        json_bytes=sizes["json"], cli_seconds=round(cli_secs, 3),
    )


def _cli_seconds(path: str, slos: list[ReportSLO], at: int) -> float:
    """Wall time of ``srestream report`` as a user runs it: a fresh Python,
    the SLO file read and validated, the report written (one run)."""
    import subprocess
    import sys
    import tempfile

    import yaml

    sli = {
        "availability": {"kind": "availability", "total": {}, "good": {"status": {"lt": 500}}},
        "latency": {"kind": "latency", "total": {}, "threshold": "300ms"},
        "freshness": {"kind": "ratio", "total": {"attrs.queue": "ingest"},
                      "good": {"attrs.lag_s": {"lt": 60}}},
    }
    doc = {"slos": [{
        "name": s.slo, "service": s.service, "objective": s.objective, "period": s.period,
        "sli": sli[s.slo], "labels": {"team": s.team, "tier": s.tier},
    } for s in slos]}
    with tempfile.TemporaryDirectory() as d:
        slo_file = os.path.join(d, "slos.yaml")
        with open(slo_file, "w", encoding="utf-8") as f:
            yaml.safe_dump(doc, f)
        cli = "import sys; from srestream._cli import main; sys.exit(main(sys.argv[1:]))"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", cli, "report", "--store", path, "--slos", slo_file,
                        "--at", str(at / 1e9), "-o", os.path.join(d, "report.md")],
                       check=True, timeout=120)
        return time.perf_counter() - t


if __name__ == "__main__":
    print(json.dumps(main()))

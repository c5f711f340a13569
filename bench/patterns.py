"""Benchmark of the online template miner (``template_miner``), masking on.

Input: the message (Content column) of the 8 Loghub-2k systems, interleaved,
replayed until ``--records`` lines, every number of each replay redrawn with
a random value and length (seeded), so the variables change as in a real
stream while the templates recur.  Figures (medians of ``--runs`` runs, in this process):

* ``lines_per_s``: :meth:`TemplateMiner.add` over the lines (tokenise, mask,
  match, learn);
* ``stage_records_per_s``: the stage's batch function over LogRecords
  (adds the per-record ``msgspec.structs.replace``);
* ``p99_batch_latency_ms``: per 1024-record batch, in the stage run;
* ``msgspec_decode_lines_per_s`` and ``ratio_to_msgspec_decode``: decoding
  the same lines as JSON strings with msgspec alone, for scale;
* ``grouping_accuracy``: GA per Loghub system (original and corrected
  labels) of the same generic configuration;
* ``drain3_lines_per_s`` and ``ratio_to_drain3``: drain3 (bench-only extra,
  ``pip install '.[bench]'``) on the same input with equivalent masks; null
  when drain3 is not installed.

Run: ``python -m bench.patterns [--records N] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from srestream import LogRecord
from srestream._component import Outputs
from srestream.patterns import TemplateMiner, label_batch
from srestream.patterns._accuracy import grouping_accuracy, mine_ids

SYSTEMS = ("HDFS", "Hadoop", "Spark", "Zookeeper", "Apache", "OpenSSH", "Linux", "HealthApp")
_HERE = Path(__file__).resolve().parent
DATA = _HERE.parent / "tests" / "data" / "patterns"

csv.field_size_limit(sys.maxsize)


def load_system(system: str) -> list[dict[str, str]]:
    """Rows (LineId, Content, EventTemplate, EventTemplateCorrected) of one system."""
    with open(DATA / f"{system}_2k.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def grouping_accuracies(corrected: bool = False) -> dict[str, float]:
    """GA of a fresh miner (the one generic configuration) on each system."""
    key = "EventTemplateCorrected" if corrected else "EventTemplate"
    out = {}
    for s in SYSTEMS:
        rows = load_system(s)
        labels = [" ".join(r[key].split()) for r in rows]
        out[s] = round(grouping_accuracy(labels, mine_ids([r["Content"] for r in rows])), 4)
    out["mean"] = round(sum(out.values()) / len(SYSTEMS), 4)
    return out


def load_contents() -> list[str]:
    """The Content column of each system, interleaved line by line."""
    per_system = [[r["Content"] for r in load_system(s)] for s in SYSTEMS]
    return [
        lines[i] for i in range(max(map(len, per_system))) for lines in per_system if i < len(lines)
    ]


_DIGITS = re.compile(r"\d+")


def make_stream(n: int, seed: int = 7) -> list[str]:
    """``n`` lines: the Loghub contents replayed; from the second replay on,
    every number is redrawn with a random length up to its own (so both the
    values and the shapes of variables change, as in a real stream, while
    the templates recur)."""
    base = load_contents()
    rng = random.Random(seed)

    def redraw(m: re.Match[str]) -> str:
        width = rng.randint(1, len(m.group()))
        return str(rng.randrange(10 ** (width - 1) if width > 1 else 0, 10**width))

    out: list[str] = list(base[:n])
    while len(out) < n:
        out.extend(_DIGITS.sub(redraw, line) for line in base[: n - len(out)])
    return out


def _time_miner(lines: list[str]) -> float:
    miner = TemplateMiner()
    add = miner.add
    t0 = time.perf_counter()
    for line in lines:
        add(line)
    return time.perf_counter() - t0


def _time_stage(records: list[LogRecord], batch: int = 1024) -> tuple[float, list[float]]:
    miner = TemplateMiner()
    outputs = Outputs("bench")
    lat: list[float] = []
    t0 = time.perf_counter()
    for i in range(0, len(records), batch):
        b0 = time.perf_counter()
        label_batch(miner, records[i : i + batch], outputs)
        outputs.take()
        lat.append(time.perf_counter() - b0)
    return time.perf_counter() - t0, lat


def _drain3_miner() -> Any:
    try:
        from drain3 import TemplateMiner as Drain3Miner  # type: ignore[import-untyped]
        from drain3.masking import MaskingInstruction  # type: ignore[import-untyped]
        from drain3.template_miner_config import TemplateMinerConfig  # type: ignore[import-untyped]
    except ImportError:
        return None
    cfg = TemplateMinerConfig()
    cfg.profiling_enabled = False
    cfg.drain_max_clusters = 10_000
    # The masks of drain3's own example configuration (IPs, numbers, hex,
    # UUID-ish ids), the same classes our generic tokenizer masks.
    cfg.masking_instructions = [
        MaskingInstruction(
            r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"
        ),
        MaskingInstruction(
            r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"
        ),
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
        MaskingInstruction(r"(?<=executed cmd )(\".+?\")", "CMD"),
    ]
    return Drain3Miner(config=cfg)


def _time_drain3(lines: list[str]) -> float | None:
    miner = _drain3_miner()
    if miner is None:
        return None
    add = miner.add_log_message
    t0 = time.perf_counter()
    for line in lines:
        add(line)
    return time.perf_counter() - t0


def _time_msgspec(encoded: list[bytes]) -> float:
    decode = msgspec.json.Decoder(str).decode
    t0 = time.perf_counter()
    for b in encoded:
        decode(b)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        prog="python -m bench.patterns", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-drain3", action="store_true", help="skip the drain3 comparison")
    args = ap.parse_args(argv)
    lines = make_stream(args.records)
    n = len(lines)
    records = [LogRecord(ts_ns=i, message=m, service="bench") for i, m in enumerate(lines)]
    enc = msgspec.json.Encoder()
    encoded = [enc.encode(m) for m in lines]

    miner_t, stage_t, drain_t, dec_t, p99s = [], [], [], [], []
    for _ in range(args.runs):
        miner_t.append(_time_miner(lines))
        st, lat = _time_stage(records)
        stage_t.append(st)
        lat.sort()
        p99s.append(lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1e3)
        dec_t.append(_time_msgspec(encoded))
        d = None if args.no_drain3 else _time_drain3(lines)
        if d is not None:
            drain_t.append(d)

    lps = n / statistics.median(miner_t)
    drain_lps = n / statistics.median(drain_t) if drain_t else None
    dec_lps = n / statistics.median(dec_t)
    probe = TemplateMiner()
    for line in lines:
        probe.add(line)
    return {
        "benchmark": "patterns",
        "records": n,
        "runs": args.runs,
        "lines_per_s": round(lps),
        "stage_records_per_s": round(n / statistics.median(stage_t)),
        "p99_batch_latency_ms": round(statistics.median(p99s), 3),
        "batch_size": 1024,
        "templates": len(probe),
        "msgspec_decode_lines_per_s": round(dec_lps),
        "ratio_to_msgspec_decode": round(lps / dec_lps, 4),
        "drain3_lines_per_s": round(drain_lps) if drain_lps else None,
        "ratio_to_drain3": round(lps / drain_lps, 2) if drain_lps else None,
        "grouping_accuracy": grouping_accuracies(),
        "grouping_accuracy_corrected_labels": grouping_accuracies(corrected=True),
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "pid": os.getpid(),
    }


if __name__ == "__main__":
    print(json.dumps(main()))

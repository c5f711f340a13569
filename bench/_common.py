"""Helpers shared by the benchmark modules (``bench/<name>.py``).

* :func:`workload` — a JSONL (and optionally OTLP/OpenMetrics) workload
  generated once by :mod:`srestream.sim` and cached under ``bench/.cache/``,
  keyed by its parameters and by the simulator's source (a simulator change
  regenerates it).  The default workload: 100 services, two hours of event
  time with a dependency outage and a bad deploy, ``records`` log lines.
* :func:`decode_rate` — records/s of msgspec decoding the same lines alone
  (``msgspec.json.Decoder().decode`` per line, lines already in memory),
  the yardstick of every benchmark.
* :func:`timed` / :func:`median` — medians of N runs (the machine is shared
  and noisy: quote medians of 3).
* :func:`peak_rss_kb`, :func:`percentiles`, :func:`arg_parser`,
  :func:`result` — the figures every module reports, under the names the
  harness reads: ``records_per_s``, ``msgspec_decode_records_per_s``,
  ``ratio_to_msgspec_decode`` (records_per_s / decode records_per_s: 1.0
  means as fast as decoding alone), ``p50_latency_ms``, ``p99_latency_ms``,
  ``peak_rss_kb``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

__all__ = [
    "CACHE",
    "Workload",
    "arg_parser",
    "decode_rate",
    "median",
    "peak_rss_kb",
    "percentiles",
    "read_lines",
    "result",
    "timed",
    "workload",
    "workload_scenario",
]

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("SRESTREAM_BENCH_CACHE", HERE / ".cache"))
GENERATED_MARK = "bench: generated workload"
DEFAULT_RECORDS = 200_000
QUICK_RECORDS = 20_000


class Workload(msgspec.Struct, frozen=True, kw_only=True):
    """Files of a generated workload (``None`` when not generated)."""

    dir: Path
    logs: Path
    events: Path
    truth: Path
    traces: Path | None = None
    metrics: Path | None = None
    records: int = 0

    def load_truth(self) -> dict[str, Any]:
        with open(self.truth, "rb") as f:
            out: dict[str, Any] = json.loads(f.read())
        return out


def _sim_fingerprint() -> str:
    from srestream import sim

    h = hashlib.sha256()
    for p in sorted(Path(sim.__file__).parent.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def workload_scenario(
    records: int, *, services: int = 100, hours: float = 2.0, seed: int = 1
) -> dict[str, Any]:
    """The benchmark scenario as a dict: ``services`` services, ``hours`` of
    event time sized so that about ``records`` spans fall in it, an outage of
    a datastore at 40% and a bad deploy at 70% of the time."""
    from srestream.sim import build_graph
    from srestream.sim._scenario import Baseline, ServiceCounts

    graph = build_graph(ServiceCounts(count=services), seed)
    spans_per_request = _expected_spans(graph, Baseline().call_probability)
    seconds = hours * 3600
    rps = records / seconds / spans_per_request
    ds = next(s.name for s in graph.services if s.kind == "datastore" and graph.upstream_of(s.name))
    mid = next(s.name for s in graph.services if s.kind == "mid")
    minutes = round(seconds / 60)
    return {
        "name": f"bench-{services}svc-{records}",
        "seed": seed,
        "start": "2026-04-06T12:00:00Z",
        # A margin past the sized window: generation stops at `records` spans.
        "duration": f"{round(minutes * 1.5)}m",
        "services": {"count": services},
        "traffic": {"requests_per_second": rps, "diurnal_amplitude": 0.0},
        "slos": [
            {
                "name": "availability",
                "sli": "availability",
                "objective": 99.9,
                "kinds": ["frontend", "gateway", "mid"],
            },
            {"name": "latency", "sli": "latency", "objective": 99.0, "threshold_ms": 300},
        ],
        "faults": [
            {
                "kind": "dependency_outage",
                "service": ds,
                "onset": f"{round(minutes * 0.4)}m",
                "duration": f"{max(1, round(minutes * 0.1))}m",
            },
            {
                "kind": "bad_deploy",
                "service": mid,
                "onset": f"{round(minutes * 0.7)}m",
                "duration": f"{max(2, round(minutes * 0.1))}m",
                "errors_after": "1m",
                "error_ratio": 0.3,
            },
        ],
    }


def _expected_spans(graph: Any, call_probability: float) -> float:
    index = graph.index()
    memo: dict[int, float] = {}

    def size(i: int) -> float:
        if i not in memo:
            s = graph.services[i]
            p = 1.0 if s.kind == "frontend" else call_probability
            memo[i] = 1.0 + sum(p * size(index[d]) for d in s.dependencies)
        return memo[i]

    fes = [i for i, s in enumerate(graph.services) if s.kind == "frontend"]
    return sum(size(i) for i in fes) / len(fes)


def workload(
    records: int = DEFAULT_RECORDS,
    *,
    services: int = 100,
    hours: float = 2.0,
    seed: int = 1,
    formats: Sequence[str] = ("jsonl",),
) -> Workload:
    """The cached workload for these parameters, generated if missing."""
    from srestream.sim import scenario_from_dict, simulate

    spec = workload_scenario(records, services=services, hours=hours, seed=seed)
    key = hashlib.sha256(
        json.dumps([spec, sorted(formats), records, _sim_fingerprint()], sort_keys=True).encode()
    ).hexdigest()[:16]
    prefix = f"{spec['name']}-{hours:g}h-seed{seed}-{'-'.join(sorted(formats))}-"
    d = CACHE / f"{prefix}{key}"
    if not (d / "truth.json").exists():
        # The same parameters under another key: an older simulator's output.
        for stale in CACHE.glob(f"{prefix}*"):
            if stale.is_dir() and ".tmp" not in stale.name:
                shutil.rmtree(stale, ignore_errors=True)
        tmp = d.with_name(d.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        simulate(scenario_from_dict(spec), tmp, formats=list(formats), max_spans=records)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d.parent, exist_ok=True)
        os.replace(tmp, d)
        # The harness sees this and runs the benchmark again, so that neither
        # its timings nor its peak RSS include generating the workload.
        print(f"{GENERATED_MARK} {d.name}", file=sys.stderr, flush=True)

    def opt(name: str) -> Path | None:
        p = d / name
        return p if p.exists() else None

    with open(d / "truth.json", "rb") as f:
        n = json.loads(f.read())["files"].get("logs.jsonl", 0)
    return Workload(
        dir=d,
        logs=d / "logs.jsonl",
        events=d / "events.jsonl",
        truth=d / "truth.json",
        traces=opt("traces.otlp.jsonl"),
        metrics=opt("metrics.om.txt"),
        records=n,
    )


def read_lines(path: str | os.PathLike[str]) -> list[bytes]:
    """The lines of a file, without their newline."""
    with open(path, "rb") as f:
        return f.read().splitlines()


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def timed(fn: Callable[[], Any], runs: int = 3) -> tuple[float, list[float]]:
    """Run ``fn`` ``runs`` times: (median seconds, every run's seconds)."""
    times = []
    for _ in range(max(1, runs)):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return median(times), times


def decode_rate(lines: Sequence[bytes | str], runs: int = 3) -> float:
    """Records/s of msgspec decoding ``lines`` alone, one by one (median)."""
    decode = msgspec.json.Decoder().decode

    def run() -> None:
        for line in lines:
            decode(line)

    secs, _ = timed(run, runs)
    return len(lines) / secs if secs else 0.0


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 99)) -> dict[float, float]:
    """Nearest-rank percentiles of ``values`` (empty → {})."""
    if not values:
        return {}
    s = sorted(values)
    n = len(s)
    return {q: s[min(n - 1, max(0, round(q / 100 * n + 0.5) - 1))] for q in qs}


def peak_rss_kb() -> int:
    """Peak resident set size of this process in KiB (Linux ru_maxrss)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def arg_parser(description: str, default_records: int = DEFAULT_RECORDS) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--records", type=int, default=default_records, help="workload size")
    ap.add_argument("--runs", type=int, default=3, help="runs to take the median of")
    return ap


def result(
    name: str,
    *,
    records: int,
    seconds: float,
    decode_records_per_s: float | None,
    p50_latency_ms: float | None = None,
    p99_latency_ms: float | None = None,
    runs: int = 3,
    **extra: Any,
) -> dict[str, Any]:
    """The figures of one benchmark, in the names the harness reads."""
    rps = records / seconds if seconds else 0.0
    return {
        "benchmark": name,
        "records": records,
        "seconds": round(seconds, 4),
        "records_per_s": round(rps, 1),
        "msgspec_decode_records_per_s": (
            round(decode_records_per_s, 1) if decode_records_per_s else None
        ),
        "ratio_to_msgspec_decode": (
            round(rps / decode_records_per_s, 4) if decode_records_per_s else None
        ),
        "p50_latency_ms": p50_latency_ms,
        "p99_latency_ms": p99_latency_ms,
        "peak_rss_kb": peak_rss_kb(),
        "runs": runs,
        **extra,
    }

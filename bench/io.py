"""IO: lines/s of the replay and tail sources over one JSONL file.

What a source costs before any parsing: reading the file in chunks in a
worker thread, cutting it into :class:`RawLine` records with byte offsets
and line numbers, and yielding batches of 1024.  Measured over a file of
``--records`` lines (default 1M, about 200 bytes each, written once to a
temporary directory):

* **replay**: :class:`FileReplay` over the one file (no time decoding);
* **replay_merge3**: the same lines split round-robin into three files and
  merged back in event-time order (each line's ``ts`` decoded);
* **tail**: :class:`FileTail` following the file from its start until every
  line is out;

each against msgspec decoding the same lines alone (``ratio_to_msgspec_decode``;
the headline figure is the replay).  Medians of ``--runs`` runs.

Run: ``python -m bench.io [--records N] [--runs 3]``.
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import anyio
import orjson

from bench._common import arg_parser, decode_rate, median, peak_rss_kb, read_lines, result
from srestream.io import FileReplay, FileTail

DEFAULT_LINES = 1_000_000
BATCH = 1024


def write_jsonl(path: str, n: int) -> None:
    """``n`` log lines of about 200 bytes, 1 ms apart, 40 services."""
    base = 1_767_225_600_000
    levels = ("INFO", "INFO", "INFO", "WARN", "ERROR")
    with open(path, "wb") as f:
        chunk = []
        for i in range(n):
            ms = base + i
            chunk.append(orjson.dumps({
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z",
                "service": f"svc-{i % 40:02d}",
                "level": levels[i % 5],
                "message": f"GET /api/v1/items/{i % 977} {200 if i % 50 else 503}",
                "status": 200 if i % 50 else 503,
                "latency_ms": (i * 7919) % 1000 / 10,
                "trace_id": f"{i * 2654435761 % (1 << 64):016x}{i:016x}",
            }) + b"\n")
            if len(chunk) >= 10000:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))


async def _drain_replay(paths: list[str]) -> int:
    n = 0
    async for batch in FileReplay(paths, batch_size=BATCH)():
        n += len(batch)
    return n


async def _drain_tail(path: str, expected: int) -> int:
    tail = FileTail([path], batch_size=BATCH, poll_interval_s=0.01)
    n = 0
    gen = tail()
    try:
        async for batch in gen:
            n += len(batch)
            if n >= expected:
                break
    finally:
        await gen.aclose()
    return n


def _timed_interleaved(fns: dict[str, Callable[[], Any]], expected: int, runs: int) -> dict[str, float]:
    """Median seconds of each, the runs interleaved so that drift on a noisy
    machine hits them alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(max(1, runs)):
        for name, fn in fns.items():
            gc.collect()
            t = time.perf_counter()
            got = anyio.run(fn)
            times[name].append(time.perf_counter() - t)
            if got != expected:
                raise SystemExit(f"{name}: read {got} lines, expected {expected}")
    return {k: median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = arg_parser("replay and tail sources", default_records=DEFAULT_LINES).parse_args(argv)
    n = args.records
    with tempfile.TemporaryDirectory(prefix="srestream-bench-io-") as tmp:
        path = os.path.join(tmp, "app.jsonl")
        write_jsonl(path, n)
        lines = read_lines(path)
        decode = decode_rate(lines, args.runs)
        del lines
        parts = [os.path.join(tmp, f"part{k}.jsonl") for k in range(3)]
        with open(path, "rb") as src:
            outs = [open(p, "wb") for p in parts]  # noqa: SIM115  (closed below)
            for i, ln in enumerate(src):
                outs[i % 3].write(ln)
            for o in outs:
                o.close()

        secs = _timed_interleaved(
            {
                "replay": lambda: _drain_replay([path]),
                "merge": lambda: _drain_replay(parts),
                "tail": lambda: _drain_tail(path, n),
            },
            n,
            args.runs,
        )
        replay_s, merge_s, tail_s = secs["replay"], secs["merge"], secs["tail"]
        size = os.path.getsize(path)

    out = result(
        "io",
        records=n,
        seconds=replay_s,
        decode_records_per_s=decode,
        runs=args.runs,
        file_mib=round(size / 2**20, 1),
        replay_lines_per_s=round(n / replay_s, 1),
        replay_merge3_lines_per_s=round(n / merge_s, 1),
        tail_lines_per_s=round(n / tail_s, 1),
        replay_ratio_to_msgspec_decode=round(n / replay_s / decode, 4),
        replay_merge3_ratio_to_msgspec_decode=round(n / merge_s / decode, 4),
        tail_ratio_to_msgspec_decode=round(n / tail_s / decode, 4),
    )
    out["peak_rss_kb"] = peak_rss_kb()
    return out


if __name__ == "__main__":
    print(json.dumps(main()))

"""Core: what the graph runner costs over a plain Python loop.

The same computation two ways over the standard workload's JSON log lines
(already in memory):

* **plain loop**: msgspec-decode each line into a small Struct and count
  good (status < 500) and total per service;
* **runner**: a ListSource of the lines → a decode stage → 5 pass-through
  stages → a sink counting good/total per service, run by
  :class:`srestream.Runner` with a bounded stream on every edge,

at batch sizes 1, 64 and 1024.  ``runner_cost_over_loop_b<N>`` is the
runner's time over the loop's, minus one (0.05 = 5% slower); the target is
under 0.10 at batch 1024.

Run: ``python -m bench.core [--records N] [--runs 3]``.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import anyio
import msgspec

from bench._common import arg_parser, decode_rate, median, read_lines, result, workload
from srestream import Runner, map_batches, pipeline_from_dict
from srestream.testing import ListSource

BATCH_SIZES = (1, 64, 1024)
STAGES = 5


class _Line(msgspec.Struct, gc=False):
    service: str
    status: int


_decode = msgspec.json.Decoder(_Line).decode


def plain_loop(lines: Sequence[bytes]) -> dict[str, list[int]]:
    counts: dict[str, list[int]] = {}
    for line in lines:
        rec = _decode(line)
        c = counts.get(rec.service)
        if c is None:
            c = counts[rec.service] = [0, 0]
        c[1] += 1
        if rec.status < 500:
            c[0] += 1
    return counts


def decode_batch(batch: Sequence[bytes]) -> list[_Line]:
    return [_decode(line) for line in batch]


class CountSink:
    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}

    async def __call__(self, batches: AsyncIterator[Sequence[_Line]], /) -> None:
        counts = self.counts
        async with aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                for rec in batch:
                    c = counts.get(rec.service)
                    if c is None:
                        c = counts[rec.service] = [0, 0]
                    c[1] += 1
                    if rec.status < 500:
                        c[0] += 1


def _pipeline() -> Any:
    stages: dict[str, Any] = {"decode": {"type": "passthrough", "inputs": ["src"]}}
    prev = "decode"
    for i in range(STAGES):
        stages[f"pass{i}"] = {"type": "passthrough", "inputs": [prev]}
        prev = f"pass{i}"
    return pipeline_from_dict(
        {
            "name": "bench_core",
            "sources": {"src": {"type": "list"}},
            "stages": stages,
            "sinks": {"count": {"type": "capture", "inputs": [prev]}},
        }
    )


def run_graph(lines: list[bytes], batch_size: int) -> tuple[float, dict[str, list[int]]]:
    pipeline = _pipeline()
    sink = CountSink()
    runner = Runner(
        pipeline,
        bindings={
            "src": ListSource(lines, batch_size=batch_size),
            "decode": map_batches(decode_batch),
            "count": sink,
        },
    )
    gc.collect()
    t = time.perf_counter()
    anyio.run(runner.run)
    return time.perf_counter() - t, sink.counts


def _loop_seconds(lines: list[bytes]) -> tuple[float, dict[str, list[int]]]:
    gc.collect()
    t = time.perf_counter()
    counts = plain_loop(lines)
    return time.perf_counter() - t, counts


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = arg_parser(__doc__.splitlines()[0]).parse_args(argv)
    lines = read_lines(workload(args.records).logs)
    gc.collect()
    gc.freeze()  # the input, held in memory for both, is not what either side should pay to scan
    _, expected = _loop_seconds(lines)
    extra: dict[str, Any] = {}
    loop_all: list[float] = []
    secs_1024 = 0.0
    for b in BATCH_SIZES:
        # Batch size 1 crosses a stream per record: measure it on fewer records.
        sample = lines if b > 1 else lines[: max(1, len(lines) // 20)]
        scale = len(lines) / len(sample)
        ratios, times = [], []
        # Loop and runner alternate, and each pair gives a ratio: on a shared,
        # noisy machine the pair sees the same load, the median of ratios is stable.
        for _ in range(args.runs):
            loop, _ = _loop_seconds(sample)
            secs, counts = run_graph(sample, b)
            if b > 1:
                assert counts == expected, "the runner must compute what the loop computes"
            ratios.append(secs / loop)
            times.append(secs * scale)
            loop_all.append(loop * scale)
        secs = median(times)
        extra[f"runner_records_per_s_b{b}"] = round(len(lines) / secs, 1)
        extra[f"runner_cost_over_loop_b{b}"] = round(median(ratios) - 1, 4)
        if b == 1024:
            secs_1024 = secs
    extra["plain_loop_records_per_s"] = round(len(lines) / median(loop_all), 1)
    return result(
        "core",
        records=len(lines),
        seconds=secs_1024,
        decode_records_per_s=decode_rate(lines, args.runs),
        runs=args.runs,
        stages=STAGES,
        **extra,
    )


if __name__ == "__main__":
    print(json.dumps(main()))

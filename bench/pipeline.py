"""End to end (SPEC §5): the graph runner from replayed JSON lines to alerts.

The standard workload (``bench._common.workload``: 100 services, two hours
of event time, a datastore outage at 40% and a bad deploy at 70%) replayed
as fast as possible by :class:`srestream.Runner` through the real
components, batches of 1024 lines::

    replay ─► parse_json ─► trace_correlator ─► sli_windows ─► burn_rate ─► root_cause ─► directory
                                  └──────────── .correlations ────────────────┘   (alerts.jsonl,
                                                                                   budgets.jsonl)

The SLO file (``pipeline-slos.yaml`` in the workload's cache directory) is
made from the workload's ``truth.json``: every SLO the simulator scored,
availability (good: status < 500) and latency (under its threshold), 30-day
period, the Workbook's burn-rate windows.

Figures (medians of ``--runs`` runs, each a fresh Runner and output dir):

* ``records_per_s``: log lines / wall time of ``Runner.run``;
  ``ratio_to_msgspec_decode``: that over msgspec decoding the same lines
  alone (``msgspec_decode_records_per_s``; lines in memory, read in chunks
  so that the yardstick does not raise the peak RSS);
* ``p50_latency_ms`` / ``p99_latency_ms``: record→alert latency over every
  alert record (pending, firing, resolved) that reached the sink.  For an
  alert evaluated at the end of bucket ``ts_ns``, the record that closed
  that bucket is the first log line at or past ``ts_ns`` (the windows'
  watermark, allowed lateness 0: the workload is in time order); the
  latency is the wall time from the moment the batch holding that line left
  the source to the moment the alert reached the sink.  Measured with a
  thin wrapper around the replay source's logic (a timestamp per batch it
  yields) and one around the directory sink's (a timestamp per alert it
  receives), bound with ``Runner(..., bindings=...)``; srestream is not
  modified;
* ``source_to_burn_rate_p50_ms`` / ``..._p99_ms`` and
  ``burn_rate_to_sink_p50_ms`` / ``..._p99_ms``: the same latency cut in two
  where the alert leaves ``burn_rate`` (a third wrapper): the first part is
  parse, correlation and windows, the second is ``root_cause`` holding the
  alert until the correlator's statistics reach the alert's time;
* ``without_root_cause_records_per_s``, ``without_root_cause_p50_latency_ms``
  and ``..._p99_latency_ms``: the same pipeline with the sink reading
  ``burn_rate`` directly, run alternately with the full one;
  ``root_cause_time_ratio``: median over those pairs of the full run's time
  over the variant's (what ranking root causes multiplies the cost by);
* ``alerts``, ``pages``, ``budgets``, ``alerts_at_end_of_input`` (alerts
  raised by the end of the replay, not by a record: not in the latency);
* ``peak_rss_kb`` after the runs (before the decode yardstick).

The benchmark refuses to report figures when the pipeline is broken: the
outage and the bad deploy must each page (a firing ``page`` alert on the
culprit or a service it affected, between the fault's effect and 5 minutes
after its end), every line must reach the parser, and alerts.jsonl and
budgets.jsonl must be written.

Run: ``python -m bench.pipeline [--records 200000] [--runs 3]``.
"""

from __future__ import annotations

import bisect
import gc
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import msgspec

from bench._common import Workload, arg_parser, median, peak_rss_kb, percentiles, result, workload
from srestream import Runner, pipeline_from_dict
from srestream._component import BuildContext, Outputs
from srestream.slo import Alert

BATCH = 1024
LATENESS_NS = 0
MINUTE_NS = 60_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- the SLO file and the pipeline ---------------------------------------------


def slo_document(truth: dict[str, Any]) -> dict[str, Any]:
    """SLOs for every (SLI, service) the simulator scored in ``truth``."""
    slos = []
    for s in truth["slos"]:
        sli: dict[str, Any] = (
            {"kind": "availability", "total": {}, "good": {"status": {"lt": 500}}}
            if s["sli"] == "availability"
            else {"kind": "latency", "total": {}, "threshold": f"{s['threshold_ms']:g}ms"}
        )
        slos.append(
            {
                "name": s["name"][len(s["service"]) + 1 :],
                "service": s["service"],
                "objective": s["objective"],
                "period": "30d",
                "sli": sli,
                "labels": {"team": s.get("team") or ""},
            }
        )
    return {"version": 1, "slos": slos}


def slo_file(wl: Workload) -> Path:
    """The SLO file of the workload, written beside it (once)."""
    path = wl.dir / "pipeline-slos.yaml"
    text = msgspec.yaml.encode(slo_document(wl.load_truth()))
    if not path.exists() or path.read_bytes() != text:
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_bytes(text)
        os.replace(tmp, path)
    return path


def pipeline_dict(logs: Path, slos: Path, out: str, *, root_cause: bool = True) -> dict[str, Any]:
    """The benchmark's pipeline; without ``root_cause`` the sink reads
    ``burn_rate`` directly (the variant that shows what ranking costs)."""
    d: dict[str, Any] = {
        "name": "bench_pipeline",
        "runtime": {"batch_size": BATCH},
        "sources": {"logs": {"type": "replay", "paths": [str(logs)]}},
        "stages": {
            "parse": {"type": "parse_json", "inputs": ["logs"]},
            "traces": {"type": "trace_correlator", "inputs": ["parse"], "emit_links": False},
            "windows": {
                "type": "sli_windows",
                "inputs": ["traces"],
                "slos": str(slos),
                "allowed_lateness": f"{LATENESS_NS // 1_000_000_000}s",
            },
            "burn_rate": {"type": "burn_rate", "inputs": ["windows"], "slos": str(slos)},
            "root_cause": {"type": "root_cause", "inputs": ["burn_rate", "traces.correlations"]},
        },
        "sinks": {"out": {"type": "directory", "path": out, "inputs": ["root_cause"]}},
    }
    if not root_cause:
        del d["stages"]["root_cause"]
        d["sinks"]["out"]["inputs"] = ["burn_rate"]
    return d


# -- the instruments: thin wrappers bound in place of the built logic -------------

_clock = time.perf_counter_ns


def _alert_key(a: Alert) -> tuple[str, str, int]:
    return (a.dedup_key, a.state, a.ts_ns)


class TimedSource:
    """The replay logic, noting when each batch leaves it and its last line."""

    def __init__(self, inner: Callable[[], AsyncIterator[Sequence[Any]]]) -> None:
        self.inner = inner
        self.left_ns: list[int] = []
        self.last_position: list[int] = []

    async def __call__(self) -> AsyncIterator[Sequence[Any]]:
        left, last = self.left_ns.append, self.last_position.append
        async with aclosing(self.inner()) as gen:  # type: ignore[type-var]
            async for batch in gen:
                if batch:
                    last(batch[-1].position)
                    left(_clock())
                yield batch

    def snapshot(self) -> Any:
        return self.inner.snapshot()  # type: ignore[attr-defined]

    def restore(self, state: Any) -> None:
        self.inner.restore(state)  # type: ignore[attr-defined]


class TimedStage:
    """A stage's logic, noting when each alert leaves it."""

    def __init__(
        self, inner: Callable[[AsyncIterator[Sequence[Any]]], AsyncIterator[Sequence[Any]]]
    ) -> None:
        self.inner = inner
        self.alerts: dict[tuple[str, str, int], int] = {}

    def __call__(self, upstream: AsyncIterator[Sequence[Any]]) -> AsyncIterator[Sequence[Any]]:
        return self._run(upstream)

    async def _run(self, upstream: AsyncIterator[Sequence[Any]]) -> AsyncIterator[Sequence[Any]]:
        seen = self.alerts
        async with aclosing(self.inner(upstream)) as gen:  # type: ignore[type-var]
            async for batch in gen:
                now = _clock()
                for r in batch:
                    if type(r) is Alert:
                        seen.setdefault(_alert_key(r), now)
                yield batch

    def snapshot(self) -> Any:
        return self.inner.snapshot()  # type: ignore[attr-defined]

    def restore(self, state: Any) -> None:
        self.inner.restore(state)  # type: ignore[attr-defined]


class TimedSink:
    """The directory sink's logic, noting when each alert reaches it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.arrivals: list[tuple[Alert, int]] = []

    async def __call__(self, batches: AsyncIterator[Sequence[Any]], /) -> None:
        await self.inner(self._stamped(batches))

    async def _stamped(self, batches: AsyncIterator[Sequence[Any]]) -> AsyncIterator[Sequence[Any]]:
        arrivals = self.arrivals.append
        async with aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                now = _clock()
                for r in batch:
                    if type(r) is Alert:
                        arrivals((r, now))
                yield batch

    def flush(self) -> None:
        self.inner.flush()

    def snapshot(self) -> Any:
        return self.inner.snapshot()

    def restore(self, state: Any) -> None:
        self.inner.restore(state)


# -- one run ----------------------------------------------------------------------


class RunResult(msgspec.Struct, kw_only=True):
    seconds: float
    records_in: int
    latencies_ms: list[float]
    to_burn_ms: list[float]
    from_burn_ms: list[float]
    at_end: int
    alerts: list[dict[str, Any]]
    budgets: int


def _build(pipeline: Any, cid: str, section: dict[str, Any]) -> Any:
    ctx = BuildContext(
        component_id=cid, outputs=Outputs(cid), batch_size=BATCH, base_dir=pipeline.base_dir
    )
    return section[cid].build(ctx)


def run_once(
    wl: Workload, slos: Path, line_ts_ns: Sequence[int], *, root_cause: bool = True
) -> RunResult:
    """One replay of the workload through a fresh Runner."""
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as out:
        pipeline = pipeline_from_dict(pipeline_dict(wl.logs, slos, out, root_cause=root_cause))
        source = TimedSource(_build(pipeline, "logs", pipeline.sources))
        burn = TimedStage(_build(pipeline, "burn_rate", pipeline.stages))
        sink = TimedSink(_build(pipeline, "out", pipeline.sinks))
        runner = Runner(pipeline, bindings={"logs": source, "burn_rate": burn, "out": sink})
        gc.collect()
        t0 = time.perf_counter()
        summary = anyio.run(runner.run)
        seconds = time.perf_counter() - t0
        with open(os.path.join(out, "alerts.jsonl"), "rb") as f:
            alerts = [json.loads(ln) for ln in f]
        with open(os.path.join(out, "budgets.jsonl"), "rb") as f:
            budgets = sum(1 for _ in f)
    parsed = summary.statistics.stages["parse"].records_in
    # Newest event time the source had sent once each batch had left it.
    newest: list[int] = []
    hi = -1
    prev = 0
    for pos in source.last_position:
        chunk = line_ts_ns[prev:pos]
        if chunk:
            hi = max(hi, max(chunk))
        newest.append(hi)
        prev = pos
    latencies, to_burn, from_burn = [], [], []
    at_end = 0
    for alert, reached in sink.arrivals:
        i = bisect.bisect_left(newest, alert.ts_ns + LATENESS_NS)
        if i == len(newest):
            at_end += 1  # closed by the end of the input, not by a record
            continue
        left = source.left_ns[i]
        latencies.append((reached - left) / 1e6)
        burned = burn.alerts.get(_alert_key(alert))
        if burned is not None:
            to_burn.append((burned - left) / 1e6)
            from_burn.append((reached - burned) / 1e6)
    return RunResult(
        seconds=seconds,
        records_in=parsed,
        latencies_ms=latencies,
        to_burn_ms=to_burn,
        from_burn_ms=from_burn,
        at_end=at_end,
        alerts=alerts,
        budgets=budgets,
    )


# -- checks and the yardstick -----------------------------------------------------


def pages_per_fault(truth: dict[str, Any], alerts: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Firing page alerts, per fault of the workload, on its culprit or a
    service it affected, from its effect to 5 minutes after its end."""
    pages = [a for a in alerts if a["tier"] == "page" and a["state"] == "firing"]
    out = {}
    for f in truth["faults"]:
        services = {f["root_cause"], *f["affected_services"]}
        out[f["kind"]] = sum(
            1
            for a in pages
            if a["service"] in services
            and f["effect_start_ns"] <= a["ts_ns"] <= f["end_ns"] + 5 * MINUTE_NS
        )
    return out


class BrokenPipeline(AssertionError):
    """The pipeline did not do its job: no figures are reported for it."""


def check_run(r: RunResult, truth: dict[str, Any], records: int) -> None:
    """Raise :class:`BrokenPipeline` unless every line reached the parser,
    both output files were written and the outage and the bad deploy each
    paged (explicit raises: still checked under ``python -O``)."""
    if r.records_in != records:
        raise BrokenPipeline(f"{r.records_in} of {records} lines reached parse_json")
    if not r.alerts or not r.budgets:
        raise BrokenPipeline("alerts.jsonl and budgets.jsonl must be written")
    pages = pages_per_fault(truth, r.alerts)
    for kind in ("dependency_outage", "bad_deploy"):
        if not pages.get(kind):
            raise BrokenPipeline(f"no page for the {kind}: the pipeline is broken ({pages})")
    if not r.latencies_ms:
        raise BrokenPipeline("no alert was closed by a record: no latency to report")


class _Ts(msgspec.Struct):
    ts: datetime


def line_times_ns(path: Path) -> list[int]:
    """Event time of every line (untimed: to find the batch closing a bucket)."""
    dec = msgspec.json.Decoder(_Ts)
    us = 1_000
    out = []
    with open(path, "rb") as f:
        for ln in f:
            d = dec.decode(ln).ts - _EPOCH
            out.append(((d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds) * us)
    return out


def decode_rate_chunked(path: Path, runs: int) -> float:
    """Records/s of ``msgspec.json.Decoder().decode`` per line, lines in
    memory (read ~8 MiB at a time, not timed), median of ``runs``."""
    decode = msgspec.json.Decoder().decode
    times = []
    n = 0
    for _ in range(max(1, runs)):
        total = 0.0
        n = 0
        with open(path, "rb") as f:
            while True:
                lines = f.readlines(8 << 20)
                if not lines:
                    break
                t = time.perf_counter()
                for line in lines:
                    decode(line)
                total += time.perf_counter() - t
                n += len(lines)
        times.append(total)
    secs = median(times)
    return n / secs if secs else 0.0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = arg_parser(__doc__.splitlines()[0]).parse_args(argv)
    wl = workload(args.records)
    truth = wl.load_truth()
    slos = slo_file(wl)
    ts = line_times_ns(wl.logs)
    # The full pipeline and the variant without root_cause alternate, so
    # that each pair sees the same load on a shared machine.
    runs, bare = [], []
    for _ in range(max(1, args.runs)):
        runs.append(run_once(wl, slos, ts))
        bare.append(run_once(wl, slos, ts, root_cause=False))
    rss = peak_rss_kb()
    for r in runs + bare:
        check_run(r, truth, wl.records)

    def med(
        pick: Callable[[RunResult], list[float]], q: float, of: list[RunResult] = runs
    ) -> float | None:
        vals = [percentiles(pick(r), (q,)).get(q) for r in of]
        got = [v for v in vals if v is not None]
        return round(median(got), 2) if got else None

    last = runs[-1]
    return result(
        "pipeline",
        records=wl.records,
        seconds=median(r.seconds for r in runs),
        decode_records_per_s=decode_rate_chunked(wl.logs, args.runs),
        p50_latency_ms=med(lambda r: r.latencies_ms, 50),
        p99_latency_ms=med(lambda r: r.latencies_ms, 99),
        runs=len(runs),
        peak_rss_kb=rss,
        max_latency_ms=round(median(max(r.latencies_ms) for r in runs), 2),
        source_to_burn_rate_p50_ms=med(lambda r: r.to_burn_ms, 50),
        source_to_burn_rate_p99_ms=med(lambda r: r.to_burn_ms, 99),
        burn_rate_to_sink_p50_ms=med(lambda r: r.from_burn_ms, 50),
        burn_rate_to_sink_p99_ms=med(lambda r: r.from_burn_ms, 99),
        without_root_cause_records_per_s=round(wl.records / median(r.seconds for r in bare), 1),
        without_root_cause_p50_latency_ms=med(lambda r: r.latencies_ms, 50, bare),
        without_root_cause_p99_latency_ms=med(lambda r: r.latencies_ms, 99, bare),
        root_cause_time_ratio=round(
            median(f.seconds / b.seconds for f, b in zip(runs, bare, strict=True)), 3
        ),
        alerts=len(last.alerts),
        alerts_timed=len(last.latencies_ms),
        alerts_at_end_of_input=last.at_end,
        pages=sum(1 for a in last.alerts if a["tier"] == "page" and a["state"] == "firing"),
        pages_per_fault=pages_per_fault(truth, last.alerts),
        budgets=last.budgets,
        slos=len(truth["slos"]),
        batch_size=BATCH,
        run_seconds=[round(r.seconds, 3) for r in runs],
    )


if __name__ == "__main__":
    print(json.dumps(main()))

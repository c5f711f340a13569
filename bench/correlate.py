"""Benchmark of the trace correlator (``trace_correlator``).

Input: the standard simulated workload (``bench._common.workload``: 100
services, a datastore outage and a bad deploy) as both its JSON log lines
(one per span, with trace, span and request ids) and its OTLP traces,
decoded up front into ``LogRecord`` and ``Span`` records and merged in event
time: ``--records`` is spans + logs (default 500,000).  Nothing timed
includes decoding.

Figures (medians of ``--runs`` runs, each with a fresh correlator):

* ``records_per_s``: :meth:`TraceCorrelator.process` over 1024-record
  batches plus :meth:`finish` (trace summaries, a link per log, per-service
  stats, the dependency graph), forwarding the input;
* ``msgspec_decode_records_per_s`` / ``ratio_to_msgspec_decode``: msgspec
  decoding the JSON log lines alone, the yardstick of every benchmark;
* ``p99_latency_ms``: per batch, in the timed runs;
* ``peak_rss_kb``, ``input_rss_kb`` (after loading the input, before
  correlating) and ``correlator_rss_kb``, their difference: what the
  correlator added to the peak (its buffer is bounded by ``max_traces``);
* ``anomaly_detector_records_per_s``: the anomaly detector over the same
  records (median of the runs) and the ``anomalies`` it found;
* ``rca``: per fault of the workload (ground truth), how many pages on the
  culprit and on the services it affected, 3 minutes into the fault, rank
  the culprit first (``root_cause`` over the correlator's and detector's
  output and the deploy events);
* ``traces``, ``max_open_traces``, ``links`` and ``root_cause_first``
  (whether the outage's datastore is the most frequent root-cause service
  of failing traces during the outage, from the workload's ground truth).

Run: ``python -m bench.correlate [--records N] [--runs 3]``.
"""

from __future__ import annotations

import collections
import json
import resource
import time
from typing import Any

from bench._common import arg_parser, decode_rate, median, percentiles, read_lines, result, workload
from srestream._component import Outputs
from srestream._records import Event, RawLine, Span
from srestream.correlate import (
    AnomalyDetector,
    Link,
    RootCauseAnalyzer,
    TraceCorrelator,
    TraceSummary,
)
from srestream.io._otlp import otlp_records
from srestream.parse._json import parse_json_batch
from srestream.parse._time import parse_timestamp
from srestream.slo._records import Alert

DEFAULT_RECORDS = 500_000
BATCH = 1024


def load(records: int) -> tuple[list[Any], list[bytes], dict[str, Any]]:
    """Spans and logs merged in event time, the raw log lines, the truth
    (with the workload's deploy events under ``"deploy_events"``)."""
    wl = workload(records // 2, formats=("jsonl", "otlp"))
    lines = read_lines(wl.logs)
    outputs = Outputs("bench")
    raws = [
        RawLine(source="logs", position=i, offset=0, text=t.decode()) for i, t in enumerate(lines)
    ]
    logs = parse_json_batch(raws, outputs)
    spans: list[Any] = []
    assert wl.traces is not None
    for i, t in enumerate(read_lines(wl.traces)):
        spans.extend(
            otlp_records(RawLine(source="traces", position=i, offset=0, text=t.decode()), outputs)
        )
    merged = sorted([*spans, *logs], key=lambda r: r.end_ts_ns if type(r) is Span else r.ts_ns)
    truth = wl.load_truth()
    truth["deploy_events"] = [
        Event(ts_ns=parse_timestamp(e["ts"]), event_type="deploy", service=e.get("service", ""))
        for e in map(json.loads, read_lines(wl.events))
        if e.get("event_type") == "deploy"
    ]
    return merged[:records], lines, truth


def rca_checks(records: list[Any], truth: dict[str, Any]) -> list[dict[str, Any]]:
    """For each fault of the workload, a page 3 minutes into it on the
    culprit and on each service it affected: is the culprit ranked first?"""
    tc = TraceCorrelator(forward_records=False, emit_links=False)
    evidence = tc.process(records) + tc.finish()
    detector = AnomalyDetector()
    anomalies = detector.process(records) + detector.finish()
    rows = []
    for fault in truth.get("faults", []):
        culprit = fault["root_cause"]
        at = fault["effect_start_ns"] + 3 * 60_000_000_000
        if at > max(r.ts_ns for r in evidence if hasattr(r, "ts_ns")):
            continue
        firsts = []
        for service in [culprit, *fault.get("affected_services", [])]:
            alert = Alert(
                ts_ns=at, slo="bench", service=service, severity="page", state="firing",
                burn_rate=14.4, long_window="1h", short_window="5m", budget_remaining=0.5,
                dedup_key=f"bench/{service}",
            )  # fmt: skip
            analyzer = RootCauseAnalyzer()
            out = analyzer.process([*evidence, *anomalies, *truth["deploy_events"], alert])
            out += analyzer.finish()
            (enriched,) = [r for r in out if isinstance(r, Alert)]
            top = enriched.root_cause_candidates[:1]
            firsts.append(bool(top) and top[0]["service"] == culprit)
        rows.append({"fault": fault["kind"], "culprit": culprit, "alerts": len(firsts),
                     "ranked_first": sum(firsts)})  # fmt: skip
    return rows


def run_once(records: list[Any]) -> tuple[float, list[float], list[Any], int]:
    tc = TraceCorrelator()
    latencies = []
    out: list[Any] = []
    max_open = 0
    start = time.perf_counter()
    for i in range(0, len(records), BATCH):
        t0 = time.perf_counter()
        produced = tc.process(records[i : i + BATCH])
        latencies.append((time.perf_counter() - t0) * 1e3)
        out.extend(r for r in produced if type(r) is TraceSummary)
        max_open = max(max_open, tc.statistics()["traces_open"])
    out.extend(r for r in tc.finish() if type(r) is TraceSummary)
    elapsed = time.perf_counter() - start
    return elapsed, latencies, out, max_open


def _outage_root_cause(summaries: list[TraceSummary], truth: dict[str, Any]) -> dict[str, Any]:
    faults = [f for f in truth.get("faults", []) if f.get("kind") == "dependency_outage"]
    if not faults:
        return {"root_cause_first": None}
    f = faults[0]
    start, end = int(f["effect_start_ns"]), int(f["end_ns"])
    counts = collections.Counter(
        s.root_cause_service for s in summaries if s.error and start <= s.ts_ns <= end
    )
    top = counts.most_common(1)[0][0] if counts else None
    return {"outage_service": f["root_cause"], "top_root_cause": top,
            "root_cause_first": top == f["root_cause"]}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = arg_parser("trace correlator")
    parser.set_defaults(records=DEFAULT_RECORDS)
    args = parser.parse_args(argv)
    records, lines, truth = load(args.records)
    input_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    latencies: list[float] = []
    summaries: list[Any] = []
    max_open = 0
    for _ in range(args.runs):
        secs, lat, summaries, max_open = run_once(records)
        times.append(secs)
        latencies.extend(lat)
    detector_times = []
    anomalies: list[Any] = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        detector = AnomalyDetector()
        anomalies = [a for i in range(0, len(records), BATCH)
                     for a in detector.process(records[i : i + BATCH])]  # fmt: skip
        anomalies.extend(detector.finish())
        detector_times.append(time.perf_counter() - t0)
    rca = rca_checks(records, truth)
    check = TraceCorrelator(forward_records=False)
    produced = check.process(records) + check.finish()
    links = sum(1 for r in produced if type(r) is Link)
    pct = percentiles(latencies, (50, 99))
    return result(
        "correlate",
        records=len(records),
        seconds=median(times),
        decode_records_per_s=decode_rate(lines),
        p50_latency_ms=round(pct[50], 3),
        p99_latency_ms=round(pct[99], 3),
        runs=args.runs,
        input_rss_kb=input_rss,
        correlator_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - input_rss,
        spans=sum(1 for r in records if type(r) is Span),
        traces=len(summaries),
        failing_traces=sum(1 for s in summaries if s.error),
        max_open_traces=max_open,
        links=links,
        anomaly_detector_records_per_s=round(len(records) / median(detector_times), 1),
        anomalies=len(anomalies),
        **_outage_root_cause(summaries, truth),
        rca=rca,
    )


if __name__ == "__main__":
    print(json.dumps(main()))

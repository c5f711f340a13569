"""Run a scenario: spans through the writers, events, and ``truth.json``.

>>> import tempfile, os
>>> from srestream.sim import parse_scenario, simulate
>>> sc = parse_scenario('''
... name: tiny
... start: "2026-01-05T00:00:00Z"
... duration: 2m
... services: {count: 5}
... traffic: {requests_per_second: 2}
... outputs: [jsonl]
... ''')
>>> with tempfile.TemporaryDirectory() as d:
...     r = simulate(sc, d)
...     sorted(os.listdir(d))
['events.jsonl', 'logs.jsonl', 'scenario.json', 'truth.json']
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from .._duration import enc_hook
from ._engine import run_engine
from ._faults import GapSet, fault_windows
from ._formats import JsonlWriter, LineWriter, LogfmtWriter, OtlpWriter, SyslogWriter
from ._graph import build_graph
from ._metrics import OpenMetricsWriter
from ._oncall import event_lines, oncall_events
from ._scenario import Scenario
from ._truth import TruthCollector

__all__ = ["SimResult", "simulate"]

_LINE_WRITERS: dict[str, type[LineWriter]] = {
    "jsonl": JsonlWriter,
    "logfmt": LogfmtWriter,
    "syslog": SyslogWriter,
    "otlp": OtlpWriter,
}
OUTPUT_FILES = (
    *(cls.filename for cls in _LINE_WRITERS.values()),
    OpenMetricsWriter.filename,
    "events.jsonl",
    "truth.json",
    "scenario.json",
)
"""Every file the simulator writes (removed first, so a directory holds one run)."""
_json = msgspec.json.Encoder(enc_hook=enc_hook)


class SimResult(msgspec.Struct, frozen=True, kw_only=True):
    out_dir: str
    spans: int
    files: dict[str, int]
    """Lines written per file."""
    seconds: float

    @property
    def lines_per_second(self) -> float:
        return sum(self.files.values()) / self.seconds if self.seconds else 0.0


def simulate(
    sc: Scenario,
    out_dir: str | os.PathLike[str],
    *,
    seed: int | None = None,
    formats: Sequence[str] | None = None,
    max_spans: int | None = None,
) -> SimResult:
    """Write the scenario's data into ``out_dir`` (created if missing).

    ``seed`` overrides the scenario's seed, ``formats`` its outputs,
    ``max_spans`` stops after that many spans (for sized benchmark
    workloads).  The same scenario and seed give the same bytes.
    """
    t_begin = time.perf_counter()
    if seed is not None:
        sc = msgspec.structs.replace(sc, seed=seed)
    fmts = list(formats) if formats is not None else list(sc.outputs)
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    # Outputs of an earlier run in other formats would not match this truth.json.
    for name in OUTPUT_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out, name))
    graph = build_graph(sc.services, sc.seed)
    windows = fault_windows(sc)
    gaps = GapSet(sc, graph.index(), windows)

    def open_out(name: str) -> Any:
        return open(os.path.join(out, name), "w", encoding="utf-8", newline="\n", buffering=1 << 20)

    writers: list[Any] = []
    for fmt in fmts:
        if fmt == "openmetrics":
            writers.append(
                OpenMetricsWriter(
                    open_out(OpenMetricsWriter.filename),
                    graph,
                    start_ns=sc.start_ns,
                    end_ns=sc.end_ns,
                    interval_ns=int(sc.metrics_interval),
                    gaps=gaps,
                )
            )
        else:
            cls = _LINE_WRITERS[fmt]
            writers.append(cls(open_out(cls.filename), graph, sc.environment))
    truth = TruthCollector(sc, graph, windows)
    writers.append(truth)
    try:
        for chunk in run_engine(sc, graph, max_spans=max_spans):
            for w in writers:
                w.write(chunk)
    finally:
        for w in writers:
            if w is not truth:
                w.close()
    events, incidents = oncall_events(sc, graph, windows)
    with open_out("events.jsonl") as f:
        f.writelines(line + "\n" for line in event_lines(events))
    files = {w.filename: w.lines for w in writers if w is not truth}
    files["events.jsonl"] = len(events)
    with open_out("truth.json") as f:
        f.write(_json.encode(truth.truth(windows, incidents, files, len(events))).decode() + "\n")
    with open_out("scenario.json") as f:
        f.write(_json.encode(sc).decode() + "\n")
    return SimResult(
        out_dir=out, spans=truth.spans, files=files, seconds=time.perf_counter() - t_begin
    )

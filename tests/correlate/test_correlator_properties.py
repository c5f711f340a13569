"""Invariants of the trace correlator on random traffic (hypothesis): every
span is in exactly one summary, every log is linked once or counted as
unlinked, and the output does not depend on the batch size."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from srestream import Level, LogRecord, Span
from srestream.correlate import Link, TraceCorrelator, TraceSummary

SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND


@st.composite
def traffic(draw: st.DrawFn) -> list[Any]:
    """Random traces (random parents, some missing), logs with all, some or
    no ids, arriving in a jittered event-time order."""
    n_traces = draw(st.integers(1, 12))
    out: list[Any] = []
    services = ["a", "b", "c", "d"]
    for t in range(n_traces):
        base = T0 + draw(st.integers(0, 120)) * SECOND
        n_spans = draw(st.integers(1, 6))
        for k in range(n_spans):
            parent = draw(st.integers(-1, k - 1)) if k else -1
            start = base + draw(st.integers(0, 500)) * 1_000_000
            end = start + draw(st.integers(1, 300)) * 1_000_000
            if draw(st.booleans()) or k == 0:
                out.append(Span(
                    trace_id=f"t{t}", span_id=f"s{k}",
                    parent_span_id=f"s{parent}" if parent >= 0 else "",
                    service=draw(st.sampled_from(services)), start_ts_ns=start, end_ts_ns=end,
                    error=draw(st.booleans()),
                    attrs={"request_id": f"r{t}"} if k == 0 else {},
                ))  # fmt: skip
            ids = draw(st.sampled_from(["trace", "request", "none"]))
            out.append(LogRecord(
                ts_ns=start + 1, service=draw(st.sampled_from(services)),
                level=draw(st.sampled_from([Level.INFO, Level.WARN, Level.ERROR])),
                trace_id=f"t{t}" if ids == "trace" else "",
                request_id=f"r{t}" if ids != "none" else "", source="x", position=len(out),
            ))  # fmt: skip
    return sorted(out, key=_arrival)


def _arrival(r: Any) -> tuple[int, str]:
    if isinstance(r, Span):
        return (r.end_ts_ns, r.trace_id + r.span_id)
    return (r.ts_ns, str(r.position))


@settings(max_examples=60, deadline=None)
@given(records=traffic(), batch_size=st.sampled_from([1, 3, 7, 1024]))
def test_conservation_and_batch_size_independence(records: list[Any], batch_size: int) -> None:
    reference = TraceCorrelator(forward_records=False)
    expected = reference.process(records) + reference.finish()
    tc = TraceCorrelator(forward_records=False)
    got: list[Any] = []
    for i in range(0, len(records), batch_size):
        got.extend(tc.process(records[i : i + batch_size]))
    got.extend(tc.finish())
    assert msgspec.json.encode(got) == msgspec.json.encode(expected)

    summaries = [r for r in got if isinstance(r, TraceSummary)]
    spans = {(r.trace_id, r.span_id) for r in records if isinstance(r, Span)}
    assert sum(s.span_count for s in summaries) == len(spans)
    logs = [r for r in records if isinstance(r, LogRecord)]
    links = [r for r in got if isinstance(r, Link)]
    positions = [lk.position for lk in links]
    assert len(positions) == len(set(positions))
    stats = tc.statistics()
    assert len(links) + stats["unlinked_logs"] == len(logs)
    assert stats["traces_open"] == 0 and stats["orphans"] == 0
    for s in summaries:
        if s.root_cause_service:
            assert s.error and s.root_cause_service in s.error_services

"""The trace correlator: call trees, root-cause spans, links and their
methods, the dependency graph, the bounded buffer, determinism, restore."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from srestream import Level, LogRecord, Span
from srestream._pipeline import pipeline_from_dict
from srestream._runner import Runner
from srestream.correlate import (
    DependencyEdge,
    Link,
    LinkMethod,
    ServiceStats,
    TraceCorrelator,
    TraceSummary,
    correlate_traces,
)
from srestream.testing import CaptureSink, ListSource, run_stage

from ._cascade import MINUTE, SECOND, T0, Cascade

CHAIN = ["web", "api", "orders", "db"]


def _summaries(out: list[Any]) -> list[TraceSummary]:
    return [r for r in out if isinstance(r, TraceSummary)]


def _links(out: list[Any]) -> list[Link]:
    return [r for r in out if isinstance(r, Link)]


def _correlate(records: list[Any], **kw: Any) -> tuple[TraceCorrelator, list[Any]]:
    tc = TraceCorrelator(**kw)
    out = tc.process(records) + tc.finish()
    return tc, out


def test_failing_traces_name_the_datastore_span_as_root_cause() -> None:
    cascade = Cascade(requests=240, fail_at_ns=T0 + 120 * SECOND, fail_ratio=0.5)
    _, out = _correlate(cascade.generate(), bucket_ns=MINUTE, forward_records=False)
    summaries = _summaries(out)
    assert len(summaries) == 240
    failing = [s for s in summaries if s.error]
    assert failing, "the failure injected no error"
    assert all(s.start_ts_ns >= T0 + 120 * SECOND for s in failing)
    for s in failing:
        assert s.root_cause_service == "db"
        assert s.root_cause_method == "span"
        assert s.root_cause_path == CHAIN
        assert s.error_services == sorted(CHAIN)
        assert s.root_service == "web" and s.missing_spans == 0
    assert not any(s.root_cause_service for s in summaries if not s.error)


def test_root_cause_is_the_earliest_erroring_span_with_no_erroring_children() -> None:
    def span(sid: str, parent: str, service: str, start: int, end: int, error: bool) -> Span:
        return Span(
            trace_id="t1", span_id=sid, parent_span_id=parent, service=service,
            start_ts_ns=T0 + start, end_ts_ns=T0 + end, error=error,
        )  # fmt: skip

    # Two branches failed independently; the cache branch failed first.
    spans = [
        span("c", "b", "db", 30, 40, True),
        span("d", "b", "cache", 10, 20, True),
        span("e", "d", "cache-node", 12, 18, False),
        span("b", "a", "api", 5, 50, True),
        span("a", "", "web", 0, 60, True),
    ]
    _, out = _correlate(spans, forward_records=False)
    (s,) = _summaries(out)
    assert (s.root_cause_service, s.root_cause_span_id) == ("cache", "d")
    assert s.root_cause_path == ["web", "api", "cache"]


def test_traces_with_missing_spans_are_still_summarised_and_linked() -> None:
    cascade = Cascade(
        seed=3, requests=300, fail_at_ns=T0 + 100 * SECOND, fail_ratio=0.7, drop_span_ratio=0.3
    )
    records = cascade.generate()
    _, out = _correlate(records, bucket_ns=MINUTE, forward_records=False)
    summaries = {s.trace_id: s for s in _summaries(out)}
    assert len(summaries) == 300
    assert any(s.missing_spans for s in summaries.values())
    spans_by_trace: dict[str, list[Span]] = collections.defaultdict(list)
    for r in records:
        if isinstance(r, Span):
            spans_by_trace[r.trace_id].append(r)
    checked = 0
    for tid, s in summaries.items():
        present = {sp.service: sp for sp in spans_by_trace[tid]}
        if not s.error:
            continue
        # The deepest erroring span still present on the web->db chain.
        expected = next(svc for svc in reversed(CHAIN) if svc in present and present[svc].error)
        assert s.root_cause_service == expected
        assert s.span_count == len(present)
        checked += 1
    assert checked > 50
    # Every log of a trace with lost spans is linked to it by trace id.
    links = _links(out)
    assert len(links) == sum(1 for r in records if isinstance(r, LogRecord))
    assert {lk.method for lk in links} == {LinkMethod.TRACE}


def test_logs_without_trace_ids_are_linked_by_request_id_and_time_window() -> None:
    cascade = Cascade(
        seed=11, requests=200, fail_at_ns=T0 + 50 * SECOND, fail_ratio=0.5,
        log_without_trace_ratio=0.25, log_without_ids_ratio=0.25,
    )  # fmt: skip
    records = cascade.generate()
    tc, out = _correlate(records, bucket_ns=MINUTE, forward_records=False)
    links = _links(out)
    by_method = collections.Counter(lk.method for lk in links)
    assert by_method[LinkMethod.TRACE] and by_method[LinkMethod.REQUEST_ID]
    assert by_method[LinkMethod.TIME_WINDOW]
    logs = {(r.source, r.position): r for r in records if isinstance(r, LogRecord)}
    for lk in links:
        log = logs[(lk.source, lk.position)]
        request_no = lk.position // 10
        assert lk.trace_id == f"{cascade.seed:08x}{request_no:024x}", lk
        if lk.method == LinkMethod.TRACE:
            assert log.trace_id
        elif lk.method == LinkMethod.REQUEST_ID:
            assert not log.trace_id and log.request_id == lk.request_id
        else:
            assert not log.trace_id and not log.request_id and log.level >= Level.WARN
            assert lk.span_id.startswith(f"{request_no:08x}")
    # Every id-less WARN+ log found its span; INFO logs without ids stay unlinked.
    idless = [r for r in logs.values() if not r.trace_id and not r.request_id]
    warn = [r for r in idless if r.level >= Level.WARN]
    assert by_method[LinkMethod.TIME_WINDOW] == len(warn)
    assert tc.statistics()["unlinked_logs"] == len(idless) - len(warn)
    # Request-only logs arrived before their trace's root span (which carries
    # the request id): they were merged into the trace, not summarised apart.
    assert all(s.trace_id for s in _summaries(out))


def test_a_request_group_without_any_trace_is_summarised_on_its_own() -> None:
    logs = [
        LogRecord(ts_ns=T0 + i * SECOND, service=svc, level=level, request_id="r-9",
                  source="app.log", position=i)
        for i, (svc, level) in enumerate([("api", Level.INFO), ("db", Level.ERROR), ("api", Level.ERROR)])
    ]  # fmt: skip
    _, out = _correlate(logs, forward_records=False)
    (s,) = _summaries(out)
    assert (s.trace_id, s.request_id, s.log_count) == ("", "r-9", 3)
    assert (s.root_cause_service, s.root_cause_method) == ("db", "log")
    assert [lk.method for lk in _links(out)] == [LinkMethod.REQUEST_ID] * 3


def test_dependency_graph_counts_calls_errors_and_latency_per_window() -> None:
    cascade = Cascade(requests=300, fail_at_ns=T0 + 150 * SECOND, fail_ratio=1.0)
    records = cascade.generate()
    _, out = _correlate(
        records, bucket_ns=MINUTE, graph_window_ns=2 * MINUTE, forward_records=False
    )
    edges = [r for r in out if isinstance(r, DependencyEdge)]
    pairs = {(e.caller, e.callee) for e in edges}
    assert pairs == {
        ("web", "api"), ("api", "auth"), ("api", "orders"), ("orders", "cache"), ("orders", "db"),
    }  # fmt: skip
    # The window that ends at minute 2 holds minutes 0 and 1: 120 requests, no failure.
    at2 = {(e.caller, e.callee): e for e in edges if e.ts_ns == T0 + 2 * MINUTE}
    assert at2[("orders", "db")].calls == 120 and at2[("orders", "db")].errors == 0
    assert at2[("orders", "db")].latency_mean_ns == 25_000_000
    assert all(e.window_ns == 2 * MINUTE for e in edges)
    # Minutes 3 and 4 fail entirely: db errors, cache does not.
    at5 = {(e.caller, e.callee): e for e in edges if e.ts_ns == T0 + 5 * MINUTE}
    assert at5[("orders", "db")].error_ratio == 1.0
    assert at5[("orders", "cache")].errors == 0
    stats = [r for r in out if isinstance(r, ServiceStats) and r.service == "db"]
    assert [s.root_causes for s in stats] == [0, 0, 30, 60, 60]
    assert [s.errors for s in stats] == [0, 0, 30, 60, 60]


def _endless(max_traces: int) -> Iterator[Span]:
    """Traces that never repeat; each is two spans far apart in time."""
    for i in itertools.count():
        t = T0 + i * 10_000_000  # a trace every 10 ms
        yield Span(trace_id=f"t{i}", span_id="b", parent_span_id="a", service="db",
                   start_ts_ns=t, end_ts_ns=t + 1, error=i % 3 == 0)  # fmt: skip


def test_buffer_stays_bounded_on_an_unbounded_stream() -> None:
    tc = TraceCorrelator(
        idle_timeout_ns=3600 * SECOND, max_traces=500, bucket_ns=MINUTE, forward_records=False
    )
    stream = _endless(500)
    summaries = 0
    for _ in range(60):
        out = tc.process(list(itertools.islice(stream, 1000)))
        summaries += len(_summaries(out))
        stats = tc.statistics()
        assert stats["traces_open"] <= 500
    assert summaries == 60_000 - 500
    assert tc.statistics()["traces_truncated"] == summaries


def test_late_records_go_to_the_late_output() -> None:
    tc = TraceCorrelator(idle_timeout_ns=10 * SECOND, forward_records=False)
    early = Span(trace_id="x", span_id="1", service="a", start_ts_ns=T0, end_ts_ns=T0 + 1)
    later = Span(trace_id="y", span_id="1", service="a", start_ts_ns=T0, end_ts_ns=T0 + 60 * SECOND)
    tc.process([early, later])
    out = tc.process([early])
    assert _summaries(out) == []
    assert tc.outputs.take()["late"] == [early]


def _encode(records: list[Any]) -> bytes:
    return msgspec.json.encode(records)


async def test_output_is_identical_at_every_batch_size(batch_size: int) -> None:
    cascade = Cascade(
        seed=5, requests=200, fail_at_ns=T0 + 80 * SECOND, drop_span_ratio=0.2,
        log_without_trace_ratio=0.2, log_without_ids_ratio=0.2,
    )  # fmt: skip
    records = cascade.generate()
    reference = TraceCorrelator(bucket_ns=MINUTE)
    expected = reference.process(records) + reference.finish()
    got = await run_stage(
        correlate_traces, records, batch_size=batch_size,
        correlator=TraceCorrelator(bucket_ns=MINUTE),
    )  # fmt: skip
    assert _encode(got) == _encode(expected)
    assert sum(1 for r in got if isinstance(r, (Span, LogRecord))) == len(records)


@pytest.mark.parametrize("cut", [1, 250, 777, 1500])
def test_snapshot_restore_continues_exactly(cut: int) -> None:
    cascade = Cascade(
        seed=9, requests=200, fail_at_ns=T0 + 80 * SECOND, drop_span_ratio=0.2,
        log_without_trace_ratio=0.2, log_without_ids_ratio=0.2,
    )  # fmt: skip
    records = cascade.generate()
    whole = TraceCorrelator(bucket_ns=MINUTE, graph_window_ns=2 * MINUTE)
    expected = whole.process(records) + whole.finish()
    first = TraceCorrelator(bucket_ns=MINUTE, graph_window_ns=2 * MINUTE)
    out = first.process(records[:cut])
    blob = msgspec.msgpack.encode(first.snapshot())
    second = TraceCorrelator(bucket_ns=MINUTE, graph_window_ns=2 * MINUTE)
    second.restore(msgspec.msgpack.decode(blob))
    out += second.process(records[cut:]) + second.finish()
    assert _encode(out) == _encode(expected)


async def test_runs_as_a_configured_stage_in_a_pipeline() -> None:
    pipeline = pipeline_from_dict(
        {
            "sources": {"spans": {"type": "list"}},
            "stages": {
                "correlate": {
                    "type": "trace_correlator", "inputs": ["spans"], "bucket": "1m",
                    "idle_timeout": "10s", "forward_records": False,
                }
            },
            "sinks": {"out": {"type": "capture", "inputs": ["correlate"]}},
        }
    )  # fmt: skip
    records = Cascade(requests=120, fail_at_ns=T0 + 60 * SECOND).generate()
    sink = CaptureSink()
    runner = Runner(pipeline, bindings={"spans": ListSource(records, batch_size=64), "out": sink})
    await runner.run()
    summaries = _summaries(sink.records)
    assert len(summaries) == 120
    assert {s.root_cause_service for s in summaries if s.error} == {"db"}


def test_bad_options_are_refused_with_their_path() -> None:
    from srestream._errors import ConfigError

    with pytest.raises(ConfigError) as info:
        pipeline_from_dict(
            {
                "sources": {"spans": {"type": "list"}},
                "stages": {
                    "correlate": {
                        "type": "trace_correlator", "inputs": ["spans"], "bucket": "5m",
                        "graph_window": "1m", "time_window_min_level": "LOUD",
                    }
                },
                "sinks": {"out": {"type": "capture", "inputs": ["correlate"]}},
            }
        )  # fmt: skip
    text = str(info.value)
    assert "$.stages.correlate" in text


async def test_stop_and_resume_from_a_checkpoint_loses_and_repeats_nothing(
    tmp_path: Any,
) -> None:
    import anyio

    from srestream import open_store

    pipeline = pipeline_from_dict(
        {
            "name": "corr",
            "runtime": {"checkpoint_interval": "20ms"},
            "sources": {"src": {"type": "list"}},
            "stages": {
                "correlate": {"type": "trace_correlator", "inputs": ["src"], "bucket": "1m",
                              "graph_window": "2m", "forward_records": False}
            },
            "sinks": {"out": {"type": "capture", "inputs": ["correlate"]}},
        }
    )  # fmt: skip
    records = Cascade(
        seed=4, requests=300, fail_at_ns=T0 + 100 * SECOND, drop_span_ratio=0.2,
        log_without_trace_ratio=0.2, log_without_ids_ratio=0.2,
    ).generate()  # fmt: skip
    whole = CaptureSink()
    await Runner(pipeline, bindings={"src": ListSource(records, batch_size=16), "out": whole}).run()
    db = str(tmp_path / "state.sqlite")
    first = CaptureSink()
    async with open_store(db) as store:
        r1 = Runner(pipeline, store=store, bindings={
            "src": ListSource(records, batch_size=16, delay_seconds=0.002), "out": first})  # fmt: skip

        async def stop_soon() -> None:
            while len(first.records) < 200:
                await anyio.sleep(0.005)
            r1.stop()

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_soon)
            s1 = await r1.run()
        assert s1.stopped
    second = CaptureSink()
    async with open_store(db) as store:
        r2 = Runner(
            pipeline,
            store=store,
            bindings={"src": ListSource(records, batch_size=16), "out": second},
        )
        s2 = await r2.run()
        assert s2.resumed_from is not None
    assert first.records and second.records
    assert _encode(first.records + second.records) == _encode(whole.records)


def test_call_trees_are_emitted_depth_first_when_asked() -> None:
    from srestream.correlate import CallTreeRecord

    records = Cascade(requests=3, drop_span_ratio=0.0).generate()
    _, out = _correlate(records, forward_records=False, emit_call_trees=True)
    trees = [r for r in out if isinstance(r, CallTreeRecord)]
    assert len(trees) == 3
    shape = [(n.service, n.depth) for n in trees[0].nodes]
    assert shape == [("web", 0), ("api", 1), ("auth", 2), ("orders", 2), ("cache", 3), ("db", 3)]
    # With the orders span lost, its children become roots of their own.
    lost = [r for r in records if not (isinstance(r, Span) and r.service == "orders")]
    _, out = _correlate(lost, forward_records=False, emit_call_trees=True)
    tree = next(r for r in out if isinstance(r, CallTreeRecord))
    assert [(n.service, n.depth) for n in tree.nodes] == [
        ("web", 0), ("api", 1), ("auth", 2), ("cache", 0), ("db", 0),
    ]  # fmt: skip
    _, default = _correlate(records, forward_records=False)
    assert not any(isinstance(r, CallTreeRecord) for r in default)


def test_correlations_side_output_is_the_output_without_the_input() -> None:
    records = Cascade(
        requests=150, fail_at_ns=T0 + 60 * SECOND, log_without_ids_ratio=0.2
    ).generate()
    tc = TraceCorrelator(bucket_ns=MINUTE)
    out: list[Any] = []
    side: list[Any] = []
    for i in range(0, len(records), 100):
        out.extend(tc.process(records[i : i + 100]))
        side.extend(tc.outputs.take().get("correlations", []))
    out.extend(tc.finish())
    side.extend(tc.outputs.take().get("correlations", []))
    derived = [r for r in out if not isinstance(r, Span | LogRecord)]
    assert derived and _encode(side) == _encode(derived)


def test_edge_latency_quantiles_are_never_low_and_at_most_half_high() -> None:
    import random

    from srestream.correlate._graph import DependencyGraph, add_call, new_edge_stats

    rng = random.Random(2)
    latencies = [int(rng.lognormvariate(17, 1.0)) for _ in range(5000)]  # ns, ~25 ms median
    st = new_edge_stats()
    for lat in latencies:
        add_call(st, lat, False)
    g = DependencyGraph(window_buckets=1, bucket_ns=MINUTE)
    g.push(0, {("api", "db"): st})
    (edge,) = g.edge_records(MINUTE)
    ordered = sorted(latencies)
    for q, got in ((0.95, edge.latency_p95_ns), (0.99, edge.latency_p99_ns)):
        true = ordered[int(q * len(ordered)) - 1]
        assert true <= got <= 1.5 * true
    assert edge.latency_max_ns == ordered[-1] and edge.calls == 5000

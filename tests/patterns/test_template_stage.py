"""The ``template_miner`` stage: labels log records, announces new templates."""

from __future__ import annotations

import pathlib

import msgspec
import pytest
from _loghub_data import load

from srestream import LogRecord
from srestream._component import BuildContext, Outputs
from srestream._errors import ConfigError
from srestream._pipeline import pipeline_from_dict
from srestream._records import Event, RawLine
from srestream._registry import lookup
from srestream._runner import Runner
from srestream._store import SQLiteStore
from srestream.patterns import TemplateMiner, TemplateMinerStage, TemplateRecord, mine_templates
from srestream.testing import CaptureSink, ListSource, run_stage

T0 = 1_767_225_600_000_000_000


def _records() -> list[LogRecord]:
    out = []
    for s, service in (("OpenSSH", "sshd"), ("Zookeeper", "zk"), ("HDFS", "hdfs")):
        for i, m in enumerate(load(s)[0][:400]):
            out.append(
                LogRecord(ts_ns=T0 + i * 1_000_000, service=service, message=m, position=i + 1)
            )
    out.sort(key=lambda r: r.ts_ns)
    return out


async def test_every_log_record_gets_its_template_id_whatever_the_batch_size(
    batch_size: int,
) -> None:
    records = _records()
    outputs = Outputs("mine")
    out = await run_stage(mine_templates, records, batch_size=batch_size, outputs=outputs)
    assert [r.message for r in out] == [r.message for r in records]
    assert all(r.template_id for r in out)
    # The same ids as the miner alone, in stream order: batches change nothing.
    miner = TemplateMiner()
    assert [r.template_id for r in out] == [miner.add(r.message)[0].template_id for r in records]
    new = outputs.take()["templates"]
    assert all(isinstance(t, TemplateRecord) for t in new)
    assert len(new) == len({r.template_id for r in out})
    first = {}
    for r in out:
        first.setdefault(r.template_id, r)
    for t in new:
        assert (
            t.first_ts_ns == first[t.template_id].ts_ns
            and t.service == first[t.template_id].service
        )
        assert t.count == 1 and t.template


async def test_outputs_are_byte_identical_across_batch_sizes() -> None:
    records = _records()
    results = []
    for size in (1, 7, 1024):
        outputs = Outputs("mine")
        out = await run_stage(mine_templates, records, batch_size=size, outputs=outputs)
        results.append(msgspec.json.encode([out, outputs.take()]))
    assert results[0] == results[1] == results[2]


async def test_other_records_pass_unchanged_and_template_text_on_request() -> None:
    deploy = Event(ts_ns=T0, event_type="deploy", service="api")
    logs = [
        LogRecord(ts_ns=T0 + i, message=f"worker {i} ready in {i}ms", attrs={"k": i})
        for i in range(3)
    ]
    empty = LogRecord(ts_ns=T0 + 9, message="")
    out = await run_stage(mine_templates, [deploy, *logs, empty], template_attribute="template")
    assert out[0] is deploy and out[-1] is empty
    assert {r.attrs["template"] for r in out[1:4]} == {"worker <NUM> ready in <DURATION>"}
    assert [r.attrs["k"] for r in out[1:4]] == [0, 1, 2]
    assert logs[0].attrs == {"k": 0}  # records are never changed in place


async def test_component_in_a_pipeline_resumes_with_the_same_ids() -> None:
    info = lookup("template_miner")
    assert info is not None and info.config is TemplateMinerStage and info.kind == "stage"
    records = _records()
    pipeline = pipeline_from_dict(
        {
            "name": "mine",
            "sources": {"logs": {"type": "list"}},
            "stages": {"mine": {"type": "template_miner", "inputs": ["logs"], "max_clusters": 500}},
            "sinks": {
                "out": {"type": "capture", "inputs": ["mine"]},
                "new": {"type": "capture", "inputs": ["mine.templates"]},
            },
        }
    )
    runner = Runner(pipeline, batch_size=64, bindings={"logs": ListSource(records, batch_size=64)})
    await runner.run()
    whole = [r.template_id for r in runner.logic("out").records]
    assert len(whole) == len(records)
    assert len(runner.logic("new").records) == len(set(whole))

    # A restart from a snapshot taken half way continues with the same ids.
    cfg = msgspec.convert(
        {"type": "template_miner", "inputs": ["logs"], "max_clusters": 500}, TemplateMinerStage
    )
    logic = cfg.build(BuildContext(component_id="mine", outputs=Outputs("mine")))
    half = len(records) // 2
    sink = CaptureSink()
    await sink(logic(ListSource(records[:half], batch_size=64)()))
    state = msgspec.msgpack.decode(msgspec.msgpack.encode(logic.snapshot()))
    restarted = cfg.build(BuildContext(component_id="mine", outputs=Outputs("mine")))
    restarted.restore(state)
    await sink(restarted(ListSource(records[half:], batch_size=64)()))
    assert [r.template_id for r in sink.records] == whole
    assert restarted.statistics()["clusters"] <= 500


async def test_a_restarted_pipeline_resumes_from_its_checkpoint_with_the_same_ids(
    tmp_path: pathlib.Path,
) -> None:
    records = _records()
    spec = {
        "name": "mine",
        "sources": {"logs": {"type": "list"}},
        "stages": {"mine": {"type": "template_miner", "inputs": ["logs"], "max_clusters": 300}},
        "sinks": {"out": {"type": "capture", "inputs": ["mine"]}},
    }
    whole_runner = Runner(
        pipeline_from_dict(spec),
        batch_size=50,
        bindings={"logs": ListSource(records, batch_size=50)},
    )
    await whole_runner.run()
    whole = [r.template_id for r in whole_runner.logic("out").records]

    store = SQLiteStore(str(tmp_path / "state.db"))
    first_sink = CaptureSink()
    first = Runner(
        pipeline_from_dict(spec),
        store=store,
        batch_size=50,
        bindings={"logs": ListSource(records, batch_size=50), "out": first_sink},
    )
    # Stop (as on SIGTERM) once a third of the stream went through.
    first_sink.on_batch = lambda _b: first.stop() if len(first_sink.records) >= 400 else None
    summary = await first.run()
    assert summary.stopped and 400 <= len(first_sink.records) < len(records)
    # A new process: the source resumes at its checkpointed position and the
    # miner from its snapshot.
    second = Runner(
        pipeline_from_dict(spec),
        store=store,
        batch_size=50,
        bindings={"logs": ListSource(records, batch_size=50)},
    )
    assert (await second.run()).resumed_from is not None
    await store.aclose()
    got = [r.template_id for r in first_sink.records + second.logic("out").records]
    assert got == whole


def test_bad_options_are_refused_with_their_path() -> None:
    spec = {
        "name": "mine",
        "sources": {"logs": {"type": "list"}},
        "stages": {
            "mine": {"type": "template_miner", "inputs": ["logs"], "similarity_threshold": 1.5}
        },
        "sinks": {"out": {"type": "capture", "inputs": ["mine"]}},
    }
    with pytest.raises(ConfigError) as err:
        pipeline_from_dict(spec)
    assert err.value.problems[0].path == "$.stages.mine.similarity_threshold"


async def test_generalised_templates_are_announced_again_on_request() -> None:
    logs = [
        LogRecord(ts_ns=T0 + 1, service="api", message="cache warmup finished on shard alpha"),
        LogRecord(ts_ns=T0 + 2, service="api", message="cache warmup finished on shard beta"),
        LogRecord(ts_ns=T0 + 3, service="api", message="cache warmup finished on shard gamma"),
    ]
    quiet = Outputs("mine")
    await run_stage(mine_templates, logs, outputs=quiet)
    assert [t.updated for t in quiet.take()["templates"]] == [False]
    loud = Outputs("mine")
    out = await run_stage(mine_templates, logs, outputs=loud, template_updates=True)
    announced = loud.take()["templates"]
    assert [(t.template, t.updated, t.count) for t in announced] == [
        ("cache warmup finished on shard alpha", False, 1),
        ("cache warmup finished on shard <*>", True, 2),
    ]
    assert {t.template_id for t in announced} == {r.template_id for r in out}
    assert all(t.first_ts_ns == T0 + 1 for t in announced)


JAVA_LOG = """2026-01-05 08:00:00,001 ERROR OrdersDao: query failed after 3 retries
java.lang.IllegalStateException: pool exhausted after 3 retries
\tat com.acme.db.Pool.acquire(Pool.java:41)
\tat com.acme.api.Handler.handle(Handler.java:88)
Caused by: java.net.SocketTimeoutException: connect timed out
\tat java.net.Socket.connect(Socket.java:589)
\t... 12 more
2026-01-05 08:00:01,002 INFO OrdersDao: query ok in 12ms
2026-01-05 08:00:02,003 ERROR OrdersDao: query failed after 5 retries
java.lang.IllegalStateException: pool exhausted after 5 retries
\tat com.acme.db.Pool.acquire(Pool.java:97)
\tat com.acme.api.Router.route(Router.java:20)
\tat com.acme.api.Handler.handle(Handler.java:88)
Caused by: java.net.SocketTimeoutException: connect timed out
\tat java.net.Socket.connect(Socket.java:589)
\t... 30 more
2026-01-05 08:00:03,004 INFO OrdersDao: query ok in 7ms
"""


async def test_a_folded_stack_trace_is_one_record_with_one_template(batch_size: int) -> None:
    """Plain-text lines -> fold_stack_traces -> parse_template -> template_miner:
    two traces of the same failure, from different depths, share one id."""
    raws = [
        RawLine(source="app.log", position=i + 1, offset=0, text=t)
        for i, t in enumerate(JAVA_LOG.splitlines())
    ]
    spec = {
        "name": "traces",
        "sources": {"raw": {"type": "list"}},
        "stages": {
            "fold": {"type": "fold_stack_traces", "inputs": ["raw"]},
            "parse": {
                "type": "parse_template",
                "inputs": ["fold"],
                "template": "<Date> <Time> <Level> <Component>: <Content>",
            },
            "mine": {"type": "template_miner", "inputs": ["parse"]},
        },
        "sinks": {
            "out": {"type": "capture", "inputs": ["mine"]},
            "new": {"type": "capture", "inputs": ["mine.templates"]},
        },
    }
    runner = Runner(
        pipeline_from_dict(spec),
        batch_size=batch_size,
        bindings={"raw": ListSource(raws, batch_size=batch_size)},
    )
    await runner.run()
    out = runner.logic("out").records
    assert len(out) == 4
    assert out[0].template_id == out[2].template_id != out[1].template_id == out[3].template_id
    templates = {t.template_id: t.template for t in runner.logic("new").records}
    trace = templates[out[0].template_id]
    assert "IllegalStateException" in trace and "SocketTimeoutException" in trace
    assert "Pool.java" not in trace

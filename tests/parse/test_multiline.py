"""Stack traces fold into their first line's record, whatever the batch
size, across batch boundaries, and through a snapshot/restore; a source that
goes quiet after a trace has its record sent after ``flush_after``."""

from __future__ import annotations

import pathlib
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
import msgspec
import pytest

from srestream._component import BuildContext, Outputs
from srestream._duration import Duration
from srestream._errors import ConfigError
from srestream._pipeline import parse_pipeline
from srestream._records import RawLine
from srestream.io import FileTail
from srestream.parse import (
    FoldStackTracesStage,
    StackTraceFolder,
    fold_stack_traces,
    parse_template,
)
from srestream.testing import ManualClock, batched, run_stage

JAVA = """\
2024-03-10 07:00:00,001 ERROR [main] com.shop.Checkout: payment failed
java.lang.IllegalStateException: card declined
\tat com.shop.Payments.charge(Payments.java:42)
\tat com.shop.Checkout.run(Checkout.java:7)
Caused by: java.io.IOException: connection reset
\tat java.net.Socket.read(Socket.java:1)
\t... 12 more
2024-03-10 07:00:01,000 INFO [main] com.shop.Checkout: retrying"""

PYTHON = """\
2024-03-10 07:00:02,000 ERROR [worker] app.jobs: job crashed
Traceback (most recent call last):
  File "jobs.py", line 3, in run
    step()
KeyError: 'sku'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "jobs.py", line 5, in run
    raise RuntimeError("bad job")
RuntimeError: bad job
2024-03-10 07:00:03,000 INFO [worker] app.jobs: next job
2024-03-10 07:00:04,000 WARN [worker] app.jobs: ValueError is not a continuation here"""

LINES = (JAVA + "\n" + PYTHON).split("\n")


async def test_java_and_python_traces_fold(raws: Any, batch_size: int) -> None:
    out = await run_stage(fold_stack_traces, raws(LINES), batch_size=batch_size)
    assert [r.position for r in out] == [1, 8, 9, 21, 22]
    assert out[0].text == "\n".join(LINES[0:7])
    assert out[2].text == "\n".join(LINES[8:20])
    assert out[4].text == LINES[21]
    # The folded record ends where its last line ends: a resumed read goes on from there.
    assert out[0].offset == raws(LINES)[6].offset


async def test_identical_output_at_batch_sizes_1_7_1024(raws: Any) -> None:
    runs = [await run_stage(fold_stack_traces, raws(LINES), batch_size=n) for n in (1, 7, 1024)]
    assert runs[0] == runs[1] == runs[2]


async def test_parsed_record_carries_the_whole_trace(raws: Any, batch_size: int) -> None:
    async def pipeline(batches: Any) -> Any:
        async for out in parse_template(
            fold_stack_traces(batches),
            template=r"<Date> <Time> <Level> \[<Thread>\] <Component>: <Content>",
            outputs=Outputs("p"),
        ):
            yield out

    out = await run_stage(pipeline, raws(LINES), batch_size=batch_size)
    assert len(out) == 5
    assert out[0].message.startswith("payment failed\njava.lang.IllegalStateException")
    assert out[0].message.endswith("\t... 12 more")
    assert out[2].message.endswith("RuntimeError: bad job")
    assert out[0].component == "com.shop.Checkout" and out[0].attrs == {"Thread": "main"}


async def test_snapshot_restore_mid_trace(raws: Any) -> None:
    lines = raws(LINES)
    expected = await run_stage(fold_stack_traces, lines)
    for cut in (1, 3, 6, 9, 15, 20):
        first = StackTraceFolder()
        got = first.fold(lines[:cut])
        state = msgspec.msgpack.decode(msgspec.msgpack.encode(first.snapshot()))
        second = StackTraceFolder()
        second.restore(state)
        got += second.fold(lines[cut:]) + second.flush()
        assert got == expected, cut


async def test_sources_fold_separately(raws: Any) -> None:
    a = raws(["2024-01-01 a starts", "\tat a.A(A.java:1)"], source="a.log")
    b = raws(["2024-01-01 b starts", "\tat b.B(B.java:1)"], source="b.log")
    mixed = [a[0], b[0], a[1], b[1]]
    out = await run_stage(fold_stack_traces, mixed, batch_size=1)
    assert {r.source: r.text for r in out} == {
        "a.log": "2024-01-01 a starts\n\tat a.A(A.java:1)",
        "b.log": "2024-01-01 b starts\n\tat b.B(B.java:1)",
    }


async def test_start_pattern_and_max_lines(raws: Any) -> None:
    lines = ["2024 first", "plain continuation", "more", "2024 second", "x", "y", "z"]
    out = await run_stage(fold_stack_traces, raws(lines), start_pattern=r"\d{4} ", max_lines=3)
    assert [r.text for r in out] == [
        "2024 first\nplain continuation\nmore",
        "2024 second\nx\ny",
        "z",
    ]


# -- idle flush: a source that goes quiet after a trace ---------------------


Steps = list[tuple[float, list[RawLine]]]
"""(seconds the clock moves forward, then the batch the source yields)"""


async def _scripted(clock: ManualClock, steps: Steps) -> AsyncIterator[list[RawLine]]:
    for seconds, batch in steps:
        clock.advance(seconds)
        yield batch


async def per_batch(
    steps: Steps,
    *,
    clock: ManualClock | None = None,
    folder: StackTraceFolder | None = None,
    **options: Any,
) -> list[list[str]]:
    """The texts the stage yields for each batch of ``steps`` (and after the end)."""
    clock = clock or ManualClock()
    stage = (
        folder(_scripted(clock, steps))
        if folder is not None
        else fold_stack_traces(_scripted(clock, steps), clock=clock, **options)
    )
    out = []
    async with aclosing(stage) as gen:  # type: ignore[type-var]
        async for batch in gen:
            out.append([r.text for r in batch])
    return out


TRACE = "\n".join(LINES[0:7])  # the log line and its Java trace, 'retrying' excluded


async def test_a_trace_then_silence_goes_out_once_flush_after_has_passed(raws: Any) -> None:
    lines = raws(LINES)
    steps: Steps = [(0, lines[0:7]), (0.5, []), (1.499, []), (0.001, []), (5, []), (0, [])]
    out = await per_batch(steps, flush_after="2s")
    # Nothing while the service may still be writing its trace; the whole trace
    # on the first (empty) batch 2s after its last line; never twice.
    assert out == [[], [], [], [TRACE], [], []]


async def test_flushed_record_is_the_same_record_the_next_line_would_complete(raws: Any) -> None:
    lines = raws(LINES)
    clock = ManualClock()
    flushed: list[RawLine] = []
    async with aclosing(
        fold_stack_traces(_scripted(clock, [(0, lines[0:7]), (1, [])]), clock=clock)
    ) as gen:  # type: ignore[type-var]
        async for batch in gen:
            flushed.extend(batch)
    completed = await run_stage(fold_stack_traces, lines[0:8])
    assert flushed == completed[:1]
    assert flushed[0].position == 1 and flushed[0].offset == lines[6].offset


async def test_continuation_lines_before_the_timeout_still_fold(raws: Any) -> None:
    lines = raws(LINES)
    steps: Steps = [
        (0, lines[0:3]),
        (1.9, []),  # quiet, but not for 2s
        (0.05, lines[3:5]),  # the trace goes on: the timer starts again
        (1.9, []),
        (1.05, lines[5:7]),
        (1.999, []),
        (0.001, []),  # 2s after the last line
        (0, lines[7:8]),
    ]
    out = await per_batch(steps, flush_after="2s")
    assert out == [[], [], [], [], [], [], [TRACE], [], [LINES[7]]]


async def test_late_continuation_in_the_next_batch_still_folds(raws: Any) -> None:
    """A batch is folded before the idle check: a source whose next line
    arrives, however late, is never cut by that batch.  So one file's replay
    is the same whatever its stalls (no batch ever lacks that file's lines)."""
    lines = raws(LINES)
    for size in (1, 7, 1024):
        calm = await run_stage(fold_stack_traces, lines, batch_size=size)
        stalled = await per_batch([(30.0, b) for b in batched(lines, size)], flush_after="1s")
        assert [t for b in stalled for t in b] == [r.text for r in calm], size


async def test_a_busy_source_does_not_hold_back_a_quiet_one(raws: Any) -> None:
    quiet = raws(LINES[0:7], source="payments.log")
    busy = raws([f"2024-03-10 07:00:0{i},000 INFO tick {i}" for i in range(3)], source="web.log")
    steps: Steps = [
        (0, quiet + busy[0:1]),
        (0.6, busy[1:2]),
        (0.6, busy[2:3]),  # payments.log silent for 1.2s: its trace goes out first
        (0.5, []),
        (0.5, []),  # web.log silent for 1s
    ]
    out = await per_batch(steps, flush_after="1s")
    assert out == [[], [busy[0].text], [TRACE, busy[1].text], [], [busy[2].text]]


async def test_a_stall_inside_a_trace_with_other_sources_between_cuts_it(raws: Any) -> None:
    """The documented limit (as Vector's ``timeout_ms``): only a stall longer
    than flush_after between two lines of one trace, with another source's
    batch in between, splits the trace."""
    a = raws(LINES[0:7], source="a.log")
    b = raws(["2024-03-10 07:00:00,500 INFO other"], source="b.log")
    out = await per_batch([(0, a[0:3]), (2, b), (0, a[3:7])], flush_after="1s")
    assert out == [[], ["\n".join(LINES[0:3])], [], [b[0].text, "\n".join(LINES[3:7])]]


async def test_restored_pending_record_is_flushed_when_idle(raws: Any) -> None:
    lines = raws(LINES)
    first = StackTraceFolder()
    assert first.fold(lines[0:4], 0) == []
    state = msgspec.msgpack.decode(msgspec.msgpack.encode(first.snapshot()))
    clock = ManualClock(start_ns=50 * 10**9)
    second = StackTraceFolder(flush_after=Duration.parse("1s"), clock=clock)
    second.restore(state)  # the idle timer starts again at the restore
    out = await per_batch([(0.999, []), (0.001, [])], clock=clock, folder=second)
    assert out == [[], ["\n".join(LINES[0:4])]]


async def test_flush_after_option(raws: Any) -> None:
    text = """\
sources: {raw: {type: stdin}}
stages:
  fold: {type: fold_stack_traces, inputs: [raw], flush_after: %s}
sinks: {out: {type: stdout, inputs: [fold]}}
"""
    stage = parse_pipeline(text % "250ms").stages["fold"]
    assert isinstance(stage, FoldStackTracesStage)
    assert stage.flush_after == Duration.parse("250ms")
    assert FoldStackTracesStage(inputs=["raw"]).flush_after == Duration.parse("1s")
    # Built, it measures silence on the run's clock.
    clock = ManualClock()
    folder = stage.build(BuildContext(component_id="fold", outputs=Outputs("fold"), clock=clock))
    lines = raws(LINES[0:7])
    assert await per_batch([(0, lines), (0.25, [])], clock=clock, folder=folder) == [[], [TRACE]]
    for bad in ("250", "soon"):
        with pytest.raises(ConfigError) as err:
            parse_pipeline(text % bad)
        assert [p.path for p in err.value.problems] == ["$.stages.fold.flush_after"]
    with pytest.raises(ConfigError) as err:
        FoldStackTracesStage(inputs=["raw"], flush_after=Duration(0)).build(
            BuildContext(component_id="fold", outputs=Outputs("fold"))
        )
    assert [p.path for p in err.value.problems] == ["$.stages.fold.flush_after"]


def _append(path: pathlib.Path, lines: list[str]) -> None:
    """Append as the service's logger would (blocking: a few bytes)."""
    with open(path, "a") as f:
        f.write("\n".join(lines) + "\n")


async def test_tailed_file_trace_then_silence_comes_out(tmp_path: pathlib.Path) -> None:
    """A real file followed by the tail source: a service logs an exception
    with its Java stack trace (in two writes) and then nothing more."""
    log = tmp_path / "checkout.log"
    log.write_text("2024-03-10 06:59:59,000 INFO [main] com.shop.Checkout: started\n")
    tail = FileTail(["checkout.log"], base_dir=str(tmp_path), poll_interval_s=0.02)
    got: list[RawLine] = []
    batches = 0
    written = waited = 0.0
    stage = fold_stack_traces(tail(), flush_after="300ms")
    async with aclosing(stage) as gen:  # type: ignore[type-var]
        with anyio.fail_after(10):
            async for batch in gen:
                got.extend(batch)
                batches += 1
                if batches == 5:  # the tail is reading: the service fails
                    _append(log, LINES[0:3])
                    await anyio.sleep(0.1)  # a few polls, less than flush_after
                    _append(log, LINES[3:7])
                    written = time.monotonic()
                if len(got) == 2:
                    waited = time.monotonic() - written
                    break
    assert [r.text for r in got] == [
        "2024-03-10 06:59:59,000 INFO [main] com.shop.Checkout: started",
        TRACE,
    ]
    assert [(r.source, r.position) for r in got] == [("checkout.log", 1), ("checkout.log", 2)]
    assert got[1].offset == log.stat().st_size  # a restart resumes after the whole trace
    assert 0.25 <= waited < 5


async def test_paced_replay_of_several_files_gives_the_fast_replays_records(
    tmp_path: pathlib.Path,
) -> None:
    """SPEC §2: a replay's output does not depend on its speed.  At --speed a
    quiet file's record would otherwise go out on the wall clock, before the
    other file's lines instead of after them: the stage runs without the
    idle flush there."""
    from srestream._runner import Runner

    def at(second: int, msg: str) -> str:
        return f'{{"ts": "2024-03-10T07:00:{second:02d}Z", "msg": "{msg}"}}'

    (tmp_path / "payments.log").write_text(
        "\n".join([at(0, "charge failed"), *LINES[1:4], at(30, "retrying")]) + "\n"
    )
    (tmp_path / "web.log").write_text("\n".join([at(10, "GET /"), at(20, "GET /cart")]) + "\n")
    (tmp_path / "p.yaml").write_text(
        "name: fold_replay\n"
        "sources:\n  logs: {type: replay, paths: [payments.log, web.log]}\n"
        "stages:\n  fold: {type: fold_stack_traces, inputs: [logs], flush_after: 50ms}\n"
        "sinks:\n  out: {type: capture, inputs: [fold]}\n"
    )
    pipeline = parse_pipeline((tmp_path / "p.yaml").read_bytes(), path=str(tmp_path / "p.yaml"))
    runs = []
    for speed in (None, 50.0):  # 50: 200ms of wall clock between lines 10s apart
        runner = Runner(pipeline, speed=speed)
        with anyio.fail_after(20):
            await runner.run()
        runs.append([(r.source, r.text) for r in runner.logic("out").records])
    assert runs[0] == [
        ("web.log", at(10, "GET /")),
        ("payments.log", "\n".join([at(0, "charge failed"), *LINES[1:4]])),
        ("payments.log", at(30, "retrying")),
        ("web.log", at(20, "GET /cart")),
    ]
    assert runs[1] == runs[0]


async def test_in_a_pipeline_a_tailed_trace_then_silence_comes_out(tmp_path: pathlib.Path) -> None:
    from srestream._runner import Runner

    (tmp_path / "checkout.log").write_text("")
    (tmp_path / "p.yaml").write_text(
        "name: fold_tail\n"
        "sources:\n  logs: {type: tail, paths: [checkout.log], poll_interval: 20ms}\n"
        "stages:\n  fold: {type: fold_stack_traces, inputs: [logs], flush_after: 100ms}\n"
        "sinks:\n  out: {type: capture, inputs: [fold]}\n"
    )
    runner = Runner(
        parse_pipeline((tmp_path / "p.yaml").read_bytes(), path=str(tmp_path / "p.yaml"))
    )
    records: list[RawLine] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(runner.run)
        await anyio.sleep(0.2)
        _append(tmp_path / "checkout.log", LINES[0:7])
        with anyio.move_on_after(2):
            while not records:
                records = list(runner.logic("out").records)
                await anyio.sleep(0.02)
        runner.stop()
    assert [r.text for r in records] == [TRACE]

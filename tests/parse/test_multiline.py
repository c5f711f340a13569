"""Stack traces fold into their first line's record, whatever the batch
size, across batch boundaries, and through a snapshot/restore."""

from __future__ import annotations

from typing import Any

import msgspec

from srestream._component import Outputs
from srestream.parse import StackTraceFolder, fold_stack_traces, parse_template
from srestream.testing import run_stage

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

"""The curated public surface and the standalone use of stages."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import anyio
import pytest

import srestream
from srestream import Duration, LogRecord, Outputs, RawLine, map_records, parse_json
from srestream.testing import ListSource, ManualClock, run_stage


def test_all_is_complete_and_exact() -> None:
    public = {
        name
        for name, obj in vars(srestream).items()
        if not name.startswith("_")
        and not inspect.ismodule(obj)
        and getattr(obj, "__module__", "srestream").startswith("srestream")
    }
    assert public - {"annotations"} <= set(srestream.__all__)
    for name in srestream.__all__:
        assert hasattr(srestream, name), name


def test_subpackages_define_all_that_resolves() -> None:
    for info in pkgutil.iter_modules(srestream.__path__):
        if info.name.startswith("_") or not info.ispkg:
            continue
        mod = importlib.import_module(f"srestream.{info.name}")
        for name in getattr(mod, "__all__", []):
            assert hasattr(mod, name), f"srestream.{info.name}.{name}"


@pytest.mark.parametrize(
    "module", ["srestream._duration", "srestream._lift", "srestream.testing", "srestream._output"]
)
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0


async def test_a_stage_runs_alone_over_a_plain_async_iterator(batch_size: int) -> None:
    lines = [
        RawLine(source="s", position=i, offset=i, text=t)
        for i, t in enumerate(['{"ts": 1700000000, "service": "a"}', "oops", '{"ts": 5}'], 1)
    ]
    outputs = Outputs("parse")
    out = await run_stage(parse_json, lines, batch_size=batch_size, outputs=outputs)
    assert [type(r) for r in out] == [LogRecord, LogRecord]
    assert out[0].ts_ns == 1_700_000_000_000_000_000 and out[0].service == "a"
    [dl] = outputs.take()["deadletter"]
    assert (dl.position, dl.raw, dl.stage) == (2, "oops", "parse")
    assert not outputs.pending


async def test_lifted_stages_compose_by_plain_calls() -> None:
    src = ListSource(list(range(10)), batch_size=3)
    inc = map_records(lambda x: x + 1)
    dbl = map_records(lambda x: x * 2)
    out = []
    async for batch in dbl(inc(src())):
        out.extend(batch)
    assert out == [(x + 1) * 2 for x in range(10)]


async def test_manual_clock_wakes_sleepers_only_when_advanced() -> None:
    clock = ManualClock(start_ns=1_000)
    woke: list[int] = []

    async def sleeper(sec: float) -> None:
        await clock.sleep(sec)
        woke.append(clock.now_ns())

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, 2.0)
        tg.start_soon(sleeper, 1.0)
        await anyio.wait_all_tasks_blocked()
        assert clock.sleepers == 2 and woke == []
        clock.advance(1.5)
        await anyio.wait_all_tasks_blocked()
        assert woke == [1_000 + 1_500_000_000]
        clock.advance(1.0)
    assert len(woke) == 2


@pytest.mark.parametrize(
    ("text", "ns"),
    [("5m", 300 * 10**9), ("1h30m", 5400 * 10**9), ("250ms", 250 * 10**6), ("28d", 28 * 86400 * 10**9)],
)
def test_durations_need_units(text: str, ns: int) -> None:
    assert Duration.parse(text) == ns
    assert Duration.parse(str(Duration.parse(text))) == ns


@pytest.mark.parametrize("bad", ["", "10", "5 parsecs", "m5", "1.5.5s"])
def test_bad_durations_say_why(bad: str) -> None:
    with pytest.raises(ValueError):
        Duration.parse(bad)

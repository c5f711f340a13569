"""The replay source: event-time merge of several files, pacing, resume."""

from __future__ import annotations

import json
import pathlib
import time
from contextlib import aclosing

import anyio
import pytest

from srestream.io import FileReplay
from srestream.parse._time import parse_timestamp
from srestream.testing import ManualClock

BASE = 1_767_225_600  # 2026-01-01T00:00:00Z


def _ts(sec: float) -> str:
    whole = int(sec)
    ms = round((sec - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE + whole)) + f".{ms:03d}Z"


def _write(path: pathlib.Path, rows: list[str]) -> str:
    path.write_text("".join(r + "\n" for r in rows))
    return str(path)


def three_files(tmp: pathlib.Path) -> list[str]:
    """Three sorted logs with interleaved times, equal times across files,
    lines without a time (no field, not JSON) and an epoch-ms time."""
    a = [json.dumps({"ts": _ts(t), "f": "a", "n": i}) for i, t in enumerate([0, 1, 2, 2, 5, 9])]
    a.insert(3, "not json at all")
    b = [json.dumps({"ts": _ts(t), "f": "b", "n": i}) for i, t in enumerate([0.5, 2, 3, 3.5])]
    b.insert(0, json.dumps({"f": "b", "msg": "no time here"}))
    c = [json.dumps({"ts": (BASE + t) * 1000, "f": "c", "n": i}) for i, t in enumerate([1, 4, 8])]
    return [_write(tmp / "a.jsonl", a), _write(tmp / "b.jsonl", b), _write(tmp / "c.jsonl", c)]


async def collect(replay: FileReplay, *, stop_after: int | None = None) -> list[list[str]]:
    out: list[list[str]] = []
    async with aclosing(replay()) as gen:
        async for batch in gen:
            if batch:
                out.append([f"{r.source}:{r.position}:{r.text}" for r in batch])
            if stop_after is not None and len(out) >= stop_after:
                break
    return out


def flat(batches: list[list[str]]) -> list[str]:
    return [x for b in batches for x in b]


async def test_merge_of_three_files_is_in_event_time_order(
    tmp_path: pathlib.Path, batch_size: int
) -> None:
    paths = three_files(tmp_path)
    names = ["a", "b", "c"]
    got = flat(await collect(FileReplay(paths, batch_size=batch_size, source_names=names)))
    # Expected by hand: untimed lines take the time of the line before them
    # in their file (b's first line: the very start); ties go to the file
    # listed first.
    expected_order = [
        "b:1", "a:1", "b:2", "a:2", "c:1", "a:3", "a:4", "a:5",
        "b:3", "b:4", "b:5", "c:2", "a:6", "c:3", "a:7",
    ]
    assert [":".join(x.split(":")[:2]) for x in got] == expected_order
    assert len(set(got)) == len(got) == 15


async def test_merge_keeps_each_file_order_and_sorts_timed_lines(
    tmp_path: pathlib.Path, batch_size: int
) -> None:
    import random

    rnd = random.Random(7)
    paths = []
    for k in range(3):
        t = 0.0
        rows = []
        for i in range(500):
            t += rnd.choice([0, 0.001, 0.5, 2.0])
            rows.append(json.dumps({"ts": _ts(t), "file": k, "i": i}))
        paths.append(_write(tmp_path / f"f{k}.jsonl", rows))
    got = flat(await collect(FileReplay(paths, batch_size=batch_size)))
    recs = [json.loads(x.split(":", 2)[2]) for x in got]
    assert len(recs) == 1500
    for k in range(3):
        assert [r["i"] for r in recs if r["file"] == k] == list(range(500))
    times = [parse_timestamp(r["ts"]) for r in recs]
    assert times == sorted(times)


async def test_replay_at_speed_gives_the_same_records_and_waits_for_gaps(
    tmp_path: pathlib.Path,
) -> None:
    paths = three_files(tmp_path)
    fast = flat(await collect(FileReplay(paths, batch_size=4)))

    # A manual clock: the replay must sleep for every event-time gap
    # (9 s of event time at speed 60 = 0.15 s of clock) and not go on before.
    clock = ManualClock(start_ns=0)
    replay = FileReplay(paths, batch_size=4, speed=60.0, clock=clock)
    got: list[str] = []
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            got.extend(flat(await collect(replay)))

        tg.start_soon(run)
        with anyio.fail_after(10):
            steps = 0
            while True:
                await anyio.sleep(0.001)
                if clock.sleepers:
                    clock.advance(0.01)
                    steps += 1
                elif len(got) == len(fast):
                    break
    assert got == fast
    assert clock.now_ns() >= round(9 / 60 * 1e9)  # paced over the whole event-time span
    assert steps >= 9 / 60 / 0.01 - 1

    # A real clock at a small speed factor: same records, real waiting.
    t0 = time.monotonic()
    real = flat(await collect(FileReplay(paths, batch_size=4, speed=30.0)))
    elapsed = time.monotonic() - t0
    assert real == fast
    assert elapsed >= 9 / 30 * 0.9


async def test_restart_mid_file_neither_loses_nor_repeats(
    tmp_path: pathlib.Path, batch_size: int
) -> None:
    paths = three_files(tmp_path)
    one = [_write(tmp_path / "big.jsonl", [json.dumps({"ts": _ts(i), "i": i}) for i in range(300)])]
    for files in (paths, one):
        full = flat(await collect(FileReplay(files, batch_size=batch_size)))
        first = FileReplay(files, batch_size=batch_size)
        head = flat(await collect(first, stop_after=3))
        state = json.loads(json.dumps(first.snapshot()))  # survives encoding
        second = FileReplay(files, batch_size=batch_size)
        second.restore(state)
        tail = flat(await collect(second))
        assert head + tail == full
        assert len(head) == min(3 * batch_size, len(full))


async def test_last_line_without_newline_and_crlf(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "x.log"
    p.write_bytes(b"one\r\ntwo\n\xff bad utf8\nlast")
    replay = FileReplay([str(p)], source_names=["x.log"])
    got = [r for b in [b async for b in replay()] for r in b]
    assert [r.text for r in got] == ["one", "two", "\ufffd bad utf8", "last"]
    assert [r.offset for r in got] == [5, 9, 20, 24]
    assert replay.snapshot() == {"positions": {str(p): [24, 4]}, "finished": [str(p)]}
    again = FileReplay([str(p)])
    again.restore(replay.snapshot())
    assert [b async for b in again()] == []


@pytest.mark.parametrize("speed", [None, 1000.0])
async def test_pipeline_replay_source_resolves_globs(tmp_path: pathlib.Path, speed: float | None) -> None:
    from srestream._component import BuildContext, Outputs
    from srestream.io import ReplaySource

    three_files(tmp_path)
    ctx = BuildContext(component_id="app", outputs=Outputs("app"), base_dir=str(tmp_path), speed=speed)
    logic = ReplaySource(paths=["*.jsonl"]).build(ctx)
    got = flat(await collect(logic))
    assert got[0].startswith("b.jsonl:1:")
    assert len(got) == 15


def reference_merge(files: list[list[str]]) -> list[tuple[int, int]]:
    """The merge the replay promises, written the plain way: always the
    smallest head by (event time, file index); a line without a time has
    the time of the line before it in its file (or comes first)."""
    import heapq

    keyed = []
    for rows in files:
        prev = -(1 << 63)
        keys = []
        for r in rows:
            try:
                prev = parse_timestamp(json.loads(r)["ts"])
            except (ValueError, KeyError, TypeError):
                pass
            keys.append(prev)
        keyed.append(keys)
    heads = [(keyed[f][0], f, 0) for f in range(len(files)) if files[f]]
    heapq.heapify(heads)
    out = []
    while heads:
        _, f, i = heapq.heappop(heads)
        out.append((f, i))
        if i + 1 < len(files[f]):
            heapq.heappush(heads, (keyed[f][i + 1], f, i + 1))
    return out


@pytest.mark.parametrize("chunk", [97, 4096, 1 << 20])
async def test_out_of_order_files_merge_the_same_at_any_chunk_batch_or_speed(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    import random

    import srestream.io._files as files_mod

    monkeypatch.setattr(files_mod, "CHUNK_BYTES", chunk)
    rnd = random.Random(chunk)
    files = []
    for k in range(4):
        rows = []
        t = 0.0
        for i in range(300):
            t += rnd.choice([0.0, 0.001, 0.01, 0.2])
            jitter = -rnd.choice([0, 0, 0, 0.5, 3])  # some lines earlier than the one before
            if rnd.random() < 0.05:
                rows.append(f"plain text line {k}-{i}")
            else:
                rows.append(json.dumps({"ts": _ts(max(0.0, t + jitter)), "k": k, "i": i}))
        files.append(rows)
    paths = [_write(tmp_path / f"f{k}.jsonl", rows) for k, rows in enumerate(files)]
    names = [f"f{k}" for k in range(4)]
    want = [f"f{f}:{i + 1}" for f, i in reference_merge(files)]

    def ids(batches: list[list[str]]) -> list[str]:
        return [":".join(x.split(":")[:2]) for x in flat(batches)]

    for size in (1, 7, 1024):
        assert ids(await collect(FileReplay(paths, batch_size=size, source_names=names))) == want
    paced = FileReplay(paths, batch_size=64, source_names=names, speed=1e6)
    assert ids(await collect(paced)) == want
    first = FileReplay(paths, batch_size=50, source_names=names)
    head = ids(await collect(first, stop_after=7))
    second = FileReplay(paths, batch_size=50, source_names=names)
    second.restore(first.snapshot())
    assert head + ids(await collect(second)) == want


@pytest.mark.parametrize("extra", [["--speed", "50"], ["--batch-size", "3"]])
def test_cli_replay_of_three_files_is_byte_identical_at_any_speed_or_batch(
    tmp_path: pathlib.Path, extra: list[str]
) -> None:
    """``srestream replay``: merging three files through parse_json gives
    the same output files as fast as possible and at --speed (9 s of event
    time at 50x: about 0.2 s) or at another batch size."""
    from srestream._cli import main

    three_files(tmp_path)
    (tmp_path / "p.yaml").write_text(
        "name: merge3\n"
        "sources:\n  logs: {type: replay, paths: ['*.jsonl']}\n"
        "stages:\n  parse: {type: parse_json, inputs: [logs]}\n"
        "sinks:\n  out: {type: directory, inputs: [parse, parse.deadletter]}\n"
    )
    base = ["replay", str(tmp_path / "p.yaml"), "--quiet", "--progress", "never"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    t0 = time.monotonic()
    assert main([*base, "--out", str(tmp_path / "b"), *extra]) == 0
    if extra[0] == "--speed":
        assert time.monotonic() - t0 >= 9 / 50 * 0.9
    for name in ("logs.jsonl", "deadletter.jsonl"):
        a = (tmp_path / "a" / name).read_bytes()
        assert a == (tmp_path / "b" / name).read_bytes() and a

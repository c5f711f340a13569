"""JSON lines: the Struct fast path and the dict path give the same records,
whatever the batch size, as keys appear, bad lines interleave and trace
headers switch the stream to the dict path."""

from __future__ import annotations

import json
import random
from typing import Any

import msgspec

from srestream import LogRecord
from srestream._component import Outputs
from srestream.parse import Normalizer, parse_json
from srestream.testing import run_stage

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def stream(n: int, seed: int = 3, *, headers_from: int | None = None) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        obj: dict[str, Any] = {
            "ts": f"2024-03-10T07:00:{i % 60:02d}.{i % 1000:03d}Z",
            "level": rnd.choice(["info", "WARN", "Error", 13, None]),
            "service": rnd.choice(["cart", "search", None]),
            "msg": f"m{i}",
        }
        if rnd.random() < 0.5:
            obj["status"] = rnd.choice([200, "503", 404])
        if rnd.random() < 0.5:
            obj["latency_ms"] = rnd.choice([1, 2.5, "3ms", "7"])
        for k in rnd.sample(["path", "user", "zone", "retry"], rnd.randrange(4)):
            obj[k] = rnd.choice([k.upper(), None, 1, [1, {"a": None}]])
        if i > n // 2 and rnd.random() < 0.2:
            obj[f"late_key_{i % 5}"] = i  # keys first seen mid-stream
        if headers_from is not None and i >= headers_from:
            obj["traceparent"] = f"00-{TRACE}-00f067aa0ba902b7-01"
        items = list(obj.items())
        rnd.shuffle(items)  # key order differs line to line
        line = json.dumps(dict(items))
        if rnd.random() < 0.03:
            line = rnd.choice(
                [
                    line[:-3],
                    "[1, 2]",
                    "",
                    '{"ts": "bad"}',
                    '{"msg": "no time"}',
                    '{"ts": "2024-03-10T07:00:00Z", "status": "teapot"}',
                ]
            )
        out.append(line)
    return out


async def run(lines: list[str], raws: Any, batch_size: int) -> tuple[bytes, list[Any]]:
    """The records as JSON (key order counts: outputs must be byte-identical)."""
    outputs = Outputs("parse")
    out = await run_stage(
        parse_json, raws(lines), batch_size=batch_size, outputs=outputs, normalizer=Normalizer()
    )
    return msgspec.json.encode(out), outputs.take().get("deadletter", [])


def one_by_one(lines: list[str], raws: Any) -> tuple[list[Any], list[Any]]:
    """The reference: each line alone through the generic normalizer."""
    norm = Normalizer()
    out, dead = [], []
    for raw in raws(lines):
        try:
            obj = json.loads(raw.text)
        except ValueError:
            dead.append(raw.position)
            continue
        if not isinstance(obj, dict):
            dead.append(raw.position)
            continue
        try:
            out.append(
                norm._record_generic(
                    dict(sorted(obj.items())),
                    raw.source,
                    raw.position,
                    norm._plan(tuple(sorted(obj))),
                )
            )
        except ValueError:
            dead.append(raw.position)
    return out, dead


async def test_same_records_at_every_batch_size(raws: Any) -> None:
    lines = stream(600)
    runs = [await run(lines, raws, n) for n in (1, 7, 1024)]
    assert runs[0] == runs[1] == runs[2]
    out = msgspec.json.decode(runs[0][0], type=list[LogRecord])
    dead = runs[0][1]
    assert len(out) + len(dead) == 600 and dead
    for rec in out:
        assert list(rec.attrs) == sorted(rec.attrs)


async def test_fast_path_equals_the_generic_normalizer(raws: Any) -> None:
    lines = stream(400, seed=11)
    out, dead = await run(lines, raws, 64)
    ref_out, ref_dead = one_by_one(lines, raws)
    assert [d.position for d in dead] == ref_dead
    assert out == msgspec.json.encode(ref_out)


async def test_trace_headers_mid_stream_switch_paths_without_a_trace(raws: Any) -> None:
    lines = stream(300, seed=5, headers_from=150)
    runs = [await run(lines, raws, n) for n in (1, 7, 1024)]
    assert runs[0] == runs[1] == runs[2]
    out = msgspec.json.decode(runs[0][0], type=list[LogRecord])
    assert {r.trace_id for r in out if r.position > 150} == {TRACE}
    assert {r.trace_id for r in out if r.position < 150} == {""}


async def test_many_distinct_keys_fall_back_to_dicts(raws: Any) -> None:
    lines = [json.dumps({"ts": 1710054000 + i, f"k{i}": i}) for i in range(300)]
    a, _ = await run(lines, raws, 1)
    b, _ = await run(lines, raws, 1024)
    assert a == b
    assert [r.attrs for r in msgspec.json.decode(a, type=list[LogRecord])] == [
        {f"k{i}": i} for i in range(300)
    ]

"""The JSON comprehension path (``_json_fast``) makes the records the
generic normalizer makes, for every timestamp form it takes or hands back
(offsets, naive times with and without a time zone, odd digits, bad
seconds), for latencies out of range and for keys absent on some lines;
and it is the path plain batches take."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from srestream._component import Outputs
from srestream.parse import Normalizer, TimestampParser, parse_json_batch

TIMESTAMPS = [
    "2024-03-10T07:00:01.123Z",
    "2024-03-10T07:00:01.123z",
    "2024-03-10T07:00:01Z",
    "2024-03-10t07:00:01.5Z",
    "2024-03-10 07:00:01.25Z",
    "2024-03-10T07:00:01,250Z",
    "2024-03-10T07:00:01.123456789Z",
    "2024-03-10T07:00:01.1234567891234Z",
    "2024-03-10T07:00:01.123+05:30",
    "2024-03-10T07:00:01-0700",
    "2024-03-10T07:00:01.9+01",
    "2024-03-10T07:00:01.123",
    "2024-03-10T07:00:01",
    "2024-03-10T02:30:00",  # a DST gap in America/New_York
    "2024-03-10T07:00:01.Z",
    "2024-03-10T07:00:01.12aZ",
    "2024-03-10T07:00:01.123+25:00",
    "2024-03-10T07:00:01.123 ",
    " 2024-03-10T07:00:01.123Z",
    "2024-13-10T07:00:01.123Z",
    "2024-03-10T07:00:61.123Z",
    "2024-03-10T07:00:01.١٢٣Z",
    "+024-03-10T07:00:01.123Z",
    "2024-03-10",
    "Mar 10 07:00:01",
    "1710054001123",
    1710054001,
    1710054001.25,
    None,
]


def lines(n: int, seed: int, *, odd: float, optional_extras: bool) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ts: Any = f"2024-03-10T07:{i // 600 % 60:02d}:{i // 10 % 60:02d}.{i % 1000:03d}Z"
        lat: Any = rnd.choice([3, 2.5, 0.001, 12.345, None])
        if rnd.random() < odd:
            ts = rnd.choice(TIMESTAMPS)
        if rnd.random() < odd / 4:
            lat = rnd.choice([1e308, 10**30])
        obj: dict[str, Any] = {
            "ts": ts,
            "level": rnd.choice(["info", "WARN", "Error", 13, 99, None, "host-7"]),
            "service": rnd.choice(["cart", "search"]),
            "msg": f"m{i}",
            "status": rnd.choice([200, 503, None]),
            "latency_ms": lat,
            "path": rnd.choice(["/a", "/b", None, 1, [1, {"a": None}]]),
            "method": "GET",
        }
        if optional_extras and rnd.random() < 0.1:
            del obj["method"]
        out.append(json.dumps(obj))
    return out


def reference(
    texts: list[str], raws: Any, make: Callable[[], Normalizer]
) -> tuple[bytes, list[int]]:
    """Each line alone through the generic normalizer."""
    norm = make()
    out, dead = [], []
    for raw in raws(texts):
        obj = json.loads(raw.text)
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
    return msgspec.json.encode(out), dead


def parsed(
    texts: list[str], raws: Any, make: Callable[[], Normalizer], size: int
) -> tuple[bytes, list[int], Normalizer]:
    norm = make()
    outputs = Outputs("parse")
    recs = []
    all_raws = raws(texts)
    for i in range(0, len(all_raws), size):
        recs += parse_json_batch(all_raws[i : i + size], outputs, norm)
    dead = [d.position for d in outputs.take().get("deadletter", [])]
    return msgspec.json.encode(recs), dead, norm


NORMALIZERS = {
    "utc": Normalizer,
    "zone": lambda: Normalizer(times=TimestampParser(time_zone="America/New_York")),
}


@pytest.mark.parametrize("zone", sorted(NORMALIZERS))
@pytest.mark.parametrize("size", [1, 16, 1024])
@pytest.mark.parametrize("optional_extras", [False, True])
def test_same_records_as_the_generic_normalizer(
    raws: Any, zone: str, size: int, optional_extras: bool
) -> None:
    make = NORMALIZERS[zone]
    texts = lines(3000, seed=size, odd=0.02, optional_extras=optional_extras)
    out, dead, _ = parsed(texts, raws, make, size)
    ref_out, ref_dead = reference(texts, raws, make)
    assert dead == ref_dead
    assert out == ref_out


def test_every_odd_timestamp_alone(raws: Any) -> None:
    """One odd timestamp per batch of otherwise plain lines, each form."""
    taken = 0
    for make in NORMALIZERS.values():
        for ts in TIMESTAMPS:
            texts = lines(16, seed=1, odd=0.0, optional_extras=False)
            obj = json.loads(texts[11])
            obj["ts"] = ts
            texts[11] = json.dumps(obj)
            out, dead, norm = parsed(texts, raws, make, 8)  # a fresh normalizer: no misses yet
            assert (out, dead) == reference(texts, raws, make)
            taken += norm.json_path.fast_hits - 1
    assert taken > len(TIMESTAMPS) // 2  # the forms the comprehension takes itself


def test_plain_batches_take_the_comprehension(raws: Any) -> None:
    texts = lines(4096, seed=2, odd=0.0, optional_extras=False)
    out, dead, norm = parsed(texts, raws, Normalizer, 256)
    assert dead == [] and out == reference(texts, raws, Normalizer)[0]
    path = norm.json_path
    assert path.fast is not None
    assert path.fast_hits == 16 and path.fast_misses == 0

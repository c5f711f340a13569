"""The windows stage's generated batch scan against brute-force counting.

Services whose SLOs read alike share one inline block of the scan; past
``MAX_INLINE_SHAPES`` distinct shapes the rest fall back to a per-service
counter.  Whatever path a service takes, every rollup must hold exactly
the records of its bucket that were not late, counted with the SLO's own
predicates evaluated one record at a time.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from srestream import LogRecord, MetricSample
from srestream._component import Outputs
from srestream.slo import SliWindows
from srestream.slo._predicates import compile_predicate
from srestream.slo._scan import MAX_INLINE_SHAPES

from .helpers import MIN, T0, S, availability, slo_set

SHAPED = MAX_INLINE_SHAPES + 4
"""Services with a latency threshold of their own: more shapes than inline."""


def _slos() -> list[dict[str, Any]]:
    slos = []
    for i in range(SHAPED):  # one shape each (their thresholds differ)
        slos.append(availability(name="latency", service=f"own-{i}", sli={
            "kind": "latency", "total": {"status": {"lt": 500}}, "threshold": f"{100 + i}ms"}))
    for i in range(5):  # one shape shared by five services
        slos += [
            availability(service=f"same-{i}"),
            availability(name="route", service=f"same-{i}", sli={
                "kind": "ratio", "total": {"attrs.route": ["/a", "/b"]}, "good": {"level": {"le": 3}}}),
        ]
    # Logs and metric samples for one service.
    slos += [
        availability(service="mixed"),
        availability(name="fresh", service="mixed", sli={
            "kind": "freshness", "metric": "queue_age_seconds", "threshold": "30s"}),
    ]
    return slos


def _records(n: int, seed: int) -> list[Any]:
    rnd = random.Random(seed)
    services = [f"own-{i}" for i in range(SHAPED)] + [f"same-{i}" for i in range(5)] + ["mixed", "nobody"]
    out: list[Any] = []
    t = T0
    for _ in range(n):
        # Mostly forward, sometimes up to 40 s back (some late, some within lateness).
        t += rnd.randrange(0, 3 * S)
        ts = t - (rnd.randrange(40 * S) if rnd.random() < 0.1 else 0)
        svc = rnd.choice(services)
        if svc == "mixed" and rnd.random() < 0.4:
            out.append(MetricSample(ts_ns=ts, name="queue_age_seconds", value=rnd.uniform(0, 60),
                                    labels={"service": svc}))
            continue
        out.append(LogRecord(
            ts_ns=ts, service=svc, status=rnd.choice([200, 200, 404, 500, 503]),
            latency_ns=rnd.choice([None, rnd.randrange(300) * 1_000_000]),
            level=rnd.randrange(6), attrs={"route": rnd.choice(["/a", "/b", "/c"])},
        ))
    return out


def _brute_force(slos: Any, records: list[Any], late: list[Any]) -> Counter[tuple[str, str, int, str]]:
    late_ids = {id(r) for r in late}
    counts: Counter[tuple[str, str, int, str]] = Counter()
    for spec in slos.slos:
        sli = spec.sli
        total, good = compile_predicate(sli.total), compile_predicate(sli.good)
        for r in records:
            if id(r) in late_ids:
                continue
            if sli.kind == "freshness":
                if type(r) is not MetricSample or r.labels.get("service") != spec.service:
                    continue
                valid, ok = r.name == sli.metric, r.value <= sli.threshold.seconds
            else:
                if type(r) is not LogRecord or r.service != spec.service:
                    continue
                valid = total(r) and (sli.kind != "latency" or r.latency_ns is not None)
                ok = valid and good(r) and (sli.kind != "latency" or r.latency_ns <= sli.threshold.ns)
            key = (spec.name, spec.service, r.ts_ns // MIN * MIN)
            if valid:
                counts[(*key, "total")] += 1
                if ok:
                    counts[(*key, "good")] += 1
    return counts


def test_every_path_of_the_scan_counts_like_the_predicates(batch_size: int) -> None:
    slos = slo_set(*_slos())
    records = _records(3000, seed=batch_size)
    outputs = Outputs("windows")
    win = SliWindows(slos, allowed_lateness_ns=20 * S, outputs=outputs)
    rollups = []
    for i in range(0, len(records), batch_size):
        rollups += win.process(records[i : i + batch_size])
    rollups += win.flush()
    late = outputs.take().get("late", [])
    assert 0 < len(late) < len(records) // 5
    got: Counter[tuple[str, str, int, str]] = Counter()
    for r in rollups:
        got[(r.slo, r.service, r.bucket_ts_ns, "total")] += r.total
        got[(r.slo, r.service, r.bucket_ts_ns, "good")] += r.good
    assert +got == _brute_force(slos, records, late)
    assert {r.service for r in rollups} == {s.service for s in slos.slos}


def test_restoring_a_checkpoint_into_a_running_stage_forgets_its_cached_bucket() -> None:
    # The scan caches the current bucket's cells; a restore replaces them,
    # so records after the restore must land in the restored cells.
    slos = slo_set(*_slos())
    records = _records(600, seed=3)
    head, tail = records[:300], records[300:]
    fresh = SliWindows(slos, allowed_lateness_ns=20 * S)
    fresh.process(head)
    state = fresh.snapshot()
    expected = fresh.process(tail) + fresh.flush()

    # Restored right where it stands (its cached bucket is the next
    # record's), and restored after moving on to later buckets.
    for detour in (0, 150):
        reused = SliWindows(slos, allowed_lateness_ns=20 * S)
        reused.process(head)
        reused.process(tail[:detour])
        reused.restore(state)
        assert reused.process(tail) + reused.flush() == expected
    assert head[-1].ts_ns // MIN == tail[0].ts_ns // MIN

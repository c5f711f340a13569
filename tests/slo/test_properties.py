"""Hypothesis properties of the windows and the burn-rate windows."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srestream import LogRecord
from srestream.slo import BurnRateDetector, SliRollup, SliWindows

from .helpers import MIN, T0, S, availability, slo_set

SLOS = slo_set(availability(), availability(service="payments", objective=99))

records = st.lists(
    st.tuples(st.integers(0, 20 * 60), st.sampled_from(["checkout", "payments", "other"]),
              st.sampled_from([200, 404, 500, 503])),
    max_size=300,
)


def _run(recs: list[LogRecord], batch: int, lateness_s: int) -> tuple[list[Any], int]:
    win = SliWindows(SLOS, allowed_lateness_ns=lateness_s * S)
    out: list[Any] = []
    for i in range(0, len(recs), batch):
        out += win.process(recs[i : i + batch])
    out += win.flush()
    return out, win.late_records


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=records, batch=st.integers(1, 50), lateness_s=st.integers(0, 180))
def test_windows_count_every_record_once_whatever_the_batching(
    raw: list[tuple[int, str, int]], batch: int, lateness_s: int
) -> None:
    recs = [LogRecord(ts_ns=T0 + t * S, service=svc, status=status) for t, svc, status in raw]
    out, late = _run(recs, batch, lateness_s)
    # Batching never changes the output.
    assert (out, late) == _run(recs, 1, lateness_s)
    relevant = [r for r in recs if r.service != "other"]
    # Every relevant record is counted exactly once, or reported late.
    assert sum(r.total for r in out) + late == len(relevant)
    bad = sum(r.total - r.good for r in out)
    assert bad <= sum(1 for r in relevant if r.status >= 500)
    # Per key, buckets tile time: contiguous, in order, no overlap.
    for svc in ("checkout", "payments"):
        mine = [r for r in out if r.service == svc]
        for a, b in itertools.pairwise(mine):
            assert b.bucket_ts_ns == a.bucket_ts_ns + a.resolution_ns
        for r in mine:
            assert 0 <= r.good <= r.total
            assert r.no_data_ns in (0, r.resolution_ns)
            assert (r.no_data_ns == 0) or r.total == 0


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=400),
       gap_at=st.integers(0, 400), gap_len=st.integers(1, 3000))
def test_burn_windows_equal_brute_force_sums(
    counts: list[tuple[int, int]], gap_at: int, gap_len: int
) -> None:
    slos = slo_set(availability(period="7d"))
    det = BurnRateDetector(slos)
    st_ = det.states[("availability", "checkout")]
    minutes: list[tuple[int, int]] = []  # (good, total) per minute index from T0
    rollups = []
    for i, (bad, extra) in enumerate(counts):
        if i == gap_at:
            rollups.append(SliRollup(slo="availability", service="checkout",
                                     bucket_ts_ns=T0 + len(minutes) * MIN, resolution_ns=gap_len * MIN,
                                     good=0, total=0, no_data_ns=gap_len * MIN))
            minutes += [(0, 0)] * gap_len
        total = bad + extra
        rollups.append(SliRollup(slo="availability", service="checkout",
                                 bucket_ts_ns=T0 + len(minutes) * MIN, resolution_ns=MIN,
                                 good=extra, total=total))
        minutes.append((extra, total))
    det.process(rollups)
    for n in st_.lengths:
        want = (sum(g for g, _ in minutes[-n:]), sum(t for _, t in minutes[-n:]))
        assert st_.window(n) == want, n

"""The fast error-onset test gives exactly the onsets of the general CUSUM
(also from the series kept per service), and alerts that share a window
share its test without changing a ranking."""

from __future__ import annotations

import random
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from srestream.correlate import EvidenceMemo, RootCauseAnalyzer, ServiceStats, rank_root_causes
from srestream.correlate._onsets import SeriesIndex, error_onsets, error_onsets_reference
from srestream.slo._records import Alert

from ._cascade import MINUTE, T0
from .test_root_cause import _alert, _evidence

# A segment of a service's series: (buckets, requests per bucket, error ratio).
_segment = st.tuples(
    st.integers(1, 40),
    st.sampled_from([0, 1, 4, 5, 20, 100, 1000]),
    st.sampled_from([0.0, 0.001, 0.01, 0.05, 0.1, 0.3, 0.6, 1.0]),
)


def _stats(series: list[list[tuple[int, int, float]]], seed: int) -> list[ServiceStats]:
    rng = random.Random(seed)
    out = []
    for k, segments in enumerate(series):
        b = 0
        for buckets, requests, ratio in segments:
            for _ in range(buckets):
                n = max(0, round(rng.gauss(requests, requests**0.5 + 1)))
                errors = sum(rng.random() < ratio for _ in range(min(n, 200)))
                spans = n if rng.random() < 0.8 else 0  # else a log-only bucket
                out.append(
                    ServiceStats(
                        ts_ns=T0 + b * MINUTE, bucket_ns=MINUTE, service=f"svc-{k}",
                        spans=spans, errors=errors if spans else 0, root_causes=0,
                        latency_mean_ns=0, logs=n, error_logs=errors,
                    )
                )  # fmt: skip
                b += 1
    rng.shuffle(out)
    return out


@settings(max_examples=150, deadline=None)
@given(
    series=st.lists(st.lists(_segment, min_size=1, max_size=5), min_size=1, max_size=6),
    seed=st.integers(0, 1000),
    min_shift=st.sampled_from([0.0, 0.02, 0.05, 0.2]),
    min_requests=st.sampled_from([0, 5]),
)
def test_fast_onsets_equal_the_general_cusum(
    series: list[list[tuple[int, int, float]]], seed: int, min_shift: float, min_requests: int
) -> None:
    stats = _stats(series, seed)
    assert error_onsets(
        stats, min_shift=min_shift, min_requests=min_requests
    ) == error_onsets_reference(stats, min_shift=min_shift, min_requests=min_requests)


def test_a_step_in_the_error_ratio_is_dated_to_its_bucket() -> None:
    calm = [(30, 200, 0.001)]
    stats = _stats([calm + [(10, 200, 0.5)], calm + calm], seed=3)
    assert error_onsets(stats) == {"svc-0": T0 + 30 * MINUTE}


def test_alerts_sharing_a_window_get_the_ranking_each_would_get_alone() -> None:
    evidence = _evidence(failing_service="db")
    alerts = [_alert(service=s) for s in ("web", "orders", "db")]
    shared = RootCauseAnalyzer()
    together = shared.process([*evidence, *alerts]) + shared.finish()
    alone = []
    for a in alerts:
        fresh = RootCauseAnalyzer()
        alone += fresh.process([*evidence, a]) + fresh.finish()
    assert together == alone
    ranked = [r for r in together if isinstance(r, Alert)]
    assert [r.root_cause_candidates[0]["service"] for r in ranked] == ["db"] * 3


def test_the_memo_is_not_reused_once_the_statistics_change() -> None:
    evidence = [r for r in _evidence(failing_service="cache") if isinstance(r, ServiceStats)]
    until = T0 + 26 * MINUTE
    memo = EvidenceMemo()
    calm = [s for s in evidence if s.service != "cache"]
    first = rank_root_causes(
        service="web", until_ts_ns=until, stats=calm, memo=memo, stats_version=1
    )
    assert "cache" not in {c.service for c in first}
    again = rank_root_causes(
        service="web", until_ts_ns=until, stats=evidence, memo=memo, stats_version=2
    )
    assert again == rank_root_causes(service="web", until_ts_ns=until, stats=evidence)
    assert again[0].service == "cache"


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_the_kept_series_give_the_onsets_of_every_window(seed: int) -> None:
    """Statistics come (some late), go (oldest first) and a few have another
    bucket size; every window's onsets from the index equal those of a pass
    over the window's statistics, or the index declines (several sizes)."""
    rng = random.Random(seed)
    index, held = SeriesIndex(), deque[ServiceStats]()
    rates = {f"svc-{k}": 0.0 for k in range(rng.randint(1, 6))}
    answered = 0
    for t in range(rng.randint(10, 120)):
        for service, rate in list(rates.items()):
            if rng.random() < 0.05:
                rates[service] = rate = rng.choice([0.0, 0.02, 0.1, 0.5, 1.0])
            n = rng.choice([0, 3, 5, 20, 50])
            errors = sum(rng.random() < rate for _ in range(n))
            late = rng.randint(1, 5) if rng.random() < 0.1 else 0
            s = ServiceStats(
                ts_ns=T0 + max(0, t - late) * MINUTE, service=service, spans=n, errors=errors,
                bucket_ns=MINUTE if rng.random() < 0.99 else 2 * MINUTE, root_causes=0,
                latency_mean_ns=0, logs=n, error_logs=errors,
            )  # fmt: skip
            held.append(s)
            index.add(s)
        while held and rng.random() < 0.3:
            index.remove(held.popleft())
        until = T0 + (t - rng.randint(0, 3)) * MINUTE + rng.choice([0, 0, -1, 1])
        start = until - rng.choice([10, 30, 60]) * MINUTE
        got = index.onsets(start, until)
        if got is not None:
            answered += 1
            window = [s for s in held if start <= s.ts_ns and s.ts_ns + s.bucket_ns <= until]
            assert got == error_onsets(window)
    assert answered or any(s.bucket_ns != MINUTE for s in held)

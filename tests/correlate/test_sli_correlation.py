"""Log-to-metric correlation: which templates and metrics moved with the SLI."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from srestream import MetricSample
from srestream.correlate import (
    bucket_series,
    correlate_with_sli,
    error_ratio_series,
    pearson,
    rank_sli_correlates,
    spearman,
)

from ._cascade import MINUTE, SECOND, T0, Cascade


def test_pearson_matches_the_standard_library() -> None:
    rng = random.Random(1)
    for _ in range(20):
        xs = [rng.uniform(-5, 5) for _ in range(30)]
        ys = [x * rng.uniform(-2, 2) + rng.gauss(0, 1) for x in xs]
        assert pearson(xs, ys) == pytest.approx(statistics.correlation(xs, ys), abs=1e-9)


def test_spearman_is_pearson_on_average_ranks() -> None:
    # A monotone but very non-linear relation is perfect for Spearman only.
    xs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    ys = [math.exp(3 * x) for x in xs]
    assert spearman(xs, ys) == pytest.approx(1.0)
    r = pearson(xs, ys)
    assert r is not None and r < 0.9
    # Ties share their average rank: ranks of [1, 2, 2, 3] are [1, 2.5, 2.5, 4].
    assert spearman([1, 2, 2, 3], [1, 2.5, 2.5, 4]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 1, 1], [1, 2, 3]) is None


def test_error_templates_and_a_saturating_metric_rank_above_unrelated_ones() -> None:
    # The db fails harder and harder; its error template, the web error
    # template and the db pool metric move with the SLI, the rest does not.
    start = T0
    minutes = 40
    records: list[object] = []
    for m in range(minutes):
        ratio = 0.0 if m < 15 else min(0.9, 0.05 * (m - 14))
        c = Cascade(
            seed=m, requests=60, start_ns=start + m * MINUTE, fail_at_ns=start + 15 * MINUTE,
            fail_ratio=ratio,
        )  # fmt: skip
        records.extend(c.generate())
    rng = random.Random(3)
    for m in range(minutes):
        ts = start + m * MINUTE + 30 * SECOND
        pool = 10 + (0 if m < 15 else 4 * (m - 14)) + rng.gauss(0, 1)
        records.append(MetricSample(name="db_pool_in_use", ts_ns=ts, value=pool,
                                    labels={"service": "db"}))  # fmt: skip
        records.append(MetricSample(name="cpu_seconds", ts_ns=ts, value=rng.uniform(0, 1),
                                    labels={"service": "auth"}))  # fmt: skip
    sli = error_ratio_series(
        records, service="web", start_ts_ns=start, end_ts_ns=start + minutes * MINUTE,
        bucket_ns=MINUTE,
    )  # fmt: skip
    assert sli[0] == 0.0 and sli[-1] > 0.5
    ranked = correlate_with_sli(records, sli, start_ts_ns=start, bucket_ns=MINUTE, top=None)
    names = [c.name for c in ranked]
    moved = {c.name for c in ranked if c.coefficient > 0.9}
    # Errors propagate up the chain: every erring service's error template moves.
    assert moved == {"db:err", "orders:err", "api:err", "web:err", 'db_pool_in_use{service="db"}'}
    # Templates that never changed (auth, cache) correlate with nothing.
    assert not any(n.startswith(("auth:", "cache:")) for n in names)
    by = {c.name: c for c in ranked}
    assert by["db:err"].coefficient > 0.9 and by["db:err"].source == "template"
    assert by['db_pool_in_use{service="db"}'].source == "metric"
    # "ok" templates move against the SLI; the CPU metric barely moves.
    assert by["db:ok"].coefficient < -0.9
    assert abs(by['cpu_seconds{service="auth"}'].coefficient) < 0.5
    assert names[-1] == 'cpu_seconds{service="auth"}'
    assert all(c.points == minutes and c.method == "spearman" for c in ranked)


def test_missing_buckets_are_left_out_pairwise() -> None:
    sli = [0.0, 0.1, math.nan, 0.3, 0.4, 0.5]
    cand = {("metric", "m"): [1.0, 2.0, 3.0, math.nan, 5.0, 6.0]}
    (c,) = rank_sli_correlates(
        sli, cand, start_ts_ns=0, bucket_ns=1, method="pearson", min_points=4
    )
    assert c.points == 4 and c.coefficient == pytest.approx(1.0)
    assert rank_sli_correlates(sli, cand, start_ts_ns=0, bucket_ns=1, min_points=5) == []
    with pytest.raises(ValueError, match="unknown correlation method"):
        rank_sli_correlates(sli, cand, start_ts_ns=0, bucket_ns=1, method="kendall")


def test_metric_series_carry_the_last_value_over_empty_buckets() -> None:
    samples = [
        MetricSample(name="q", ts_ns=T0, value=1.0),
        MetricSample(name="q", ts_ns=T0 + 10 * SECOND, value=3.0),
        MetricSample(name="q", ts_ns=T0 + 2 * MINUTE, value=7.0),
    ]
    templates, metrics = bucket_series(
        samples, start_ts_ns=T0, end_ts_ns=T0 + 4 * MINUTE, bucket_ns=MINUTE
    )
    assert templates == {}
    assert metrics["q"] == [2.0, 2.0, 7.0, 7.0]

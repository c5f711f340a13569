"""Log-to-metric correlation: which log templates and metrics moved with an SLI.

Over an incident window, everything is cut into the same per-bucket series
(template counts per bucket; mean value per bucket for each metric series,
the last value carried over an empty bucket) and each series is compared
with the SLI series by Pearson's r or Spearman's rho (Pearson on ranks,
average ranks for ties).  Candidates are ranked by the strength of the
coefficient, strongest first; a series that never moves correlates with
nothing and is left out.

>>> round(pearson([1, 2, 3, 4], [2, 4, 6, 9]), 3)
0.994
>>> spearman([1, 2, 3, 4], [1, 10, 100, 1000])
1.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._records import LogRecord, MetricSample, Span
from ._records import SliCorrelation

__all__ = [
    "bucket_series",
    "correlate_with_sli",
    "error_ratio_series",
    "pearson",
    "rank_sli_correlates",
    "spearman",
]


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r, or None when either series is constant or too short."""
    n = len(xs)
    if n < 2 or n != len(ys):
        return None
    mx = math.fsum(xs) / n
    my = math.fsum(ys) / n
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    syy = math.fsum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def _ranks(xs: Sequence[float]) -> list[float]:
    order = sorted(range(len(xs)), key=xs.__getitem__)
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        i = j + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rho (Pearson on average ranks)."""
    if len(xs) != len(ys):
        return None
    return pearson(_ranks(xs), _ranks(ys))


def _metric_key(m: MetricSample) -> str:
    if not m.labels:
        return m.name
    return m.name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(m.labels.items())) + "}"


def bucket_series(
    records: Iterable[Any], *, start_ts_ns: int, end_ts_ns: int, bucket_ns: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(template counts, metric means) per bucket of ``[start, end)``."""
    n = max(0, -(-(end_ts_ns - start_ts_ns) // bucket_ns))
    templates: dict[str, list[float]] = {}
    sums: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    for r in records:
        t = type(r)
        if t is LogRecord:
            if not r.template_id or not start_ts_ns <= r.ts_ns < end_ts_ns:
                continue
            series = templates.get(r.template_id)
            if series is None:
                series = templates[r.template_id] = [0.0] * n
            series[(r.ts_ns - start_ts_ns) // bucket_ns] += 1
        elif t is MetricSample:
            if not start_ts_ns <= r.ts_ns < end_ts_ns or math.isnan(r.value):
                continue
            key = _metric_key(r)
            if key not in sums:
                sums[key] = [0.0] * n
                counts[key] = [0] * n
            b = (r.ts_ns - start_ts_ns) // bucket_ns
            sums[key][b] += r.value
            counts[key][b] += 1
    metrics: dict[str, list[float]] = {}
    for key, total in sums.items():
        c = counts[key]
        values: list[float] = []
        last: float | None = None
        for b in range(n):
            if c[b]:
                last = total[b] / c[b]
            values.append(math.nan if last is None else last)
        metrics[key] = values
    return templates, metrics


def error_ratio_series(
    records: Iterable[Any],
    *,
    service: str,
    start_ts_ns: int,
    end_ts_ns: int,
    bucket_ns: int,
) -> list[float]:
    """The availability SLI as an error ratio per bucket, from ``service``'s
    spans and status-carrying logs (NaN where nothing was served)."""
    n = max(0, -(-(end_ts_ns - start_ts_ns) // bucket_ns))
    bad = [0] * n
    total = [0] * n
    for r in records:
        t = type(r)
        if t is Span:
            ts, err = r.end_ts_ns, r.error
        elif t is LogRecord and r.status is not None:
            ts, err = r.ts_ns, r.status >= 500
        else:
            continue
        if r.service != service or not start_ts_ns <= ts < end_ts_ns:
            continue
        b = (ts - start_ts_ns) // bucket_ns
        total[b] += 1
        bad[b] += err
    return [bad[b] / total[b] if total[b] else math.nan for b in range(n)]


def rank_sli_correlates(
    sli: Sequence[float],
    candidates: Mapping[tuple[str, str], Sequence[float]],
    *,
    start_ts_ns: int,
    bucket_ns: int,
    method: str = "spearman",
    min_points: int = 5,
    top: int | None = None,
) -> list[SliCorrelation]:
    """Rank ``candidates`` (keyed by (source, name)) by how they move with
    ``sli``; buckets where either is NaN are left out pairwise."""
    fn = {"pearson": pearson, "spearman": spearman}.get(method)
    if fn is None:
        raise ValueError(f"unknown correlation method {method!r} (pearson or spearman)")
    out = []
    for (source, name), series in candidates.items():
        xs: list[float] = []
        ys: list[float] = []
        for y, x in zip(sli, series, strict=False):
            if not (math.isnan(x) or math.isnan(y)):
                xs.append(x)
                ys.append(y)
        if len(xs) < min_points:
            continue
        r = fn(xs, ys)
        if r is None:
            continue
        out.append(
            SliCorrelation(
                name=name, source=source, coefficient=round(r, 6), method=method,
                points=len(xs), start_ts_ns=start_ts_ns,
                end_ts_ns=start_ts_ns + len(sli) * bucket_ns,
            )
        )  # fmt: skip
    out.sort(key=lambda c: (-abs(c.coefficient), c.source, c.name))
    return out[:top] if top is not None else out


def correlate_with_sli(
    records: Sequence[Any],
    sli: Sequence[float],
    *,
    start_ts_ns: int,
    bucket_ns: int,
    method: str = "spearman",
    min_points: int = 5,
    top: int | None = 20,
) -> list[SliCorrelation]:
    """Rank the templates and metrics of ``records`` against ``sli`` (one
    value per bucket from ``start_ts_ns``)."""
    end = start_ts_ns + len(sli) * bucket_ns
    templates, metrics = bucket_series(
        records, start_ts_ns=start_ts_ns, end_ts_ns=end, bucket_ns=bucket_ns
    )
    candidates: dict[tuple[str, str], Sequence[float]] = {}
    for name, series in templates.items():
        candidates[("template", name)] = series
    for name, series in metrics.items():
        candidates[("metric", name)] = series
    return rank_sli_correlates(
        sli, candidates, start_ts_ns=start_ts_ns, bucket_ns=bucket_ns, method=method,
        min_points=min_points, top=top,
    )  # fmt: skip

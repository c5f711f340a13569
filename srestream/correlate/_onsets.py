"""Error onsets of every service over an evidence window, fast.

``root_cause`` dates each service's latest error onset for every alert it
ranks: an :class:`~srestream.correlate.ErrorRateCusum` run over each
service's statistics of the lookback (about 60 buckets x 100 services).
Run through the general detector that costs ~50 ms per alert, most of it
recomputing baseline sums the answer does not need.  :func:`error_onsets`
here runs the very same test, step for step, with three savings that do not
change a single result:

* a bucket's transforms (ratio, ``asin(sqrt(ratio))``, its ``sin(..)**2``)
  depend only on its (errors, requests) pair, and those repeat all the time:
  they are computed once per pair;
* the baseline's mean ratio is ``fsum`` of the ``sin**2`` values, kept in a
  deque beside the baseline instead of being recomputed from it;
* in control (no excursion under way, ``S <= drift``) a bucket whose shift
  is not significant cannot move the sum above zero whatever its ``z``
  (``z`` is clamped to ``<= 0`` then), so the baseline's sigma and ``z``
  are only computed when they can matter;
* only a bucket whose own ratio reaches ``min_shift`` can be a significant
  shift: before a service's first such bucket the test only learns the
  baseline (its last 30 values are all that is kept), after the last one no
  alarm can come; a service without any (most) is not tested at all.

:func:`error_onsets_reference` is the plain form (kept as the oracle of the
tests and as the definition).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable
from typing import Any

from ._changepoint import ErrorRateCusum, best_split
from ._records import ServiceStats

__all__ = ["error_onsets"]  # error_onsets_reference: the tests' oracle

# The CUSUM parameters of the root-cause onset test.
_BASELINE = 30
_MIN_BASELINE = 3
_DRIFT = 0.5
_THRESHOLD = 5.0
_REARM = 3

_Transform = tuple[float, float, float, float]  # ratio, y, sin(y)**2, min sigma
_TRANSFORMS: dict[tuple[int, int], _Transform] = {}
_MAX_TRANSFORMS = 1 << 16


def _transform(errors: int, total: int) -> _Transform:
    key = (errors, total)
    got = _TRANSFORMS.get(key)
    if got is None:
        if len(_TRANSFORMS) >= _MAX_TRANSFORMS:
            _TRANSFORMS.clear()  # bounded memory on an endless variety of counts
        ratio = min(1.0, errors / total)
        y = math.asin(math.sqrt(ratio))
        got = _TRANSFORMS[key] = (ratio, y, math.sin(y) ** 2, 0.5 / math.sqrt(total))
    return got


def _series(
    stats: Iterable[ServiceStats], min_requests: int
) -> dict[str, list[tuple[int, int, int]]]:
    """(bucket start, errors, requests) per service, time-ordered."""
    series: dict[str, list[tuple[int, int, int]]] = {}
    for s in stats:
        spans = s.spans
        requests = spans if spans else s.logs
        errors = s.errors if spans else s.error_logs
        if requests >= min_requests or errors:
            points = series.get(s.service)
            if points is None:
                points = series[s.service] = []
            points.append((s.ts_ns, errors, max(requests, errors)))
    for points in series.values():
        points.sort()
    return series


def _fallback(points: list[tuple[int, int, int]]) -> int | None:
    """Too little history for a change point: erring from the start?"""
    head = points[:3]
    if head and all(e > 0 for _, e, _ in head):
        return head[0][0]
    return None


def error_onsets(
    stats: Iterable[ServiceStats], *, min_requests: int = 5, min_shift: float = 0.05
) -> dict[str, int]:
    """Each service's latest error onset (ns) in ``stats``: the start of the
    most recent rise of its error ratio by at least ``min_shift`` that an
    :class:`ErrorRateCusum` (baseline 3 to 30 buckets, threshold 5) confirms;
    a service erring in its first three buckets has the first as onset."""
    onsets: dict[str, int] = {}
    for service, points in _series(stats, min_requests).items():
        found = _service_onset(points, min_shift)
        if found is not None:
            onsets[service] = found
    return onsets


def _service_onset(
    points: list[tuple[int, int, int]],
    min_shift: float,
    cache: dict[tuple[Any, ...], int | None] | None = None,
) -> int | None:
    """The onset of one service's time-ordered points (see :func:`error_onsets`);
    ``cache`` keeps answers by the points the test reads (for one ``min_shift``)."""
    if min_shift <= 0:
        found = _latest_onset(points, min_shift, 0, len(points))
        return found if found is not None else _fallback(points)
    # Only buckets whose own ratio reaches min_shift can be significant
    # (a ratio minus the baseline's, never negative, is no larger):
    # before the first such bucket the test only learns its baseline,
    # after the last one no alarm can come.  Most services have none.
    shifts = [
        i for i, (_, e, t) in enumerate(points) if e and t > 0 and min(1.0, e / t) >= min_shift
    ]  # fmt: skip
    if not shifts:
        return _fallback(points)
    lo, hi = shifts[0], shifts[-1] + 1
    if cache is None:
        found = _latest_onset(points, min_shift, lo, hi)
    else:
        # The test reads the buckets from the last 30 learnt before ``lo``
        # to ``hi``: a window sliding on keeps the same ones for a while.
        seed, learnt = lo, 0
        while seed > 0 and learnt < _BASELINE:
            seed -= 1
            if points[seed][2] > 0:
                learnt += 1
        key = (lo - seed, *points[seed:hi])
        found = cache.get(key, _MISSING)
        if found is _MISSING:
            if len(cache) >= _MAX_CACHED:
                cache.clear()
            found = cache[key] = _latest_onset(points[seed:hi], min_shift, lo - seed, hi - seed)
    return found if found is not None else _fallback(points)


_MISSING: Any = object()
_MAX_CACHED = 4096


class SeriesIndex:
    """Every service's points kept as statistics come and go, so that the
    onsets of a window are found without going through all its statistics
    (:meth:`onsets` equals :func:`error_onsets` of the statistics of
    ``[start, until]`` held).  Needs one bucket size: with statistics of
    several, :meth:`onsets` returns None."""

    __slots__ = ("_bucket_sizes", "_cache", "_points", "min_requests", "min_shift")

    def __init__(self, *, min_requests: int = 5, min_shift: float = 0.05) -> None:
        self.min_requests = min_requests
        self.min_shift = min_shift
        self._points: dict[str, list[tuple[int, int, int]]] = {}
        self._bucket_sizes: dict[int, int] = {}  # bucket_ns -> statistics held
        self._cache: dict[tuple[Any, ...], int | None] = {}  # see _service_onset

    def _point(self, s: ServiceStats) -> tuple[int, int, int] | None:
        spans = s.spans
        requests = spans if spans else s.logs
        errors = s.errors if spans else s.error_logs
        if requests >= self.min_requests or errors:
            return (s.ts_ns, errors, max(requests, errors))
        return None

    def add(self, s: ServiceStats) -> None:
        sizes = self._bucket_sizes
        sizes[s.bucket_ns] = sizes.get(s.bucket_ns, 0) + 1
        point = self._point(s)
        if point is None:
            return
        points = self._points.get(s.service)
        if points is None:
            self._points[s.service] = [point]
        elif points[-1] <= point:
            points.append(point)
        else:
            insort(points, point)

    def remove(self, s: ServiceStats) -> None:
        """Forget ``s`` (added before)."""
        sizes = self._bucket_sizes
        left = sizes[s.bucket_ns] - 1
        if left:
            sizes[s.bucket_ns] = left
        else:
            del sizes[s.bucket_ns]
        point = self._point(s)
        if point is None:
            return
        points = self._points[s.service]
        del points[bisect_left(points, point)]
        if not points:
            del self._points[s.service]

    def onsets(self, start: int, until: int) -> dict[str, int] | None:
        """:func:`error_onsets` of the statistics held with ``start <= ts``
        and ``ts + bucket <= until``; None with several bucket sizes."""
        sizes = self._bucket_sizes
        if len(sizes) != 1:
            return {} if not sizes else None
        (size,) = sizes
        lo, hi = (start,), (until - size + 1,)
        onsets: dict[str, int] = {}
        min_shift, cache = self.min_shift, self._cache
        for service, points in self._points.items():
            a = bisect_left(points, lo)
            b = bisect_left(points, hi, a)
            if a < b:
                found = _service_onset(points[a:b], min_shift, cache)
                if found is not None:
                    onsets[service] = found
        return onsets


def _latest_onset(
    points: list[tuple[int, int, int]], min_shift: float, lo: int, hi: int
) -> int | None:
    """:meth:`ErrorRateCusum.update` over ``points[lo:hi]``, step for step
    (see module doc), after ``points[:lo]`` (none significant) have only
    been learnt as baseline; the onset of its last alarm."""
    fsum, sqrt, asin = math.fsum, math.sqrt, math.asin
    base: deque[float] = deque(maxlen=_BASELINE)
    base_sq: deque[float] = deque(maxlen=_BASELINE)  # sin(y)**2 of ``base``
    i = lo
    while i > 0 and len(base) < _BASELINE:  # the last values learnt, newest first
        i -= 1
        _, errors, total = points[i]
        if total > 0:
            _, y, sq, _ = _transform(errors, total)
            base.appendleft(y)
            base_sq.appendleft(sq)
    total_ = 0.0  # the CUSUM sum
    alarmed = False
    quiet = 0
    run: list[float] = []
    run_sq: list[float] = []
    run_z: list[tuple[int, float]] = []
    found = None
    for ts, errors, total in points[lo:hi]:
        if total <= 0:
            continue
        ratio, y, sq, min_sigma = _transform(errors, total)
        n = len(base)
        if n < _MIN_BASELINE:
            base.append(y)
            base_sq.append(sq)
            continue
        mean_ratio = fsum(base_sq) / n
        significant = ratio - mean_ratio >= min_shift
        if not significant and not alarmed and total_ <= _DRIFT:
            # z <= 0 here, so S + z - drift <= 0: back to (or still in) control.
            if run:
                base.extend(run)
                base_sq.extend(run_sq)
                run, run_sq, run_z = [], [], []
            total_ = 0.0
            base.append(y)
            base_sq.append(sq)
            continue
        mean = fsum(base) / n
        var = fsum((x - mean) ** 2 for x in base) / n
        sigma = max(sqrt(var), min_sigma, 0.0 * abs(mean))
        z = (y - asin(sqrt(mean_ratio))) / sigma if sigma > 0 else 0.0
        if not significant:
            z = min(z, 0.0)
            if alarmed:
                quiet += 1
                if quiet >= _REARM:
                    total_, alarmed, quiet = 0.0, False, 0
                    run, run_sq, run_z = [], [], []
                    base.append(y)
                    base_sq.append(sq)
                    continue
        elif alarmed:
            quiet = 0
        s = total_ + z - _DRIFT
        if s <= 0.0:
            if not alarmed:
                base.extend(run)
                base_sq.extend(run_sq)
            total_, alarmed = 0.0, False
            run, run_sq, run_z = [], [], []
            base.append(y)
            base_sq.append(sq)
            continue
        total_ = s
        run.append(y)
        run_sq.append(sq)
        run_z.append((ts, z))
        if len(run) >= _BASELINE:
            base.extend(run)
            base_sq.extend(run_sq)
            run, run_sq, run_z = [], [], []
            total_, alarmed = 0.0, False
            continue
        if not alarmed and s > _THRESHOLD:
            alarmed = True
            found = best_split(run_z)
    return found


def error_onsets_reference(
    stats: Iterable[ServiceStats], *, min_requests: int = 5, min_shift: float = 0.05
) -> dict[str, int]:
    """:func:`error_onsets` through the general :class:`ErrorRateCusum`."""
    onsets: dict[str, int] = {}
    for service, points in _series(stats, min_requests).items():
        cusum = ErrorRateCusum(min_shift=min_shift, min_baseline=3, threshold=5.0)
        found = None
        for ts, errors, requests in points:
            onset = cusum.update(ts, errors, requests)
            if onset is not None:
                found = onset
        if found is None:
            found = _fallback(points)
        if found is not None:
            onsets[service] = found
    return onsets

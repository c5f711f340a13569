"""The tests behind the anomaly detectors, one bucket value at a time.

* :class:`Cusum` — Page's one-sided CUSUM for an upward shift, on values
  standardised against a trailing baseline (mean and standard deviation of
  the last ``baseline_buckets`` values seen while in control).  The sum
  ``S = max(0, S + z - drift)`` alarms when it exceeds ``threshold``.  The
  onset is the change time that fits best within the excursion (the
  maximum-likelihood split for a step of unknown size), so a step change is
  dated to the bucket where it happened even when a blip of noise started
  the excursion.  Shifts smaller than
  ``min_shift`` (absolute) or ``relative_shift`` (of the baseline mean)
  never accumulate.  The baseline is frozen during an excursion (a change
  must not teach the baseline that it is normal); the detector re-arms when
  the sum returns to zero or after ``rearm_buckets`` quiet buckets following
  an alarm (the episode is over), and a shift that lasts
  ``baseline_buckets`` becomes the new baseline.
* :class:`SeasonalBaseline` — the expected count of a series at a slot of
  its season (e.g. minute-of-day): an exponentially weighted mean of that
  slot in past seasons, taking the largest of the slot and its two
  neighbours (a daily peak may come a bucket early or late), blended 3:1
  with the recent mean (one season is a noisy estimate); only the recent
  mean until a season has been seen.  A spike is a count above a Poisson
  upper bound of that expectation (``count > mu + z * sqrt(mu)``) that is
  also ``min_ratio`` times it.

>>> c = Cusum(baseline_buckets=10, min_baseline=5, min_sigma=0.01)
>>> [c.update(i, x) for i, x in enumerate([0.01] * 8 + [0.3, 0.3])][-2:]
[8, None]
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

__all__ = ["Cusum", "ErrorRateCusum", "SeasonalBaseline"]


class Cusum:
    """One-sided (upward) CUSUM with a trailing, frozen-on-excursion baseline."""

    __slots__ = (
        "_alarmed",
        "_base",
        "_quiet",
        "_run",
        "_run_z",
        "_start",
        "_sum",
        "baseline_buckets",
        "drift",
        "min_baseline",
        "min_shift",
        "min_sigma",
        "rearm_buckets",
        "relative_shift",
        "relative_sigma",
        "threshold",
    )  # fmt: skip

    def __init__(
        self,
        *,
        baseline_buckets: int = 30,
        min_baseline: int = 5,
        min_sigma: float = 0.0,
        relative_sigma: float = 0.05,
        min_shift: float = 0.0,
        relative_shift: float = 0.0,
        drift: float = 0.5,
        threshold: float = 5.0,
        rearm_buckets: int = 3,
    ) -> None:
        self.rearm_buckets = rearm_buckets
        self._quiet = 0
        self.baseline_buckets = baseline_buckets
        self.min_baseline = min_baseline
        self.min_sigma = min_sigma
        self.relative_sigma = relative_sigma
        self.min_shift = min_shift
        self.relative_shift = relative_shift
        self.drift = drift
        self.threshold = threshold
        self._base: deque[float] = deque(maxlen=baseline_buckets)
        self._sum = 0.0
        self._start: int | None = None
        self._alarmed = False
        self._run: list[float] = []
        self._run_z: list[tuple[int, float]] = []

    def baseline(self) -> tuple[float, float]:
        """(mean, sigma) of the baseline, sigma floored so that a flat
        baseline does not make every wobble infinitely significant."""
        n = len(self._base)
        if n == 0:
            return 0.0, self.min_sigma
        mean = math.fsum(self._base) / n
        var = math.fsum((x - mean) ** 2 for x in self._base) / n
        return mean, max(math.sqrt(var), self.min_sigma, self.relative_sigma * abs(mean))

    def values(self) -> tuple[float, ...]:
        """The baseline's values, oldest first."""
        return tuple(self._base)

    def update(
        self,
        bucket: int,
        value: float,
        *,
        significant: bool | None = None,
        reference: float | None = None,
    ) -> int | None:
        """Feed the value of ``bucket``; return the onset bucket when this
        value makes the detector alarm, else None.  ``significant`` overrides
        the ``min_shift`` rule when the caller judges the shift in other
        units than the values fed (e.g. transformed ratios); ``reference``
        replaces the baseline mean (when the mean of the values fed is a
        biased estimate of the level, as for transformed ratios)."""
        if len(self._base) < self.min_baseline:
            self._base.append(value)
            return None
        mean, sigma = self.baseline()
        if reference is not None:
            mean = reference
        z = (value - mean) / sigma if sigma > 0 else 0.0
        if significant is None:
            significant = value - mean >= max(self.min_shift, self.relative_shift * abs(mean))
        if not significant:
            # Too small a shift to matter to anyone: it may not accumulate.
            z = min(z, 0.0)
            if self._alarmed:
                self._quiet += 1
                if self._quiet >= self.rearm_buckets:
                    # Back to normal for a while: that episode is over.
                    self._end_excursion()
                    self._base.append(value)
                    return None
        elif self._alarmed:
            self._quiet = 0
        s = self._sum + z - self.drift
        if s <= 0.0:
            if not self._alarmed:  # a blip, not a change: it is normal variation
                self._base.extend(self._run)
            self._sum = 0.0
            self._start = None
            self._alarmed = False
            self._run = []
            self._run_z = []
            self._base.append(value)
            return None
        if self._start is None:
            self._start = bucket
        self._sum = s
        self._run.append(value)
        self._run_z.append((bucket, z))
        if len(self._run) >= self.baseline_buckets:
            # A shift that lasts a whole baseline is the new normal: re-arm on it.
            self._base.extend(self._run)
            self._run = []
            self._run_z = []
            self._sum = 0.0
            self._start = None
            self._alarmed = False
            return None
        if not self._alarmed and s > self.threshold:
            self._alarmed = True
            return self._best_split()
        return None

    def _end_excursion(self) -> None:
        self._sum = 0.0
        self._start = None
        self._alarmed = False
        self._run = []
        self._run_z = []
        self._quiet = 0

    def _best_split(self) -> int:
        """The bucket of the excursion where a step up fits best: the split
        ``j`` maximising ``(sum of z from j)^2 / (values from j)``, the
        likelihood gain of a step of unknown size (latest split on ties)."""
        return best_split(self._run_z)

    @property
    def score(self) -> float:
        """The current CUSUM sum (in baseline sigmas)."""
        return self._sum

    def snapshot(self) -> list[Any]:
        return [
            list(self._base), self._sum, self._start, self._alarmed, self._run,
            [list(x) for x in self._run_z], self._quiet,
        ]  # fmt: skip

    def restore(self, state: list[Any]) -> None:
        base, self._sum, self._start, self._alarmed, run, run_z, self._quiet = state
        self._run = [float(x) for x in run]
        self._run_z = [(int(b), float(z)) for b, z in run_z]
        self._base = deque((float(x) for x in base), maxlen=self.baseline_buckets)
        self._sum = float(self._sum)


class ErrorRateCusum:
    """CUSUM of an error ratio (errors out of requests per bucket).

    Error ratios are binomial and skewed at low rates: the test runs on
    ``asin(sqrt(ratio))``, whose variance (``1 / 4n``) does not depend on the
    rate, with sigma at least that for the bucket's ``n``; the reference is
    the transform of the baseline's mean ratio (the mean of transformed
    values underestimates it); a shift must be ``min_shift`` in plain ratio.

    >>> c = ErrorRateCusum(min_shift=0.02)
    >>> [c.update(b, e, 40) for b, e in enumerate([0, 1, 0, 0, 1, 0, 0, 12, 14])][-3:]
    [None, None, 7]
    """

    __slots__ = ("cusum", "min_shift")

    def __init__(
        self,
        *,
        min_shift: float = 0.02,
        baseline_buckets: int = 30,
        min_baseline: int = 5,
        drift: float = 0.5,
        threshold: float = 8.0,
    ) -> None:
        self.min_shift = min_shift
        self.cusum = Cusum(
            baseline_buckets=baseline_buckets, min_baseline=min_baseline, min_sigma=0.01,
            relative_sigma=0.0, drift=drift, threshold=threshold,
        )  # fmt: skip

    def baseline_ratio(self) -> float:
        base = self.cusum.values()
        return math.fsum(math.sin(y) ** 2 for y in base) / len(base) if base else 0.0

    def update(self, bucket: int, errors: int, total: int) -> int | None:
        """Feed one bucket; the onset bucket when this one raises the alarm."""
        if total <= 0:
            return None
        ratio = min(1.0, errors / total)
        cusum = self.cusum
        cusum.min_sigma = 0.5 / math.sqrt(total)
        mean = self.baseline_ratio()
        return cusum.update(
            bucket, math.asin(math.sqrt(ratio)), significant=ratio - mean >= self.min_shift,
            reference=math.asin(math.sqrt(mean)),
        )  # fmt: skip

    @property
    def score(self) -> float:
        return self.cusum.score

    def snapshot(self) -> list[Any]:
        return self.cusum.snapshot()

    def restore(self, state: list[Any]) -> None:
        self.cusum.restore(state)


class SeasonalBaseline:
    """Expected count per slot of a season (see module doc)."""

    __slots__ = ("_profile", "_recent", "_seen_season", "recent_buckets", "slots", "weight")

    def __init__(self, *, slots: int, weight: float = 0.5, recent_buckets: int = 30) -> None:
        self.slots = max(1, slots)
        self.weight = weight
        self.recent_buckets = recent_buckets
        self._profile: dict[int, float] = {}
        self._recent: deque[float] = deque(maxlen=recent_buckets)
        self._seen_season: int | None = None
        """Index of the first bucket seen: a slot's seasonal value is used
        only once a full season has passed."""

    def expected(self, bucket: int) -> float:
        first = self._seen_season
        slot = bucket % self.slots
        recent = math.fsum(self._recent) / len(self._recent) if self._recent else 0.0
        if first is not None and bucket - first >= self.slots and slot in self._profile:
            profile = self._profile
            n = self.slots
            seasonal = max(
                profile.get((slot + d) % n, 0.0) for d in ((-1, 0, 1) if n > 2 else (0,))
            )
            return 0.75 * seasonal + 0.25 * recent
        return recent

    def buckets_seen(self, bucket: int) -> int:
        """How many buckets since the first one learnt (0 before any)."""
        return 0 if self._seen_season is None else bucket - self._seen_season

    def learn(self, bucket: int, count: float, *, anomalous: bool = False) -> None:
        """Learn the count of ``bucket``.  An ``anomalous`` count teaches a
        slot only its first value (a season needs bootstrapping), never
        moves a slot already known."""
        if self._seen_season is None:
            self._seen_season = bucket
        slot = bucket % self.slots
        old = self._profile.get(slot)
        if old is None:
            self._profile[slot] = count
        elif not anomalous:
            self._profile[slot] = old + self.weight * (count - old)
        self._recent.append(count)

    def snapshot(self) -> list[Any]:
        return [sorted(self._profile.items()), list(self._recent), self._seen_season]

    def restore(self, state: list[Any]) -> None:
        profile, recent, first = state
        self._profile = {int(k): float(v) for k, v in profile}
        self._recent = deque((float(x) for x in recent), maxlen=self.recent_buckets)
        self._seen_season = first


def poisson_spike(
    count: float, expected: float, *, z: float, min_ratio: float, min_count: float
) -> bool:
    """Is ``count`` a spike over ``expected``?"""
    if count < min_count:
        return False
    mu = max(expected, 1.0)
    return count > mu + z * math.sqrt(mu) and count >= min_ratio * mu


def best_split(run: list[tuple[int, float]]) -> int:
    """Of a run of ``(bucket, z)``, the bucket where a step up fits best:
    the split ``j`` maximising ``(sum of z from j)^2 / (values from j)``,
    the likelihood gain of a step of unknown size (latest split on ties)."""
    best_gain = -1.0
    best = run[-1][0]
    tail = 0.0
    for i in range(len(run) - 1, -1, -1):
        tail += run[i][1]
        gain = tail * tail / (len(run) - i) if tail > 0 else 0.0
        if gain > best_gain:
            best_gain, best = gain, run[i][0]
    return best

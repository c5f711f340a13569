"""The forecast's unrolled normal-equation sums equal the general loop to the bit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from srestream.slo._forecast import _moments


def _general(xs: list[float], ys: list[float], degree: int) -> tuple[list[float], list[float]]:
    """The general loop of ``_solve`` (any degree)."""
    sums = [0.0] * (2 * degree + 1)
    rhs = [0.0] * (degree + 1)
    for x, y in zip(xs, ys, strict=True):
        p = 1.0
        for k in range(2 * degree + 1):
            sums[k] += p
            if k <= degree:
                rhs[k] += p * y
            p *= x
    return sums, rhs


_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_subnormal=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_floats, _floats), min_size=1, max_size=80), st.sampled_from([1, 2]))
def test_unrolled_sums_are_the_general_loop_to_the_bit(points: list[tuple[float, float]], degree: int) -> None:
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    assert repr(_moments(xs, ys, degree)) == repr(_general(xs, ys, degree))

"""Counting of ``series: selected`` SLIs: counter series chosen by their
predicates alone, whatever their ``service`` label.

Why apart from the per-service counter of ``_windows``: an SLI imported from
Sloth or OpenSLO names its series by PromQL matchers (``job="api"``), not by
a ``service`` label, and its good (or bad) events come from series of their
own (``http_request_duration_seconds_bucket{le="0.3"}`` over
``..._count``; an error counter over a request counter).  So:

* a sample is offered to the SLIs that may want it by its metric name (the
  ``name`` conditions of their predicates; an SLI whose predicate names no
  metric is offered every sample);
* total and good (or bad) are tested separately, each adding the series'
  increase since its previous sample (a reset counts from zero, the first
  sample of a series is its baseline) to its own cell;
* only series some predicate selects are remembered, so memory follows the
  SLIs, not the whole metric stream;
* a bucket exists (has data) once a selected sample arrives in it.

The cells stay ``[good-or-bad, total]`` per SLI; ``SliCounter.closed`` turns
bad into good = total - bad and keeps good at most total.

>>> from srestream import MetricSample
>>> from srestream.slo import parse_slos
>>> from srestream.slo._windows import SliCounter
>>> slos = parse_slos({"slos": [{"name": "a", "service": "api", "objective": 99,
...     "sli": {"kind": "availability", "source": "metrics", "series": "selected",
...             "total": {"name": "req_total"}, "bad": {"name": "err_total"}}}]})
>>> pending, last = {}, {}
>>> count = compile_selected_counter([(0, SliCounter(slos.slos[0]))], 1, pending, last)
>>> for v in (10, 15):
...     count(MetricSample(name="req_total", ts_ns=0, value=v), 0)
>>> count(MetricSample(name="err_total", ts_ns=0, value=1), 0)
>>> count(MetricSample(name="err_total", ts_ns=0, value=3), 0)
>>> pending  # bucket 0: [bad, total] of the one SLI
{0: [2, 5]}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._predicates import predicate_env

if TYPE_CHECKING:
    from ._windows import SliCounter

__all__ = ["compile_selected_counter", "selected_metric_names"]

_FIELD_REF = re.compile(r"\br\.([a-z_]+)")
"""A record field in generated predicate code (``r.labels``)."""


def _names(pred: dict[str, Any] | None) -> set[str] | None:
    """The metric names a predicate can select; None: any."""
    if not pred or "name" not in pred:
        return None
    cond = pred["name"]
    if isinstance(cond, str):
        return {cond}
    if isinstance(cond, list) and all(isinstance(x, str) for x in cond):
        return set(cond)
    if isinstance(cond, dict):
        if isinstance(cond.get("eq"), str):
            return {cond["eq"]}
        if isinstance(cond.get("in"), list) and all(isinstance(x, str) for x in cond["in"]):
            return set(cond["in"])
    return None


def selected_metric_names(counters: Sequence[SliCounter]) -> set[str] | None:
    """Metric names the ``selected`` SLIs of ``counters`` read; None when
    one of them may read any metric."""
    out: set[str] = set()
    for k in counters:
        sli = k.spec.sli
        for pred in (sli.total, sli.good if sli.bad is None else sli.bad):
            names = _names(pred)
            if names is None:
                return None
            out |= names
    return out


def compile_selected_counter(
    columns: Sequence[tuple[int, SliCounter]],
    slis: int,
    pending: dict[int, list[int]],
    last: dict[tuple[str, tuple[tuple[str, str], ...]], float],
) -> Callable[[Any, int], None]:
    """``count(sample, bucket)`` for the ``series: selected`` SLIs of one
    service, each with its column among the service's ``slis`` SLIs (cells
    ``2j`` good-or-bad, ``2j + 1`` total, in ``pending``'s buckets).
    ``last`` keeps the previous value of each selected series."""
    env = predicate_env()
    env["PEND"], env["LAST"], env["WIDTH"] = pending, last, 2 * slis
    lines = ["def count(r, m):"]
    tests = []
    adds = []
    for j, k in columns:
        total, good = k.sources(env, j)
        lines += [f"    t{j} = {total}", f"    g{j} = {good}"]
        tests += [f"t{j}", f"g{j}"]
        adds += [f"    if t{j}:", f"        c[{2 * j + 1}] += d", f"    if g{j}:", f"        c[{2 * j}] += d"]
    # Read each record field once into a local (attribute loads are the cost).
    body = "\n".join(lines[1:])
    fields = sorted(set(_FIELD_REF.findall(body)))
    lines = [lines[0], *(f"    f_{f} = r.{f}" for f in fields),
             *(_FIELD_REF.sub(lambda mt: f"f_{mt.group(1)}", ln) for ln in lines[1:])]
    lines += [
        f"    if not ({' or '.join(tests)}):",
        "        return",
        "    key = (r.name, tuple(sorted(r.labels.items())))",
        "    v = r.value",
        "    prev = LAST.get(key)",
        "    LAST[key] = v",
        "    d = 0 if prev is None else (round(v - prev) if v >= prev else round(v))",
        "    c = PEND.get(m)",
        "    if c is None:",
        "        c = PEND[m] = [0] * WIDTH",
        *adds,
    ]
    exec(compile("\n".join(lines), "<selected series counter>", "exec"), env)  # noqa: S102
    fn: Callable[[Any, int], None] = env["count"]
    return fn

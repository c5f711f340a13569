"""The SLI windows stage's per-batch scan, generated once per SLO set.

One generated function walks a batch in order and does, per record, all of
the stage's record work inline (no call per record for log records):

* the watermark: the largest ``ts_ns`` so far, late records, and the points
  where the watermark passed a bucket end (the stage closes those buckets
  after the scan, at the same points, so the output does not depend on the
  batch size);
* the bucket cells of the record's service, from a cache of the current
  bucket (service -> cells, kept across batches; the stage empties it when
  it restores a checkpoint): the bucket changes when ``ts_ns`` leaves the
  current bucket's bounds (two comparisons, no division), and a record
  costs one dict subscript for its cells;
* every log SLI of the service, predicates inlined, counted into the cells
  (good as a condition on the total record; for coverage and durability,
  good or bad records of their own, see :func:`count_lines`).

Services whose SLOs read the same (same predicates, same constants, in the
same order) share one block of code: a "shape".  A set of SLOs written per
service from a template has one shape, so the scan has no dispatch at
all; with several shapes the block is chosen by an ``if`` on the shape's
number, and past :data:`MAX_INLINE_SHAPES` the remaining services fall
back to their own generated per-record counter.  Metric samples go through
the service's per-record counter (counter series need their previous
value in order): the one of the service their ``service`` label names, and
the ``series: selected`` counters that read their metric name (see
``_series_counter``).  Spans (``source: spans`` SLIs) likewise go through
the per-record span counter of their service, at their end time; the scan
has a span branch only when the SLO set has span SLIs, so a set without
them compiles exactly the code it did before span SLIs existed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from .._records import LogRecord, MetricSample, Span
from ._predicates import predicate_env

if TYPE_CHECKING:
    from ._windows import ServiceBuckets

__all__ = ["MAX_INLINE_SHAPES", "Scan", "compile_scan", "count_lines", "empty_cache"]

MAX_INLINE_SHAPES: Final = 16
"""Shapes with their own inline block; the rest call a per-service counter."""

_FIELD_REF = re.compile(r"\br\.([a-z_]+)")
_NAME = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")

Scan = Callable[[Any, int, int, int, list[int], list[Any], list[Any]], tuple[int, int]]
"""``scan(batch, max_ts, watermark, close_at, ends, late, cache) -> (max_ts, watermark)``;
``cache`` is ``[lo, hi, cells by service]`` of the current bucket, updated in place."""


def empty_cache() -> list[Any]:
    """A bucket cache that holds no bucket (the first record fills it)."""
    return [0, 0, {}]


def count_lines(total: str, good: str, j: int, step: str, apart: bool) -> list[str]:
    """The lines counting SLI ``j`` into the cells ``c``: good as a further
    condition on the total records, or (``apart``: coverage and durability
    over logs) good (or bad) records of their own, tested whatever total says."""
    if apart:
        return [f"if {total}:", f"    c[{2 * j + 1}] += {step}",
                f"if {good}:", f"    c[{2 * j}] += {step}"]
    return [f"if {total}:", f"    c[{2 * j + 1}] += {step}",
            f"    if {good}:", f"        c[{2 * j}] += {step}"]


def _shape(b: ServiceBuckets) -> tuple[list[str], dict[str, Any]]:
    """The log-SLI counting lines of one service (over record ``r`` and the
    cells ``c``) and the constants they use."""
    env: dict[str, Any] = {}
    body: list[str] = []
    for j, k in enumerate(b.counters):
        if k.spec.sli.on_metrics or k.spec.sli.on_spans:
            continue
        total, good = k.sources(env, j)
        body += count_lines(total, good, j, "1", k.apart)
    return body, env


def _key(body: list[str], env: dict[str, Any]) -> tuple[Any, ...]:
    consts = tuple(sorted((n, type(v).__name__, repr(v)) for n, v in env.items()))
    return ("\n".join(body), consts)


def _rename(line: str, names: dict[str, str]) -> str:
    return _NAME.sub(lambda mt: names.get(mt.group(0), mt.group(0)), line)


def compile_scan(
    services: Mapping[str, ServiceBuckets], resolution_ns: int, lateness_ns: int
) -> Scan:
    """The scan function of one SLO set (see the module doc)."""
    env = predicate_env()
    shapes: dict[tuple[Any, ...], int] = {}
    blocks: list[list[str]] = []
    shape_of: dict[str, int] = {}
    for svc, b in services.items():
        body, consts = _shape(b)
        key = _key(body, consts)
        k = shapes.get(key)
        if k is None:
            k = len(blocks)
            if k >= MAX_INLINE_SHAPES:
                shape_of[svc] = -1
                continue
            shapes[key] = k
            # The shape's constants under names of its own.
            rename = {n: f"S{k}_{n}" for n in consts}
            for n, v in consts.items():
                env[rename[n]] = v
            blocks.append([_rename(ln, rename) for ln in body])
        shape_of[svc] = k

    def cells_for(svc: str, m: int) -> Any:
        """(shape, cells of bucket ``m``) of a service, False if unknown."""
        b = services.get(svc)
        if b is None:
            return False
        c = b.pending.get(m)
        if c is None:
            c = b.pending[m] = [0] * (2 * len(b.counters))
        return (shape_of[svc], c)

    env.update(
        LogRecord=LogRecord,
        MetricSample=MetricSample,
        CELLS=cells_for,
        KNOWN=frozenset(services),
        METRIC_FNS={svc: b.count_metric for svc, b in services.items() if b.reads_service_label},
        # Services past the inline shapes: their own per-record log counter.
        LOG_FNS={svc: services[svc].compile_counter(on_metrics=False)
                 for svc, k in shape_of.items() if k < 0},
    )
    one = len(blocks) == 1 and -1 not in shape_of.values()
    selected = _selected_counters(services)
    env["SELECTED"], env["SELECTED_ANY"] = selected

    def block(k: int, ind: str) -> list[str]:
        lines = blocks[k]
        fields = sorted(set(_FIELD_REF.findall("\n".join(lines))) - {"ts_ns"})
        out = [f"{ind}f_{f} = r.{f}" for f in fields]
        out += [ind + _FIELD_REF.sub(lambda mt: f"f_{mt.group(1)}", ln) for ln in lines]
        return out or [f"{ind}pass"]

    res, late_ns = resolution_ns, lateness_ns
    watermark = [
        "        if f_ts_ns > max_ts:",
        "            max_ts = f_ts_ns",
        f"            if f_ts_ns - {late_ns} > wm:",
        f"                wm = f_ts_ns - {late_ns}",
        "                if wm >= close_at:",
        f"                    e = wm // {res}",
        "                    ends.append(e)",
        f"                    close_at = (e + 1) * {res}",
    ]
    lines = [
        "def scan(batch, max_ts, wm, close_at, ends, late, cache):",
        "    lo, hi, cur = cache",
        "    m = lo // " + str(res),
        "    for r in batch:",
        "        t = type(r)",
        "        if t is LogRecord:",
        "            f_ts_ns = r.ts_ns",
        *["    " + ln for ln in watermark],
        "            elif f_ts_ns < wm:",
        "                if r.service in KNOWN:",
        "                    late.append(r)",
        "                continue",
        "            if not lo <= f_ts_ns < hi:",
        f"                m = f_ts_ns // {res}",
        f"                lo = m * {res}",
        f"                hi = lo + {res}",
        "                cur = {}",
        "            svc = r.service",
        "            try:",
        "                x = cur[svc]",
        "            except KeyError:",
        "                x = cur[svc] = CELLS(svc, m)",
        "            if not x:",
        "                continue",
        "            k, c = x" if not one else "            c = x[1]",
    ]
    if one:
        lines += block(0, "            ")
    elif not blocks:
        lines += ["            LOG_FNS[svc](r, m)"]
    else:
        for k in range(len(blocks)):
            lines.append(f"            {'if' if k == 0 else 'elif'} k == {k}:")
            lines += block(k, "                ")
        lines += ["            else:", "                LOG_FNS[svc](r, m)"]
    span_fns = {svc: b.count_span for svc, b in services.items() if b.count_span is not None}
    env.update(Span=Span, SPAN_FNS=span_fns)
    any_selected = bool(selected[0] or selected[1])
    lines += [
        "        elif t is MetricSample:",
        "            fn = METRIC_FNS.get(r.labels.get('service', ''))",
        *(["            sel = SELECTED.get(r.name, SELECTED_ANY)"] if any_selected else []),
        "            f_ts_ns = r.ts_ns",
        *["    " + ln for ln in watermark],
        "            elif f_ts_ns < wm:",
        f"                if fn is not None{' or sel' if any_selected else ''}:",
        "                    late.append(r)",
        "                continue",
        "            if fn is not None:",
        f"                fn(r, f_ts_ns // {res})",
        *(["            for g in sel:", f"                g(r, f_ts_ns // {res})"] if any_selected else []),
        *(_span_branch(watermark, res) if span_fns else []),
        "    cache[:] = lo, hi, cur",
        "    return max_ts, wm",
    ]
    src = "\n".join(lines)
    exec(compile(src, "<sli windows scan>", "exec"), env)  # noqa: S102
    fn: Scan = env["scan"]
    return fn


def _span_branch(watermark: list[str], res: int) -> list[str]:
    """The scan's lines for a span: its end is its event time; it counts
    (and is late) only for a service with span SLIs."""
    return [
        "        elif t is Span:",
        "            fn = SPAN_FNS.get(r.service)",
        "            f_ts_ns = r.end_ts_ns",
        *["    " + ln for ln in watermark],
        "            elif f_ts_ns < wm:",
        "                if fn is not None:",
        "                    late.append(r)",
        "                continue",
        "            if fn is not None:",
        f"                fn(r, f_ts_ns // {res})",
    ]


def _selected_counters(
    services: Mapping[str, ServiceBuckets],
) -> tuple[dict[str, tuple[Callable[[Any, int], None], ...]], tuple[Callable[[Any, int], None], ...]]:
    """The ``series: selected`` counters by the metric name they read, and
    those that read any metric (also under every name)."""
    by_name: dict[str, list[Callable[[Any, int], None]]] = {}
    anywhere: list[Callable[[Any, int], None]] = []
    for b in services.values():
        if b.count_selected is None:
            continue
        if b.selected_names is None:
            anywhere.append(b.count_selected)
            continue
        for name in sorted(b.selected_names):
            by_name.setdefault(name, []).append(b.count_selected)
    return {n: (*fns, *anywhere) for n, fns in by_name.items()}, tuple(anywhere)

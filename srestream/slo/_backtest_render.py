"""Rendering a backtest: a Markdown report and a JSON document.

Both are functions of the report alone (no clock, no paths resolved), so
the same input gives the same bytes.  JSON follows the output contract:
every ``*ts_ns`` time has an RFC 3339 sibling (``ts_ns`` -> ``ts``).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from .._duration import format_duration
from .._output import rfc3339_ms
from ._backtest import BacktestReport, BacktestScore

__all__ = ["render_backtest_json", "render_backtest_markdown"]

_COLUMNS = ("pages", "true", "false", "precision", "incidents", "detected", "recall",
            "delay median", "delay max", "pages/week", "missed")


def _delay(ns: int | None) -> str:
    if ns is None:
        return "–"
    return format_duration(round(ns / 1e9) * 1_000_000_000)


def _ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _cells(s: BacktestScore) -> list[str]:
    return [
        str(s.pages), str(s.true_positives), str(s.false_positives), _ratio(s.precision),
        str(s.incidents), str(s.detected), _ratio(s.recall), _delay(s.delay_median_ns),
        _delay(s.delay_max_ns), "–" if s.pages_per_week is None else f"{s.pages_per_week:.1f}",
        ", ".join(s.missed),
    ]


def _table(head: list[str], rows: list[list[str]], numeric_from: int) -> list[str]:
    align = ["---" if i < numeric_from or h == "missed" else "--:" for i, h in enumerate(head)]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def render_backtest_markdown(report: BacktestReport) -> str:
    """The report as Markdown: what was replayed, the ground truth, a
    summary per variant and tier, then per SLO, service and tier."""
    h = report.history
    lines = ["# Backtest", ""]
    span = "no records"
    if h.first_ts_ns is not None and h.last_ts_ns is not None:
        span = f"{rfc3339_ms(h.first_ts_ns)} .. {rfc3339_ms(h.last_ts_ns)} ({_delay(h.span_ns)})"
    lines.append(
        f"History: {', '.join(h.files)}: {h.records} records ({h.dead_letters} dead letters, "
        f"{h.late_records} late), {span}."
    )
    form = "srestream sim truth" if report.truth_form == "sim" else "incidents file"
    lines.append(f"Ground truth: {report.truth_file} ({form}), {len(report.incidents)} incident(s) in the history:")
    lines.append("")
    for i in report.incidents:
        extra = f", slo {i.slo}" if i.slo else ""
        deps = f"; affected: {', '.join(i.affected)}" if i.affected else ""
        lines.append(
            f"- {i.incident_id}: {i.service}{extra}, {rfc3339_ms(i.start_ts_ns)} .. "
            f"{rfc3339_ms(i.end_ts_ns)}{deps}"
        )
    if report.outside_history:
        lines.append(f"- outside the history, not scored: {', '.join(report.outside_history)}")
    lines.append("")
    who = ("its service or a service it lists as affected" if report.dependents
           else "its own service only")
    lines.append(
        f"A page (an alert entering firing) is true when it fires from an incident's start to "
        f"{_delay(report.grace_ns)} after its end, on {who}; delay = firing time - incident start."
    )
    lines += ["", "## Summary", ""]
    rows = [[v.name, s.tier, *_cells(s)] for v in report.variants for s in v.summary]
    lines += _table(["variant", "tier", *_COLUMNS], rows, 2)
    for v in report.variants:
        lines += ["", f"## {v.name}", ""]
        if v.description:
            lines += [v.description, ""]
        rows = [[s.slo, s.service, s.tier, *_cells(s)] for s in v.rows]
        lines += _table(["slo", "service", "tier", *_COLUMNS], rows, 3)
    return "\n".join(lines) + "\n"


def _with_times(obj: Any) -> Any:
    """Add the RFC 3339 sibling of every ``*ts_ns`` field, recursively."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out[k] = _with_times(v)
            if (k == "ts_ns" or k.endswith("_ts_ns")) and isinstance(v, int):
                out[k[:-3]] = rfc3339_ms(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [_with_times(x) for x in obj]
    return obj


def render_backtest_json(report: BacktestReport) -> str:
    """The whole report as indented JSON (pages included)."""
    doc = msgspec.to_builtins(report)
    doc["history"]["span_ns"] = report.history.span_ns
    return json.dumps(_with_times(doc), indent=2, ensure_ascii=False) + "\n"

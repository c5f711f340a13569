"""Backtesting alert rules against recorded history (SPEC §3.6).

Replay recorded JSON logs through ``parse_json`` (in event-time order, the
replay source's k-way merge), evaluate one or more *variants* of an SLO
set over them (the SLO file as written, a proposed objective, other alert
windows), and score the pages each variant would have sent against the
ground truth (incidents with their service and interval, see
:mod:`srestream.slo._ground_truth`): precision, recall, detection delay
and pages per week, so thresholds are tuned on evidence.

The history is parsed once.  Every batch of records goes through one
``SliWindows`` per distinct set of SLIs (an objective or alert-window
variant counts the same events, so it shares the windows of the SLO file
it derives from) and the closed buckets through one ``BurnRateDetector``
per variant: both are the stages' own batch logic, so a backtest pages
exactly where the live pipeline would.  Memory is the stages' state plus
the pages, whatever the length of the history.

Scoring (per variant, per SLO, service and tier; then per tier over all
SLOs):

* a *page* is an alert entering ``firing`` (each window pair of a tier is
  its own alert, as it has its own ``dedup_key``);
* it is a *true positive* when some incident *concerns* it and it fires
  within ``[incident start, incident end + grace]``; otherwise a false
  positive.  An incident concerns an alert of its own service and, unless
  ``dependents=False``, of the services it lists as affected (the callers a
  dependency outage cascades to: their pages are the outage seen by their
  users, not noise); an incident naming an ``slo`` concerns only SLOs of
  that name;
* an incident is *detected* by a row when a page of that row matched it;
  its *detection delay* is the first such page's firing time minus the
  incident start (median and max over the detected incidents);
* recall is detected ÷ incidents the row could see (per tier: every
  incident within the history, so one no SLO can see lowers it and is
  listed as missed); precision is true ÷ pages; pages per week divide by
  the span of the history.

Incidents wholly outside the history's time span are left out and listed.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from operator import attrgetter
from typing import Any

import msgspec

from .._component import Outputs
from .._errors import ConfigError, Problem
from ..io._files import FileReplay
from ..parse._json import parse_json
from ._alerting import MINUTE_NS, TIERS
from ._burn import BurnRateDetector
from ._ground_truth import GroundTruth, TruthIncident, check_incident_services
from ._records import Alert, AlertState
from ._spec import SLOSet, SLOSpec, alert_windows
from ._validate import validate_slos
from ._windows import SliWindows

__all__ = [
    "BacktestHistory",
    "BacktestPage",
    "BacktestReport",
    "BacktestScore",
    "BacktestVariant",
    "BacktestVariantResult",
    "backtest",
    "objective_variant",
    "replay_history",
    "score_variant",
]

WEEK_NS = 7 * 24 * 60 * MINUTE_NS
DEFAULT_GRACE_NS = 30 * MINUTE_NS


class BacktestVariant(msgspec.Struct, frozen=True, kw_only=True):
    """One SLO set to evaluate, under a name for the report."""

    name: str
    slos: SLOSet
    description: str = ""


class BacktestHistory(msgspec.Struct, frozen=True, kw_only=True):
    """What the replay read: files, records, dead letters, records the
    windows found late, the event-time span and the services seen."""

    files: tuple[str, ...]
    records: int
    dead_letters: int
    late_records: int
    first_ts_ns: int | None
    last_ts_ns: int | None
    services: tuple[str, ...]

    @property
    def span_ns(self) -> int:
        if self.first_ts_ns is None or self.last_ts_ns is None:
            return 0
        return self.last_ts_ns - self.first_ts_ns


class BacktestPage(msgspec.Struct, frozen=True, kw_only=True):
    """One alert entering ``firing``, and the incidents it matched."""

    ts_ns: int
    slo: str
    service: str
    tier: str
    window: str
    burn_rate: float
    dedup_key: str
    incident_ids: tuple[str, ...] = ()


class BacktestScore(msgspec.Struct, frozen=True, kw_only=True):
    """The scores of one (SLO, service, tier) of a variant, or of one tier
    over all its SLOs (``slo`` and ``service`` empty)."""

    tier: str
    slo: str
    service: str
    pages: int
    true_positives: int
    false_positives: int
    incidents: int
    detected: int
    missed: tuple[str, ...]
    precision: float | None
    recall: float | None
    delay_median_ns: int | None
    delay_max_ns: int | None
    pages_per_week: float | None


class BacktestVariantResult(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str
    summary: tuple[BacktestScore, ...]
    rows: tuple[BacktestScore, ...]
    pages: tuple[BacktestPage, ...]


class BacktestReport(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a backtest found (rendered by ``_backtest_render``)."""

    history: BacktestHistory
    truth_file: str
    truth_form: str
    incidents: tuple[TruthIncident, ...]
    """The incidents within the history's span, the ones scored."""
    outside_history: tuple[str, ...]
    grace_ns: int
    dependents: bool
    variants: tuple[BacktestVariantResult, ...]


# ------------------------------------------------------------------ variants


def objective_variant(base: BacktestVariant, objective: float, *, select: str = "") -> BacktestVariant:
    """``base`` with the objective of the selected SLOs replaced: every SLO
    (``select`` empty), those named ``select``, or ``SERVICE/NAME``.
    Raise ValueError when the objective is out of (0, 100) or nothing is
    selected; ConfigError when the result is not a valid SLO set."""
    if not 0.0 < objective < 100.0:
        raise ValueError(f"objective {objective:g} is not in (0, 100)")
    service, _, name = select.rpartition("/")

    def chosen(s: SLOSpec) -> bool:
        return not select or (s.name == name and (not service or s.service == service))

    if not any(chosen(s) for s in base.slos.slos):
        raise ValueError(f"no SLO matches {select!r} (give NAME or SERVICE/NAME)")
    slos = tuple(msgspec.structs.replace(s, objective=objective) if chosen(s) else s for s in base.slos.slos)
    validate_slos(slos, file=base.slos.file)
    label = f"{select}={objective:g}" if select else f"{objective:g}"
    return BacktestVariant(
        name=f"objective {label}",
        slos=msgspec.structs.replace(base.slos, slos=slos),
        description=f"{base.name} with objective {objective:g}% for {select or 'every SLO'}",
    )


def _counting_key(slos: SLOSet) -> str:
    """Variants with the same key count the same events: the SLI windows
    read only each SLO's name, service and SLI, not its objective or
    alerting."""
    return repr([(s.name, s.service, s.sli) for s in slos.slos])


# ------------------------------------------------------------------ replay


async def replay_history(
    paths: Sequence[str],
    variants: Sequence[BacktestVariant],
    *,
    allowed_lateness_ns: int = 0,
    resolution_ns: int = MINUTE_NS,
    batch_size: int = 4096,
) -> tuple[BacktestHistory, list[list[Alert]]]:
    """Replay JSON log files once through ``parse_json`` and every
    variant's windows and burn-rate logic; return what was read and, per
    variant, the alerts that entered ``firing`` in event-time order."""
    groups: dict[str, tuple[SliWindows, list[tuple[int, BurnRateDetector]]]] = {}
    for i, v in enumerate(variants):
        key = _counting_key(v.slos)
        if key not in groups:
            groups[key] = (
                SliWindows(v.slos, resolution_ns=resolution_ns, allowed_lateness_ns=allowed_lateness_ns),
                [],
            )
        groups[key][1].append((i, BurnRateDetector(v.slos, resolution_ns=resolution_ns)))
    firing: list[list[Alert]] = [[] for _ in variants]

    def evaluate(detectors: list[tuple[int, BurnRateDetector]], rollups: list[Any]) -> None:
        if not rollups:
            return
        for i, det in detectors:
            for a in det.process(rollups):
                if type(a) is Alert and a.state == AlertState.FIRING:
                    firing[i].append(a)
            det.outputs.take()

    parse_out = Outputs("parse_json")
    records = dead = 0
    first: int | None = None
    last: int | None = None
    services: set[str] = set()
    ts_of = attrgetter("ts_ns")
    source = FileReplay(list(paths), batch_size=batch_size)()
    batches: AsyncIterator[Any] = parse_json(source, outputs=parse_out)
    async with aclosing(batches):  # type: ignore[type-var]
        async for batch in batches:
            dead += len(parse_out.take().get("deadletter", ()))
            if not batch:
                continue
            records += len(batch)
            lo, hi = min(map(ts_of, batch)), max(map(ts_of, batch))
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
            services.update(map(attrgetter("service"), batch))
            for win, detectors in groups.values():
                rollups = win.process(batch)
                win.outputs.take()
                evaluate(detectors, rollups)
    dead += len(parse_out.take().get("deadletter", ()))
    late = 0
    for win, detectors in groups.values():
        evaluate(detectors, win.flush())
        late = max(late, win.late_records)
    history = BacktestHistory(
        files=tuple(paths), records=records, dead_letters=dead, late_records=late,
        first_ts_ns=first, last_ts_ns=last, services=tuple(sorted(s for s in services if s)),
    )
    return history, firing


# ------------------------------------------------------------------ scoring


def _concerns(inc: TruthIncident, slo: str, service: str, dependents: bool) -> bool:
    if inc.slo and inc.slo != slo:
        return False
    return service == inc.service or (dependents and service in inc.affected)


def _tiers(spec: SLOSpec) -> list[str]:
    tiers = [w.tier for w in alert_windows(spec)]
    if spec.alerting.enabled and spec.alerting.forecast_horizon is not None:
        tiers.append("forecast")
    return list(dict.fromkeys(tiers))


def _score(
    tier: str, slo: str, service: str, pages: list[BacktestPage], incidents: Sequence[TruthIncident],
    first_hit: dict[str, int], span_ns: int,
) -> BacktestScore:
    tp = sum(1 for p in pages if p.incident_ids)
    delays = sorted(first_hit[i.incident_id] - i.start_ts_ns for i in incidents if i.incident_id in first_hit)
    missed = tuple(i.incident_id for i in incidents if i.incident_id not in first_hit)
    return BacktestScore(
        tier=tier, slo=slo, service=service, pages=len(pages), true_positives=tp,
        false_positives=len(pages) - tp, incidents=len(incidents), detected=len(delays), missed=missed,
        precision=tp / len(pages) if pages else None,
        recall=len(delays) / len(incidents) if incidents else None,
        delay_median_ns=round(statistics.median(delays)) if delays else None,
        delay_max_ns=delays[-1] if delays else None,
        pages_per_week=len(pages) * WEEK_NS / span_ns if span_ns > 0 else None,
    )


def score_variant(
    variant: BacktestVariant,
    alerts: Sequence[Alert],
    incidents: Sequence[TruthIncident],
    *,
    span_ns: int,
    grace_ns: int = DEFAULT_GRACE_NS,
    dependents: bool = True,
) -> BacktestVariantResult:
    """BacktestScore one variant's firing alerts against ``incidents`` (see the
    module doc for the rules)."""
    pages = []
    for a in alerts:
        ids = tuple(
            i.incident_id for i in incidents
            if i.start_ts_ns <= a.ts_ns <= i.end_ts_ns + grace_ns
            and _concerns(i, a.slo, a.service, dependents)
        )
        pages.append(BacktestPage(
            ts_ns=a.ts_ns, slo=a.slo, service=a.service, tier=a.tier,
            window=f"{a.long_window}/{a.short_window}" if a.short_window else a.long_window,
            burn_rate=round(a.burn_rate, 6), dedup_key=a.dedup_key, incident_ids=ids,
        ))
    pages.sort(key=lambda p: (p.ts_ns, p.service, p.slo, p.tier, p.dedup_key))

    def first_hits(ps: list[BacktestPage]) -> dict[str, int]:
        hit: dict[str, int] = {}
        for p in ps:  # in time order: the first page of each incident wins
            for iid in p.incident_ids:
                hit.setdefault(iid, p.ts_ns)
        return hit

    by_row: dict[tuple[str, str, str], list[BacktestPage]] = {}
    for p in pages:
        by_row.setdefault((p.slo, p.service, p.tier), []).append(p)
    rows = []
    tiers_seen: list[str] = []
    for spec in variant.slos.slos:
        for tier in _tiers(spec):
            tiers_seen.append(tier)
            mine = by_row.get((spec.name, spec.service, tier), [])
            seen = [i for i in incidents if _concerns(i, spec.name, spec.service, dependents)]
            rows.append(_score(tier, spec.name, spec.service, mine, seen, first_hits(mine), span_ns))
    order: list[str] = [t for t in (*TIERS, "forecast") if t in tiers_seen]
    order += sorted(set(tiers_seen) - set(order))
    summary = []
    for tier in order:
        mine = [p for p in pages if p.tier == tier]
        summary.append(_score(tier, "", "", mine, incidents, first_hits(mine), span_ns))
    return BacktestVariantResult(
        name=variant.name, description=variant.description, summary=tuple(summary),
        rows=tuple(rows), pages=tuple(pages),
    )


async def backtest(
    paths: Sequence[str],
    variants: Sequence[BacktestVariant],
    truth: GroundTruth,
    *,
    grace_ns: int = DEFAULT_GRACE_NS,
    dependents: bool = True,
    allowed_lateness_ns: int = 0,
) -> BacktestReport:
    """Replay ``paths`` once, evaluate every variant and score it against
    ``truth``.  Raise :class:`ConfigError` when the history holds no
    record or an incident names a service nobody knows."""
    if not variants:
        raise ConfigError([Problem("variants", "nothing to backtest: give at least one SLO set")])
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ConfigError([Problem("variants", f"variant names repeat: {names}")])
    history, firing = await replay_history(paths, variants, allowed_lateness_ns=allowed_lateness_ns)
    if history.first_ts_ns is None or history.last_ts_ns is None:
        raise ConfigError([Problem(
            "HISTORY", f"no log record could be read ({history.dead_letters} dead letters)",
            ", ".join(paths),
        )])
    known = set(history.services)
    for v in variants:
        known.update(s.service for s in v.slos.slos)
    check_incident_services(truth, known, {s.name for v in variants for s in v.slos.slos})
    lo, hi = history.first_ts_ns, history.last_ts_ns
    inside = tuple(i for i in truth.incidents if i.start_ts_ns <= hi and i.end_ts_ns >= lo)
    outside = tuple(i.incident_id for i in truth.incidents if i not in inside)
    results = tuple(
        score_variant(v, alerts, inside, span_ns=history.span_ns, grace_ns=grace_ns, dependents=dependents)
        for v, alerts in zip(variants, firing, strict=True)
    )
    return BacktestReport(
        history=history, truth_file=truth.file, truth_form=truth.form, incidents=inside,
        outside_history=outside, grace_ns=grace_ns, dependents=dependents, variants=results,
    )

"""Coverage and durability SLIs (SRE Workbook, data-processing pipelines).

Coverage: the share of the work due that was done.  In logs the work due
(``job_started``) and the work done (``job_completed``) are separate
records, counted apart per minute; a minute's good is kept at most its
total.  Durability: the share of stored objects still intact, from
verification (scrub) records or from loss events; objectives of many
nines, so one lost object must burn exactly its share of the budget.

Every expected figure below is computed here from the generated stream.
"""

from __future__ import annotations

import json
import pathlib
import random
from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgspec
import pytest

from srestream import LogRecord, MetricSample
from srestream._cli import main as cli_main
from srestream._errors import ConfigError
from srestream.slo import Alert, Budget, SliRollup, alert_windows, parse_slos
from srestream.slo._burn import BurnRateDetector
from srestream.slo._ledger import open_ledger_db, write_rollups
from srestream.slo._report import build_report, load_report_slos
from srestream.slo._windows import SliWindows
from srestream.testing import run_stage

from .helpers import MIN, T0, S, run_engine, slo_set

ELEVEN_NINES = 99.999999999
BUDGET_11 = Decimal("1e-11")  # 1 - 99.999999999%, in decimal


# ---------------------------------------------------------------- coverage


def coverage_slo(**sli: Any) -> dict[str, Any]:
    return {
        "name": "jobs-completed", "service": "etl", "objective": 95, "period": "1d",
        "sli": {"kind": "coverage", "total": {"attrs.event": "job_started"},
                "good": {"attrs.event": "job_completed"}, **sli},
    }


def job(ts_ns: int, event: str, job_id: int, service: str = "etl") -> LogRecord:
    return LogRecord(ts_ns=ts_ns, service=service, message=event.replace("_", " "),
                     attrs={"event": event, "job": job_id})


def job_stream(minutes: int = 90, seed: int = 5) -> list[LogRecord]:
    """Jobs start at random times; 85% complete 1-50 s later (some in the
    next minute), the others never do.  Minute 40 also gets 6 completions
    of jobs started long before (a backlog draining): more completions
    than starts.  Heartbeats of the service and another service's jobs
    are noise."""
    rnd = random.Random(seed)
    out: list[LogRecord] = []
    jid = 0
    for m in range(minutes):
        for _ in range(rnd.randint(3, 12)):
            jid += 1
            start = T0 + m * MIN + rnd.randrange(60_000) * 1_000_000
            out.append(job(start, "job_started", jid))
            if rnd.random() < 0.85:
                out.append(job(start + rnd.randint(1, 50) * S, "job_completed", jid))
        out.append(LogRecord(ts_ns=T0 + m * MIN + 30 * S, service="etl", message="heartbeat",
                             attrs={"event": "heartbeat"}))
        out.append(job(T0 + m * MIN + 31 * S, "job_started", -m, service="other"))
    out += [job(T0 + 40 * MIN + (50 + k) * S, "job_completed", -1000 - k) for k in range(6)]
    out = [r for r in out if r.ts_ns < T0 + minutes * MIN]  # the stream ends at the last minute
    out.sort(key=lambda r: r.ts_ns)
    return out


def per_minute(records: list[LogRecord], service: str = "etl") -> dict[int, tuple[int, int]]:
    """minute -> (started, completed) of ``service``, counted independently."""
    out: dict[int, list[int]] = {}
    for r in records:
        if r.service != service:
            continue
        c = out.setdefault((r.ts_ns - T0) // MIN, [0, 0])
        if r.attrs["event"] == "job_started":
            c[0] += 1
        elif r.attrs["event"] == "job_completed":
            c[1] += 1
    return {m: (s, d) for m, (s, d) in out.items()}


async def test_coverage_counts_completions_apart_from_starts_per_minute(batch_size: int) -> None:
    slos = slo_set(coverage_slo())
    recs = job_stream()
    counts = per_minute(recs)
    # The stream has what the test is about: a minute with more completions
    # than starts, and jobs that never complete.
    assert counts[40][1] > counts[40][0]
    started = {r.attrs["job"] for r in recs if r.attrs["event"] == "job_started" and r.service == "etl"}
    completed = {r.attrs["job"] for r in recs if r.attrs["event"] == "job_completed"}
    assert started - completed

    out = await run_stage(SliWindows(slos), recs, batch_size=batch_size)
    got = {(r.bucket_ts_ns - T0) // MIN: (r.good, r.total) for r in out}
    # total = starts; good = completions, capped at the starts of the minute.
    want = {m: (min(done, due), due) for m, (due, done) in counts.items()}
    assert got == want
    assert got[40] == (counts[40][0], counts[40][0])  # the late completions are capped

    alerts_and_budgets, _, _ = await run_engine(slos, recs, batch_size=batch_size)
    final = [b for b in alerts_and_budgets if isinstance(b, Budget)][-1]
    good = sum(g for g, _ in want.values())
    total = sum(t for _, t in want.values())
    assert (final.good, final.total) == (good, total)
    # budget = 5% of the jobs due over the day; consumed = missed / (5% x due)
    assert final.budget_consumed == pytest.approx(float(Fraction(total - good) / (Fraction(5, 100) * total)),
                                                  rel=1e-12)


async def test_coverage_with_bad_counts_dropped_work() -> None:
    """``bad`` (records dropped) instead of good: good = received - dropped,
    each counted from its own records."""
    slos = slo_set(coverage_slo(good=None, total={"attrs.event": "received"}, bad={"attrs.event": "dropped"}))
    recs = [job(T0 + i * S, "received", i) for i in range(50)]
    recs += [job(T0 + i * S + 1, "dropped", i) for i in (3, 9, 70)]  # the last one in minute 1
    recs += [job(T0 + 60 * S + i * S, "received", 100 + i) for i in range(20)]
    recs.sort(key=lambda r: r.ts_ns)
    out = await run_stage(SliWindows(slos), recs, batch_size=7)
    assert [(r.good, r.total) for r in out] == [(50 - 2, 50), (20 - 1, 20)]


async def test_coverage_from_counters_of_jobs_started_and_completed() -> None:
    """``source: metrics`` with ``series: selected``: good from the completed
    counter's increase, total from the started counter's, capped per minute."""
    slos = slo_set(coverage_slo(source="metrics", series="selected",
                                total={"name": "jobs_started_total"}, good={"name": "jobs_completed_total"}))
    started = [0, 10, 20, 30, 40]
    done = [0, 9, 17, 30, 39]  # minute 3 completes 13 jobs for 10 started
    samples = []
    for m, (s, d) in enumerate(zip(started, done, strict=True)):
        samples.append(MetricSample(name="jobs_started_total", ts_ns=T0 + m * MIN + 15 * S, value=s))
        samples.append(MetricSample(name="jobs_completed_total", ts_ns=T0 + m * MIN + 15 * S, value=d))
    out = await run_stage(SliWindows(slos), samples, batch_size=3)
    want = [(0, 0)] + [(min(done[m] - done[m - 1], started[m] - started[m - 1]), started[m] - started[m - 1])
                       for m in range(1, 5)]
    assert [(r.good, r.total) for r in out] == want
    assert want[3] == (10, 10)


async def test_coverage_from_one_counter_labelled_by_outcome() -> None:
    """With the default ``series: service``, good is a condition on the total
    samples: a ``jobs_total{status}`` counter of the service."""
    slos = slo_set(coverage_slo(source="metrics", total={"name": "jobs_total"},
                                good={"labels.status": "completed"}))
    values = {"completed": [0, 8, 20], "failed": [0, 2, 3]}
    samples = [MetricSample(name="jobs_total", ts_ns=T0 + m * MIN + 5 * S, value=v[m],
                            labels={"service": "etl", "status": status})
               for m in range(3) for status, v in values.items()]
    out = await run_stage(SliWindows(slos), samples, batch_size=2)
    done, failed = values["completed"], values["failed"]
    assert [(r.good, r.total) for r in out] == [(0, 0)] + [
        (done[m] - done[m - 1], done[m] - done[m - 1] + failed[m] - failed[m - 1]) for m in (1, 2)]


# ---------------------------------------------------------------- durability


def scrub_slo(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "objects-intact", "service": "blobstore", "objective": ELEVEN_NINES, "period": "30d",
        "sli": {"kind": "durability", "total": {"attrs.event": "scrub"},
                "good": {"attrs.event": "scrub", "attrs.result": "intact"}},
    }
    base.update(over)
    return base


LOSS_MINUTE = 60
SCRUB_MINUTES = 240
CHECKS_PER_MINUTE = 50


def scrub_records() -> list[LogRecord]:
    """A scrubber verifies 50 objects a minute for 4 hours; one object, in
    minute 60, is found corrupt.  Writes are noise for the SLI."""
    out = []
    for m in range(SCRUB_MINUTES):
        for k in range(CHECKS_PER_MINUTE):
            ts = T0 + m * MIN + k * (MIN // CHECKS_PER_MINUTE)
            result = "corrupt" if (m, k) == (LOSS_MINUTE, 17) else "intact"
            out.append(LogRecord(ts_ns=ts, service="blobstore",
                                 attrs={"event": "scrub", "object": f"o{m}-{k}", "result": result}))
        out.append(LogRecord(ts_ns=T0 + m * MIN + 1, service="blobstore",
                             attrs={"event": "put", "result": "intact"}))
    return out


def _burns(n: int, idx: int, factor: Fraction) -> bool:
    """Whether the window of the last ``n`` minutes up to minute ``idx``
    holds the loss and burns at ``factor`` or more."""
    if not idx - n < LOSS_MINUTE <= idx:
        return False
    events = CHECKS_PER_MINUTE * min(n, idx + 1)
    return Fraction(1, events) / Fraction(BUDGET_11) >= factor


def expected_alerts(spec: Any, total_minutes: int) -> list[tuple[str, str, int]]:
    """(window name, state, minute) of each alert change for one bad event in
    LOSS_MINUTE among CHECKS_PER_MINUTE events a minute: a window pair's
    condition holds while both windows hold that minute and the burn rate
    over each, (1 / events in it) / budget, reaches the pair's factor; the
    state is evaluated when each minute closes."""
    out = []
    for w in alert_windows(spec):
        long_n, short_n = w.long_window_ns // MIN, w.short_window_ns // MIN
        factor = Fraction(w.burn_rate)
        firing = False
        for idx in range(total_minutes):
            cond = all(_burns(n, idx, factor) for n in (long_n, short_n))
            if cond != firing:
                out.append((w.name, "firing" if cond else "resolved", idx + 1))
                firing = cond
    return sorted(out, key=lambda x: (x[2], x[0]))


async def test_one_corrupt_object_burns_its_share_of_an_eleven_nines_budget_and_pages() -> None:
    slos = slo_set(scrub_slo())
    spec = slos.slos[0]
    assert spec.budget_ratio == 1e-11  # exactly, not 1.0000036e-11
    recs = scrub_records()
    out, _, _ = await run_engine(slos, recs, batch_size=1024)
    total = SCRUB_MINUTES * CHECKS_PER_MINUTE
    final = [b for b in out if isinstance(b, Budget)][-1]
    assert (final.good, final.total) == (total - 1, total)
    # one bad event over a budget of 1e-11 x total events
    want = Decimal(1) / (BUDGET_11 * total)
    assert final.budget_consumed == pytest.approx(float(want), rel=1e-12)
    assert final.budget_remaining == pytest.approx(float(1 - want), rel=1e-12)

    alerts = [a for a in out if isinstance(a, Alert)]
    got = [(_pair(a, spec), a.state, (a.ts_ns - T0) // MIN) for a in alerts]
    want_alerts = expected_alerts(spec, SCRUB_MINUTES)
    assert sorted(got) == sorted(want_alerts)
    # The Workbook's 1h/5m page fires when the loss minute closes and resets
    # once the 5-minute window no longer holds it.
    page = [a for a in alerts if a.tier == "page" and a.long_window_ns == 60 * MIN]
    assert [(a.state, (a.ts_ns - T0) // MIN) for a in page] == [
        ("firing", LOSS_MINUTE + 1), ("resolved", LOSS_MINUTE + 1 + 5)]


def _pair(a: Alert, spec: Any) -> str:
    """The window pair (name) an alert belongs to."""
    for w in alert_windows(spec):
        if (w.long_window_ns, w.short_window_ns) == (a.long_window_ns, a.short_window_ns):
            return w.name
    raise AssertionError(f"no window pair of {a}")


async def test_durability_from_verification_counters_eleven_nines() -> None:
    """Counters of a scrubber (objects checked, objects lost), read as
    ``series: selected``: one lost object among the checked ones."""
    slos = slo_set(scrub_slo(sli={"kind": "durability", "source": "metrics", "series": "selected",
                                  "total": {"name": "scrub_objects_checked_total"},
                                  "bad": {"name": "scrub_objects_lost_total"}}))
    samples = []
    checked = lost = 0
    for m in range(120):
        checked += 1_000
        lost += 1 if m == 70 else 0
        for name, v in (("scrub_objects_checked_total", checked), ("scrub_objects_lost_total", lost)):
            samples.append(MetricSample(name=name, ts_ns=T0 + m * MIN + 10 * S, value=v,
                                        labels={"job": "scrubber"}))
    out, _, _ = await run_engine(slos, samples, batch_size=64)
    final = [b for b in out if isinstance(b, Budget)][-1]
    total = checked - 1_000  # the first sample of a counter is its baseline
    assert (final.good, final.total) == (total - 1, total)
    assert final.budget_consumed == pytest.approx(float(Decimal(1) / (BUDGET_11 * total)), rel=1e-12)
    pages = [a for a in out if isinstance(a, Alert) and a.tier == "page" and a.state == "firing"]
    assert {(a.ts_ns - T0) // MIN for a in pages} == {71}


async def test_a_loss_event_in_a_minute_without_writes_still_counts() -> None:
    """Loss events against objects written: the losses are records of their
    own, and a minute with more losses than writes keeps every loss."""
    slos = slo_set(scrub_slo(sli={"kind": "durability", "total": {"attrs.event": "object_written"},
                                  "bad": {"attrs.event": "object_lost"}}))
    recs = [LogRecord(ts_ns=T0 + i * S, service="blobstore", attrs={"event": "object_written"})
            for i in range(40)]
    recs += [LogRecord(ts_ns=T0 + 5 * MIN + S, service="blobstore", attrs={"event": "object_lost"})]
    recs += [LogRecord(ts_ns=T0 + 6 * MIN + i * S, service="blobstore", attrs={"event": "object_written"})
             for i in range(10)]
    out = await run_stage(SliWindows(slos), recs, batch_size=7)
    got = {(r.bucket_ts_ns - T0) // MIN: (r.good, r.total, r.no_data_ns) for r in out}
    assert got[0] == (40, 40, 0)
    assert got[5] == (0, 1, 0)  # total raised to the one loss
    assert got[6] == (10, 10, 0)
    assert got[1] == (0, 0, 4 * MIN)  # minutes 1-4: no record at all, one no-data rollup


# ---------------------------------------------------------------- validation


def test_validation_reports_every_misuse_with_its_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse_slos({"slos": [
            {"name": "a", "service": "etl", "objective": 99, "sli": {"kind": "coverage", "total": {}}},
            {"name": "b", "service": "blob", "objective": ELEVEN_NINES,
             "sli": {"kind": "durability", "good": {"attrs.result": "intact"}, "threshold": "1s",
                     "min_events_per_minute": 5}},
            {"name": "c", "service": "etl", "objective": 99,
             "sli": {"kind": "coverage", "total": {}, "good": {"attrs.e": 1}, "bad": {"attrs.e": 2},
                     "series": "selected", "metric": "m"}},
            {"name": "d", "service": "blob", "objective": 99.99999999999999999,
             "sli": {"kind": "durability", "total": {}, "bad": {"attrs.e": {"between": 1}}}},
            {"name": "e", "service": "blob", "objective": 99.9,
             "sli": {"kind": "durability", "source": "traces", "total": {}, "good": {}}},
        ]})
    got = {(p.path, p.message.split(" (")[0].split(":")[0]) for p in info.value.problems}
    assert got == {
        ("$.slos[0].sli.good", "a coverage SLI needs good"),
        ("$.slos[1].sli.total", "missing total predicate"),
        ("$.slos[1].sli.threshold", "threshold is an option of latency and freshness SLIs, not of durability ones"),
        ("$.slos[1].sli.min_events_per_minute",
         "min_events_per_minute is an option of throughput SLIs, not of durability ones"),
        ("$.slos[2].sli.bad", "give good or bad, not both"),
        ("$.slos[2].sli.series",
         "selected series apply to availability, ratio, correctness, coverage and durability SLIs with source"),
        ("$.slos[2].sli.metric", "metric is an option of freshness SLIs, not of coverage ones"),
        ("$.slos[3].objective", "objective 100.0 is outside"),
        ("$.slos[3].sli.bad.attrs.e.between", "unknown operator 'between'"),
        ("$.slos[4].sli.source", "unknown source 'traces'"),
    }
    assert "more than 16 nines" in next(p.message for p in info.value.problems if p.path == "$.slos[3].objective")


def test_eleven_and_sixteen_nines_are_valid_objectives_with_exact_budgets() -> None:
    slos = parse_slos({"slos": [scrub_slo(), scrub_slo(name="x", service="vault", objective=99.99999999999999)]})
    assert [s.budget_ratio for s in slos.slos] == [1e-11, 1e-16]
    assert [s.objective_ratio for s in slos.slos] == [0.99999999999, 0.9999999999999999]


# ---------------------------------------------------------------- checkpoints


async def test_snapshot_and_restore_continue_exactly() -> None:
    """Windows and burn rate checkpointed mid-stream (open buckets holding
    starts whose completions are still to come) give the same output."""
    slos = slo_set(coverage_slo(), scrub_slo(service="etl"))
    recs = job_stream(minutes=30) + [
        LogRecord(ts_ns=T0 + m * MIN + 7 * S, service="etl",
                  attrs={"event": "scrub", "result": "corrupt" if m == 12 else "intact"})
        for m in range(30)]
    recs.sort(key=lambda r: r.ts_ns)
    whole, _, _ = await run_engine(slos, recs, batch_size=50)

    cut = next(i for i, r in enumerate(recs) if r.ts_ns >= T0 + 12 * MIN + 30 * S)
    win, burn = SliWindows(slos), BurnRateDetector(slos)
    first = burn.process(win.process(recs[:cut]))
    state = msgspec.msgpack.encode({"w": win.snapshot(), "b": burn.snapshot()})
    win2, burn2 = SliWindows(slos), BurnRateDetector(slos)
    saved = msgspec.msgpack.decode(state)
    win2.restore(saved["w"])
    burn2.restore(saved["b"])
    rest = burn2.process(win2.process(recs[cut:])) + burn2.process(win2.flush()) + burn2.flush()
    assert first + rest == whole
    assert any(isinstance(a, Alert) and a.slo == "objects-intact" for a in whole)


# ---------------------------------------------------------------- export and report


SLO_FILE = """
slos:
  - name: jobs-completed
    service: etl
    objective: 95
    period: 7d
    sli: {kind: coverage, total: {attrs.event: job_started}, good: {attrs.event: job_completed}}
    labels: {team: data}
  - name: objects-intact
    service: blobstore
    objective: 99.999999999
    period: 30d
    sli: {kind: durability, source: metrics, series: selected,
          total: {name: scrub_objects_checked_total}, bad: {name: scrub_objects_lost_total}}
    labels: {team: storage}
"""


def test_rules_refuses_coverage_and_durability_slos_with_the_reason(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(SLO_FILE)
    assert cli_main(["rules", str(path)]) == 2
    err = capsys.readouterr().err
    assert "$.slos[0].sli" in err and "a coverage SLI counts records inside srestream" in err
    assert "$.slos[1].sli" in err and "a durability SLI is srestream predicates over metric samples" in err


def test_report_figures_for_coverage_and_durability(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(SLO_FILE)
    rnd = random.Random(2)
    rollups = []
    for h in range(48):
        ts = T0 + h * 60 * MIN
        due = rnd.randint(100, 200)
        rollups.append(SliRollup(slo="jobs-completed", service="etl", bucket_ts_ns=ts,
                                 resolution_ns=60 * MIN, good=due - rnd.randint(0, 9), total=due, no_data_ns=0))
        rollups.append(SliRollup(slo="objects-intact", service="blobstore", bucket_ts_ns=ts,
                                 resolution_ns=60 * MIN, good=1_000_000 - (h == 30), total=1_000_000,
                                 no_data_ns=0))
    db = open_ledger_db(str(tmp_path / "ledger.sqlite"))
    try:
        write_rollups(db, rollups)
        report = build_report(db, load_report_slos(str(path)), T0 + 48 * 60 * MIN)
    finally:
        db.close()
    by = {s.slo: s for s in report.slos}
    jobs = [r for r in rollups if r.slo == "jobs-completed"]
    good, total = sum(r.good for r in jobs), sum(r.total for r in jobs)
    w7 = by["jobs-completed"].windows[0]
    assert (w7.window, w7.good, w7.total) == ("7d", good, total)
    assert w7.budget_consumed == pytest.approx(float(Fraction(total - good) / (Fraction(5, 100) * total)),
                                               rel=1e-12)
    period = by["objects-intact"].period_window
    assert (period.good, period.total) == (48_000_000 - 1, 48_000_000)
    assert period.budget_consumed == pytest.approx(float(Decimal(1) / (BUDGET_11 * 48_000_000)), rel=1e-12)
    assert period.compliant is False
    assert json.loads(msgspec.json.encode(report))["slos"][1]["objective"] == ELEVEN_NINES

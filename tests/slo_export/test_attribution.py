"""Error budget per incident: every figure recomputed here from the rollups
written to a real SQLite ledger."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import random
import sqlite3
import subprocess
import sys
import zoneinfo

import pytest

from srestream.slo import IncidentBudget, TruthIncident, attribute_incidents, load_report_slos
from srestream.slo._ledger import DAY_NS, HOUR_NS, MINUTE_NS, compact, open_ledger_db, write_rollups
from srestream.slo._records import SliRollup
from srestream.slo._report import build_report, render_json, render_markdown

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
SLOS_YAML = """
slos:
  - name: availability
    service: checkout
    objective: 99.9
    period: 30d
    sli: {kind: availability, total: {}, good: {status: {lt: 500}}}
  - name: slices
    service: checkout
    objective: 99
    period: 7d
    sli: {kind: availability, total: {}, good: {status: {lt: 500}}, budgeting: timeslices,
          timeslice_target: 95}
  - name: availability
    service: payments
    objective: 99.5
    period: 30d
    sli: {kind: availability, total: {}, good: {status: {lt: 500}}}
  - name: availability
    service: web
    objective: 99
    period: month
    time_zone: Europe/Paris
    sli: {kind: availability, total: {}, good: {status: {lt: 500}}}
"""
OBJECTIVE = {("availability", "checkout"): 99.9, ("slices", "checkout"): 99.0,
             ("availability", "payments"): 99.5, ("availability", "web"): 99.0}


def utc(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * 10**9


FIRST = utc("2024-01-20T00:00:00+00:00")
LAST = utc("2024-03-08T00:00:00+00:00")
# Dense minutes (every minute has a rollup) around the incidents; elsewhere one per 10 minutes.
DENSE = [(utc("2024-03-05T06:00:00+00:00"), utc("2024-03-05T16:00:00+00:00")),
         (utc("2024-02-29T20:00:00+00:00"), utc("2024-03-01T03:00:00+00:00"))]
INC1 = TruthIncident(incident_id="INC-1", service="checkout", affected=("payments",),
                     start_ts_ns=utc("2024-03-05T10:07:00+00:00"),
                     end_ts_ns=utc("2024-03-05T11:52:00+00:00"), where="$.incidents[0]")
INC2 = TruthIncident(incident_id="INC-2", service="payments", affected=("batch",),
                     start_ts_ns=utc("2024-03-05T11:30:00+00:00"),
                     end_ts_ns=utc("2024-03-05T13:00:00+00:00"), where="$.incidents[1]")
INC3 = TruthIncident(incident_id="INC-3", service="web",  # crosses midnight of 1 March in Paris
                     start_ts_ns=utc("2024-02-29T22:30:00+00:00"),
                     end_ts_ns=utc("2024-03-01T00:30:00+00:00"), where="$.incidents[2]")
INC4 = TruthIncident(incident_id="INC-4", service="batch", start_ts_ns=utc("2024-03-05T08:00:00+00:00"),
                     end_ts_ns=utc("2024-03-05T08:30:00+00:00"), where="$.incidents[3]")


def history(seed: int = 11) -> list[SliRollup]:
    rnd = random.Random(seed)
    out = []
    for ts in range(FIRST, LAST, MINUTE_NS):
        dense = any(a <= ts < b for a, b in DENSE)
        if not dense and (ts // MINUTE_NS) % 10:
            continue
        for slo, service in OBJECTIVE:
            inside = any(i.start_ts_ns <= ts < i.end_ts_ns and service in (i.service, *i.affected)
                         for i in (INC1, INC2, INC3))
            if slo == "slices":  # one slice a minute, good or bad
                good = 0 if rnd.random() < (0.6 if inside else 0.005) else 1
                out.append(SliRollup(slo=slo, service=service, bucket_ts_ns=ts,
                                     resolution_ns=MINUTE_NS, good=good, total=1))
                continue
            total = rnd.randint(20, 200)
            bad = round(total * (rnd.uniform(0.05, 0.4) if inside else rnd.uniform(0, 0.01)))
            out.append(SliRollup(slo=slo, service=service, bucket_ts_ns=ts, resolution_ns=MINUTE_NS,
                                 good=total - bad, total=total))
    return out


def sums(rollups: list[SliRollup], slo: str, service: str, a: int, b: int) -> tuple[int, int]:
    rs = [r for r in rollups if (r.slo, r.service) == (slo, service) and a <= r.bucket_ts_ns < b]
    return sum(r.good for r in rs), sum(r.total for r in rs)


def expected(rollups: list[SliRollup], slo: str, service: str, a: int, b: int, ps: int, pe: int,
             *, time_sliced: bool = False) -> dict[str, float | int | None]:
    """The figures of one row, from the rollups, by the formulas of docs/slo.md."""
    good, total = sums(rollups, slo, service, a, b)
    p_good, p_total = sums(rollups, slo, service, ps, pe)
    budget = (100 - OBJECTIVE[(slo, service)]) / 100
    bad, p_bad = total - good, p_total - p_good
    if time_sliced:
        allowed = budget * (pe - ps) / MINUTE_NS
        consumed, p_consumed = bad / allowed, p_bad / allowed
    else:
        consumed, p_consumed = bad / (budget * p_total), p_bad / (budget * p_total)
    return {"good": good, "total": total, "bad": bad, "budget_consumed": consumed,
            "period_budget_consumed": p_consumed,
            "share_of_period_consumption": bad / p_bad if p_bad else None,
            "outage_minutes": consumed * budget * (pe - ps) / MINUTE_NS}


def check(row: object, want: dict[str, float | int | None]) -> None:
    for k, v in want.items():
        got = getattr(row, k)
        assert got == (v if v is None or isinstance(v, int) else pytest.approx(v, rel=1e-12)), k


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, list[SliRollup]]:
    d = tmp_path_factory.mktemp("attribution")
    path = d / "ledger.sqlite"
    rollups = history()
    db = open_ledger_db(str(path))
    write_rollups(db, rollups)
    db.close()
    (d / "slos.yaml").write_text(SLOS_YAML)
    return path, rollups


def attribute(path: pathlib.Path, incidents: list[TruthIncident]) -> list[IncidentBudget]:
    slos = load_report_slos(str(path.parent / "slos.yaml"))
    db = open_ledger_db(str(path))
    try:
        return attribute_incidents(db, slos, incidents)
    finally:
        db.close()


def test_incident_in_a_rolling_period_consumes_its_share(
        ledger: tuple[pathlib.Path, list[SliRollup]]) -> None:
    path, rollups = ledger
    (inc,) = attribute(path, [INC1])
    rows = {(r.service, r.slo): r for r in inc.slos}
    assert set(rows) == {("checkout", "availability"), ("checkout", "slices"),
                         ("payments", "availability")}
    row = rows[("checkout", "availability")]
    a, b = INC1.start_ts_ns, INC1.end_ts_ns
    assert (row.period_start_ts_ns, row.period_end_ts_ns) == (b - 30 * DAY_NS, b)
    assert (row.counted_start_ts_ns, row.counted_end_ts_ns) == (a, b)
    assert row.role == "service" and row.budgeting == "occurrences"
    assert row.hour_resolution_edges == [] and row.overlaps == []
    want = expected(rollups, "availability", "checkout", a, b, b - 30 * DAY_NS, b)
    assert want["bad"] > 0
    check(row, want)
    # background errors outside the incident: it holds part of the period's consumption
    assert 0 < row.share_of_period_consumption < 1  # type: ignore[operator]
    assert inc.no_slo == [] and inc.overlaps == []


def test_time_sliced_slo_counts_bad_slices_against_the_period(
        ledger: tuple[pathlib.Path, list[SliRollup]]) -> None:
    path, rollups = ledger
    (inc,) = attribute(path, [INC1])
    row = next(r for r in inc.slos if r.slo == "slices")
    b = INC1.end_ts_ns
    assert row.budgeting == "timeslices"
    want = expected(rollups, "slices", "checkout", INC1.start_ts_ns, b, b - 7 * DAY_NS, b,
                    time_sliced=True)
    assert want["total"] == (b - INC1.start_ts_ns) // MINUTE_NS  # one slice a minute
    check(row, want)
    # a bad slice is a bad minute: the outage equivalent is the bad slices
    assert row.outage_minutes == pytest.approx(row.bad, rel=1e-12)


def test_affected_services_are_charged_too(ledger: tuple[pathlib.Path, list[SliRollup]]) -> None:
    path, rollups = ledger
    (inc,) = attribute(path, [INC1])
    row = next(r for r in inc.slos if r.service == "payments")
    a, b = INC1.start_ts_ns, INC1.end_ts_ns
    assert row.role == "affected"
    check(row, expected(rollups, "availability", "payments", a, b, b - 30 * DAY_NS, b))


def test_calendar_month_in_paris_splits_an_incident_at_local_midnight(
        ledger: tuple[pathlib.Path, list[SliRollup]]) -> None:
    path, rollups = ledger
    (inc,) = attribute(path, [INC3])
    feb = (int(dt.datetime(2024, 2, 1, tzinfo=PARIS).timestamp()) * 10**9,
           int(dt.datetime(2024, 3, 1, tzinfo=PARIS).timestamp()) * 10**9)
    mar = (feb[1], int(dt.datetime(2024, 4, 1, tzinfo=PARIS).timestamp()) * 10**9)
    assert feb[1] == utc("2024-02-29T23:00:00+00:00")
    assert [(r.period_start_ts_ns, r.period_end_ts_ns) for r in inc.slos] == [feb, mar]
    assert [(r.counted_start_ts_ns, r.counted_end_ts_ns) for r in inc.slos] == [
        (INC3.start_ts_ns, feb[1]), (mar[0], INC3.end_ts_ns)]
    for row, (ps, pe) in zip(inc.slos, (feb, mar), strict=True):
        want = expected(rollups, "availability", "web", row.counted_start_ts_ns,
                        row.counted_end_ts_ns, ps, pe)
        assert want["bad"] > 0
        check(row, want)
        assert row.outage_minutes == pytest.approx(
            row.budget_consumed * 0.01 * (pe - ps) / MINUTE_NS, rel=1e-12)
    # the two parts together are every bad event of the incident
    g, t = sums(rollups, "availability", "web", INC3.start_ts_ns, INC3.end_ts_ns)
    assert sum(r.bad for r in inc.slos) == t - g


def test_service_without_slo_is_listed_and_overlaps_are_named(
        ledger: tuple[pathlib.Path, list[SliRollup]]) -> None:
    path, rollups = ledger
    i1, i2, i4 = attribute(path, [INC1, INC2, INC4])
    assert i4.slos == [] and i4.no_slo == ["batch"]
    assert i2.no_slo == ["batch"] and [r.service for r in i2.slos] == ["payments"]
    # INC-1 (payments affected) and INC-2 (payments at fault) share 11:30-11:52
    assert i1.overlaps == ["INC-2"] and i2.overlaps == ["INC-1"]
    p1 = next(r for r in i1.slos if r.service == "payments")
    p2 = i2.slos[0]
    assert p1.overlaps == ["INC-2"] and p2.overlaps == ["INC-1"]
    assert all(r.overlaps == [] for r in i1.slos if r.service == "checkout")
    # each incident is charged its whole interval: the shared stretch counts twice
    check(p2, expected(rollups, "availability", "payments", INC2.start_ts_ns, INC2.end_ts_ns,
                       INC2.end_ts_ns - 30 * DAY_NS, INC2.end_ts_ns))
    g, t = sums(rollups, "availability", "payments", INC1.start_ts_ns, INC2.end_ts_ns)
    gs, ts = sums(rollups, "availability", "payments", INC2.start_ts_ns, INC1.end_ts_ns)
    assert ts - gs > 0 and p1.bad + p2.bad == (t - g) + (ts - gs)


def test_compacted_edges_are_counted_at_hour_resolution(
        ledger: tuple[pathlib.Path, list[SliRollup]], tmp_path: pathlib.Path) -> None:
    src, rollups = ledger
    copy = tmp_path / "ledger.sqlite"
    with sqlite3.connect(src) as a, sqlite3.connect(copy) as b:
        a.backup(b)
    (tmp_path / "slos.yaml").write_text(SLOS_YAML)
    before = attribute(copy, [INC1])[0].slos[0]
    db = open_ledger_db(str(copy))
    # minutes before 11:00 on 5 March are gone: INC-1's start (10:07) is now in a compacted hour
    n_min, _ = compact(db, now_ns=utc("2024-03-05T11:00:00+00:00"), minute_retention_ns=1,
                       retention_ns=400 * DAY_NS)
    db.close()
    assert n_min > 0
    row = attribute(copy, [INC1])[0].slos[0]
    assert row.slo == "availability" and row.service == "checkout"
    a, b = utc("2024-03-05T10:00:00+00:00"), INC1.end_ts_ns
    assert "start" in row.hour_resolution_edges and "end" not in row.hour_resolution_edges
    assert (row.counted_start_ts_ns, row.counted_end_ts_ns) == (a, b)
    # the period start (ragged, long compacted) is counted from its hour too
    assert "period start" in row.hour_resolution_edges
    ps = (b - 30 * DAY_NS) // HOUR_NS * HOUR_NS
    want = expected(rollups, "availability", "checkout", a, b, ps, b)
    check(row, {k: v for k, v in want.items() if k in ("good", "total", "bad")})
    assert row.bad >= before.bad


def test_unknown_slo_name_is_refused(ledger: tuple[pathlib.Path, list[SliRollup]]) -> None:
    from srestream._errors import ConfigError

    path, _ = ledger
    bad = TruthIncident(incident_id="X", service="checkout", slo="availabilty",
                        start_ts_ns=INC1.start_ts_ns, end_ts_ns=INC1.end_ts_ns, where="$.incidents[0]")
    with pytest.raises(ConfigError, match=r"\$\.incidents\[0\]\.slo: no SLO is named 'availabilty'"):
        attribute(path, [bad])


# ------------------------------------------------------------------ CLI

INCIDENTS_YAML = """
incidents:
  - id: INC-1
    service: checkout
    start: 2024-03-05T10:07:00Z
    end: 2024-03-05T11:52:00Z
    affected: [payments]
    summary: checkout 5xx
  - {id: INC-4, service: batch, start: 2024-03-05T08:00:00Z, end: 2024-03-05T08:30:00Z}
  - {id: INC-3, service: web, start: "2024-02-29T23:30:00+01:00", end: "2024-03-01T01:30:00+01:00"}
"""


def run_report(*args: str) -> subprocess.CompletedProcess[str]:
    cli = "import sys; from srestream._cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", cli, "report", *args], check=False,
                          capture_output=True, text=True, timeout=60)


def test_report_with_incidents_adds_a_section_and_keeps_the_rest(
        ledger: tuple[pathlib.Path, list[SliRollup]], tmp_path: pathlib.Path) -> None:
    path, rollups = ledger
    slos = str(path.parent / "slos.yaml")
    incidents = tmp_path / "incidents.yaml"
    incidents.write_text(INCIDENTS_YAML)
    at = "2024-03-07T12:00:00Z"
    base = ("--store", str(path), "--slos", slos, "--at", at)
    plain_md = run_report(*base)
    with_md = run_report(*base, "--incidents", str(incidents))
    plain_js = run_report(*base, "--format", "json")
    with_js = run_report(*base, "--format", "json", "--incidents", str(incidents))
    for r in (plain_md, with_md, plain_js, with_js):
        assert r.returncode == 0, r.stderr
    # without --incidents: exactly what the report renders by itself
    db = open_ledger_db(str(path))
    report = build_report(db, load_report_slos(slos), utc("2024-03-07T12:00:00+00:00"))
    db.close()
    assert plain_md.stdout == render_markdown(report)
    assert plain_js.stdout == render_json(report)
    assert "Incidents" not in plain_md.stdout and '"incidents"' not in plain_js.stdout
    # with it: the same report, then the section / the list
    assert with_md.stdout.startswith(plain_md.stdout + "\n## Incidents\n")
    doc = json.loads(with_js.stdout)
    incs = doc.pop("incidents")
    assert doc == json.loads(plain_js.stdout)
    assert [i["incident_id"] for i in incs] == ["INC-1", "INC-4", "INC-3"]
    row = incs[0]["slos"][0]
    a, b = INC1.start_ts_ns, INC1.end_ts_ns
    want = expected(rollups, "availability", "checkout", a, b, b - 30 * DAY_NS, b)
    assert (row["bad"], row["total"]) == (want["bad"], want["total"])
    assert row["budget_consumed"] == pytest.approx(want["budget_consumed"], rel=1e-12)
    assert row["counted_start"] == "2024-03-05T10:07:00.000Z"
    assert incs[1]["no_slo"] == ["batch"] and len(incs[2]["slos"]) == 2
    section = with_md.stdout[len(plain_md.stdout):]
    assert "| INC-4 | 2024-03-05 08:00 UTC → 2024-03-05 08:30 UTC | batch | no SLO |" in section
    assert f"| {want['bad']} / {want['total']} | {100 * want['budget_consumed']:.2f}% |" in section


def test_bad_incidents_file_exits_2_with_its_path(
        ledger: tuple[pathlib.Path, list[SliRollup]], tmp_path: pathlib.Path) -> None:
    path, _ = ledger
    slos = str(path.parent / "slos.yaml")
    bad = tmp_path / "bad-incidents.yaml"
    bad.write_text("incidents:\n  - {service: web, start: 2024-03-01T00:00:00Z}\n"
                   "  - {service: web, slo: nope, start: 2024-03-01T00:00:00Z, end: 2024-03-01T01:00:00Z}\n")
    r = run_report("--store", str(path), "--slos", slos, "--incidents", str(bad))
    assert r.returncode == 2
    assert f"{bad}: $.incidents[0].end: missing required field" in r.stderr
    bad.write_text("incidents:\n  - {service: web, slo: nope, start: 2024-03-01T00:00:00Z, "
                   "end: 2024-03-01T01:00:00Z}\n")
    r = run_report("--store", str(path), "--slos", slos, "--incidents", str(bad))
    assert r.returncode == 2 and f"{bad}: $.incidents[0].slo: no SLO is named 'nope'" in r.stderr
    r = run_report("--store", str(path), "--slos", slos, "--incidents", str(tmp_path / "none.yaml"))
    assert r.returncode == 2 and "none.yaml" in r.stderr

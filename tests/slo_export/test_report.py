"""`srestream report`: every figure recomputed here from the rollups themselves."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import random
import sqlite3
import subprocess
import sys

import pytest

from srestream.slo._ledger import DAY_NS, HOUR_NS, MINUTE_NS, compact, open_ledger_db, write_rollups
from srestream.slo._records import SliRollup
from srestream.slo._report import ReportSLO, build_report, render_markdown

BUCKET_NS = 15 * MINUTE_NS
START_NS = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()) * 10**9
SLOS_YAML = """
slos:
  - name: availability
    service: checkout
    objective: 99.9
    period: 30d
    sli: {kind: availability, total: {}, good: {status: {lt: 500}}}
    labels: {team: payments, tier: "1", component: api}
  - name: latency
    service: checkout
    objective: 99
    period: 7d
    sli: {kind: latency, total: {}, threshold: 300ms}
    labels: {team: payments}
  - name: availability
    service: search
    objective: 99.5
    period: month
    time_zone: Europe/Paris
    sli: {kind: availability, total: {}, good: {status: {lt: 500}}}
    labels: {team: discovery}
"""
KEYS = [("availability", "checkout", 99.9), ("latency", "checkout", 99.0),
        ("availability", "search", 99.5)]


def history(days: int = 200, seed: int = 3) -> list[SliRollup]:
    """15-minute rollups with a bad week, gaps (missing buckets) and partial no-data."""
    rnd = random.Random(seed)
    out = []
    for b in range(days * 96):
        ts = START_NS + b * BUCKET_NS
        for slo, service, _ in KEYS:
            if rnd.random() < 0.03:
                continue  # no rollup at all: a gap
            total = rnd.randint(0, 400)
            bad_rate = 0.02 if 150 * DAY_NS <= ts - START_NS < 157 * DAY_NS else 0.0008
            bad = min(total, round(total * bad_rate * rnd.uniform(0.0, 2.0)))
            out.append(SliRollup(slo=slo, service=service, bucket_ts_ns=ts, resolution_ns=BUCKET_NS,
                                 good=total - bad, total=total,
                                 no_data_ns=rnd.choice((0, 0, 0, 0, 5 * MINUTE_NS))))
    return out


def expect(rollups: list[SliRollup], slo: str, service: str, objective: float,
           start: int, end: int) -> dict[str, float | int | None]:
    rs = [r for r in rollups if (r.slo, r.service) == (slo, service) and start <= r.bucket_ts_ns < end]
    good = sum(r.good for r in rs)
    total = sum(r.total for r in rs)
    covered = sum(r.resolution_ns - r.no_data_ns for r in rs)
    budget = (100 - objective) / 100
    return {"good": good, "total": total, "sli": 100 * good / total if total else None,
            "budget_consumed": (total - good) / (budget * total) if total else 0.0,
            "coverage": covered / (end - start)}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, list[SliRollup]]:
    path = tmp_path_factory.mktemp("ledger") / "ledger.sqlite"
    rollups = history()
    db = open_ledger_db(str(path))
    write_rollups(db, rollups)
    db.close()
    return path, rollups


def run_report(*args: str) -> subprocess.CompletedProcess[str]:
    cli = "import sys; from srestream._cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", cli, "report", *args], check=False, capture_output=True,
                          text=True, timeout=60)


def test_json_report_figures_match_the_rollups(ledger: tuple[pathlib.Path, list[SliRollup]],
                                               tmp_path: pathlib.Path) -> None:
    path, rollups = ledger
    slos = tmp_path / "slos.yaml"
    slos.write_text(SLOS_YAML)
    at = START_NS + 164 * DAY_NS + 7 * HOUR_NS + 23 * MINUTE_NS + 17 * 10**9  # ragged on purpose
    at_iso = dt.datetime.fromtimestamp(at / 1e9, dt.UTC).isoformat()
    r = run_report("--store", str(path), "--slos", str(slos), "--format", "json", "--at", at_iso)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    end = at // MINUTE_NS * MINUTE_NS
    assert doc["at_ts_ns"] == end
    by_key = {(s["slo"], s["service"]): s for s in doc["slos"]}
    assert set(by_key) == {(k[0], k[1]) for k in KEYS}
    for slo, service, objective in KEYS:
        got = by_key[(slo, service)]
        for w, days in zip(got["windows"], (7, 30, 90), strict=True):
            want = expect(rollups, slo, service, objective, end - days * DAY_NS, end)
            assert w["window"] == f"{days}d"
            assert (w["good"], w["total"]) == (want["good"], want["total"])
            assert w["sli"] == pytest.approx(want["sli"])
            assert w["budget_consumed"] == pytest.approx(want["budget_consumed"])
            assert w["coverage"] == pytest.approx(want["coverage"])
            prev = expect(rollups, slo, service, objective, end - 2 * days * DAY_NS,
                          end - days * DAY_NS)
            assert w["previous_budget_consumed"] == pytest.approx(prev["budget_consumed"])
            delta = want["budget_consumed"] - prev["budget_consumed"]  # type: ignore[operator]
            assert w["trend"] == ("worse" if delta > 0.05 else "better" if delta < -0.05
                                  else "steady")
            assert w["compliant"] == (want["sli"] >= objective)  # type: ignore[operator]
    # the daily trend line: the 90 whole days before the report's day
    day_end = end // DAY_NS * DAY_NS
    daily = by_key[("availability", "checkout")]["daily"]
    assert [d[0] for d in daily] == [day_end - i * DAY_NS for i in range(90, 0, -1)]
    for day, good, total in daily[::17]:
        want = expect(rollups, "availability", "checkout", 99.9, day, day + DAY_NS)
        assert (good, total) == (want["good"], want["total"])
    # the bad week (days 150..157) breaks the 30-day availability of checkout
    assert by_key[("availability", "checkout")]["windows"][1]["compliant"] is False
    assert by_key[("availability", "checkout")]["windows"][0]["trend"] == "better"
    # period windows: rolling 30d / 7d, and the calendar month in Paris
    month_start = int(dt.datetime(2024, 6, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))
                      .timestamp()) * 10**9
    for (slo, service, objective), start in zip(
            KEYS, (end - 30 * DAY_NS, end - 7 * DAY_NS, month_start), strict=True):
        p = by_key[(slo, service)]["period_window"]
        want = expect(rollups, slo, service, objective, start, end)
        assert p["start_ts_ns"] == start
        assert (p["good"], p["total"]) == (want["good"], want["total"])
    # services and teams
    teams = {t["name"]: t for t in doc["teams"]}
    assert set(teams) == {"payments", "discovery"} and teams["payments"]["slos"] == 2
    w30 = {w["window"]: w for w in teams["payments"]["windows"]}["30d"]
    assert "checkout/availability" in w30["breaching"]
    # components and SLI categories: the same figures, grouped by label and kind
    components = {c["name"]: c for c in doc["components"]}
    assert {n: c["slos"] for n, c in components.items()} == {"api": 1, "(no component)": 2}
    categories = {c["name"]: c for c in doc["categories"]}
    assert {n: c["slos"] for n, c in categories.items()} == {"availability": 2, "latency": 1}
    for name, members in (("availability", [KEYS[0], KEYS[2]]), ("latency", [KEYS[1]])):
        w30 = {w["window"]: w for w in categories[name]["windows"]}["30d"]
        figures = [by_key[(slo, service)]["windows"][1] for slo, service, _ in members]
        assert w30["max_budget_consumed"] == pytest.approx(max(f["budget_consumed"] for f in figures))
        assert w30["compliant"] == sum(1 for f in figures if f["compliant"])
    assert doc["at"].startswith(dt.datetime.fromtimestamp(end / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M"))


def test_markdown_report_lists_teams_services_and_slos(
        ledger: tuple[pathlib.Path, list[SliRollup]], tmp_path: pathlib.Path) -> None:
    path, _ = ledger
    slos = tmp_path / "slos.yaml"
    slos.write_text(SLOS_YAML)
    out = tmp_path / "report.md"
    r = run_report("--store", str(path), "--slos", str(slos), "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    for heading in ("## Teams", "## Services", "## Components", "## SLI categories", "## SLOs"):
        assert heading in text
    assert "| checkout | availability | payments | 99.9% | 30d |" in text
    assert "| search | availability | discovery | 99.5% | month |" in text
    row = next(line for line in text.splitlines() if line.startswith("| checkout | availability"))
    spark = row.rstrip(" |").rsplit("| ", 1)[1]
    assert len(spark) == 30 and set(spark) <= set("▁▂▃▄▅▆▇█·")


def test_compaction_keeps_hour_aligned_reports_identical(
        ledger: tuple[pathlib.Path, list[SliRollup]], tmp_path: pathlib.Path) -> None:
    src, rollups = ledger
    slos = [ReportSLO(slo=s, service=v, objective=o, period="30d", period_ns=30 * DAY_NS)
            for s, v, o in KEYS]
    at = START_NS + 170 * DAY_NS + 5 * HOUR_NS
    copy = tmp_path / "copy.sqlite"
    with sqlite3.connect(src) as a, sqlite3.connect(copy) as b:
        a.backup(b)
    db = open_ledger_db(str(copy))
    before = build_report(db, slos, at)
    n_min, _ = compact(db, now_ns=START_NS + 200 * DAY_NS, minute_retention_ns=2 * DAY_NS,
                       retention_ns=400 * DAY_NS)
    assert n_min > 0
    after = build_report(db, slos, at)
    assert after == before
    want = expect(rollups, "availability", "checkout", 99.9, at - 30 * DAY_NS, at)
    assert after.slos[0].windows[1].total == want["total"]


def test_unknown_slos_in_the_ledger_are_named(tmp_path: pathlib.Path) -> None:
    db = open_ledger_db(str(tmp_path / "l.sqlite"))
    write_rollups(db, [SliRollup(slo="ghost", service="old", bucket_ts_ns=START_NS,
                                 resolution_ns=MINUTE_NS, good=1, total=1)])
    report = build_report(db, [ReportSLO(slo="a", service="b", objective=99.0, period="7d",
                                         period_ns=7 * DAY_NS)], START_NS + HOUR_NS)
    assert report.unknown_in_ledger == ["old/ghost"]
    assert report.slos[0].windows[0].sli is None and report.slos[0].windows[0].coverage == 0.0
    assert "old/ghost" in render_markdown(report)


def test_report_refuses_missing_or_foreign_store(tmp_path: pathlib.Path) -> None:
    slos = tmp_path / "slos.yaml"
    slos.write_text(SLOS_YAML)
    r = run_report("--store", str(tmp_path / "none.sqlite"), "--slos", str(slos))
    assert r.returncode == 2 and "--store" in r.stderr
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE x (a)").connection.close()
    r = run_report("--store", str(other), "--slos", str(slos))
    assert r.returncode == 2 and "no budget ledger" in r.stderr


def test_report_at_takes_epoch_seconds_and_refuses_nonsense(
        ledger: tuple[pathlib.Path, list[SliRollup]], tmp_path: pathlib.Path) -> None:
    path, _ = ledger
    slos = tmp_path / "slos.yaml"
    slos.write_text(SLOS_YAML)
    at = START_NS + 100 * DAY_NS
    r = run_report("--store", str(path), "--slos", str(slos), "--format", "json",
                   "--at", str(at // 10**9))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["at_ts_ns"] == at
    for bad in ("yesterday", "2024-05-01T00:00:00"):  # no offset: ambiguous
        r = run_report("--store", str(path), "--slos", str(slos), "--at", bad)
        assert r.returncode == 2 and "--at" in r.stderr

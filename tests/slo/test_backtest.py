"""``srestream backtest`` on the recorded orders-db outage (tests/data/scenario_small)
with the demo's SLO file (pipelines/demo/slos.yaml), scored against the simulator's
truth.json or hand-written incidents files (SPEC §3.6, backtesting)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import anyio
import pytest

from srestream._cli import main
from srestream.slo import (
    BacktestVariant,
    backtest,
    default_alert_windows,
    load_ground_truth,
    load_slos,
    objective_variant,
    replay_history,
)

ROOT = pathlib.Path(__file__).parent.parent.parent
DATA = ROOT / "tests" / "data" / "scenario_small"
LOGS = str(DATA / "logs.jsonl")
TRUTH = str(DATA / "truth.json")
SLOS = str(ROOT / "pipelines" / "demo" / "slos.yaml")
MIN = 60_000_000_000


def run_cli(tmp_path: pathlib.Path, *args: str, name: str = "report.json") -> tuple[dict[str, Any], str]:
    out = tmp_path / name
    assert main(["backtest", LOGS, "--slos", SLOS, *args, "--json", str(out)]) == 0
    return json.loads(out.read_text()), out.read_text()


def row(variant: dict[str, Any], service: str, slo: str, tier: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        r for r in variant["rows"] if (r["service"], r["slo"], r["tier"]) == (service, slo, tier)
    ]
    assert len(found) == 1, (service, slo, tier)
    return found[0]


def summary(variant: dict[str, Any], tier: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in variant["summary"] if s["tier"] == tier]
    assert len(found) == 1, tier
    return found[0]


def expected_page_ts(truth: dict[str, Any], sim_slo: str, objective: float, period_ns: int) -> int:
    """When the Workbook page condition first holds for one SLO, computed here from
    the truth's per-minute good/total: an alert is evaluated at the end of each
    minute, and fires when the error ratio over both the long and the short window
    of a page pair reaches factor x (1 - objective)."""
    [s] = [s for s in truth["slos"] if s["name"] == sim_slo]
    good: list[int] = s["minutes"]["good"]
    total: list[int] = s["minutes"]["total"]
    start: int = s["minutes"]["start_ns"]
    budget = 1 - objective / 100
    pairs = [(w.long_window_ns // MIN, w.short_window_ns // MIN, w.burn_rate)
             for w in default_alert_windows(period_ns) if w.tier == "page"]

    def holds(m: int, n: int, factor: float) -> bool:
        lo = max(0, m - n + 1)
        t = sum(total[lo : m + 1])
        return t > 0 and (t - sum(good[lo : m + 1])) / t >= factor * budget

    for m in range(len(total)):
        if any(holds(m, long_n, f) and holds(m, short_n, f) for long_n, short_n, f in pairs):
            return start + (m + 1) * MIN
    raise AssertionError(f"{sim_slo} never pages")


def test_default_slos_page_for_the_outage_with_the_workbook_delay(tmp_path: pathlib.Path) -> None:
    truth = json.loads(pathlib.Path(TRUTH).read_text())
    [fault] = truth["faults"]
    report, _ = run_cli(tmp_path, "--truth", TRUTH)
    [inc] = report["incidents"]
    assert (inc["incident_id"], inc["service"]) == (fault["incident_id"], fault["root_cause"])
    assert (inc["start_ts_ns"], inc["end_ts_ns"]) == (fault["effect_start_ns"], fault["end_ns"])
    assert (inc["start_ts"], inc["end_ts"]) == (fault["effect_start"], fault["end"])  # RFC 3339 siblings
    [base] = report["variants"]
    page = summary(base, "page")
    assert page["recall"] == 1.0 and page["missed"] == [] and page["detected"] == 1
    assert page["pages"] > 0 and page["false_positives"] == 0 and page["precision"] == 1.0
    slos = {(s.service, s.name): s for s in load_slos(SLOS).slos}
    delays = []
    for service in ("web", "checkout"):
        spec = slos[service, "availability"]
        expected = expected_page_ts(
            truth, f"{service}-availability", spec.objective, spec.parsed_period().length_ns
        ) - fault["effect_start_ns"]
        got = row(base, service, "availability", "page")
        assert got["recall"] == 1.0
        assert abs(got["delay_median_ns"] - expected) <= MIN, (service, got["delay_median_ns"], expected)
        delays.append(got["delay_median_ns"])
        # The row's delay is its first page's firing time, listed among the pages.
        first = min(p["ts_ns"] for p in base["pages"]
                    if (p["service"], p["slo"], p["tier"]) == (service, "availability", "page"))
        assert first - fault["effect_start_ns"] == got["delay_median_ns"]
    # The incident counts as detected by its earliest page, whichever service sent it.
    assert page["delay_median_ns"] == page["delay_max_ns"] <= min(delays)
    weeks = report["history"]["span_ns"] / (7 * 24 * 60 * MIN)
    assert page["pages_per_week"] == pytest.approx(page["pages"] / weeks)


def test_stricter_objective_pages_earlier_and_looser_later(tmp_path: pathlib.Path) -> None:
    report, _ = run_cli(tmp_path, "--truth", TRUTH, "--objective", "99.99", "--objective", "99")
    base, strict, loose = report["variants"]
    assert (strict["name"], loose["name"]) == ("objective 99.99", "objective 99")
    sp, bp, lp = (summary(v, "page") for v in (strict, base, loose))
    assert sp["pages"] >= bp["pages"] >= lp["pages"] > 0
    assert sp["delay_median_ns"] <= bp["delay_median_ns"] < lp["delay_median_ns"]
    totals = []
    for v in (strict, base, loose):
        rows = [r for r in v["rows"] if r["tier"] == "page" and r["slo"] == "availability"]
        assert all(r["detected"] == 1 for r in rows)
        totals.append(sum(r["delay_median_ns"] for r in rows))
    for r_s, r_b, r_l in zip(*(
        [r for r in v["rows"] if r["tier"] == "page" and r["slo"] == "availability"]
        for v in (strict, base, loose)
    ), strict=True):
        assert r_s["delay_median_ns"] <= r_b["delay_median_ns"] <= r_l["delay_median_ns"], r_b["service"]
    assert totals[0] < totals[1] < totals[2]
    # The looser variant's delays follow the Workbook condition at its objective too.
    truth = json.loads(pathlib.Path(TRUTH).read_text())
    start = truth["faults"][0]["effect_start_ns"]
    slos = {(s.service, s.name): s for s in load_slos(SLOS).slos}
    for service in ("web", "checkout"):
        period = slos[service, "availability"].parsed_period().length_ns
        expected = expected_page_ts(truth, f"{service}-availability", 99.0, period) - start
        assert abs(row(loose, service, "availability", "page")["delay_median_ns"] - expected) <= MIN


def test_incident_no_slo_can_see_is_missed(tmp_path: pathlib.Path) -> None:
    incidents = tmp_path / "incidents.yaml"
    incidents.write_text(
        "incidents:\n"
        "  - id: PM-1\n"
        "    service: orders-db\n"
        "    start: 2026-01-05T08:50:00Z\n"
        "    end: 2026-01-05T09:10:00Z\n"
        "    summary: orders-db refused connections\n"
        "  - id: PM-2\n"
        "    service: users-db\n"
        "    start: 2026-01-05T08:20:00Z\n"
        "    end: 2026-01-05T08:30:00Z\n"
        "  - id: PM-0\n"
        "    service: orders-db\n"
        "    start: 2025-12-01T00:00:00Z\n"
        "    end: 2025-12-01T01:00:00Z\n"
    )
    report, text = run_cli(tmp_path, "--truth", str(incidents))
    assert report["outside_history"] == ["PM-0"]
    [base] = report["variants"]
    page = summary(base, "page")
    assert page["incidents"] == 2 and page["detected"] == 1
    assert page["recall"] == 0.5 and page["missed"] == ["PM-2"]
    # No affected services listed: only orders-db's own pages count for PM-1.
    own = row(base, "orders-db", "availability", "page")
    assert own["detected"] == 1 and own["true_positives"] == own["pages"] > 0
    web = row(base, "web", "availability", "page")
    assert web["incidents"] == 0 and web["true_positives"] == 0 and web["false_positives"] == web["pages"] > 0
    assert page["delay_median_ns"] == own["delay_median_ns"]
    assert page["precision"] == pytest.approx(own["pages"] / page["pages"])
    # The Markdown lists the miss on the summary line.
    md = _stdout_of(["backtest", LOGS, "--slos", SLOS, "--truth", str(incidents)])
    assert any(ln.startswith("| baseline | page |") and ln.rstrip().endswith("| PM-2 |") for ln in md.splitlines())
    assert text  # the JSON was written


def test_dependents_count_unless_told_otherwise(tmp_path: pathlib.Path) -> None:
    with_deps, _ = run_cli(tmp_path, "--truth", TRUTH, name="a.json")
    own_only, _ = run_cli(tmp_path, "--truth", TRUTH, "--no-dependents", name="b.json")
    a, b = summary(with_deps["variants"][0], "page"), summary(own_only["variants"][0], "page")
    assert a["pages"] == b["pages"]
    db = row(own_only["variants"][0], "orders-db", "availability", "page")
    assert b["true_positives"] == db["pages"] < a["true_positives"]
    assert b["delay_median_ns"] == db["delay_median_ns"] >= a["delay_median_ns"]


def test_a_compared_slo_file_with_pending_for_pages_later(tmp_path: pathlib.Path) -> None:
    text = pathlib.Path(SLOS).read_text()
    waiting = tmp_path / "pending.yaml"
    waiting.write_text(text.replace("    labels: {team: commerce, tier: \"1\"}\n",
                                    "    labels: {team: commerce, tier: \"1\"}\n"
                                    "    alerting: {pending_for: 5m}\n"))
    report, _ = run_cli(tmp_path, "--truth", TRUTH, "--compare", str(waiting))
    base, other = report["variants"]
    assert other["name"] == "slos pending.yaml"
    b, o = row(base, "checkout", "availability", "page"), row(other, "checkout", "availability", "page")
    # The burn holds for the whole outage: firing waits exactly pending_for.
    assert o["delay_median_ns"] == b["delay_median_ns"] + 5 * MIN
    assert row(other, "web", "availability", "page") == row(base, "web", "availability", "page")


def _stdout_of(argv: list[str]) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return buf.getvalue()


def test_output_is_identical_across_runs(tmp_path: pathlib.Path) -> None:
    argv = ["backtest", LOGS, "--slos", SLOS, "--truth", TRUTH, "--objective", "web/availability=99.5"]
    first = _stdout_of([*argv, "--json", str(tmp_path / "1.json")])
    second = _stdout_of([*argv, "--json", str(tmp_path / "2.json")])
    assert first == second and "| objective web/availability=99.5 | page |" in first
    assert (tmp_path / "1.json").read_bytes() == (tmp_path / "2.json").read_bytes()


def test_alerts_do_not_depend_on_the_batch_size() -> None:
    base = BacktestVariant(name="baseline", slos=load_slos(SLOS))
    variants = [base, objective_variant(base, 99.0, select="availability")]

    async def run(batch_size: int) -> list[list[Any]]:
        _, firing = await replay_history([LOGS], variants, batch_size=batch_size)
        return firing

    small, large = anyio.run(run, 97), anyio.run(run, 4096)
    assert small == large and all(small)


def test_library_call_scores_like_the_cli(tmp_path: pathlib.Path) -> None:
    base = BacktestVariant(name="baseline", slos=load_slos(SLOS))
    report = anyio.run(lambda: backtest([LOGS], [base], load_ground_truth(TRUTH)))
    cli, _ = run_cli(tmp_path, "--truth", TRUTH)
    assert [p.ts_ns for p in report.variants[0].pages] == [p["ts_ns"] for p in cli["variants"][0]["pages"]]
    assert report.history.records == cli["history"]["records"] > 0


@pytest.mark.parametrize(
    ("incidents", "needles"),
    [
        ("incidents:\n  - {service: order-db, start: 2026-01-05T08:50:00Z, end: 2026-01-05T09:00:00Z}\n",
         ["$.incidents[0].service", "'order-db'", "did you mean 'orders-db'"]),
        (("incidents:\n  - {service: web, start: yesterday, end: 2026-01-05T09:00:00Z}\n"
         "  - {service: web, start: 2026-01-05T09:00:00, end: 2026-01-05T08:00:00Z, colour: red}\n"),
         ["$.incidents[0].start", "yesterday", "$.incidents[1].start", "no time zone",
          "$.incidents[1].colour"]),
        ("incidents:\n  - {service: web, start: 2026-01-05T09:00:00Z, end: 2026-01-05T08:00:00Z}\n",
         ["$.incidents[0].end", "not after the start"]),
        ("incidents:\n  - {service: web, slo: availabilty, start: 2026-01-05T08:00:00Z, end: 2026-01-05T09:00:00Z}\n",
         ["$.incidents[0].slo", "'availabilty'"]),
        ("[1, 2]\n", ["$.incidents", "expected a mapping"]),
    ],
)
def test_bad_incidents_exit_2_naming_file_and_path(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], incidents: str, needles: list[str]
) -> None:
    path = tmp_path / "incidents.yaml"
    path.write_text(incidents)
    assert main(["backtest", LOGS, "--slos", SLOS, "--truth", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_missing_files_and_bad_options_exit_2_all_at_once(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing_log = str(tmp_path / "nope.jsonl")
    missing_truth = str(tmp_path / "truth.json")
    code = main(["backtest", missing_log, "--slos", SLOS, "--truth", missing_truth,
                 "--objective", "checkout/latency=99", "--objective", "101", "--grace", "30"])
    assert code == 2
    err = capsys.readouterr().err
    for needle in ("HISTORY[0]", missing_log, missing_truth, "cannot read", "--objective[0]",
                   "no SLO matches 'checkout/latency'", "--objective[1]", "not in (0, 100)", "--grace"):
        assert needle in err, (needle, err)

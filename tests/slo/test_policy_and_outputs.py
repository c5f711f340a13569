"""Budget policies, the deployment gate (API and CLI), SLO status metrics,
and the whole SLO pipeline writing alerts.jsonl and budgets.jsonl."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import msgspec
import orjson
import pytest

import srestream.slo as slo_pkg
from srestream._cli import main as cli_main
from srestream._errors import ConfigError
from srestream.slo import (
    Alert,
    Budget,
    BudgetGate,
    PolicyAction,
    PolicyTracker,
    load_budgets,
    load_slos,
    slo_status_metrics,
    triggered_rules,
)
from srestream.slo._status import SloStatusWriter

from .helpers import HOUR, MIN, T0, S, availability, slo_set

ROOT = pathlib.Path(__file__).parent.parent.parent
DEMO_SLOS = ROOT / "pipelines" / "slos" / "demo.yaml"


def _budget(remaining: float, *, ts: int = T0, service: str = "checkout", slo: str = "availability",
            **kw: object) -> Budget:
    return Budget(ts_ns=ts, slo=slo, service=service, objective=99.9, period="30d",
                  good=1000, total=1000, budget_remaining=remaining, burn_rate_1h=0.0, **kw)  # type: ignore[arg-type]


def test_triggered_rules_follow_thresholds() -> None:
    slos = load_slos(DEMO_SLOS)
    rules = slos.budget_policy
    assert [r.action for r in triggered_rules(rules, 0.8)] == []
    assert [r.action for r in triggered_rules(rules, 0.5)] == ["notify"]
    assert [r.action for r in triggered_rules(rules, 0.2)] == ["notify", "ticket"]
    assert [r.action for r in triggered_rules(rules, 0.0)] == ["notify", "ticket", "freeze"]
    assert [r.action for r in triggered_rules(rules, -3.0)] == ["notify", "ticket", "freeze"]


def test_deployment_allowed_answers_yes_or_no_and_why() -> None:
    slos = load_slos(DEMO_SLOS)
    history = [
        _budget(0.9, ts=T0),
        _budget(0.3, ts=T0 + HOUR),
        _budget(-0.2, ts=T0 + 2 * HOUR),
        _budget(0.6, ts=T0 + 2 * HOUR, slo="latency"),
        _budget(-0.5, ts=T0, service="frontend", slo="latency"),
    ]
    gate = BudgetGate(slos, history)
    early = gate.deployment_allowed("checkout", T0 + 30 * MIN)
    assert early.allowed and bool(early) and early.actions == []
    assert any("90.0% of the error budget remains" in r for r in early.reasons)
    mid = gate.deployment_allowed("checkout", T0 + HOUR)
    assert mid.allowed and mid.actions == ["notify"]
    late = gate.deployment_allowed("checkout", T0 + 3 * HOUR)
    assert not late.allowed and not bool(late)
    assert late.actions == ["notify", "ticket", "freeze"]
    why = " ".join(late.reasons)
    assert "availability: -20.0% of the error budget remains" in why and "frozen" in why
    assert "latency: 60.0%" in why
    # Before any budget record: allowed, and it says so.
    before = gate.deployment_allowed("checkout", T0 - 1)
    assert before.allowed and all("no budget data" in r for r in before.reasons)
    # A service without SLOs has nothing to protect.
    assert gate.deployment_allowed("search", T0).allowed
    # Per-SLO policy: frontend's latency SLO freezes only when overspent.
    fe = gate.deployment_allowed("frontend", T0)
    assert not fe.allowed and fe.actions == ["freeze"]


def test_policy_tracker_emits_crossings_once() -> None:
    slos = load_slos(DEMO_SLOS)
    t = PolicyTracker(slos)
    out = t.process([_budget(0.9), _budget(0.45, ts=T0 + 1), _budget(0.4, ts=T0 + 2),
                     _budget(-0.1, ts=T0 + 3), _budget(0.7, ts=T0 + 4), "other",
                     _budget(0.1, service="unknown")])
    assert [(a.action, a.state, a.ts_ns - T0) for a in out] == [
        ("notify", "triggered", 1),
        ("ticket", "triggered", 3), ("freeze", "triggered", 3),
        ("notify", "cleared", 4), ("ticket", "cleared", 4), ("freeze", "cleared", 4),
    ]
    assert all(isinstance(a, PolicyAction) for a in out)
    t2 = PolicyTracker(slos)
    t2.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(t.snapshot())))
    assert t2.process([_budget(0.7, ts=T0 + 5)]) == []


def test_status_metrics_text() -> None:
    budgets = [_budget(0.5, ts=T0), _budget(0.25, ts=T0 + HOUR, exhaustion_ts_ns=T0 + 5 * HOUR,
                                                 team='pay"ments')]
    alerts = [Alert(ts_ns=T0, slo="availability", service="checkout", severity="critical", state="firing",
                    burn_rate=20.0, long_window="1h", short_window="5m", budget_remaining=0.3,
                    dedup_key="k1", tier="page"),
              Alert(ts_ns=T0, slo="availability", service="checkout", severity="warning", state="firing",
                    burn_rate=3.0, long_window="1d", short_window="2h", budget_remaining=0.3,
                    dedup_key="k2", tier="ticket"),
              Alert(ts_ns=T0 + MIN, slo="availability", service="checkout", severity="warning",
                    state="resolved", burn_rate=1.0, long_window="1d", short_window="2h",
                    budget_remaining=0.3, dedup_key="k2", tier="ticket")]
    text = slo_status_metrics(budgets, alerts)
    lab = 'service="checkout",slo="availability",team="pay\\"ments",tier="",period="30d"'
    assert f"srestream_slo_error_budget_remaining_ratio{{{lab}}} 0.25\n" in text
    assert f"srestream_slo_budget_exhaustion_timestamp_seconds{{{lab}}} {(T0 + 5 * HOUR) / 1e9!r}" in text
    assert text.count("srestream_slo_alert_firing{") == 1 and 'long_window="1h"' in text
    # Every sample line belongs to a declared metric.
    names = {ln.split()[2] for ln in text.splitlines() if ln.startswith("# TYPE")}
    for ln in text.splitlines():
        if ln and not ln.startswith("#"):
            assert ln.split("{")[0] in names
            float(ln.rsplit(" ", 1)[1])


def test_load_budgets_reports_bad_lines(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "budgets.jsonl"
    p.write_bytes(b'{"ts_ns": 1, "slo": "a"}\n\nnot json\n')
    with pytest.raises(ConfigError) as ei:
        load_budgets(str(p))
    assert [pr.path for pr in ei.value.problems] == ["line 1", "line 3"]
    with pytest.raises(ConfigError, match="cannot read"):
        load_budgets(str(tmp_path / "none.jsonl"))


def _write_logs(path: pathlib.Path) -> None:
    """checkout: 3h clean then a 20-minute outage; payments and frontend clean
    (frontend slow); 1 request/s each."""
    lines = []
    outage = (T0 + 3 * HOUR, T0 + 3 * HOUR + 20 * MIN)
    for i in range(4 * 3600):
        ts = T0 + i * S
        for svc in ("checkout", "payments", "frontend"):
            status = 500 if svc == "checkout" and outage[0] <= ts < outage[1] else 200
            latency_ms = 1500 if svc == "frontend" and i % 10 == 0 else 40
            lines.append(orjson.dumps({"ts": ts, "service": svc, "status": status, "latency_ms": latency_ms}))
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_pipeline_writes_alerts_budgets_status_and_the_gate_reads_them(tmp_path: pathlib.Path) -> None:
    logs = tmp_path / "logs.jsonl"
    _write_logs(logs)
    pipeline = tmp_path / "slo.yaml"
    pipeline.write_text(f"""
name: slo_test
sources:
  logs: {{type: replay, paths: [logs.jsonl]}}
stages:
  parse: {{type: parse_json, inputs: [logs]}}
  windows: {{type: sli_windows, inputs: [parse], slos: {DEMO_SLOS}, allowed_lateness: 5s}}
  burn_rate: {{type: burn_rate, inputs: [windows], slos: {DEMO_SLOS}}}
  policy: {{type: budget_policy, inputs: [burn_rate], slos: {DEMO_SLOS}}}
sinks:
  out: {{type: directory, inputs: [burn_rate, policy]}}
  status: {{type: slo_status, inputs: [burn_rate], path: slo.prom}}
""")
    out = tmp_path / "out"
    assert cli_main(["replay", str(pipeline), "--out", str(out), "--quiet", "--progress", "never"]) == 0
    alerts = [json.loads(x) for x in (out / "alerts.jsonl").read_text().splitlines()]
    budgets = [json.loads(x) for x in (out / "budgets.jsonl").read_text().splitlines()]
    for a in alerts:
        for f in ("ts", "ts_ns", "slo", "service", "severity", "state", "burn_rate", "long_window",
                  "short_window", "budget_remaining", "dedup_key"):
            assert f in a
    for b in budgets:
        for f in ("ts", "slo", "service", "objective", "period", "good", "total", "budget_remaining",
                  "burn_rate_1h", "exhaustion_ts"):
            assert f in b
    page = [a for a in alerts if a["service"] == "checkout" and a["long_window"] == "1h"]
    assert [a["state"] for a in page] == ["firing", "resolved"]
    assert page[0]["severity"] == "critical" and page[0]["ts"] == "2023-11-15T03:01:00.000Z"
    assert {(b["service"], b["slo"]) for b in budgets} == {
        (s, n) for s in ("checkout", "payments", "frontend") for n in ("availability", "latency")}
    assert (out / "policy_actions.jsonl").exists()
    assert "srestream_slo_error_budget_remaining_ratio{" in (out / "slo.prom").read_text()

    # The gate, through the real CLI process: checkout overspent -> refused (1);
    # payments healthy -> allowed (0); bad SLO file -> 2.
    def gate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "srestream", "gate", *args], capture_output=True, check=False,
                              text=True, timeout=60)

    r = gate("checkout", "--slos", str(DEMO_SLOS), "--budgets", str(out), "--at", "2023-11-15T06:00:00Z")
    assert r.returncode == 1, r.stderr
    assert r.stdout.startswith("deploy checkout at 2023-11-15T06:00:00.000Z: no")
    assert "frozen" in r.stdout
    r = gate("payments", "--slos", str(DEMO_SLOS), "--budgets", str(out / "budgets.jsonl"), "--json",
             "--at", "2023-11-15T06:00:00Z")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["allowed"] is True
    bad = tmp_path / "bad.yaml"
    bad.write_text("slos: [{name: x}]")
    r = gate("payments", "--slos", str(bad), "--budgets", str(out))
    assert r.returncode == 2 and "$.slos[0].service" in r.stderr
    r = gate("payments", "--slos", str(DEMO_SLOS), "--budgets", str(out), "--at", "yesterday-ish")
    assert r.returncode == 2 and "--at" in r.stderr


def test_status_writer_rewrites_atomically(tmp_path: pathlib.Path) -> None:
    w = SloStatusWriter(str(tmp_path / "m" / "slo.prom"))
    assert not w.update(["nothing"])
    assert w.update([_budget(0.5)])
    w.write()
    assert "0.5" in (tmp_path / "m" / "slo.prom").read_text()
    assert not (tmp_path / "m" / "slo.prom.tmp").exists()


def test_public_names_are_exported() -> None:
    import srestream.slo._records as rec
    for name in slo_pkg.__all__:
        assert hasattr(slo_pkg, name), name
    assert {"Alert", "Budget", "SliRollup"} <= set(slo_pkg.__all__) & set(rec.__all__)


async def test_gate_reads_the_budget_ledger_and_agrees_with_the_stream(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gate over the ledger's rollups gives the same budgets as the
    burn-rate stage computed in the stream (in-process CLI, all exit codes)."""
    from srestream.slo import SliWindows
    from srestream.slo._ledger import open_ledger_db, write_rollups
    from srestream.slo._policy import budgets_from_ledger

    from .helpers import run_engine, traffic

    slos = slo_set(availability(period="7d"), availability(name="lat", sli={
        "kind": "latency", "total": {}, "threshold": "100ms"}, objective=90))
    recs = traffic(T0, 26 * 3600, failing=lambda ts: T0 + 25 * HOUR <= ts < T0 + 25 * HOUR + 10 * MIN,
                   latency_ns=50_000_000)
    out, _, _ = await run_engine(slos, recs)
    win = SliWindows(slos)
    rollups = win.process(recs) + win.flush()
    db_path = str(tmp_path / "ledger.sqlite")
    db = open_ledger_db(db_path)
    write_rollups(db, rollups)
    db.close()
    at = T0 + 26 * HOUR
    from_ledger = {b.slo: b for b in budgets_from_ledger(db_path, slos, at)}
    streamed = {b.slo: b for b in out if isinstance(b, Budget) and b.ts_ns == at}
    for name in ("availability", "lat"):
        assert (from_ledger[name].good, from_ledger[name].total) == (streamed[name].good, streamed[name].total)
        assert from_ledger[name].budget_remaining == pytest.approx(streamed[name].budget_remaining)
    # 600 bad of 93,600 at 99.9%: overspent -> frozen, exit 1.
    slo_file = tmp_path / "slos.yaml"
    slo_file.write_text(json.dumps({"slos": [availability(period="7d")]}))
    code = cli_main(["gate", "checkout", "--slos", str(slo_file), "--budgets", db_path,
                     "--at", str(at // S)])
    printed = capsys.readouterr().out
    assert code == 1 and ": no" in printed.splitlines()[0] and "frozen" in printed
    code = cli_main(["gate", "checkout", "--slos", str(slo_file), "--budgets", db_path,
                     "--at", str((T0 + 20 * HOUR) // S), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["allowed"] is True
    assert cli_main(["gate", "checkout", "--slos", str(slo_file), "--budgets",
                     str(tmp_path / "missing.jsonl")]) == 2
    bad_db = tmp_path / "not-a-ledger.sqlite"
    import sqlite3
    sqlite3.connect(bad_db).execute("CREATE TABLE x (a)").connection.close()
    assert cli_main(["gate", "checkout", "--slos", str(slo_file), "--budgets", str(bad_db)]) == 2
    assert "budget ledger" in capsys.readouterr().err

"""SLO governance (SPEC 3.6): reviews and their cadence, proposed changes
that take effect only once approved by a named reviewer, and a
hash-chained audit trail of every change and every gate decision.

Real SQLite files and SLO files in tmp_path; the CLI through
``srestream._cli.main`` (and one real subprocess)."""

from __future__ import annotations

import json
import pathlib
import sqlite3
import subprocess
import sys
import threading
import time

import msgspec
import pytest

from srestream import Outputs
from srestream._cli import main as cli_main
from srestream._component import BuildContext
from srestream._errors import ConfigError, SrestreamError
from srestream.slo import (
    ApprovalRefused,
    Budget,
    BudgetGate,
    GovernanceStore,
    approve_proposal,
    default_store_path,
    effective_slos,
    load_slos,
    propose_change,
    record_review,
    review_schedule,
)
from srestream.slo._components import BudgetPolicyStage
from srestream.testing import ManualClock

S = 1_000_000_000
DAY = 86_400 * S
T0 = 1_790_000_000 * S  # 2026-09-21T...Z

SLO_FILE = """\
# SLOs of the shop (comments must survive `slo apply`)
slos:
  - name: availability
    service: checkout
    objective: 99.9   # agreed with payments in Q3
    period: 30d
    sli:
      kind: availability
      total: {}
      good: {status: {lt: 500}}
    labels: {team: payments}
    review:
      owner: alice
      cadence: 90d
      last_reviewed: 2026-08-01
      approvers: [bob]
  - name: latency
    service: search
    objective: 99.0
    sli: {kind: latency, total: {}, threshold: 300ms}
    review: {owner: erin, cadence: 30d}
  - name: availability
    service: cart
    objective: 99.5
    sli: {kind: availability, total: {}, good: {status: {lt: 500}}}
"""


@pytest.fixture
def slo_file(tmp_path: pathlib.Path) -> pathlib.Path:
    p = tmp_path / "slos.yaml"
    p.write_text(SLO_FILE)
    return p


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def objective(slos_set: object, subject: str) -> float:
    service, name = subject.split("/")
    [slo] = [s for s in slos_set.slos if s.service == service and s.name == name]  # type: ignore[attr-defined]
    return float(slo.objective)


# ---------------------------------------------------------------- proposals


def test_a_proposal_takes_effect_only_once_approved(slo_file: pathlib.Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    store_path = default_store_path(slo_file)
    code, out, _ = cli(capsys, "slo", "propose", str(slo_file), "checkout/availability",
                       "--set", "objective=99.5", "--set", "period=28d",
                       "--by", "carol", "--reason", "pages for noise: 99.9 is stricter than users need")
    assert code == 0 and "proposal 1 [pending]" in out
    assert store_path == str(slo_file.with_name("slos.governance.sqlite"))

    pending = effective_slos(slo_file, store_path)
    assert objective(pending, "checkout/availability") == 99.9  # not effective before approval
    code, out, _ = cli(capsys, "slo", "proposals", "--slos", str(slo_file), "--json")
    [p] = json.loads(out)
    assert (p["state"], p["changes"], p["before"]) == (
        "pending", {"objective": 99.5, "period": "28d"}, {"objective": 99.9, "period": "30d"})

    before_approval = time.time_ns()
    code, out, _ = cli(capsys, "slo", "approve", "1", "--by", "bob", "--slos", str(slo_file))
    assert code == 0 and "approved by bob" in out
    now = effective_slos(slo_file, store_path)
    [slo] = [s for s in now.slos if s.service == "checkout"]
    assert (slo.objective, slo.period) == (99.5, "28d")
    # The file itself is unchanged; a replay as of before the approval sees the old SLO.
    assert objective(load_slos(slo_file), "checkout/availability") == 99.9
    assert objective(effective_slos(slo_file, store_path, before_approval), "checkout/availability") == 99.9
    # The other SLOs are untouched.
    assert objective(now, "cart/availability") == 99.5 and objective(now, "search/latency") == 99.0


def test_apply_writes_approved_changes_keeping_comments_and_history(
        slo_file: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = default_store_path(slo_file)
    with GovernanceStore(store_path) as store:
        propose_change(store, str(slo_file), "checkout/availability", {"objective": 99.5},
                       by="carol", reason="too strict", now_ns=T0)
        approve_proposal(store, 1, by="alice", now_ns=T0 + DAY)
    code, out, err = cli(capsys, "slo", "apply", str(slo_file), "--by", "alice")
    assert code == 0 and "applied proposal 1" in out and not err
    text = slo_file.read_text()
    assert "objective: 99.5   # agreed with payments in Q3" in text
    assert text.startswith("# SLOs of the shop")
    assert objective(load_slos(slo_file), "checkout/availability") == 99.5
    # Once written, the change is still dated by its approval.
    assert objective(effective_slos(slo_file, store_path, T0), "checkout/availability") == 99.9
    assert objective(effective_slos(slo_file, store_path, T0 + 2 * DAY), "checkout/availability") == 99.5
    code, out, _ = cli(capsys, "slo", "effective", str(slo_file), "--at", str(T0 // S))
    assert code == 0 and "objective: 99.9" in out
    code, out, _ = cli(capsys, "slo", "apply", str(slo_file), "--by", "alice")
    assert code == 0 and "no approved change" in out
    code, out, _ = cli(capsys, "slo", "audit", "--slos", str(slo_file), "--json")
    actions = [e["action"] for e in json.loads(out)]
    assert actions == ["propose", "approve", "apply"]


def test_adding_a_field_rewrites_the_file_and_says_so(slo_file: pathlib.Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    store_path = default_store_path(slo_file)
    with GovernanceStore(store_path) as store:
        propose_change(store, str(slo_file), "cart/availability", {"alerting.pending_for": "5m"},
                       by="carol", reason="flapping pages")
        approve_proposal(store, 1, by="bob")  # no review block: anyone but the proposer
    code, _, err = cli(capsys, "slo", "apply", str(slo_file), "--by", "bob")
    assert code == 0 and "comments and layout were not kept" in err
    [cart] = [s for s in load_slos(slo_file).slos if s.service == "cart"]
    assert cart.alerting.pending_for.ns == 300 * S


def test_self_approval_is_refused_and_audited(slo_file: pathlib.Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "slo", "propose", str(slo_file), "cart/availability", "--set", "objective=99.0",
               "--by", "dave", "--reason", "new backend")[0] == 0
    code, _, err = cli(capsys, "slo", "approve", "1", "--by", "dave", "--slos", str(slo_file))
    assert code == 1
    assert "dave proposed this change and cannot approve it" in err
    assert objective(effective_slos(slo_file, default_store_path(slo_file)), "cart/availability") == 99.5
    code, out, _ = cli(capsys, "slo", "audit", "--slos", str(slo_file), "--json")
    last = json.loads(out)[-1]
    assert (last["action"], last["actor"], last["after"]) == ("approve_refused", "dave", {"refused_proposal": 1})


def test_an_unauthorised_approver_is_refused_with_the_reason(slo_file: pathlib.Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "slo", "propose", str(slo_file), "availability", "--set", "objective=99.5",
               "--by", "carol", "--reason", "x")[0] == 2  # two SLOs named availability: ambiguous
    assert cli(capsys, "slo", "propose", str(slo_file), "checkout/availability", "--set",
               "objective=99.5", "--by", "carol", "--reason", "too strict")[0] == 0
    code, _, err = cli(capsys, "slo", "approve", "1", "--by", "mallory", "--slos", str(slo_file))
    assert code == 1
    assert ("mallory is not an approver of checkout/availability: changes to it are approved by "
            "its review.owner 'alice' and review.approvers ['bob']") in err
    code, _, err = cli(capsys, "slo", "reject", "1", "--by", "mallory", "--reason", "no", "--slos", str(slo_file))
    assert code == 1 and "mallory is not an approver" in err
    # The proposer may withdraw; nobody may decide twice.
    assert cli(capsys, "slo", "reject", "1", "--by", "carol", "--reason", "withdrawn",
               "--slos", str(slo_file))[0] == 0
    code, _, err = cli(capsys, "slo", "approve", "1", "--by", "alice", "--slos", str(slo_file))
    assert code == 1 and "already rejected (by carol)" in err


def test_an_approved_change_to_the_approvers_governs_the_next_approval(slo_file: pathlib.Path) -> None:
    with GovernanceStore(default_store_path(slo_file)) as store:
        propose_change(store, str(slo_file), "checkout/availability", {"review.approvers": ["bob", "frank"]},
                       by="carol", reason="frank joins the payments on-call", now_ns=T0)
        with pytest.raises(ApprovalRefused) as refused:
            approve_proposal(store, 1, by="frank", now_ns=T0 + 1)  # not an approver yet
        assert "frank is not an approver of checkout/availability" in refused.value.reasons[0]
        approve_proposal(store, 1, by="bob", now_ns=T0 + 2)
        propose_change(store, str(slo_file), "checkout/availability", {"objective": 99.95},
                       by="carol", reason="users notice", now_ns=T0 + 3)
        assert approve_proposal(store, 2, by="frank", now_ns=T0 + 4).state == "approved"
        # The owner of an SLO without other approvers cannot get their own change approved
        # by anyone: the refusal says who could.
        propose_change(store, str(slo_file), "search/latency", {"objective": 99.5},
                       by="erin", reason="latency work done", now_ns=T0 + 5)
        with pytest.raises(ApprovalRefused) as refused:
            approve_proposal(store, 3, by="bob", now_ns=T0 + 6)
        assert refused.value.reasons == [
            ("bob is not an approver of search/latency: changes to it are approved by its "
             "review.owner 'erin'")]
    assert objective(effective_slos(slo_file, default_store_path(slo_file), T0 + 10),
                     "checkout/availability") == 99.95


def test_proposals_are_validated_with_every_problem_and_its_path(slo_file: pathlib.Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "slo", "propose", str(slo_file), "search/latency",
                       "--set", "objective=101", "--set", "sli.threshold=null", "--set", "period=2m",
                       "--by", "carol", "--reason", "x")
    assert code == 2
    assert "$.slos[1].objective: with the proposed change: objective 101.0 is outside (0, 100)" in err
    assert "$.slos[1].sli.threshold: with the proposed change: a latency SLI needs a positive threshold" in err
    assert "$.slos[1].period" in err
    code, _, err = cli(capsys, "slo", "propose", str(slo_file), "search/latency", "--set", "oops",
                       "--set", "name=other", "--set", "colour=blue", "--by", "c", "--reason", "x")
    assert code == 2
    assert "--set[0]: expected FIELD=VALUE" in err
    assert "--set[1]: name identifies the SLO" in err
    assert "--set[2]: unknown SLO field 'colour'" in err
    code, _, err = cli(capsys, "slo", "propose", str(slo_file), "search/latency",
                       "--set", "objective=99.0", "--by", "c", "--reason", "x")
    assert code == 2 and "already has objective = 99.0" in err
    code, _, err = cli(capsys, "slo", "propose", str(slo_file), "search/nope",
                       "--set", "objective=99.5", "--by", "c", "--reason", "x")
    assert code == 2 and "SLO_ID: no SLO 'search/nope'" in err
    code, _, err = cli(capsys, "slo", "approve", "7", "--by", "bob", "--slos", str(slo_file))
    assert code == 2 and "no governance store" in err
    # Nothing invalid was recorded (the default store was not even created) ...
    code, out, _ = cli(capsys, "slo", "proposals", "--slos", str(slo_file), "--json")
    assert json.loads(out) == []
    # ... but a store named explicitly must exist.
    code, _, err = cli(capsys, "slo", "reviews", str(slo_file), "--store", str(slo_file) + ".typo")
    assert code == 2 and "--store: no governance store at" in err


def test_a_bad_review_block_is_refused_with_its_path(tmp_path: pathlib.Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SLO_FILE.replace("cadence: 90d", "cadence: 12h").replace("approvers: [bob]",
                                                                           "approvers: [bob, bob]")
                   .replace("review: {owner: erin, cadence: 30d}", "review: {owner: erin, cadence: 30}"))
    code, _, err = cli(capsys, "slo", "reviews", str(bad))
    assert code == 2
    assert "$.slos[0].review.cadence: a review cadence of 12h is under a day" in err
    assert "$.slos[0].review.approvers[1]: 'bob' is listed twice" in err
    assert "$.slos[1].review.cadence" in err


# ---------------------------------------------------------------- reviews


def test_review_due_dates_follow_the_cadence(slo_file: pathlib.Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    aug1 = 1_785_542_400 * S  # 2026-08-01T00:00:00Z
    code, out, _ = cli(capsys, "slo", "reviews", str(slo_file), "--at", "2026-10-20T00:00:00Z",
                       "--within", "14d", "--json")
    rows = {r["subject"]: r for r in json.loads(out)}
    assert code == 0 and set(rows) == {"checkout/availability", "search/latency"}
    assert rows["checkout/availability"]["next_due_ts_ns"] == aug1 + 90 * DAY  # 2026-10-30
    assert rows["checkout/availability"]["next_due"] == "2026-10-30T00:00:00.000Z"
    assert rows["checkout/availability"]["status"] == "due"
    assert (rows["checkout/availability"]["owner"], rows["search/latency"]["status"]) == ("alice", "never_reviewed")
    code, out, _ = cli(capsys, "slo", "reviews", str(slo_file), "--at", "2026-10-31T00:00:00Z", "--json")
    assert {r["subject"]: r["status"] for r in json.loads(out)}["checkout/availability"] == "overdue"
    code, out, _ = cli(capsys, "slo", "reviews", str(slo_file), "--at", "2026-09-01T00:00:00Z")
    assert "checkout/availability" not in out and "never reviewed" in out

    # A recorded review moves the next due date (an approval does too: next test).
    slos = load_slos(slo_file)
    oct5 = aug1 + 65 * DAY
    with GovernanceStore(default_store_path(slo_file)) as store:
        record_review(store, str(slo_file), "checkout/availability", by="alice", note="fine", now_ns=oct5)
        record_review(store, str(slo_file), "search/latency", by="erin", now_ns=oct5)
        due = {d.subject: d for d in review_schedule(slos, store, oct5 + DAY)}
        assert due["checkout/availability"].next_due_ts_ns == oct5 + 90 * DAY
        assert due["checkout/availability"].last_reviewed_by == "alice"
        assert due["search/latency"].next_due_ts_ns == oct5 + 30 * DAY
        # As of before the review, the file's date still rules.
        assert {d.subject: d for d in review_schedule(slos, store, oct5 - DAY)}[
            "checkout/availability"].next_due_ts_ns == aug1 + 90 * DAY
    code, out, _ = cli(capsys, "slo", "reviews", str(slo_file), "--at", "2026-10-20T00:00:00Z", "--json")
    assert json.loads(out) == []  # both reviewed on 2026-10-05: next due 2027-01-03 and 2026-11-04
    code, out, _ = cli(capsys, "slo", "reviewed", str(slo_file), "cart/availability", "--by", "bob")
    assert code == 0 and "review of cart/availability by bob recorded" in out


def test_an_approval_counts_as_a_review(slo_file: pathlib.Path) -> None:
    with GovernanceStore(default_store_path(slo_file)) as store:
        propose_change(store, str(slo_file), "checkout/availability", {"objective": 99.95},
                       by="carol", reason="users notice", now_ns=T0)
        approve_proposal(store, 1, by="bob", now_ns=T0 + DAY)
        due = {d.subject: d for d in review_schedule(effective_slos(slo_file, store, T0 + 2 * DAY),
                                                     store, T0 + 2 * DAY)}
    assert due["checkout/availability"].last_reviewed_by == "bob"
    assert due["checkout/availability"].next_due_ts_ns == T0 + DAY + 90 * DAY


# ---------------------------------------------------------------- gate and audit


def _budgets(path: pathlib.Path, remaining: float) -> None:
    b = Budget(ts_ns=T0, slo="availability", service="checkout", objective=99.9, period="30d",
               good=990, total=1000, budget_remaining=remaining, burn_rate_1h=0.0)
    path.write_bytes(msgspec.json.encode(b) + b"\n")


def test_gate_decisions_are_audited(slo_file: pathlib.Path, tmp_path: pathlib.Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "audit.sqlite"
    budgets = tmp_path / "budgets.jsonl"
    _budgets(budgets, -0.5)
    code, out, _ = cli(capsys, "gate", "checkout", "--slos", str(slo_file), "--budgets", str(budgets),
                       "--at", str(T0 // S + 60), "--audit", str(store), "--by", "ci-deploy")
    assert code == 1 and "deploy checkout" in out
    _budgets(budgets, 0.8)
    assert cli(capsys, "gate", "checkout", "--slos", str(slo_file), "--budgets", str(budgets),
               "--at", str(T0 // S + 60), "--governance", str(store), "--by", "ci-deploy")[0] == 0
    # The library gate, given the store, audits too.
    with GovernanceStore(str(store)) as gov:
        gate = BudgetGate(load_slos(slo_file), [], audit=gov, actor="library")
        assert gate.deployment_allowed("cart", T0).allowed
        entries = gov.audit_entries()
    assert [(e.actor, e.action, e.subject, e.after["allowed"]) for e in entries] == [
        ("ci-deploy", "gate", "checkout", False), ("ci-deploy", "gate", "checkout", True),
        ("library", "gate", "cart", True)]
    assert "deployments are frozen" in entries[0].reason and entries[0].after["actions"] == [
        "notify", "ticket", "freeze"]
    assert entries[0].after["at_ns"] == T0 + 60 * S
    code, out, _ = cli(capsys, "slo", "audit", "--store", str(store), "--since",
                       time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)))
    assert code == 0 and out == ""


def test_the_audit_chain_verifies_and_an_edited_row_is_named(slo_file: pathlib.Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    store_path = default_store_path(slo_file)
    cli(capsys, "slo", "propose", str(slo_file), "cart/availability", "--set", "objective=99.9",
        "--by", "carol", "--reason", "checkout depends on it")
    cli(capsys, "slo", "approve", "1", "--by", "bob", "--slos", str(slo_file))
    cli(capsys, "slo", "reviewed", str(slo_file), "search/latency", "--by", "erin")
    code, out, _ = cli(capsys, "slo", "audit", "--slos", str(slo_file), "--verify")
    assert code == 0 and "audit trail OK: 3 entries" in out

    db = sqlite3.connect(store_path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    db.execute("DROP TRIGGER audit_no_update")  # a tamperer who knows the schema
    db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    db.commit()
    db.close()
    code, out, _ = cli(capsys, "slo", "audit", "--slos", str(slo_file), "--verify")
    assert code == 1
    assert "entry 2: its content does not match its hash" in out
    assert "entry 3" not in out  # the entries after it still chain to its stored hash


def test_verify_detects_a_deleted_entry_and_a_forged_approval(slo_file: pathlib.Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    store_path = default_store_path(slo_file)
    cli(capsys, "slo", "propose", str(slo_file), "cart/availability", "--set", "objective=99.9",
        "--by", "carol", "--reason", "x")
    for who in ("erin", "bob", "alice"):
        cli(capsys, "slo", "reviewed", str(slo_file), "search/latency", "--by", who)
    db = sqlite3.connect(store_path)
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute("DELETE FROM audit WHERE seq = 3")
    # Approve by editing the table rather than through the rule.
    db.execute("UPDATE proposal SET state = 'approved', decided_by = 'carol', decided_ns = 1")
    db.commit()
    db.close()
    code, out, _ = cli(capsys, "slo", "audit", "--slos", str(slo_file), "--verify", "--json")
    v = json.loads(out)
    assert code == 1 and not v["ok"]
    assert "entry 4: entries 3..3 are missing" in v["problems"]
    assert any(p.startswith("entry 4: its prev_hash does not match") for p in v["problems"])
    assert "proposal 1: its row differs from its latest audit entry (entry 1)" in v["problems"]
    assert "review 2: audited at entry 3 but missing from the store" not in v["problems"]
    assert any(p.startswith("review 2: no audit entry records it") for p in v["problems"])


def test_concurrent_writers_keep_one_chain(slo_file: pathlib.Path) -> None:
    store_path = default_store_path(slo_file)
    GovernanceStore(store_path).close()
    errors: list[BaseException] = []

    def writer(who: str) -> None:
        try:
            with GovernanceStore(store_path) as store:
                for _ in range(10):
                    record_review(store, str(slo_file), "search/latency", by=who)
        except (SrestreamError, sqlite3.Error) as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with GovernanceStore(store_path) as store:
        v = store.verify_audit()
        assert v.ok and v.entries == 40
        assert [e.seq for e in store.audit_entries()] == list(range(1, 41))


def test_the_cli_runs_as_a_process(slo_file: pathlib.Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "srestream", "slo", *args], capture_output=True,
                              text=True, check=False, timeout=60)

    r = run("propose", str(slo_file), "checkout/availability", "--set", "objective=99.5",
            "--by", "carol", "--reason", "noise")
    assert r.returncode == 0, r.stderr
    r = run("approve", "1", "--by", "carol", "--slos", str(slo_file))
    assert r.returncode == 1 and "cannot approve it" in r.stderr
    r = run("audit", "--verify", "--slos", str(slo_file))
    assert r.returncode == 0 and "2 entries" in r.stdout
    r = run("audit")
    assert r.returncode == 2 and "--store: give --store PATH or --slos FILE" in r.stderr


# ---------------------------------------------------------------- streaming stages


def test_slo_stages_load_the_slos_in_effect_when_built(slo_file: pathlib.Path, tmp_path: pathlib.Path) -> None:
    store_path = default_store_path(slo_file)
    with GovernanceStore(store_path) as store:
        propose_change(store, str(slo_file), "checkout/availability", {"objective": 99.5},
                       by="carol", reason="x", now_ns=T0)
        approve_proposal(store, 1, by="alice", now_ns=T0 + DAY)
    stage = msgspec.convert({"type": "budget_policy", "inputs": ["burn"], "slos": "slos.yaml",
                             "governance": "slos.governance.sqlite"}, BudgetPolicyStage)

    def built_at(now: int) -> float:
        ctx = BuildContext(component_id="policy", outputs=Outputs("policy"), base_dir=str(tmp_path),
                           clock=ManualClock(now))
        return objective(stage.build(ctx).slos, "checkout/availability")

    assert built_at(T0) == 99.9
    assert built_at(T0 + 2 * DAY) == 99.5
    missing = msgspec.convert({"type": "budget_policy", "inputs": ["burn"], "slos": "slos.yaml",
                               "governance": "nope.sqlite"}, BudgetPolicyStage)
    with pytest.raises(ConfigError, match=r"\$\.stages\.policy\.governance: no governance store"):
        missing.build(BuildContext(component_id="policy", outputs=Outputs("policy"), base_dir=str(tmp_path)))


def test_a_newer_store_schema_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "g.sqlite"
    GovernanceStore(str(path)).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(ConfigError, match="schema version 99 is newer"):
        GovernanceStore(str(path))

"""Each injected fault shows its signature in the data (all-faults.yaml)."""

from __future__ import annotations

import json
import statistics
from typing import Any

import pytest

from srestream.parse import parse_timestamp
from srestream.sim import parse_scenario, simulate

pytestmark = pytest.mark.timeout(120)


def _fault(truth: dict[str, Any], kind: str, n: int = 0) -> dict[str, Any]:
    return [f for f in truth["faults"] if f["kind"] == kind][n]


def _window(logs: list[dict[str, Any]], service: str, lo: int, hi: int) -> list[dict[str, Any]]:
    return [r for r in logs if r["service"] == service and lo <= r["ts_ns"] < hi]


def _error_ratio(recs: list[dict[str, Any]]) -> float:
    assert recs, "no records in the window"
    return sum(r["status"] >= 500 for r in recs) / len(recs)


@pytest.fixture(scope="module")
def logs(all_faults_logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return all_faults_logs


MIN = 60_000_000_000


def test_outage_raises_the_error_ratio_of_the_datastore_and_cascades_to_callers(
    all_faults: Any, logs: list[dict[str, Any]]
) -> None:
    f = _fault(all_faults.truth, "dependency_outage")
    ds, t0, t1 = f["root_cause"], f["onset_ns"], f["end_ns"]
    before = (t0 - 30 * MIN, t0)
    assert _error_ratio(_window(logs, ds, *before)) < 0.02
    assert _error_ratio(_window(logs, ds, t0, t1)) > 0.85
    assert _error_ratio(_window(logs, ds, t1 + MIN, t1 + 20 * MIN)) < 0.02
    callers = [s["name"] for s in all_faults.truth["services"] if ds in s["dependencies"]]
    assert callers and set(callers) <= set(f["affected_services"])
    for c in callers:
        assert (
            _error_ratio(_window(logs, c, t0, t1)) > 0.2 > _error_ratio(_window(logs, c, *before))
        )
    # Upward: the frontend's error ratio rises too, less than the datastore's.
    fe = next(s["name"] for s in all_faults.truth["services"] if s["kind"] == "frontend")
    assert fe in f["affected_services"]
    during = _error_ratio(_window(logs, fe, t0, t1))
    assert 0.05 < during < _error_ratio(_window(logs, ds, t0, t1))
    # Unaffected services (not upstream of the datastore) stay healthy.
    others = {s["name"] for s in all_faults.truth["services"]} - set(f["affected_services"]) - {ds}
    for o in others:
        recs = _window(logs, o, t0, t1)
        if len(recs) > 200:
            assert _error_ratio(recs) < 0.05, o


def test_bad_deploy_event_comes_before_the_error_rise(
    all_faults: Any, logs: list[dict[str, Any]]
) -> None:
    f = _fault(all_faults.truth, "bad_deploy")
    svc, version = f["root_cause"], f["params"]["version"]
    deploys = [
        e
        for e in all_faults.events()
        if e["event_type"] == "deploy" and e["service"] == svc and version in e["summary"]
    ]
    assert len(deploys) == 1
    deploy_ns = parse_timestamp(deploys[0]["ts"])
    assert deploy_ns == f["deploy_ts_ns"] == f["onset_ns"]
    new_errors = [r for r in logs if r["service"] == svc and version in r["message"]]
    assert new_errors, "the new version's error message appears"
    assert min(r["ts_ns"] for r in new_errors) >= f["effect_start_ns"] > deploy_ns
    assert max(r["ts_ns"] for r in new_errors) < f["end_ns"]
    assert len({r["component"] for r in new_errors}) == 1, "one component is broken"
    assert _error_ratio(_window(logs, svc, f["effect_start_ns"], f["end_ns"])) > 0.2
    assert _error_ratio(_window(logs, svc, deploy_ns - 30 * MIN, deploy_ns)) < 0.05
    rollback = [
        e for e in all_faults.events() if e["service"] == svc and "rollback" in e["summary"]
    ]
    assert rollback and parse_timestamp(rollback[0]["ts"]) <= f["end_ns"]


def test_latency_regression_slows_the_service_and_its_callers(
    all_faults: Any, logs: list[dict[str, Any]]
) -> None:
    f = _fault(all_faults.truth, "latency_regression")
    svc, t0, t1 = f["root_cause"], f["onset_ns"], f["end_ns"]

    def med(s: str, lo: int, hi: int) -> float:
        return statistics.median(r["latency_ms"] for r in _window(logs, s, lo, hi))

    before = med(svc, t0 - 20 * MIN, t0)
    # Its own time grows by the factor; the time of its datastore calls does not.
    assert med(svc, t0, t1) > 1.6 * before
    assert med(svc, t1 + MIN, t1 + 20 * MIN) < 1.3 * before
    # Latency adds up along the call path: the caller slows by a good part of it.
    caller = f["affected_services"][0]
    added = med(svc, t0, t1) - before
    assert med(caller, t0, t1) - med(caller, t0 - 20 * MIN, t0) > 0.3 * added
    # Latency only: no error rise.
    assert _error_ratio(_window(logs, svc, t0, t1)) < 0.05


def test_slow_burn_holds_its_error_ratio_for_its_whole_window(
    all_faults: Any, logs: list[dict[str, Any]]
) -> None:
    f = _fault(all_faults.truth, "slow_burn")
    svc, t0, t1, ratio = f["root_cause"], f["onset_ns"], f["end_ns"], f["params"]["error_ratio"]
    others = [
        (g["effect_start_ns"], g["end_ns"])
        for g in all_faults.truth["faults"]
        if g is not f and g["root_cause"] is not None
    ]
    recs = [
        r
        for r in _window(logs, svc, t0, t1)
        if not any(a <= r["ts_ns"] < b + 2 * MIN for a, b in others)
    ]
    assert len(recs) > 3000
    # The slow burn's ratio plus a little baseline (own and propagated).
    assert ratio < _error_ratio(recs) < ratio + 0.003
    # It holds for the whole window: first and last half agree.
    half = len(recs) // 2
    assert abs(_error_ratio(recs[:half]) - _error_ratio(recs[half:])) < 0.004
    assert _error_ratio(_window(logs, svc, t0 - 10 * MIN, t0)) < ratio / 2
    # Slow: at the root service's SLO the burn is a few times, not a page.
    impact = next(i for i in f["impact"] if i["service"] == svc and "availability" in i["slo"])
    assert 2 < impact["burn_rate"] < 15


def test_data_gap_has_no_records_in_any_output(all_faults: Any, logs: list[dict[str, Any]]) -> None:
    gap_all, gap_one = all_faults.truth["data_gaps"]
    t0, t1 = gap_all["onset_ns"], gap_all["end_ns"]
    assert not [r for r in logs if t0 <= r["ts_ns"] < t1]
    assert [r for r in logs if t0 - MIN <= r["ts_ns"] < t0] and [
        r for r in logs if t1 <= r["ts_ns"] < t1 + MIN
    ]
    # One service's gap hides only that service.
    (svc,) = gap_one["services"]
    u0, u1 = gap_one["onset_ns"], gap_one["end_ns"]
    assert not [r for r in logs if r["service"] == svc and u0 <= r["ts_ns"] < u1]
    assert len([r for r in logs if r["service"] != svc and u0 <= r["ts_ns"] < u1]) > 100
    # Traces: no span ends inside the gap.
    with open(all_faults.path / "traces.otlp.jsonl") as fh:
        for line in fh:
            for rs in json.loads(line)["resourceSpans"]:
                for sp in rs["scopeSpans"][0]["spans"]:
                    assert not t0 <= int(sp["endTimeUnixNano"]) < t1
    # Metrics: no sample inside the gap; the counter kept counting through it.
    t0_s, t1_s = t0 / 1e9, t1 / 1e9
    cart: list[tuple[float, float]] = []
    with open(all_faults.path / "metrics.om.txt") as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            series, value, ts = line.rsplit(" ", 2)
            assert not t0_s <= float(ts) < t1_s, line
            if series == f'http_requests_total{{service="{svc}",code="200"}}':
                cart.append((float(ts), float(value)))
    before = max(v for t, v in cart if t < u0 / 1e9)
    after = min(v for t, v in cart if t >= u1 / 1e9)
    assert not [t for t, _ in cart if u0 / 1e9 <= t < u1 / 1e9]
    assert after - before > 0


def test_incidents_have_acks_escalations_notes_actions_and_resolution(all_faults: Any) -> None:
    truth = all_faults.truth
    events = all_faults.events()
    teams = {s["name"]: s["team"] for s in truth["services"]}
    incidents = truth["incidents"]
    assert len(incidents) == 4  # every fault but the two data gaps
    assert any(i["escalated"] for i in incidents)
    for inc in incidents:
        fault = next(f for f in truth["faults"] if f["fault_id"] == inc["fault_id"])
        mine = [e for e in events if e.get("incident_id") == inc["incident_id"]]
        kinds = [e["event_type"] for e in mine]
        at = {
            k: parse_timestamp(next(e["ts"] for e in mine if e["event_type"] == k)) for k in kinds
        }
        assert {"ack", "chat_note", "human_action", "resolve"} <= set(kinds)
        assert fault["effect_start_ns"] < at["ack"] < at["human_action"] <= at["resolve"]
        assert at["ack"] == parse_timestamp(inc["acked"])
        assert ("escalation" in kinds) == inc["escalated"]
        if inc["escalated"]:
            assert at["escalation"] < at["ack"]
        assert all(e["team"] == teams[fault["root_cause"]] for e in mine)
        assert next(e for e in mine if e["event_type"] == "ack")["person"] == inc["acked_by"]
    assert [parse_timestamp(e["ts"]) for e in events] == sorted(
        parse_timestamp(e["ts"]) for e in events
    )


_PROPAGATION = """
name: propagation
start: "2026-01-05T00:00:00Z"
duration: 20m
seed: 5
services: {count: 6}
traffic: {requests_per_second: 4, diurnal_amplitude: 0}
baseline: {error_ratio: 0, error_propagation: PROP}
faults:
  - {kind: dependency_outage, service: orders-db, onset: 5m, duration: 10m, error_ratio: 1.0}
outputs: [jsonl]
"""


@pytest.mark.parametrize("prop", [0.0, 0.5, 1.0])
def test_errors_propagate_to_callers_with_the_configured_probability(
    tmp_path: Any, prop: float
) -> None:
    sc = parse_scenario(_PROPAGATION.replace("PROP", str(prop)))
    simulate(sc, tmp_path, formats=["jsonl"])
    recs = [json.loads(x) for x in (tmp_path / "logs.jsonl").read_text().splitlines()]
    by_span = {(r["trace_id"], r["span_id"]): r for r in recs}
    # A caller's fate when orders-db failed under it: read from the OTLP-free log
    # lines by their upstream/fallback message.
    failed = [r for r in recs if r["message"] == "upstream orders-db returned 503"]
    degraded = [r for r in recs if r["message"].startswith("degraded response: orders-db")]
    n = len(failed) + len(degraded)
    assert n > 300 and len(by_span) == len(recs)
    share = len(failed) / n
    assert abs(share - prop) < 0.08
    assert all(r["status"] == 502 and r["level"] == "ERROR" for r in failed)
    assert all(r["status"] == 200 and r["level"] == "WARN" for r in degraded)


_TIMEOUT = """
name: timeout
start: "2026-01-05T00:00:00Z"
duration: 30m
seed: 8
services: {count: 8, frontends: 1, gateways: 1, datastores: 2}
traffic: {requests_per_second: 3, diurnal_amplitude: 0}
slos:
  - {name: latency, sli: latency, objective: 99, threshold_ms: 1000}
faults:
  - {kind: dependency_outage, service: orders-db, onset: 10m, duration: 10m, mode: timeout,
     timeout: 3s, error_ratio: 0.5}
outputs: [jsonl]
"""


def test_a_hung_dependency_times_out_and_its_wait_adds_up_the_call_path(tmp_path: Any) -> None:
    simulate(parse_scenario(_TIMEOUT), tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())
    (f,) = truth["faults"]
    recs = [json.loads(x) for x in (tmp_path / "logs.jsonl").read_text().splitlines()]
    for r in recs:
        r["ts_ns"] = parse_timestamp(r["ts"])
    hung = [r for r in recs if r["service"] == "orders-db" and r["status"] == 504]
    assert len(hung) > 100
    assert all(r["latency_ms"] >= 3000 and "timeout after 3s" in r["message"] for r in hung)
    # They started inside the outage (and end up to the timeout after it).
    ms = 1_000_000
    assert all(f["onset_ns"] - ms <= r["ts_ns"] - r["latency_ms"] * ms < f["end_ns"] for r in hung)
    # Callers that failed on the timeout answer 504 after at least as long.
    up = [r for r in recs if r["message"] == "upstream orders-db returned 504"]
    assert up and all(r["status"] == 504 and r["latency_ms"] > 3000 for r in up)
    # The frontend's latency SLO burns during the outage, not before.
    impact = next(i for i in f["impact"] if i["slo"] == "web-latency")
    assert impact["bad_ratio"] > 0.1
    web = truth["slos"][0]
    assert web["name"] == "web-latency"
    assert sum(web["minutes"]["good"][:10]) == sum(web["minutes"]["total"][:10])


_RAMP = """
name: ramp
start: "2026-01-05T00:00:00Z"
duration: 2h
seed: 4
services: {count: 6}
traffic: {requests_per_second: 2.5, diurnal_amplitude: 0}
baseline: {error_ratio: 0}
faults:
  - {kind: slow_burn, service: cart, onset: 0s, duration: 2h, error_ratio: 0.01, ramp_to: 0.09}
outputs: [jsonl]
"""


def test_a_ramping_slow_burn_grows_linearly(tmp_path: Any) -> None:
    simulate(parse_scenario(_RAMP), tmp_path)
    recs = [json.loads(x) for x in (tmp_path / "logs.jsonl").read_text().splitlines()]
    cart = [r for r in recs if r["service"] == "cart"]
    # Error ratio per 40-minute third of the window: 0.01 -> 0.09 linearly,
    # so the thirds' means are 0.0233, 0.05 and 0.0767.
    thirds: list[list[dict[str, Any]]] = [[] for _ in range(3)]
    for r in cart:
        thirds[(int(r["ts"][11:13]) * 60 + int(r["ts"][14:16])) // 40].append(r)
    assert min(len(s) for s in thirds) > 3000
    ratios = [_error_ratio(s) for s in thirds]
    for i, got in enumerate(ratios):
        want = 0.01 + 0.08 * (i + 0.5) / 3
        assert abs(got - want) < 0.012, (i, got, want)
    assert ratios[0] < ratios[1] < ratios[2]


def test_truth_gives_each_slo_its_no_data_intervals_and_coverage(all_faults: Any) -> None:
    truth = all_faults.truth
    gap_all, gap_one = truth["data_gaps"]
    length = truth["end_ns"] - truth["start_ns"]
    for slo in truth["slos"]:
        want = [(gap_all["onset_ns"], gap_all["end_ns"])]
        if slo["service"] in gap_one["services"]:
            want.append((gap_one["onset_ns"], gap_one["end_ns"]))
        assert [(g["start_ns"], g["end_ns"]) for g in slo["no_data"]] == want
        assert slo["coverage"] == pytest.approx(1 - sum(b - a for a, b in want) / length)
        # No minute wholly inside a gap has data.
        m0 = slo["minutes"]["start_ns"]
        for a, b in want:
            for m in range(-(-(a - m0) // MIN), (b - m0) // MIN):
                assert slo["minutes"]["total"][m] == 0


def test_a_short_incident_keeps_its_responses_in_order(tmp_path: Any) -> None:
    sc = parse_scenario(
        'name: short\nstart: "2026-01-05T00:00:00Z"\nduration: 30m\nservices: {count: 5}\n'
        "traffic: {requests_per_second: 0.5}\noutputs: [jsonl]\n"
        "faults: [{kind: dependency_outage, service: orders-db, onset: 5m, duration: 1m}]\n"
    )
    simulate(sc, tmp_path)
    evs = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    order = [e["event_type"] for e in evs if e.get("incident_id") == "INC-1"]
    assert order.index("ack") < order.index("chat_note") < order.index("human_action")
    assert order[-1] == "resolve"

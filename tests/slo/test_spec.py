"""SLO spec loading and validation: every problem, each with its path."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from srestream._errors import ConfigError
from srestream.slo import SLOSpec, load_slos, parse_period, parse_slos, validate_slos

ROOT = pathlib.Path(__file__).parent.parent.parent


def _slo(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "availability", "service": "checkout", "objective": 99.9, "period": "30d",
        "sli": {"kind": "availability", "total": {}, "good": {"status": {"lt": 500}}},
    }
    base.update(over)
    return base


def _problems(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as ei:
        parse_slos(doc)
    return [(p.path, p.message) for p in ei.value.problems]


def test_demo_file_loads() -> None:
    s = load_slos(ROOT / "pipelines" / "slos" / "demo.yaml")
    services = {x.service for x in s.slos}
    assert {"checkout", "payments", "frontend"} <= services
    kinds = {x.sli.kind for x in s.slos}
    assert {"availability", "latency"} <= kinds
    assert [r.action for r in s.budget_policy] == ["notify", "ticket", "freeze"]


def test_a_good_spec() -> None:
    s = parse_slos({"slos": [_slo(labels={"team": "payments", "tier": "1", "component": "api"},
                                   period="month", time_zone="Europe/Paris")]})
    slo = s.slos[0]
    assert slo.objective_ratio == pytest.approx(0.999)
    assert slo.budget_ratio == pytest.approx(0.001)
    assert slo.labels.team == "payments"
    p = slo.parsed_period()
    assert (p.rolling, p.unit, p.time_zone) == (False, "month", "Europe/Paris")
    assert s.for_service("checkout") == [slo]
    assert s.policy_for(slo) == s.budget_policy


@pytest.mark.parametrize(
    ("text", "rolling", "length_h", "unit"),
    [("1h", True, 1, ""), ("24h", True, 24, ""), ("7d", True, 168, ""), ("28d", True, 672, ""),
     ("30d", True, 720, ""), ("month", False, 720, "month"), ("calendar quarter", False, 2160, "quarter")],
)
def test_periods(text: str, rolling: bool, length_h: int, unit: str) -> None:
    p = parse_period(text)
    assert p is not None
    assert (p.rolling, p.length_ns // 3_600_000_000_000, p.unit) == (rolling, length_h, unit)


def test_every_problem_is_reported_at_once() -> None:
    doc = {
        "colour": "blue",
        "budget_policy": [{"remaining_at_most": 500, "action": "explode"}],
        "slos": [
            _slo(objective=100),                                           # 0
            _slo(objective=0, name="b"),                                   # 1
            _slo(name="availability"),                                     # 2 duplicate of 0
            _slo(name="c", sli={"kind": "magic", "total": {}}),            # 3
            _slo(name="d", sli={"kind": "availability", "total": {"nope": 1}, "good": {"status": {"between": 1}}}),
            _slo(name="e", sli={"kind": "ratio", "good": {"status": 200}}),  # 5 missing total
            _slo(name="f", sli={"kind": "availability", "total": {}}),       # 6 missing good
            _slo(name="g", period="1h", alerting={"windows": [
                {"tier": "page", "long_window": "2h", "short_window": "5m", "budget_percent": 2}]}),
            _slo(name="h", objective=99.5, service="shared"),              # 8 conflicts with 26
            _slo(name="i", period="fortnight"),                            # 9
            _slo(name="j", time_zone="Mars/Olympus"),                      # 10
            _slo(name="k", objective="high", colour=1),                    # 11 two field problems
            _slo(name="l", sli={"kind": "latency", "total": {}, "threshold": 300}),
            _slo(name="m", sli={"kind": "latency", "total": {}}),          # 13 no threshold
            {"name": "n", "service": "checkout"},                          # 14 missing fields
            _slo(name="o", period="100d"),                                 # 15
            _slo(name="p", alerting={"tiers": ["sms"], "severities": {"pager": "x"},
                                     "window_scaling": "wide",
                                     "forecast_horizon": "0s", "forecast_window": "1m"}),
            _slo(name="q", alerting={"windows": [
                {"tier": "email", "long_window": "5m", "short_window": "5m"},
                {"tier": "page", "long_window": "90s", "short_window": "30s", "burn_rate": -1},
                {"tier": "page", "long_window": "1h", "short_window": "5m", "budget_percent": 200}]}),
            _slo(name="r", budget_policy=[{"remaining_at_most": 10, "action": "panic"}]),
            _slo(name="s", sli={"kind": "freshness", "threshold": "5m"}),   # 19 no metric
            _slo(name="t", sli={"kind": "throughput", "total": {}}),        # 20 no minimum
            _slo(name="u", sli={"kind": "availability", "total": {}, "good": {}, "budgeting": "sometimes"}),
            _slo(name="v", sli={"kind": "availability", "total": {}, "good": {}, "budgeting": "timeslices"}),
            _slo(name=" ", service=""),                                     # 23
            _slo(name="w", sli={"kind": "availability", "total": {"status": {"in": 5, "exists": "yes", "lt": None}},
                                "good": {"attrs.": 1, "status": {}, "level": object()}}),
            "not a mapping",                                                # 25
            _slo(name="h2", service="shared", objective=99.9),             # 26
        ],
    }
    # Unless a case is about two SLOs of one service, each has its own service.
    for i, slo in enumerate(doc["slos"]):
        if isinstance(slo, dict) and slo.get("service") == "checkout" and i not in (0, 2):
            slo["service"] = f"svc{i}"
    got = _problems(doc)
    paths = [p for p, _ in got]
    expected = {
        "$.colour": "unknown field",
        "$.budget_policy[0].action": "unknown action 'explode'",
        "$.budget_policy[0].remaining_at_most": "percent",
        "$.slos[0].objective": "outside (0, 100)",
        "$.slos[1].objective": "outside (0, 100)",
        "$.slos[2].name": "duplicate SLO 'availability'",
        "$.slos[3].sli.kind": "unknown SLI kind 'magic'",
        "$.slos[4].sli.total.nope": "unknown field 'nope'",
        "$.slos[4].sli.good.status.between": "unknown operator 'between'",
        "$.slos[5].sli.total": "missing total",
        "$.slos[6].sli.good": "missing good",
        "$.slos[7].alerting.windows[0].long_window": "shorter than this alert window",
        "$.slos[26].objective": "two objectives for one SLI and period: 99.9 here, 99.5 at $.slos[8]",
        "$.slos[9].period": "bad period 'fortnight'",
        "$.slos[10].time_zone": "unknown time zone",
        "$.slos[11].objective": "Expected `float`",
        "$.slos[11].colour": "unknown field",
        "$.slos[12].sli.threshold": "needs a unit",
        "$.slos[13].sli.threshold": "positive threshold",
        "$.slos[14].objective": "missing required field",
        "$.slos[14].sli": "missing required field",
        "$.slos[15].period": "between 1h and 90d",
        "$.slos[16].alerting.tiers[0]": "unknown tier 'sms'",
        "$.slos[16].alerting.severities.pager": "unknown tier",
        "$.slos[16].alerting.window_scaling": "period or none",
        "$.slos[16].alerting.forecast_horizon": "positive",
        "$.slos[16].alerting.forecast_window": "at least 10m",
        "$.slos[17].alerting.windows[0].tier": "unknown tier 'email'",
        "$.slos[17].alerting.windows[0].short_window": "shorter than long_window",
        "$.slos[17].alerting.windows[0]": "exactly one of budget_percent or burn_rate",
        "$.slos[17].alerting.windows[1].long_window": "whole number of minutes",
        "$.slos[17].alerting.windows[1].short_window": "whole number of minutes",
        "$.slos[17].alerting.windows[1].burn_rate": "positive",
        "$.slos[17].alerting.windows[2].budget_percent": "(0, 100]",
        "$.slos[18].budget_policy[0].action": "unknown action 'panic'",
        "$.slos[19].sli.metric": "metric name",
        "$.slos[20].sli.min_events_per_minute": "positive minimum",
        "$.slos[21].sli.budgeting": "unknown budgeting",
        "$.slos[22].sli.timeslice_target": "target percent",
        "$.slos[23].name": "must not be empty",
        "$.slos[23].service": "must not be empty",
        "$.slos[24].sli.total.status.in": "needs a list",
        "$.slos[24].sli.total.status.exists": "true or false",
        "$.slos[24].sli.total.status.lt": "number or a string",
        "$.slos[24].sli.good.attrs.": "unknown field",
        "$.slos[24].sli.good.status": "empty condition",
        "$.slos[24].sli.good.level": "unsupported condition",
        "$.slos[25]": "expected a mapping",
    }
    assert len(got) == len(expected), sorted(set(paths) - set(expected))
    for path, needle in expected.items():
        matches = [m for p, m in got if p == path]
        assert matches, f"no problem reported at {path}; got {paths}"
        assert any(needle in m for m in matches), (path, matches)
    # Problems come in file order: file-level first, then SLO by SLO.
    slo_idx = [int(p[7 : p.index("]")]) for p in paths if p.startswith("$.slos[")]
    assert slo_idx == sorted(slo_idx)


def test_problems_carry_the_file_and_the_document_shape_is_checked(tmp_path: pathlib.Path) -> None:
    f = tmp_path / "slos.yaml"
    f.write_text(yaml.safe_dump({"slos": [_slo(objective=120)]}))
    with pytest.raises(ConfigError) as ei:
        load_slos(f)
    assert ei.value.problems[0].file == str(f)
    assert "$.slos[0].objective" in str(ei.value)
    assert _problems(["a list"]) == [("$", "expected a mapping with a 'slos' list")]
    assert ("$.slos", "missing required field") in _problems({})
    assert any("expected a list" in m for _, m in _problems({"slos": {"a": 1}}))
    (tmp_path / "bad.yaml").write_text("slos: [a: b: c")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_slos(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_slos(tmp_path / "missing.yaml")


def test_validate_structs_built_in_code() -> None:
    s = parse_slos({"slos": [_slo()]}).slos[0]
    dup = SLOSpec(name=s.name, service=s.service, sli=s.sli, objective=99.9)
    other = SLOSpec(name="strict", service=s.service, sli=s.sli, objective=99.0)
    with pytest.raises(ConfigError) as ei:
        validate_slos([s, dup, other])
    paths = [p.path for p in ei.value.problems]
    assert paths == ["$.slos[1].name", "$.slos[2].objective"]
    assert validate_slos([s]).slos == (s,)
    bad = SLOSpec(name="x", service="y", sli=s.sli.__class__(kind="nope"), objective=99.0,
                  budget_policy=[s.__class__.__struct_fields__ and __import__("srestream.slo", fromlist=["PolicyRule"]).PolicyRule(remaining_at_most=1, action="zap")])
    with pytest.raises(ConfigError) as ei:
        validate_slos([bad])
    assert {p.path for p in ei.value.problems} == {"$.slos[0].sli.kind", "$.slos[0].budget_policy[0].action"}


def test_metric_sources_are_checked() -> None:
    got = _problems({"slos": [
        _slo(sli={"kind": "availability", "total": {}, "good": {}, "source": "traces"}),
        _slo(name="b", sli={"kind": "latency", "total": {}, "threshold": "1s", "source": "metrics"}),
    ]})
    assert [p for p, _ in got] == ["$.slos[0].sli.source", "$.slos[1].sli.source"]
    assert "cannot count metric samples" in got[1][1]

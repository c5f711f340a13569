"""`srestream dashboards`: one Grafana dashboard JSON per service (SPEC §3.6).

Checked here: the dashboard structure Grafana imports (unique ids,
non-overlapping grid positions, the datasource variable on every query),
a panel per SLO metric, thresholds from the SLO file, every PromQL query
accepted by the real ``promtool``, the metric names matching what srestream
writes (status metrics, or the rules ``srestream rules`` exports for the
same file), identical bytes across runs, and refusal of a bad SLO file.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys
from typing import Any

import pytest
import yaml

from srestream.slo import Alert, AlertState, Budget, dedup_key, load_slos, slo_status_metrics

ROOT = pathlib.Path(__file__).parent.parent.parent
DEMO = ROOT / "pipelines" / "demo" / "slos.yaml"
VEC = pathlib.Path(__file__).parent.parent / "data" / "slo"
SLOTH = VEC / "sloth"
PROMTOOL = shutil.which("promtool")
DS = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"stat", "gauge", "timeseries", "state-timeline", "table"}
SLO_PANELS = {"Objective", "Error budget remaining", "Data coverage",
              "Events in the period (good / total)", "Forecast budget exhaustion", "Burn rate",
              "Firing alerts"}

RULES_CASES = [
    (SLOTH / "in-base.yaml", []),
    (SLOTH / "in-base.yaml", ["--period", "28d", "--window-scaling", "none"]),
    (SLOTH / "in-base.yaml", ["--period", "7d"]),
    (SLOTH / "in-base.yaml", ["--windows", str(SLOTH / "windows-7d.yaml")]),
    (SLOTH / "getting-started.in.yml", []),
    (VEC / "openslo" / "v1alpha-ratio-sloth-input.yaml", []),
]
RULES_IDS = ["base", "base-28d-none", "base-7d", "base-windows-7d", "getting-started", "openslo"]


@pytest.fixture
def _promtool_is_installed() -> None:
    # A missing promtool fails these tests (never a silent skip).
    if PROMTOOL is None:
        pytest.fail("promtool not installed: run tests/install-servers.sh")


def srestream(*args: str) -> subprocess.CompletedProcess[str]:
    cli = "import sys; from srestream._cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", cli, *args], check=False, capture_output=True,
                          text=True, timeout=60)


def dashboards(slo_file: pathlib.Path, out: pathlib.Path, *args: str) -> dict[str, dict[str, Any]]:
    r = srestream("dashboards", str(slo_file), "--out", str(out), *args)
    assert r.returncode == 0, r.stderr
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("*.json"))}


def targets(dash: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in dash["panels"] for t in p.get("targets", [])]


def slo_rows(dash: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Panels under each row, by the SLO name heading the row."""
    rows: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for p in dash["panels"]:
        if p["type"] == "row":
            current = rows.setdefault(p["title"].split(":")[0], [])
        else:
            current.append(p)
    return rows


def assert_valid_structure(dash: dict[str, Any]) -> None:
    assert dash["schemaVersion"] == 39
    assert isinstance(dash["title"], str) and dash["title"]
    assert 8 <= len(dash["uid"]) <= 40 and re.fullmatch(r"[A-Za-z0-9_-]+", dash["uid"])
    assert dash["time"]["from"] and dash["time"]["to"] == "now"
    assert isinstance(dash["timezone"], str) and isinstance(dash["tags"], list)
    [var] = dash["templating"]["list"]
    assert (var["name"], var["type"], var["query"]) == ("datasource", "datasource", "prometheus")
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], int] = {}
    for p in dash["panels"]:
        assert p["type"] in PANEL_TYPES | {"row"}, p["type"]
        g = p["gridPos"]
        assert g["w"] >= 1 and g["h"] >= 1 and g["x"] >= 0 and g["y"] >= 0 and g["x"] + g["w"] <= 24
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['id']} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = p["id"]
        if p["type"] != "row":
            assert p["datasource"] == DS and p["targets"]
            ref_ids = [t["refId"] for t in p["targets"]]
            assert len(ref_ids) == len(set(ref_ids))
    for t in targets(dash):
        assert t["datasource"] == DS
        assert t["expr"] and isinstance(t["legendFormat"], str) and t["refId"]


_KEYWORDS = {"and", "or", "unless", "on", "ignoring", "group_left", "group_right", "by", "without",
             "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects.  Strings, ranges, matchers and
    label lists are removed first; every other identifier must then be a function
    or aggregation (followed by ``(``), a keyword, or a metric name (followed
    by ``{``): anything else fails, so no selector goes unchecked."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\{[^}]*\}", "{}", e)
    e = re.sub(r"\b(by|without)\s*\([^)]*\)", "", e)  # max without (x) (...) -> max (...)
    e = re.sub(r"\b(on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word, rest = m.group(), e[m.end():].lstrip()
        if word in _KEYWORDS or rest.startswith("("):
            continue
        assert rest.startswith("{"), f"{word!r} in {expr!r} is neither function nor selector"
        names.add(word)
    return names


def status_metric_names() -> set[str]:
    """Every metric name srestream's status output writes (with a forecast
    and a firing alert, so that none is left out)."""
    b = Budget(ts_ns=0, slo="a", service="s", objective=99.9, period="30d", good=9, total=10,
               budget_remaining=0.5, burn_rate_1h=2.0, exhaustion_ts_ns=10**18)
    a = Alert(ts_ns=0, slo="a", service="s", severity="page", state=AlertState.FIRING,
              burn_rate=20.0, long_window="1h", short_window="5m", budget_remaining=0.5,
              dedup_key=dedup_key("s", "a", "page", "page_quick"), tier="page")
    text = slo_status_metrics([b], [a])
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def test_demo_one_dashboard_per_service_with_a_panel_per_slo_metric(tmp_path: pathlib.Path) -> None:
    out = dashboards(DEMO, tmp_path / "dash")
    slos = load_slos(DEMO).slos
    assert set(out) == {f"{s.service}.json" for s in slos}
    written = status_metric_names()
    uids = set()
    for name, dash in out.items():
        service = name.removesuffix(".json")
        assert_valid_structure(dash)
        assert service in dash["title"]
        uids.add(dash["uid"])
        rows = slo_rows(dash)
        assert list(rows) == [s.name for s in slos if s.service == service]
        for slo_name, panels in rows.items():
            assert {p["title"] for p in panels} == SLO_PANELS
            for p in panels:
                for t in p["targets"]:
                    # Each query selects this SLO of this service, and a series srestream writes.
                    assert f'service="{service}"' in t["expr"] and f'slo="{slo_name}"' in t["expr"]
                    assert metric_names(t["expr"]) <= written, t["expr"]
    assert len(uids) == len(out)


def test_status_source_on_a_streamed_sloth_import(tmp_path: pathlib.Path) -> None:
    spec = SLOTH / "getting-started.in.yml"
    out = dashboards(spec, tmp_path / "dash")
    slos = load_slos(spec).slos
    assert set(out) == {f"{s.service}.json" for s in slos}
    written = status_metric_names()
    for name, dash in out.items():
        assert_valid_structure(dash)
        rows = slo_rows(dash)
        assert list(rows) == [s.name for s in slos if f"{s.service}.json" == name]
        assert all({p["title"] for p in panels} == SLO_PANELS for panels in rows.values())
        assert all(metric_names(t["expr"]) <= written for t in targets(dash))


def test_thresholds_come_from_the_budget_policy_and_the_alert_windows(tmp_path: pathlib.Path) -> None:
    spec = {
        "budget_policy": [{"remaining_at_most": 80, "action": "notify"},
                          {"remaining_at_most": 40, "action": "ticket"},
                          {"remaining_at_most": 10, "action": "freeze"}],
        "slos": [
            {"name": "availability", "service": "api", "objective": 99.5, "period": "30d",
             "sli": {"kind": "availability", "total": {}, "good": {"status": {"lt": 500}}},
             "alerting": {"windows": [
                 {"tier": "page", "long_window": "1h", "short_window": "5m", "burn_rate": 10},
                 {"tier": "ticket", "long_window": "6h", "short_window": "30m", "burn_rate": 2.5}]}},
            {"name": "own-policy", "service": "web", "objective": 99, "period": "7d",
             "sli": {"kind": "availability", "total": {}, "good": {"status": {"lt": 500}}},
             "budget_policy": [{"remaining_at_most": 30, "action": "freeze"}]},
        ],
    }
    f = tmp_path / "slos.yaml"
    f.write_text(yaml.safe_dump(spec))
    out = dashboards(f, tmp_path / "dash")

    def panel(dash: dict[str, Any], title: str) -> dict[str, Any]:
        return next(p for p in dash["panels"] if p["title"] == title)

    def steps(p: dict[str, Any]) -> list[tuple[float | None, str]]:
        return [(s["value"], s["color"]) for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]]

    api = out["api.json"]
    gauge = panel(api, "Error budget remaining")
    assert gauge["type"] == "gauge"
    # At most 10% left: freeze (red); at most 40%: ticket; at most 80%: notify; above: green.
    assert steps(gauge) == [(None, "red"), (0.1, "orange"), (0.4, "yellow"), (0.8, "green")]
    burn = panel(api, "Burn rate")
    assert burn["type"] == "timeseries"
    assert [v for v, _ in steps(burn)[1:]] == [2.5, 10]
    assert burn["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"

    # An SLO's own policy wins over the file's.
    assert steps(panel(out["web.json"], "Error budget remaining")) == [(None, "red"), (0.3, "green")]
    # Without any budget_policy: 50/25/0.
    del spec["budget_policy"]
    f.write_text(yaml.safe_dump(spec))
    plain = dashboards(f, tmp_path / "plain")["api.json"]
    assert steps(panel(plain, "Error budget remaining")) == [
        (None, "red"), (0, "orange"), (0.25, "yellow"), (0.5, "green")]


def test_datasource_option_preselects_the_variable(tmp_path: pathlib.Path) -> None:
    dash = dashboards(DEMO, tmp_path / "d", "--datasource", "prom-main")["checkout.json"]
    [var] = dash["templating"]["list"]
    assert var["current"]["value"] == "prom-main"
    assert all(t["datasource"] == DS for t in targets(dash))


@pytest.mark.usefixtures("_promtool_is_installed")
def test_every_query_is_valid_promql_for_promtool(tmp_path: pathlib.Path) -> None:
    exprs: list[str] = []
    for spec, args in [(DEMO, ["--source", "status"]), (SLOTH / "getting-started.in.yml", []),
                       *((s, ["--source", "rules", *a]) for s, a in RULES_CASES)]:
        out = tmp_path / f"d{len(exprs)}"
        for dash in dashboards(spec, out, *args).values():
            exprs.extend(t["expr"] for t in targets(dash))
    assert len(exprs) > 50
    recorded: list[dict[str, str]] = [
        {"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)]
    rules = {"groups": [{"name": "dashboard-queries", "rules": recorded}]}
    f = tmp_path / "queries.yaml"
    f.write_text(yaml.safe_dump(rules))
    check = subprocess.run([PROMTOOL or "promtool", "check", "rules", str(f)], check=False,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{len(exprs)} rules found" in check.stdout
    # The check itself rejects a bad query (so the pass above means something).
    recorded.append({"record": "dashboard:bad", "expr": exprs[0] + " / on("})
    f.write_text(yaml.safe_dump(rules))
    bad = subprocess.run([PROMTOOL or "promtool", "check", "rules", str(f)], check=False,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0


@pytest.mark.parametrize(("spec", "args"), RULES_CASES, ids=RULES_IDS)
def test_rules_source_queries_only_what_srestream_rules_records(
        spec: pathlib.Path, args: list[str], tmp_path: pathlib.Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    r = srestream("rules", str(spec), "-o", str(rules_file), *args)
    assert r.returncode == 0, r.stderr
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    records: dict[str, list[dict[str, str]]] = {}
    alerts: set[str] = set()
    for g in groups:
        for rule in g["rules"]:
            if "record" in rule:
                records.setdefault(rule["record"], []).append(rule.get("labels", {}))
            else:
                alerts.add(rule["alert"])
    out = dashboards(spec, tmp_path / "dash", "--source", "rules", *args)
    services = {labels["sloth_service"] for rs in records.values() for labels in rs}
    assert set(out) == {f"{s}.json" for s in services}
    queried_alerts = set()
    for dash in out.values():
        assert_valid_structure(dash)
        for t in targets(dash):
            ids = dict(re.findall(r'(sloth_id|alertname)="([^"]*)"', t["expr"]))
            for name in metric_names(t["expr"]):
                if name == "ALERTS":
                    assert ids["alertname"] in alerts, t["expr"]
                    queried_alerts.add(ids["alertname"])
                    continue
                assert name in records, f"{name} is not recorded by srestream rules"
                # ...and recorded for the SLO the panel selects.
                assert any(lab.get("sloth_id") == ids["sloth_id"] for lab in records[name]), t["expr"]
        rows = slo_rows(dash)
        assert rows and all(len(panels) >= 6 for panels in rows.values())
    assert queried_alerts == alerts


def test_output_bytes_are_identical_across_runs(tmp_path: pathlib.Path) -> None:
    for spec, args in [(DEMO, []), (SLOTH / "in-base.yaml", ["--source", "rules"])]:
        runs = []
        for i in range(2):
            out = tmp_path / f"{spec.stem}-{i}"
            r = srestream("dashboards", str(spec), "--out", str(out), *args)
            assert r.returncode == 0, r.stderr
            runs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
        assert runs[0] == runs[1] and runs[0]
        assert all(b.endswith(b"}\n") for b in runs[0].values())


@pytest.mark.parametrize("source", ["status", "rules"])
def test_bad_slo_file_exits_2_with_its_path(source: str, tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad-slos.yaml"
    bad.write_text("slos:\n  - name: a\n    service: s\n    objective: 120\n"
                   "    sli: {kind: availability, total: {}, good: {}}\n")
    out = tmp_path / "out"
    r = srestream("dashboards", str(bad), "--out", str(out), "--source", source)
    assert r.returncode == 2, r.stdout + r.stderr
    assert str(bad) in r.stderr and "$.slos[0]" in r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_rules_source_refuses_a_native_slo_file(tmp_path: pathlib.Path) -> None:
    r = srestream("dashboards", str(DEMO), "--out", str(tmp_path / "o"), "--source", "rules")
    assert r.returncode == 2
    assert str(DEMO) in r.stderr and "Prometheus has no series" in r.stderr

"""`srestream rules`: Sloth's golden files, and `promtool check rules` on every export."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
from typing import Any

import pytest
import yaml

from srestream.slo._importers import load_slo_file
from srestream.slo._rules import build_rule_groups, format_prom_duration, render_rules

VEC = pathlib.Path(__file__).parent.parent / "data" / "slo"
SLOTH = VEC / "sloth"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.usefixtures("_promtool_is_installed")


@pytest.fixture
def _promtool_is_installed() -> None:
    # A missing promtool fails these tests (never a silent skip).
    if PROMTOOL is None:
        pytest.fail("promtool not installed: run tests/install-servers.sh")


def srestream(*args: str) -> subprocess.CompletedProcess[str]:
    cli = "import sys; from srestream._cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", cli, *args], check=False, capture_output=True, text=True,
                          timeout=60)


def groups_without_generator(text: str) -> list[dict[str, Any]]:
    """Rule groups with the labels naming the generator (mode, version) removed."""
    groups: list[dict[str, Any]] = yaml.safe_load(text)["groups"]
    for g in groups:
        for r in g["rules"]:
            for k in ("sloth_mode", "sloth_version"):
                r.get("labels", {}).pop(k, None)
    return groups


@pytest.mark.parametrize(
    ("spec", "golden", "args"),
    [
        ("in-base.yaml", "out-base.rendered.yaml", []),
        ("in-base.yaml", "out-base-28d.rendered.yaml", ["--period", "28d",
                                                        "--window-scaling", "none"]),
        ("in-base.yaml", "out-base-custom-windows-7d.rendered.yaml",
         ["--windows", str(SLOTH / "windows-7d.yaml")]),
        ("getting-started.in.yml", "getting-started.out.yml", ["--label", "cmd=examplesgen.sh"]),
    ],
)
def test_rules_equal_sloth_golden_files(spec: str, golden: str, args: list[str],
                                        tmp_path: pathlib.Path) -> None:
    out = tmp_path / "rules.yaml"
    r = srestream("rules", str(SLOTH / spec), "-o", str(out), *args)
    assert r.returncode == 0, r.stderr
    assert groups_without_generator(out.read_text()) == groups_without_generator(
        (SLOTH / golden).read_text())


def test_openslo_recordings_equal_sloth_golden_file() -> None:
    """Sloth writes no alerts for an OpenSLO input (it has no alerting
    section); srestream adds the page and ticket alerts, and its recordings
    are Sloth's."""
    slos = load_slo_file(str(SLOTH / "in-openslo.yaml"))
    mine = groups_without_generator(render_rules(build_rule_groups(slos)))
    golden = groups_without_generator((SLOTH / "out-openslo.rendered.yaml").read_text())
    assert mine[:2] == golden
    assert [r["labels"]["sloth_severity"] for r in mine[2]["rules"]] == ["page", "ticket"]


def test_prometheus_duration_format() -> None:
    day = 86_400 * 10**9
    assert [format_prom_duration(n) for n in (300 * 10**9, 90 * 60 * 10**9, 3 * day, 7 * day,
                                              14 * day, 28 * day, 30 * day, 365 * day)] == [
        "5m", "1h30m", "3d", "1w", "2w", "4w", "30d", "1y"]


@needs_promtool
@pytest.mark.parametrize(
    ("spec", "args"),
    [
        (SLOTH / "in-base.yaml", []),
        (SLOTH / "in-base.yaml", ["--period", "28d", "--window-scaling", "none"]),
        (SLOTH / "in-base.yaml", ["--period", "7d"]),
        (SLOTH / "in-base.yaml", ["--period", "1h"]),
        (SLOTH / "in-base.yaml", ["--windows", str(SLOTH / "windows-7d.yaml")]),
        (SLOTH / "getting-started.in.yml", ["--label", "team=payments"]),
        (SLOTH / "validate-good-aa.yaml", []),
        (VEC / "openslo" / "v1alpha-ratio-sloth-input.yaml", []),
    ],
    ids=lambda v: v.name if isinstance(v, pathlib.Path) else "-".join(v).replace("/", "_"),
)
def test_promtool_check_rules_passes_on_every_export(spec: pathlib.Path, args: list[str],
                                                      tmp_path: pathlib.Path) -> None:
    out = tmp_path / "rules.yaml"
    r = srestream("rules", str(spec), "-o", str(out), *args)
    assert r.returncode == 0, r.stderr
    check = subprocess.run([PROMTOOL or "promtool", "check", "rules", str(out)],
                           check=False, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout


@needs_promtool
def test_promtool_check_rules_on_openslo_calendar_and_raw_success(tmp_path: pathlib.Path) -> None:
    docs = [
        {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "monthly"},
         "spec": {"service": "web", "budgetingMethod": "Occurrences",
                  "indicator": {"metadata": {"name": "ok"}, "spec": {"ratioMetric": {
                      "rawType": "success", "raw": {"metricSource": {"type": "Prometheus", "spec": {
                          "query": 'avg_over_time(probe_success{job="web"}[{{.window}}])'}}}}}},
                  "timeWindow": [{"duration": "1M", "isRolling": False,
                                  "calendar": {"startTime": "2024-01-01 00:00:00",
                                               "timeZone": "Europe/Paris"}}],
                  "objectives": [{"targetPercent": 99.5}]}},
    ]
    spec = tmp_path / "openslo.yaml"
    spec.write_text(yaml.safe_dump_all(docs))
    out = tmp_path / "rules.yaml"
    r = srestream("rules", str(spec), "-o", str(out))
    assert r.returncode == 0, r.stderr
    check = subprocess.run([PROMTOOL or "promtool", "check", "rules", str(out)],
                           check=False, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "slo:sli_error:ratio_rate30d" in out.read_text()  # a month's nominal length


@pytest.mark.parametrize("vector", ["sloth/validate-bad-aa.yaml",
                                    "openslo/v1-threshold-occurrences-rolling-2w.yaml",
                                    "openslo/v1-alert-policies.yaml"])
def test_rules_refuse_bad_or_unexportable_specs_with_exit_2(vector: str) -> None:
    r = srestream("rules", str(VEC / vector))
    assert r.returncode == 2
    assert r.stdout == ""
    assert "$" in r.stderr and vector.split("/")[1] in r.stderr

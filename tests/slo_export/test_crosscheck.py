"""Cross-check against Prometheus itself (issue 4, deliverable 8).

One scenario: a 99.9% / 30-day availability SLO; 1 request/s; a full
outage starts after three clean days, at 3d 00:00:20 (off the scrape grid on purpose).  The same
traffic is given

* to Prometheus, as counter series scraped every minute, with the rules
  ``srestream rules`` exports for the SLO, through ``promtool test rules``;
* to srestream, as request records, through its ``sli_windows`` and
  ``burn_rate`` stages (minute buckets, evaluated as each bucket closes).

The test asserts that Prometheus fires the page and the ticket alerts at
the very evaluation where srestream's detector fires them, and not one
step earlier; and that both are within one step of the exact event-time
firing computed from first principles (51.84 s and 259.2 s after the
outage starts).
"""

from __future__ import annotations

import pathlib
import shutil
import sys
from contextlib import aclosing
from typing import Any

import anyio
import pytest
import yaml

from srestream import LogRecord
from srestream.slo import parse_slos
from srestream.slo._alerting import MINUTE_NS, default_alert_windows
from srestream.slo._burn import BurnRateDetector
from srestream.slo._records import Alert
from srestream.slo._windows import SliWindows
from srestream.testing import ListSource

PROMTOOL = shutil.which("promtool")


@pytest.fixture(autouse=True)
def _promtool_is_installed() -> None:
    # A missing promtool fails these tests (never a silent skip).
    if PROMTOOL is None:
        pytest.fail("promtool not installed: run tests/install-servers.sh")

S = 1_000_000_000
RATE_PER_S = 1
DAY_NS = 86_400 * S
OUTAGE_NS = 3 * DAY_NS + 20 * S
"""After three clean days, so every alert window (up to 3d) is full."""
END_NS = 3 * DAY_NS + 20 * 60 * S
STEP_NS = MINUTE_NS
OBJECTIVE = 99.9
PERIOD_NS = 30 * 86_400 * S

SLOTH_SPEC = {
    "version": "prometheus/v1",
    "service": "checkout",
    "labels": {"team": "payments"},
    "slos": [{
        "name": "availability",
        "objective": OBJECTIVE,
        "sli": {"events": {
            "error_query": 'sum(rate(http_requests_total{job="checkout",code=~"5.."}[{{.window}}]))',
            "total_query": 'sum(rate(http_requests_total{job="checkout"}[{{.window}}]))',
        }},
        "alerting": {"name": "CheckoutAvailabilityBurn",
                     "page_alert": {"labels": {"severity": "critical"}},
                     "ticket_alert": {"labels": {"severity": "warning"}}},
    }],
}


def request_statuses() -> tuple[list[int], list[int]]:
    """(timestamps ns, HTTP statuses) of every request of the scenario."""
    step = S // RATE_PER_S
    ts = list(range(0, END_NS, step))
    return ts, [500 if t >= OUTAGE_NS else 200 for t in ts]


def scraped_counters(ts: list[int], status: list[int]) -> dict[str, list[int]]:
    """Cumulative counters per code, sampled at each minute (the value at
    scrape time t counts the requests before t)."""
    out: dict[str, list[int]] = {"200": [], "500": []}
    ok = err = 0
    i = 0
    for scrape in range(0, END_NS + 1, STEP_NS):
        while i < len(ts) and ts[i] < scrape:
            if status[i] >= 500:
                err += 1
            else:
                ok += 1
            i += 1
        out["200"].append(ok)
        out["500"].append(err)
    return out


DENSE_FROM_MIN = (OUTAGE_NS - 7 * 3600 * S) // STEP_NS


def sparse_history(values: list[int]) -> str:
    """promtool series values: every minute from 7h before the outage (the
    6h page window and more), one sample in ten before that (``_`` is a
    missed scrape).  Error and total counters share their timestamps, so
    their ratio over any range is exact; Prometheus just has a tenth of the
    old samples to scan (the test takes half the time)."""
    return " ".join(str(v) if i >= DENSE_FROM_MIN or i % 10 == 0 else "_"
                    for i, v in enumerate(values))


def srestream_firing_times(ts: list[int], status: list[int]) -> dict[str, int]:
    """Event time at which srestream's multi-window burn-rate evaluation
    first holds, per tier: evaluated at each record (event time), over the
    same windows as the exported rules; a window's error ratio is bad/total
    of the records in (t - window, t]."""
    windows = default_alert_windows(PERIOD_NS)
    budget = (100 - OBJECTIVE) / 100
    bad_prefix = [0]
    for s in status:
        bad_prefix.append(bad_prefix[-1] + (s >= 500))
    import bisect

    def ratio(i: int, window_ns: int) -> float:
        t = ts[i]
        j = bisect.bisect_right(ts, t - window_ns)
        n = i + 1 - j
        return (bad_prefix[i + 1] - bad_prefix[j]) / n if n else 0.0

    fired: dict[str, int] = {}
    start = bisect.bisect_left(ts, OUTAGE_NS)
    for i in range(start, len(ts)):
        for w in windows:
            if w.tier in fired:
                continue
            need = w.burn_rate * budget
            if ratio(i, w.long_window_ns) > need and ratio(i, w.short_window_ns) > need:
                fired[w.tier] = ts[i]
        if len(fired) == 2:
            break
    return fired


async def detector_firing_times(ts: list[int], status: list[int]) -> dict[str, int]:
    """When srestream's own stages (windows -> burn rate) first fire, per tier."""
    slos = parse_slos({"slos": [{
        "name": "availability", "service": "checkout", "objective": OBJECTIVE, "period": "30d",
        "sli": {"kind": "availability", "total": {}, "good": {"status": {"lt": 500}}},
        "labels": {"team": "payments"},
    }]})
    records = [LogRecord(ts_ns=t, service="checkout", status=s) for t, s in zip(ts, status,
                                                                                 strict=True)]
    windows, burn = SliWindows(slos), BurnRateDetector(slos)
    fired: dict[str, int] = {}
    async with aclosing(burn(windows(ListSource(records, batch_size=4096)()))) as out:
        async for batch in out:
            for r in batch:
                if isinstance(r, Alert) and r.state == "firing":
                    fired.setdefault(r.tier, r.ts_ns)
    return fired


def fmt(ns: int) -> str:
    return f"{ns // S}s"


def expected_alerts(rules: dict[str, Any], firing: dict[str, int], at: int) -> list[dict[str, Any]]:
    out = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            tier = rule["labels"]["sloth_severity"]
            if tier in firing and firing[tier] <= at:
                labels = {"sloth_id": "checkout-availability", "sloth_service": "checkout",
                          "sloth_slo": "availability", "team": "payments", **rule["labels"]}
                ann = {k: v.replace("{{$labels.sloth_service}}", "checkout")
                       .replace("{{$labels.sloth_slo}}", "availability")
                       for k, v in rule["annotations"].items()}
                out.append({"exp_labels": labels, "exp_annotations": ann})
    return out


async def test_prometheus_fires_when_srestream_does(tmp_path: pathlib.Path) -> None:
    ts, status = request_statuses()
    exact = srestream_firing_times(ts, status)
    # first principles: a full outage trips the 1h/14.4x page after 14.4 x 0.001 x 1h = 51.84 s
    assert exact["page"] - OUTAGE_NS == pytest.approx(51.84 * S, abs=S // RATE_PER_S)
    # and the 1d/3x ticket after 3 x 0.001 x 86400 s = 259.2 s
    assert exact["ticket"] - OUTAGE_NS == pytest.approx(259.2 * S, abs=S // RATE_PER_S)
    # srestream's stages evaluate as each minute bucket closes: the first close after
    fired = await detector_firing_times(ts, status)
    assert set(fired) == {"page", "ticket"}
    for tier in fired:
        assert 0 <= fired[tier] - exact[tier] < STEP_NS

    spec = tmp_path / "slo.yaml"
    spec.write_text(yaml.safe_dump(SLOTH_SPEC))
    rules_file = tmp_path / "rules.yaml"
    cli = "import sys; from srestream._cli import main; sys.exit(main(sys.argv[1:]))"
    with anyio.fail_after(60):
        r = await anyio.run_process(
            [sys.executable, "-c", cli, "rules", str(spec), "-o", str(rules_file)], check=False)
    assert r.returncode == 0, r.stderr.decode()
    rules = yaml.safe_load(rules_file.read_text())

    counters = scraped_counters(ts, status)
    # Prometheus evaluates every minute: it must fire exactly when srestream does.
    first_eval = dict(fired)
    checks = sorted({t + d for t in first_eval.values() for d in (-2 * STEP_NS, -STEP_NS, 0, STEP_NS)}
                    | {OUTAGE_NS - 10 * STEP_NS})
    tests = {
        "rule_files": [rules_file.name],
        "evaluation_interval": "1m",
        # Recordings before the alerts that read them, as Prometheus orders
        # rules within a group (promtool's default order of groups is random:
        # an alert could read the recordings of the step before).
        "group_eval_order": [g["name"] for g in rules["groups"]],
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f'http_requests_total{{job="checkout",code="{code}"}}',
                 "values": sparse_history(values)}
                for code, values in counters.items()
            ],
            "alert_rule_test": [
                {"eval_time": fmt(t), "alertname": "CheckoutAvailabilityBurn",
                 "exp_alerts": expected_alerts(rules, first_eval, t)}
                for t in checks
            ],
        }],
    }
    test_file = tmp_path / "crosscheck.test.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    with anyio.fail_after(90):
        result = await anyio.run_process([PROMTOOL or "promtool", "test", "rules", str(test_file)],
                                         check=False, cwd=tmp_path)
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    assert "SUCCESS" in out

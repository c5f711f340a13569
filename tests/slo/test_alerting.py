"""Multi-window multi-burn-rate numbers, derived from first principles and
checked against the hand-computed vectors (tests/data/slo/mwmb-expected.yaml)."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from srestream._duration import parse_duration
from srestream.slo import alert_windows, parse_slos
from srestream.slo._alerting import (
    DAY_NS,
    HOUR_NS,
    MINUTE_NS,
    burn_rate_factor,
    dedup_key,
    default_alert_windows,
    detection_time_ns,
    scale_window,
)

DATA = pathlib.Path(__file__).parent.parent / "data" / "slo"
EXPECTED = yaml.safe_load((DATA / "mwmb-expected.yaml").read_text())
S = 1_000_000_000


def _slo(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "availability", "service": "checkout", "objective": 99.9, "period": "30d",
        "sli": {"kind": "availability", "total": {}, "good": {"status": {"lt": 500}}},
    }
    base.update(over)
    return base


def test_workbook_factors_from_budget_shares() -> None:
    # The Workbook: page when 2% of a 30-day budget burns in 1h, or 5% in 6h;
    # ticket when 10% burns in 1d or 3d.  factor = share x period / window.
    period_h = 30 * 24
    shares = [(0.02, 1), (0.05, 6), (0.10, 24), (0.10, 72)]
    derived = [share * period_h / long_h for share, long_h in shares]
    windows = default_alert_windows(30 * DAY_NS)
    assert [w.burn_rate for w in windows] == pytest.approx(derived)
    vec = EXPECTED["sre_workbook_99_9_30d"]["alerts"]
    assert [w.burn_rate for w in windows] == pytest.approx([a["burn_rate"] for a in vec])
    assert [w.long_window_ns for w in windows] == [parse_duration(a["long"]) for a in vec]
    assert [w.short_window_ns for w in windows] == [parse_duration(a["short"]) for a in vec]
    assert [w.tier for w in windows] == [a["severity"] for a in vec]
    # At the factor, the budget lasts period / factor: 50h, 120h, 240h, 720h.
    assert [720 / w.burn_rate for w in windows] == pytest.approx([a["exhaustion_h"] for a in vec])


def test_detection_time_of_a_full_outage_is_51_84_seconds() -> None:
    # 99.9% over 30 days, every request failing: the 1h window's error ratio
    # after t seconds is t / 3600; it reaches 14.4 x 0.001 after
    # 14.4 x 0.001 x 3600 = 51.84 s.
    page_1h = default_alert_windows(30 * DAY_NS)[0]
    derived_s = 14.4 * 0.001 * 3600
    assert derived_s == pytest.approx(51.84)
    t = detection_time_ns(1.0, 0.999, page_1h)
    assert t is not None and t / S == pytest.approx(derived_s)
    vec = EXPECTED["sre_workbook_99_9_30d"]
    for w, a in zip(default_alert_windows(30 * DAY_NS), vec["alerts"], strict=True):
        got = detection_time_ns(1.0, 0.999, w)
        assert got is not None and got / S == pytest.approx(a["detect_s_e1"])
    # With 10% errors it takes ten times longer.
    slow = default_alert_windows(30 * DAY_NS)[1]
    assert detection_time_ns(0.1, 0.999, page_1h) / S == pytest.approx(vec["detect_s_e0_1"]["page_1h"])  # type: ignore[operator]
    assert detection_time_ns(0.1, 0.999, slow) / S == pytest.approx(vec["detect_s_e0_1"]["page_6h"])  # type: ignore[operator]
    # An error ratio under the threshold never trips.
    assert detection_time_ns(0.01, 0.999, page_1h) is None
    assert detection_time_ns(0.0, 0.999, page_1h) is None


def test_a_90_percent_slo_cannot_page_on_the_1h_window() -> None:
    # Workbook: for 90%, a full 1h outage consumes 1/72 = 1.4% (< 2%).
    vec = EXPECTED["sre_workbook_99_9_30d"]["chapter_numbers"]
    consumed = 1.0 * HOUR_NS / (0.1 * 30 * DAY_NS)
    assert consumed == pytest.approx(vec["slo_90_full_outage_1h_consumed"], rel=1e-4)
    assert detection_time_ns(1.0, 0.90, default_alert_windows(30 * DAY_NS)[0]) is None


def test_sloth_scaling_without_window_scaling() -> None:
    # Sloth keeps the Workbook windows for 28d and recomputes the factor.
    got = default_alert_windows(28 * DAY_NS, scaling="none")
    exp = EXPECTED["sloth_factors"]["28d"]
    assert [w.burn_rate for w in got] == pytest.approx(
        [exp["page_quick"], exp["page_slow"], exp["ticket_quick"], exp["ticket_slow"]]
    )
    assert [w.long_window_ns for w in got] == [HOUR_NS, 6 * HOUR_NS, DAY_NS, 3 * DAY_NS]


def test_windows_scale_with_the_period() -> None:
    # 7d: windows x 7/30, rounded to the minute; factor recomputed, so each pair
    # still alerts on the same share of the budget.
    got = default_alert_windows(7 * DAY_NS)
    assert [w.long_window_ns // MINUTE_NS for w in got] == [14, 84, 336, 1008]
    assert [w.short_window_ns // MINUTE_NS for w in got] == [1, 7, 28, 84]
    for w in got:
        assert w.burn_rate * w.long_window_ns / (7 * DAY_NS) == pytest.approx(w.budget_consumed)
    # Tiny periods never go under one minute.
    assert scale_window(5 * MINUTE_NS, HOUR_NS) == MINUTE_NS
    tiny = default_alert_windows(HOUR_NS)
    assert all(w.short_window_ns >= MINUTE_NS and w.short_window_ns <= w.long_window_ns for w in tiny)


def test_sloth_custom_7d_windows_file() -> None:
    # Sloth's windows-7d.yaml: errorBudgetPercent 8 / 12.5 / 20 / 42 over 1h/6h/24h/72h.
    windows = [
        {"tier": "page", "long_window": "1h", "short_window": "5m", "budget_percent": 8},
        {"tier": "page", "long_window": "6h", "short_window": "30m", "budget_percent": 12.5},
        {"tier": "ticket", "long_window": "24h", "short_window": "2h", "budget_percent": 20},
        {"tier": "ticket", "long_window": "72h", "short_window": "6h", "budget_percent": 42},
    ]
    slos = parse_slos({"slos": [_slo(period="7d", alerting={"windows": windows})]})
    got = alert_windows(slos.slos[0])
    exp = EXPECTED["sloth_factors"]["7d_custom_windows_file"]
    assert [w.burn_rate for w in got] == pytest.approx(
        [exp["page_quick"], exp["page_slow"], exp["ticket_quick"], exp["ticket_slow"]]
    )


def test_severities_tiers_and_direct_factors_per_slo() -> None:
    slos = parse_slos({"slos": [
        _slo(alerting={"tiers": ["page"], "severities": {"page": "critical"}}),
        _slo(name="lat", alerting={"windows": [
            {"tier": "ticket", "long_window": "2h", "short_window": "10m", "burn_rate": 2.5,
             "severity": "warning", "name": "slow_burn"}]}),
        _slo(name="off", alerting={"enabled": False}),
        _slo(name="28d", period="28d", alerting={"window_scaling": "none"}),
    ]})
    a, b, c, d = (alert_windows(s) for s in slos.slos)
    assert [(w.tier, w.severity) for w in a] == [("page", "critical"), ("page", "critical")]
    assert [(w.name, w.severity, w.burn_rate) for w in b] == [("slow_burn", "warning", 2.5)]
    assert b[0].budget_consumed == pytest.approx(2.5 * 2 / (30 * 24))
    assert c == []
    assert d[0].burn_rate == pytest.approx(13.44)


def test_factor_needs_a_positive_window() -> None:
    with pytest.raises(ValueError, match="positive"):
        burn_rate_factor(0.02, 30 * DAY_NS, 0)


def test_dedup_keys_are_stable_and_distinct() -> None:
    k = dedup_key("checkout", "availability", "page", "page_quick")
    assert k == dedup_key("checkout", "availability", "page", "page_quick")
    others = {dedup_key("checkout", "availability", "page", "page_slow"),
              dedup_key("payments", "availability", "page", "page_quick"),
              dedup_key("checkout", "latency", "page", "page_quick")}
    assert k not in others and len(others) == 3
    # Fixed for all time: receivers group on it across releases.
    assert k == "slo-" + __import__("hashlib").sha256(
        b"checkout\x1favailability\x1fpage\x1fpage_quick").hexdigest()[:20]

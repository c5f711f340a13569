"""Importers: Sloth prometheus/v1 and OpenSLO (v1, v1alpha) vectors, good and bad."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from srestream import ConfigError
from srestream.slo._importers import PromSLI, QuerySLI, import_documents, load_slo_file

DAY_NS = 86_400 * 10**9
VEC = pathlib.Path(__file__).parent.parent / "data" / "slo"


def problems_of(exc: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return {p.path: p.message for p in exc.value.problems}


def test_sloth_base_spec_gives_both_slos_with_merged_labels() -> None:
    slos = load_slo_file(str(VEC / "sloth" / "in-base.yaml"))
    assert [(s.service, s.name, s.objective) for s in slos] == [("svc01", "slo1", 99.9),
                                                                ("svc01", "slo02", 95.0)]
    first, second = slos
    assert first.period_ns == 30 * DAY_NS  # Sloth's default period
    assert isinstance(first.sli, PromSLI) and first.sli.style == "events"
    assert "{{.window}}" in first.sli.error_query and "{{.window}}" in first.sli.total_query
    assert first.labels == {"global01k1": "global01v1", "global02k1": "global02v1"}
    assert first.alerting.name == "myServiceAlert"
    assert first.alerting.page.labels == {"alert03k1": "alert03v1"}
    assert first.alerting.ticket.labels == {"alert04k1": "alert04v1"}
    assert isinstance(second.sli, PromSLI) and second.sli.style == "raw"
    assert second.alerting.page.disabled and second.alerting.ticket.disabled


def test_sloth_camel_case_alert_keys_are_read() -> None:
    slos = load_slo_file(str(VEC / "sloth" / "validate-good-aa.yaml"))
    assert slos[0].alerting.page.labels == {"alert03k1": "alert03v1"}


def test_sloth_objective_101_is_refused_with_its_path() -> None:
    with pytest.raises(ConfigError) as exc:
        load_slo_file(str(VEC / "sloth" / "validate-bad-aa.yaml"))
    assert list(problems_of(exc)) == ["$.slos[1].objective"]
    assert exc.value.problems[0].file.endswith("validate-bad-aa.yaml")


def test_sloth_every_problem_is_reported_at_once() -> None:
    doc = {
        "version": "prometheus/v1",
        "labels": {"bad-label": "x"},
        "slos": [
            {"name": "a", "objective": 0, "sli": {"events": {
                "error_query": "sum(rate(x[5m]))", "total_query": "sum(rate(y[{{.window}}]))"}},
             "alerting": {"page_alert": {"disable": True}, "ticket_alert": {"disable": True}}},
            {"name": "a", "objective": 99, "sli": {"raw": {"error_ratio_query": "q[{{.window}}]"},
                                                   "events": {}}, "alerting": {}},
            {"name": "b c", "objective": "high", "slo_period": "7d",
             "sli": {"plugin": {"id": "x"}}},
        ],
    }
    with pytest.raises(ConfigError) as exc:
        import_documents([doc], file="f.yaml")
    found = problems_of(exc)
    assert set(found) >= {
        "$.service", "$.labels.bad-label", "$.slos[0].objective",
        "$.slos[0].sli.events.error_query", "$.slos[1].sli", "$.slos[1].alerting.name",
        "$.slos[2].name", "$.slos[2].objective", "$.slos[2].slo_period", "$.slos[2].sli.plugin",
    }
    assert "{{.window}}" in found["$.slos[0].sli.events.error_query"]


def test_sloth_duplicate_slo_names_are_refused() -> None:
    slo = {"name": "avail", "objective": 99.9,
           "sli": {"raw": {"error_ratio_query": "x[{{.window}}]"}},
           "alerting": {"name": "A"}}
    doc = {"version": "prometheus/v1", "service": "s", "slos": [slo, dict(slo)]}
    with pytest.raises(ConfigError) as exc:
        import_documents([doc])
    assert "duplicate SLO 'avail'" in problems_of(exc)["$.slos[1].name"]


def test_openslo_v1alpha_shape_that_sloth_reads() -> None:
    (slo,) = load_slo_file(str(VEC / "openslo" / "v1alpha-ratio-sloth-input.yaml"))
    assert (slo.service, slo.name, slo.objective, slo.period_ns) == ("svc01", "slo1-0", 99.9,
                                                                    30 * DAY_NS)
    assert isinstance(slo.sli, PromSLI) and slo.sli.style == "good_total"
    assert slo.budgeting == "occurrences"


def test_openslo_threshold_occurrences() -> None:
    (slo,) = load_slo_file(str(VEC / "openslo" / "v1-threshold-occurrences-rolling-2w.yaml"))
    assert (slo.service, slo.name, slo.period_ns) == ("web-shop", "search-slo", 14 * DAY_NS)
    assert slo.objective == pytest.approx(99.0)
    assert slo.budgeting == "occurrences"
    assert isinstance(slo.sli, QuerySLI)
    assert (slo.sli.kind, slo.sli.op, slo.sli.value) == ("threshold", "lt", 500)


def test_openslo_op_on_a_ratio_sli_is_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        load_slo_file(str(VEC / "openslo" / "v1-ratio-ratiotimeslices-rolling-2w.yaml"))
    assert list(problems_of(exc)) == ["$.spec.objectives[0].op"]


def test_openslo_lowercase_m_is_minutes_not_a_month() -> None:
    with pytest.raises(ConfigError) as exc:
        load_slo_file(str(VEC / "openslo" / "v1-ratio-timeslices-calendar-2objectives.yaml"))
    found = problems_of(exc)
    assert "minutes" in found["$.spec.timeWindow[0].duration"]
    assert "$.spec.objectives[0].op" in found


def test_openslo_calendar_month_with_uppercase_m() -> None:
    doc = yaml.safe_load((VEC / "openslo" / "v1-ratio-timeslices-calendar-2objectives.yaml")
                         .read_text())
    doc["spec"]["timeWindow"][0]["duration"] = "1M"
    del doc["spec"]["objectives"][0]["op"]
    doc["spec"]["indicator"]["spec"]["ratioMetric"]["good"]["metricSource"] = {
        "type": "Prometheus", "spec": {"query": "sum(rate(ok[{{.window}}]))"}}
    doc["spec"]["indicator"]["spec"]["ratioMetric"]["total"]["metricSource"] = {
        "type": "Prometheus", "spec": {"query": "sum(rate(all[{{.window}}]))"}}
    slos = import_documents([doc])
    assert [s.name for s in slos] == ["service-availability-0", "service-availability-1"]
    assert [s.objective for s in slos] == pytest.approx([99.5, 99.0])
    assert all(s.calendar == "month" and s.period_ns is None for s in slos)
    assert slos[0].time_zone == "America/New_York"
    assert slos[0].budgeting == "timeslices" and slos[0].time_slice_target == 0.99
    assert slos[0].time_slice_window_ns == 60 * 10**9


def test_openslo_slis_by_reference() -> None:
    slis = yaml.safe_load((VEC / "openslo" / "v1-slis-good-bad-raw-threshold.yaml").read_text())
    names = [s["metadata"]["name"] for s in slis]
    slos = [{"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": f"slo-{n}"},
             "spec": {"service": "shop", "indicatorRef": n, "budgetingMethod": "Occurrences",
                      "timeWindow": [{"duration": "28d", "isRolling": True}],
                      "objectives": [{"target": 0.99, **({"op": "lte", "value": 10}
                                                         if n == "annotator-throughput" else {})}]}}
            for n in names]
    out = {s.name: s.sli for s in import_documents([slis + slos])}
    good = out["slo-search-availability"]
    assert isinstance(good, QuerySLI) and good.source_type == "Datadog"
    assert set(good.queries) == {"good", "total"}
    bad = out["slo-end-user-response"]
    assert isinstance(bad, QuerySLI) and set(bad.queries) == {"bad", "total"}
    raw = out["slo-wifi-client-satisfaction"]
    assert isinstance(raw, PromSLI) and raw.style == "raw_success"
    assert "1 - (" in raw.error_ratio_expr("5m") and "[5m]" in raw.error_ratio_expr("5m")
    thr = out["slo-annotator-throughput"]
    assert isinstance(thr, QuerySLI) and (thr.kind, thr.op, thr.value) == ("threshold", "lte", 10)


def test_openslo_every_problem_with_its_path() -> None:
    base = {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "Bad_Name"},
            "spec": {"service": "shop", "indicatorRef": "missing",
                     "budgetingMethod": "Timeslices",
                     "timeWindow": [{"duration": "1M", "isRolling": True}],
                     "objectives": [{"target": 1.0}, {"target": 0.9, "targetPercent": 90}]}}
    other = {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "cal"},
             "spec": {"service": "shop", "budgetingMethod": "Sometimes",
                      "indicator": {"metadata": {"name": "i"}, "spec": {"ratioMetric": {
                          "good": {"metricSource": {"type": "Prometheus",
                                                    "spec": {"query": "ok[{{.window}}]"}}}}}},
                      "timeWindow": [{"duration": "1M", "isRolling": False,
                                      "calendar": {"timeZone": "Mars/Olympus"}}],
                      "objectives": [{"target": 0.99}]}}
    with pytest.raises(ConfigError) as exc:
        import_documents([base, other])
    found = problems_of(exc)
    assert set(found) >= {
        "$[0].metadata.name", "$[0].spec.indicatorRef", "$[0].spec.timeWindow[0].duration",
        "$[0].spec.objectives[0].target", "$[0].spec.objectives[1]",
        "$[0].spec.objectives[0].timeSliceTarget", "$[0].spec.objectives[0].timeSliceWindow",
        "$[1].spec.budgetingMethod", "$[1].spec.timeWindow[0].calendar.timeZone",
        "$[1].spec.indicator.spec.ratioMetric.total",
    }


def test_file_without_slos_is_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        load_slo_file(str(VEC / "openslo" / "v1-alert-policies.yaml"))
    assert "no SLO" in exc.value.problems[0].message


def test_native_srestream_slos_are_named_as_not_exportable(root_dir: pathlib.Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_slo_file(str(root_dir / "pipelines" / "slos" / "demo.yaml"))
    found = problems_of(exc)
    assert "$.slos[0].sli" in found and "PromQL" in found["$.slos[0].sli"]


def test_native_srestream_slo_problems_come_from_its_validation() -> None:
    with pytest.raises(ConfigError) as exc:
        import_documents([{"slos": [{"name": "x", "objective": 101}]}])
    assert set(problems_of(exc)) >= {"$.slos[0].service", "$.slos[0].sli"}

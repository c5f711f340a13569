"""SLI predicates over record fields: every operator, typed and free fields."""

from __future__ import annotations

from typing import Any

import pytest

from srestream import LogRecord, MetricSample
from srestream.slo import sli_windows
from srestream.slo._predicates import check_predicate, compile_predicate
from srestream.testing import run_stage

from .helpers import T0, S, availability, slo_set

R = LogRecord(ts_ns=0, service="api", status=503, latency_ns=2_000_000, level=17,
              attrs={"route": "/pay", "region": "eu", "retries": 2, "weird": "x"})
NONE = LogRecord(ts_ns=0, service="api")


@pytest.mark.parametrize(
    ("spec", "expected_r", "expected_none"),
    [
        ({}, True, True),
        ({"status": 503}, True, False),
        ({"status": {"eq": 503}}, True, False),
        ({"status": {"ne": 503}}, False, True),
        ({"status": {"lt": 500}}, False, False),
        ({"status": {"le": 503}}, True, False),
        ({"status": {"gt": 499, "lt": 600}}, True, False),
        ({"status": {"ge": 504}}, False, False),
        ({"status": [500, 503]}, True, False),
        ({"status": {"in": [[1], 503]}}, True, False),   # an unhashable member: a tuple, still works
        ({"status": {"not_in": [200, 204]}}, True, True),
        ({"status": {"exists": True}}, True, False),
        ({"status": {"exists": False}}, False, True),
        ({"latency_ns": {"lt": 5_000_000}}, True, False),
        ({"level": {"ge": 17}}, True, False),
        ({"service": {"ge": "a"}}, True, True),
        ({"service": {"lt": 5}}, False, False),          # a string field against a number: never, no error
        ({"attrs.route": "/pay"}, True, False),
        ({"attrs.region": ["eu", "us"]}, True, False),
        ({"attrs.retries": {"le": 2}}, True, False),
        ({"attrs.retries": {"gt": 1}, "status": {"ge": 500}}, True, False),
        ({"attrs.weird": {"lt": 3}}, False, False),      # a string attr against a number: never, no error
        ({"attrs.region": {"exists": True}}, True, False),
    ],
)
def test_operators(spec: dict[str, Any], expected_r: bool, expected_none: bool) -> None:
    assert check_predicate(spec, "$.p") == []
    p = compile_predicate(spec)
    assert p(R) is expected_r or bool(p(R)) == expected_r
    assert bool(p(NONE)) == expected_none


def test_metric_sample_fields() -> None:
    p = compile_predicate({"name": "queue_age_seconds", "labels.queue": "orders", "value": {"lt": 60}})
    assert p(MetricSample(name="queue_age_seconds", ts_ns=0, value=30.0, labels={"queue": "orders"}))
    assert not p(MetricSample(name="queue_age_seconds", ts_ns=0, value=90.0, labels={"queue": "orders"}))
    assert not p(MetricSample(name="queue_age_seconds", ts_ns=0, value=30.0, labels={}))


async def test_the_windows_stage_counts_with_the_same_predicates() -> None:
    # One service, several SLOs: the generated counter applies each SLO's
    # predicates independently.
    slos = slo_set(
        availability(name="pay", sli={"kind": "ratio", "total": {"attrs.route": "/pay"},
                                      "good": {"status": {"not_in": [500, 502, 503]}}}),
        availability(name="errors", sli={"kind": "ratio", "total": {"level": {"exists": True}},
                                         "good": {"level": {"lt": 17}}}),
    )
    recs = [
        LogRecord(ts_ns=T0 + 1 * S, service="checkout", status=503, level=17, attrs={"route": "/pay"}),
        LogRecord(ts_ns=T0 + 2 * S, service="checkout", status=200, level=9, attrs={"route": "/pay"}),
        LogRecord(ts_ns=T0 + 3 * S, service="checkout", status=200, level=9, attrs={"route": "/cart"}),
    ]
    out = await run_stage(sli_windows, recs, slos=slos)
    got = {r.slo: (r.good, r.total) for r in out}
    assert got == {"pay": (1, 2), "errors": (2, 3)}


async def test_attribute_keys_that_look_like_code_are_data() -> None:
    key = "x.r.status') or True or ('"
    slos = slo_set(availability(sli={"kind": "ratio", "total": {f"attrs.{key}": 1},
                                     "good": {"status": {"lt": 500}}}))
    recs = [LogRecord(ts_ns=T0 + S, service="checkout", status=200, attrs={key: 1}),
            LogRecord(ts_ns=T0 + 2 * S, service="checkout", status=500, attrs={"other": 1})]
    out = await run_stage(sli_windows, recs, slos=slos)
    assert [(r.good, r.total) for r in out] == [(1, 1)]
    assert compile_predicate({f"attrs.{key}": 1})(recs[0])

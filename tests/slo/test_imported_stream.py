"""Sloth and OpenSLO specs evaluated live: their PromQL counter ratios become
metric-sample SLIs that the windows and burn-rate stages count exactly as
the equivalent hand-written srestream SLO, and anything else is refused
with the path of the query in its file."""

from __future__ import annotations

import pathlib
import random
import re
from typing import Any

import msgspec
import pytest
import yaml

from srestream import ConfigError, MetricSample, Runner, pipeline_from_dict
from srestream.slo import Alert, Budget, SliRollup, load_slos, parse_slos
from srestream.slo._alerting import WORKBOOK_WINDOWS
from srestream.slo._burn import BurnRateDetector
from srestream.slo._importers import import_documents
from srestream.slo._promql_sli import (
    StreamingRefusal,
    selector_predicates,
    streaming_slo,
    streaming_slo_set,
)
from srestream.slo._windows import SliWindows
from srestream.testing import CaptureSink, ListSource

from .helpers import HOUR, MIN, T0, S

SLOTH = """\
version: prometheus/v1
service: checkout
labels: {owner: payments, tier: "1"}
slos:
  - name: requests-availability
    objective: 99.9
    description: Checkout requests that do not fail.
    sli:
      events:
        errorQuery: sum(rate(http_requests_total{job="checkout",code=~"5..|429"}[{{.window}}]))
        totalQuery: sum by (code) (rate(http_requests_total{job="checkout"}[{{.window}}]))
    alerting:
      name: CheckoutAvailability
      page_alert: {labels: {severity: critical}}
      ticket_alert: {labels: {severity: warning}}
"""

OPENSLO = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: requests-availability}
spec:
  service: checkout
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicator:
    metadata: {name: checkout-good-requests}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: sum(increase(http_requests_total{job="checkout", code!~'5..|429'}[{{.window}}]))
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(increase(http_requests_total{job="checkout"}[{{.window}}]))
  objectives: [{target: 0.999}]
"""

ERRORS = ("429", "500", "503")
"""The codes the hand-written SLO lists as failures (the regex 5..|429 over this traffic)."""

HAND_WRITTEN = {
    "name": "requests-availability", "service": "checkout", "objective": 99.9, "period": "30d",
    "labels": {"team": "payments", "tier": "1"},
    "alerting": {"severities": {"page": "critical", "ticket": "warning"}},
    # The default series: samples labelled service=checkout, good a condition on them.
    "sli": {"kind": "ratio", "source": "metrics",
            "total": {"name": "http_requests_total", "labels.job": "checkout"},
            "good": {"labels.code": {"not_in": list(ERRORS)}}},
}

OUTAGE_NS = T0 + 2 * HOUR
END_NS = T0 + 2 * HOUR + 20 * MIN
SCRAPE_NS = 15 * S


def counter_samples(seed: int = 7) -> tuple[list[MetricSample], dict[str, int]]:
    """Counters scraped every 15 s: checkout (2 instances x 5 codes), search
    (noise of the same metric, another job).  A few errors in the first
    hour, none in the second, then every request fails (500) from
    ``OUTAGE_NS``.  Instance b restarts at 1h10m (its counters reset to the
    requests since).  Returns the samples and the ground truth: requests
    and failed requests of checkout counted after each series' first
    sample (its baseline)."""
    rnd = random.Random(seed)
    codes = ("200", "404", *ERRORS)
    series = [("checkout", inst, code) for inst in ("a", "b") for code in codes]
    series += [("search", inst, code) for inst in ("a",) for code in ("200", "500")]
    value = {s: float(rnd.randrange(1000, 5000)) for s in series}
    truth = {"total": 0, "bad": 0}
    out: list[MetricSample] = []
    restart = T0 + HOUR + 10 * MIN
    ts = T0
    while ts < END_NS:
        first = ts == T0
        for s in series:
            job, inst, code = s
            if not first:
                rate = 30 if code in ("200", "404") else 0
                if job == "checkout" and ts > OUTAGE_NS:
                    rate = 60 if code == "500" else 0  # as many requests as before
                elif job == "checkout" and ts <= T0 + HOUR and code in ERRORS:
                    rate = 1 if rnd.random() < 0.03 else 0
                elif job == "search" and code == "500":
                    rate = 5  # search errors never count for checkout
                inc = rnd.randint(rate // 2, rate) if rate > 1 else rate
                if inst == "b" and ts - SCRAPE_NS < restart <= ts:
                    value[s] = 0.0  # the process restarted: the counter starts again
                value[s] += inc
                if job == "checkout":
                    truth["total"] += inc
                    truth["bad"] += inc if code in ERRORS else 0
            out.append(MetricSample(name="http_requests_total", ts_ns=ts, value=value[s],
                                    labels={"job": job, "instance": inst, "code": code,
                                            "service": job}))
        ts += SCRAPE_NS
    return out, truth


async def evaluate(slos: Any, samples: list[MetricSample], batch_size: int) -> tuple[list[SliRollup], list[Any]]:
    """windows -> burn rate; the rollups and everything the burn stage yielded."""
    win = SliWindows(slos)
    burn = BurnRateDetector(slos)
    rollups: list[SliRollup] = []
    out: list[Any] = []

    async def rollup_batches() -> Any:
        async for batch in win(ListSource(samples, batch_size=batch_size)()):
            rollups.extend(batch)
            yield batch

    async for batch in burn(rollup_batches()):
        out.extend(batch)
    return rollups, out


@pytest.mark.parametrize(("text", "owned"), [(SLOTH, True), (OPENSLO, False)], ids=["sloth", "openslo"])
async def test_imported_spec_counts_and_alerts_as_the_hand_written_slo(
    tmp_path: pathlib.Path, text: str, owned: bool
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    imported = load_slos(path)
    # The OpenSLO spec names no owner and no alert severities.
    native = parse_slos({"slos": [HAND_WRITTEN if owned else {
        k: v for k, v in HAND_WRITTEN.items() if k not in ("labels", "alerting")}]})
    samples, truth = counter_samples()
    for batch_size in (1, 97, 4096):
        got_rollups, got = await evaluate(imported, samples, batch_size)
        want_rollups, want = await evaluate(native, samples, batch_size)
        assert got_rollups == want_rollups
        assert got == want
    # The counts are the requests of checkout: the counter reset and the
    # other job's series neither lose nor add any.
    assert sum(r.total for r in got_rollups) == truth["total"]
    assert sum(r.total - r.good for r in got_rollups) == truth["bad"]
    assert truth["bad"] > 0
    assert any(isinstance(x, Budget) for x in got)


async def test_full_outage_pages_after_the_workbook_time() -> None:
    """99.9% over 30 days, every request failing: the 1h/5m page fires when
    the errors of the last hour pass 14.4 x 0.001 of its requests.  After a
    clean hour at a constant rate, that is after 14.4 x 0.001 x 1h = 51.84 s
    of outage; counters are read every 15 s and buckets close each minute,
    so the page comes at the first minute end where the counted outage time
    passes 51.84 s."""
    slos = import_documents([yaml.safe_load(SLOTH)])
    samples, _ = counter_samples()
    _, out = await evaluate(streaming_slo_set(slos), samples, 512)
    # The 1h/5m pair (with 2h of history the 6h window is mostly outage sooner).
    pages = [a for a in out if isinstance(a, Alert) and a.tier == "page" and a.state == "firing"
             and a.long_window_ns == HOUR]
    assert pages and pages[0].severity == "critical"
    page = next(w for w in WORKBOOK_WINDOWS if w[0] == "page" and w[2] == HOUR)
    burn = page[4] * (30 * 24 * HOUR) / page[2]  # budget share x period / window: 14.4
    assert burn == pytest.approx(14.4)
    outage_needed_ns = burn * 0.001 * HOUR
    assert outage_needed_ns == pytest.approx(51.84 * S)
    # Failures are counted at the scrapes after OUTAGE_NS: a bucket ending at
    # e holds the outage up to the last scrape before e.
    e = OUTAGE_NS + MIN
    while (((e - 1 - OUTAGE_NS) // SCRAPE_NS) * SCRAPE_NS) < outage_needed_ns:
        e += MIN
    assert pages[0].ts_ns == e
    assert pages[0].slo == "requests-availability" and pages[0].service == "checkout"


def test_translated_spec_keeps_objective_period_labels_and_tiers() -> None:
    doc = yaml.safe_load(SLOTH)
    doc["slos"][0]["alerting"]["ticket_alert"] = {"disable": True}
    [spec] = [streaming_slo(s) for s in import_documents([doc])]
    assert (spec.objective, spec.period, spec.labels.team, spec.labels.tier) == (99.9, "30d", "payments", "1")
    assert spec.alerting.tiers == ["page"] and spec.alerting.severities == {"page": "critical"}
    assert spec.sli.total == {"name": "http_requests_total", "labels.job": "checkout"}
    assert spec.sli.bad == {"name": "http_requests_total", "labels.job": "checkout",
                            "labels.code": {"matches": "5..|429"}}
    calendar = yaml.safe_load(OPENSLO)
    calendar["spec"]["timeWindow"] = [{"duration": "1M", "isRolling": False,
                                       "calendar": {"startTime": "2024-01-01 00:00:00",
                                                    "timeZone": "Europe/Paris"}}]
    [cal] = [streaming_slo(s) for s in import_documents([calendar])]
    assert (cal.period, cal.time_zone, cal.objective) == ("month", "Europe/Paris", 99.9)
    assert cal.sli.good == {"name": "http_requests_total", "labels.job": "checkout",
                            "labels.code": {"not_matches": "5..|429"}}


def test_matchers_map_onto_predicates() -> None:
    [p] = selector_predicates('sum without (instance) (rate({__name__="a:b", x="", y!="", z!="1", z!="2", '
                              'w=~"v.*"}[{{.window}}]))')
    assert p == {"name": "a:b", "labels.x": {"in": ["", None]}, "labels.y": {"not_in": ["", None]},
                 "labels.z": {"not_in": ["1", "2"]}, "labels.w": {"matches": "v.*"}}
    num, den = selector_predicates("(sum(rate(e[{{.window}}]))) / sum(rate(t{a='x'}[{{.window}}]))", ratio=True)
    assert (num, den) == ({"name": "e"}, {"name": "t", "labels.a": "x"})


LATENCY = """\
version: prometheus/v1
service: api
slos:
  - name: fast
    objective: 99
    sli:
      events:
        errorQuery: sum(rate(http_requests_total{job="api",code=~"5.."}[{{.window}}]))
        totalQuery: sum(rate(http_requests_total{job="api"}[{{.window}}]))
    alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}
  - name: latency
    objective: 99
    sli:
      raw:
        errorRatioQuery: |
          1 - (sum(rate(http_request_duration_seconds_bucket{job="api",le="0.3"}[{{.window}}]))
          / sum(rate(http_request_duration_seconds_count{job="api"}[{{.window}}])))
    alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}
  - name: p99
    objective: 99
    sli:
      events:
        errorQuery: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[{{.window}}])))
        totalQuery: sum(rate(http_requests_total{job="api"}[{{.window}}] offset 5m))
    alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}
  - name: bad-regex
    objective: 99
    sli:
      events:
        errorQuery: sum(rate(http_requests_total{job="api",code=~"5(.."}[{{.window}}]))
        totalQuery: sum(rate(http_requests_total{job="api"}[{{.window}}]))
    alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}
"""


def test_untranslatable_queries_are_refused_with_their_path(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "sloth.yaml"
    path.write_text(LATENCY)
    with pytest.raises(ConfigError) as info:
        load_slos(path)
    problems = {p.path: p.message for p in info.value.problems}
    assert all(p.file == str(path) for p in info.value.problems)
    assert set(problems) == {"$.slos[1].sli.raw.errorRatioQuery", "$.slos[2].sli.events.errorQuery",
                             "$.slos[2].sli.events.totalQuery", "$.slos[3].sli.events.errorQuery"}
    assert "arithmetic" in problems["$.slos[1].sli.raw.errorRatioQuery"]
    assert "histogram_quantile" in problems["$.slos[2].sli.events.errorQuery"]
    assert "'offset' is not supported" in problems["$.slos[2].sli.events.totalQuery"]
    assert "bad regular expression" in problems["$.slos[3].sli.events.errorQuery"]
    assert "Prometheus would refuse it too" in problems["$.slos[3].sli.events.errorQuery"]
    for path, message in problems.items():
        if path != "$.slos[3].sli.events.errorQuery":
            assert "only sum(rate(selector[{{.window}}]))" in message and "srestream rules" in message
    # The same file still exports rules (the first SLO) once the others go.
    from srestream.slo._rules import build_rule_groups

    assert build_rule_groups(import_documents([yaml.safe_load(LATENCY)]))


@pytest.mark.parametrize(("query", "why"), [
    ('sum(rate(x[5m]))', "the range must be {{.window}}"),
    ('sum(rate(x[{{.window}}:1m]))', "subqueries"),
    ('sum(rate(x[{{.window}}] offset 1h))', "'offset'"),
    ('rate(x[{{.window}}])', "must be inside sum"),
    ('sum(irate(x[{{.window}}]))', "irate() is not supported"),
    ('sum(rate(x[{{.window}}])) * 2', "arithmetic"),
    ('sum(rate(x{a=~"[[:digit:]]"}[{{.window}}]))', "POSIX classes"),
    ('sum(rate(x{a="1",a="2"}[{{.window}}]))', "two = matchers"),
])
def test_refusal_says_why(query: str, why: str) -> None:
    with pytest.raises(StreamingRefusal, match=re.escape(why)):
        selector_predicates(query)


def test_a_query_sli_stays_for_reports_but_does_not_stream(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "openslo.yaml"
    path.write_text(OPENSLO.replace("type: Prometheus", "type: Datadog"))
    assert import_documents([yaml.safe_load(path.read_text())])  # still read
    with pytest.raises(ConfigError) as info:
        load_slos(path)
    [p] = info.value.problems
    assert p.path == "$.spec.indicator" and "Datadog" in p.message and "srestream rules" in p.message


async def test_pipeline_reads_an_openslo_file_where_an_slo_file_goes(tmp_path: pathlib.Path) -> None:
    """A histogram latency SLI through the stages built from a pipeline:
    good from the ``le="0.3"`` bucket series, total from ``_count`` -
    series of their own, with no service label."""
    good_total = OPENSLO.replace("requests-availability", "latency").replace(
        'http_requests_total{job="checkout", code!~\'5..|429\'}', 'http_request_duration_seconds_bucket{le="0.3"}'
    ).replace('http_requests_total{job="checkout"}', "http_request_duration_seconds_count").replace(
        "service: checkout", "service: api")
    (tmp_path / "openslo.yaml").write_text(good_total)
    samples = []
    for i in range(181):
        ts = T0 + i * 20 * S
        n = 10 * i
        slow = 0 if i < 120 else 4 * (i - 120)  # from 40 min on, 4 of every 10 are slow
        samples.append(MetricSample(name="http_request_duration_seconds_count", ts_ns=ts, value=n))
        samples.append(MetricSample(name="http_request_duration_seconds_bucket", ts_ns=ts, value=n - slow,
                                    labels={"le": "0.3"}))
        samples.append(MetricSample(name="http_request_duration_seconds_bucket", ts_ns=ts, value=n,
                                    labels={"le": "+Inf"}))
    pipeline = pipeline_from_dict({
        "name": "imported",
        "sources": {"src": {"type": "list"}},
        "stages": {
            "windows": {"type": "sli_windows", "inputs": ["src"], "slos": str(tmp_path / "openslo.yaml")},
            "burn_rate": {"type": "burn_rate", "inputs": ["windows"], "slos": str(tmp_path / "openslo.yaml")},
        },
        "sinks": {"out": {"type": "capture", "inputs": ["burn_rate"]},
                  "ledger": {"type": "capture", "inputs": ["windows.rollups"]}},
    })
    out, ledger = CaptureSink(), CaptureSink()
    await Runner(pipeline, bindings={"src": ListSource(samples, batch_size=50), "out": out,
                                     "ledger": ledger}).run()
    rollups = [r for r in ledger.records if isinstance(r, SliRollup)]
    assert sum(r.total for r in rollups) == 1800
    assert sum(r.total - r.good for r in rollups) == 4 * 60  # the slow ones
    assert next(r.bucket_ts_ns for r in rollups if r.good < r.total) == T0 + 40 * MIN
    firing = [a for a in out.records if isinstance(a, Alert) and a.state == "firing"]
    assert firing and firing[0].ts_ns > T0 + 40 * MIN


def test_regex_operators_are_anchored_and_validated() -> None:
    from srestream.slo._predicates import compile_predicate

    p = compile_predicate({"labels.code": {"matches": "5..|429"}, "labels.path": {"not_matches": "/health.*"}})

    def sample(**labels: str) -> MetricSample:
        return MetricSample(name="x", ts_ns=0, value=1.0, labels=labels)

    assert p(sample(code="503", path="/pay"))
    assert p(sample(code="429"))  # no path label: matches as "", which /health.* does not
    assert not p(sample(code="1503", path="/pay"))  # anchored at the start
    assert not p(sample(code="5030", path="/pay"))  # and at the end
    assert not p(sample(code="500", path="/healthz"))
    assert compile_predicate({"labels.x": {"matches": ".*"}})(sample())  # absent label = ""
    with pytest.raises(ConfigError) as info:
        parse_slos({"slos": [{**HAND_WRITTEN, "sli": {
            "kind": "ratio", "source": "metrics", "total": {"name": "t"},
            "good": {"labels.code": {"matches": "(5..", "not_matches": 5}}}}]})
    assert {(p.path, p.message.split(":")[0]) for p in info.value.problems} == {
        ("$.slos[0].sli.good.labels.code.matches", "bad regular expression '(5..'"),
        ("$.slos[0].sli.good.labels.code.not_matches", "not_matches needs a regular expression string, got 5"),
    }


def test_bad_and_selected_series_are_validated() -> None:
    with pytest.raises(ConfigError) as info:
        parse_slos({"slos": [
            {**HAND_WRITTEN, "name": "a", "sli": {"kind": "ratio", "total": {}, "bad": {"status": 500}}},
            {**HAND_WRITTEN, "name": "b", "sli": {"kind": "ratio", "source": "metrics", "total": {"name": "t"},
                                                  "good": {"name": "g"}, "bad": {"name": "e"},
                                                  "series": "everything"}},
            {**HAND_WRITTEN, "name": "c", "sli": {"kind": "latency", "total": {}, "threshold": "1s",
                                                  "series": "selected"}},
        ]})
    assert {(p.path, p.message) for p in info.value.problems} == {
        ("$.slos[0].sli.bad", ("bad applies to coverage and durability SLIs, and to availability, "
                               "ratio and correctness SLIs with source: metrics")),
        ("$.slos[1].sli.bad", "give good or bad, not both"),
        ("$.slos[1].sli.series", "unknown series 'everything' (use service or selected)"),
        ("$.slos[2].sli.series",
         ("selected series apply to availability, ratio, correctness, coverage and durability SLIs "
          "with source: metrics")),
    }


async def test_bad_of_the_total_samples_with_service_series() -> None:
    """``bad`` with the default series: a condition on the total samples,
    good = total - bad, the same counts as the good it negates."""
    bad = parse_slos({"slos": [{**HAND_WRITTEN, "sli": {**HAND_WRITTEN["sli"], "good": None,
                                                        "bad": {"labels.code": {"in": list(ERRORS)}}}}]})
    samples, truth = counter_samples()
    got_rollups, got = await evaluate(bad, samples, 256)
    want_rollups, want = await evaluate(parse_slos({"slos": [HAND_WRITTEN]}), samples, 256)
    assert (got_rollups, got) == (want_rollups, want)
    assert sum(r.total - r.good for r in got_rollups) == truth["bad"]


async def test_checkpoint_mid_stream_keeps_the_selected_series(tmp_path: pathlib.Path) -> None:
    """Stop after part of the samples, restore the windows stage from its
    snapshot into a new one, go on: the same rollups as one pass (the last
    value of each selected series is in the checkpoint, so no increase is
    lost or counted twice)."""
    path = tmp_path / "sloth.yaml"
    path.write_text(SLOTH)
    slos = load_slos(path)
    samples, _ = counter_samples()
    whole = SliWindows(slos)
    want = whole.process(samples) + whole.flush()
    first = SliWindows(slos)
    cut = 12 * 300 + 5  # 12 series: 75 minutes in, inside a scrape, after the counter reset
    got = first.process(samples[:cut])
    state = msgspec.json.decode(msgspec.json.encode(first.snapshot()))
    assert state["selected_counters"]["checkout"]
    second = SliWindows(slos)
    second.restore(state)
    got += second.process(samples[cut:]) + second.flush()
    assert got == want


def test_problems_of_translated_slos_point_into_the_imported_file(tmp_path: pathlib.Path) -> None:
    """srestream's own checks (here: two objectives for one SLI and period,
    which Sloth allows) name the SLOs by their place in the Sloth file."""
    doc = yaml.safe_load(SLOTH)
    twin = {**doc["slos"][0], "name": "requests-availability-95", "objective": 95}
    path = tmp_path / "sloth.yaml"
    path.write_text(yaml.safe_dump({**doc, "slos": [doc["slos"][0], twin]}))
    with pytest.raises(ConfigError) as info:
        load_slos(path)
    [p] = info.value.problems
    assert (p.path, p.file) == ("$.slos[1]", str(path))
    assert "two objectives for one SLI and period: 95.0 here, 99.9 at $.slos[0]" in p.message
    # A Kubernetes-style document is read by the importer, which says what it reads.
    path.write_text("apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\nspec: {}\n")
    with pytest.raises(ConfigError) as info:
        load_slos(path)
    assert [p.message for p in info.value.problems] == [
        "neither a Sloth spec (version: prometheus/v1) nor an OpenSLO object (apiVersion: openslo/v1)"]


def test_raw_ratios_and_the_v1alpha_shape_translate_like_their_events() -> None:
    doc = yaml.safe_load(SLOTH)
    events = doc["slos"][0]["sli"]["events"]
    raw = {**doc, "slos": [{**doc["slos"][0], "sli": {"raw": {
        "errorRatioQuery": f"({events['errorQuery']})\n/\n({events['totalQuery']})"}}}]}
    [from_events] = [streaming_slo(s) for s in import_documents([doc])]
    [from_raw] = [streaming_slo(s) for s in import_documents([raw])]
    assert from_raw.sli == from_events.sli
    # OpenSLO raw success ratio: the numerator is good.
    success = yaml.safe_load(OPENSLO)
    ratio = success["spec"]["indicator"]["spec"]["ratioMetric"]
    query = (f"{ratio['good']['metricSource']['spec']['query']} / "
             f"{ratio['total']['metricSource']['spec']['query']}")
    success["spec"]["indicator"]["spec"]["ratioMetric"] = {
        "counter": True, "rawType": "success",
        "raw": {"metricSource": {"type": "Prometheus", "spec": {"query": query}}}}
    [good_total] = [streaming_slo(s) for s in import_documents([yaml.safe_load(OPENSLO)])]
    [raw_success] = [streaming_slo(s) for s in import_documents([success])]
    assert raw_success.sli == good_total.sli
    # The openslo/v1alpha shape Sloth reads (good/total per objective).
    data = pathlib.Path(__file__).parent.parent / "data" / "slo" / "sloth" / "in-openslo.yaml"
    [v1alpha] = load_slos(data).slos
    assert v1alpha.sli.good == {"name": "http_request_duration_seconds_count", "labels.job": "myservice",
                                "labels.code": {"not_matches": "(5..|429)"}}
    assert v1alpha.sli.total == {"name": "http_request_duration_seconds_count", "labels.job": "myservice"}


def test_periods_and_budgeting_that_stream_and_those_that_do_not() -> None:
    def openslo(window: dict[str, Any], **objective: Any) -> dict[str, Any]:
        doc = yaml.safe_load(OPENSLO)
        doc["spec"]["timeWindow"] = [window]
        if objective:
            doc["spec"]["budgetingMethod"] = "Timeslices"
            doc["spec"]["objectives"] = [{"target": 0.999, **objective}]
        return doc

    rolling = {"duration": "2w", "isRolling": True}
    [two_weeks] = [streaming_slo(s) for s in import_documents([openslo(rolling)])]
    assert (two_weeks.period, two_weeks.sli.budgeting) == ("14d", "occurrences")
    [sliced] = [streaming_slo(s) for s in import_documents([openslo(
        rolling, timeSliceTarget=0.95, timeSliceWindow="1m")])]
    assert (sliced.sli.budgeting, sliced.sli.timeslice_target) == ("timeslices", 95.0)
    year = {"duration": "1Y", "isRolling": False, "calendar": {"timeZone": "UTC"}}
    with pytest.raises(ConfigError) as info:
        streaming_slo_set(import_documents([openslo(year, timeSliceTarget=0.95, timeSliceWindow="5m")]))
    assert sorted(p.message.split(": ", 1)[1] for p in info.value.problems) == [
        "a calendar period of 1 year is not supported (one month or one quarter)",
        "timeslices budgeting streams only as Timeslices of one minute (timeSliceWindow: 1m)",
    ]
    assert {p.path for p in info.value.problems} == {"$"}


def test_selected_series_are_offered_by_metric_name() -> None:
    from srestream.slo._series_counter import selected_metric_names
    from srestream.slo._windows import SliCounter

    def counters(*slis: dict[str, Any]) -> list[SliCounter]:
        return [SliCounter(s) for s in parse_slos({"slos": [
            {**HAND_WRITTEN, "name": f"s{i}", "sli": {"kind": "ratio", "source": "metrics",
                                                      "series": "selected", **sli}}
            for i, sli in enumerate(slis)]}).slos]

    assert selected_metric_names(counters(
        {"total": {"name": "a"}, "good": {"name": ["b", "c"]}},
        {"total": {"name": {"eq": "d"}}, "bad": {"name": {"in": ["e"]}}},
    )) == {"a", "b", "c", "d", "e"}
    assert selected_metric_names(counters({"total": {"name": "a"}, "good": {"name": {"matches": "b.*"}}})) is None
    assert selected_metric_names(counters({"total": {"labels.job": "api"}, "good": {"name": "a"}})) is None


async def test_a_selected_sli_naming_no_metric_reads_every_sample() -> None:
    """Without a ``name`` condition the SLI is offered every sample (a
    regex on the name here), and still counts only what it selects."""
    slos = parse_slos({"slos": [{**HAND_WRITTEN, "sli": {
        "kind": "ratio", "source": "metrics", "series": "selected",
        "total": {"name": {"matches": "http_requests_(total|count)"}, "labels.job": "checkout"},
        "bad": {"name": {"matches": "http_requests_.*"}, "labels.job": "checkout",
                "labels.code": {"matches": "5..|429"}}}}]})
    samples, truth = counter_samples()
    rollups, _ = await evaluate(slos, samples, 512)
    assert sum(r.total for r in rollups) == truth["total"]
    assert sum(r.total - r.good for r in rollups) == truth["bad"]

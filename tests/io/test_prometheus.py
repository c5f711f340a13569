"""The Prometheus source against a real Prometheus (Debian package), started
on a free loopback port over a temporary TSDB backfilled with promtool."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, aclosing

import pytest

from srestream._component import BuildContext, Outputs
from srestream._duration import Duration
from srestream._errors import ConfigError
from srestream._records import MetricSample
from srestream.io import PrometheusQuery, PrometheusQueryError, PrometheusSource

pytestmark = pytest.mark.integration

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
NS = 1_000_000_000


def openmetrics() -> str:
    """30 minutes of a checkout service: 60 good and 6 bad requests a
    minute, every request under 100 ms."""
    out = ["# HELP http_requests Requests served.", "# TYPE http_requests counter"]
    for code, per_min in (("200", 60), ("500", 6)):
        out += [f'http_requests_total{{service="checkout",code="{code}"}} {i * per_min} {T0 + 60 * i}'
                for i in range(31)]
    out += ["# HELP http_request_duration_seconds Latency.",
            "# TYPE http_request_duration_seconds histogram"]
    for le in ("0.1", "0.5", "+Inf"):
        out += [f'http_request_duration_seconds_bucket{{service="checkout",le="{le}"}} {i * 66} {T0 + 60 * i}'
                for i in range(31)]
    out += [f'http_request_duration_seconds_sum{{service="checkout"}} {i * 3} {T0 + 60 * i}'
            for i in range(31)]
    out += [f'http_request_duration_seconds_count{{service="checkout"}} {i * 66} {T0 + 60 * i}'
            for i in range(31)]
    return "\n".join(out + ["# EOF"]) + "\n"


@pytest.fixture(scope="module")
def prometheus(start_prometheus: Callable[[str], AbstractContextManager[str]]) -> Iterator[str]:
    with start_prometheus(openmetrics()) as url:
        yield url


QUERIES = [
    PrometheusQuery(query='http_requests_total{code="500"}'),
    PrometheusQuery(query="sum by (service) (rate(http_requests_total[5m]))", name="checkout_rps"),
    PrometheusQuery(
        query="histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
        name="latency_p90_seconds",
    ),
]


def build(url: str, *, batch_size: int = 1024, queries: list[PrometheusQuery] = QUERIES,
          **kw: object) -> object:
    ctx = BuildContext(component_id="prom", outputs=Outputs("prom"), batch_size=batch_size)
    cfg = PrometheusSource(url=url, queries=queries, step=Duration.parse("1m"),
                           start="2026-01-01T00:05:00Z", end="2026-01-01T00:25:00Z",
                           **kw)  # type: ignore[arg-type]
    return cfg.build(ctx)


async def read(logic: object, stop_after: int | None = None) -> list[MetricSample]:
    out: list[MetricSample] = []
    n = 0
    async with aclosing(logic()) as gen:  # type: ignore[operator]
        async for batch in gen:
            out.extend(batch)
            n += 1
            if stop_after is not None and n >= stop_after:
                break
    return out


async def test_query_range_gives_metric_samples(prometheus: str) -> None:
    got = await read(build(prometheus, max_points_per_query=7))  # 21 steps in 3 windows
    steps = [(T0 + 300 + 60 * i) * NS for i in range(21)]
    errors = [s for s in got if s.name == "http_requests_total"]
    assert [s.ts_ns for s in errors] == steps
    assert [s.value for s in errors] == [6.0 * (5 + i) for i in range(21)]  # the backfilled values
    assert errors[0].labels == {"code": "500", "service": "checkout"}
    rps = [s for s in got if s.name == "checkout_rps"]
    assert [s.ts_ns for s in rps] == steps
    assert all(s.value == pytest.approx(1.1) and s.labels == {"service": "checkout"} for s in rps)
    p90 = [s for s in got if s.name == "latency_p90_seconds"]
    assert len(p90) == 21 and all(s.value == pytest.approx(0.09) and s.labels == {} for s in p90)
    assert len(got) == 63
    assert [s.ts_ns for s in got] == sorted(s.ts_ns for s in got)  # time order across queries


async def test_resume_mid_window_neither_loses_nor_repeats(prometheus: str) -> None:
    full = await read(build(prometheus, batch_size=5, max_points_per_query=4))
    first = build(prometheus, batch_size=5, max_points_per_query=4)
    head = await read(first, stop_after=4)  # windows of 12 samples: 5, 5, 2, 5 ...
    state = first.snapshot()  # type: ignore[attr-defined]
    assert state["skip"] > 0  # stopped inside a window
    second = build(prometheus, batch_size=5, max_points_per_query=4)
    second.restore(state)  # type: ignore[attr-defined]
    tail = await read(second)
    assert head + tail == full and len(full) == 63


async def test_bad_promql_names_the_query(prometheus: str) -> None:
    logic = build(prometheus, queries=[PrometheusQuery(query="rate(foo[")])
    with pytest.raises(PrometheusQueryError, match=r"query 0 'rate\(foo\[': .*parse error"):
        await read(logic)


async def test_unreachable_prometheus_fails_after_retries(loopback_port: int) -> None:
    logic = build(f"http://127.0.0.1:{loopback_port}", retries=1, timeout=Duration.parse("1s"))
    with pytest.raises(PrometheusQueryError, match="failed 2 times"):
        await read(logic)


def test_config_problems_are_all_reported() -> None:
    ctx = BuildContext(component_id="prom", outputs=Outputs("prom"))
    with pytest.raises(ConfigError) as err:
        PrometheusSource(url="localhost:9090", queries=[PrometheusQuery(query=" ")],
                         end="2026-01-01T00:00:00Z", start="soon").build(ctx)
    assert [p.path for p in err.value.problems] == [
        "$.sources.prom.url", "$.sources.prom.queries[0].query", "$.sources.prom.start",
        "$.sources.prom.start",
    ]


async def test_following_the_present_queries_each_new_step(prometheus: str) -> None:
    import anyio

    from srestream.testing import ManualClock

    clock = ManualClock(start_ns=(T0 + 1560) * NS)  # 00:26, data until 00:30
    ctx = BuildContext(component_id="prom", outputs=Outputs("prom"), clock=clock)
    logic = PrometheusSource(url=prometheus, queries=QUERIES, lookback=Duration.parse("20m"),
                             query_delay=Duration.parse("1m"),
                             poll_interval=Duration.parse("1m")).build(ctx)
    got: list[MetricSample] = []
    empties = 0

    async def consume() -> None:
        nonlocal empties
        async with aclosing(logic()) as gen:
            async for batch in gen:
                got.extend(batch)
                empties += not batch

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        with anyio.fail_after(20):
            while not (len(got) == 63 and clock.sleepers):  # 00:05 .. 00:25, then idle
                await anyio.sleep(0.01)
            assert logic.snapshot() == {"next_ns": (T0 + 1560) * NS, "skip": 0}
            assert empties >= 1
            clock.advance(30)  # not due yet: still idle
            await anyio.sleep(0.05)
            assert len(got) == 63
            clock.advance(30)
            while len(got) < 66:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert {s.ts_ns for s in got[63:]} == {(T0 + 1560) * NS}
    assert got[0].ts_ns == (T0 + 300) * NS

"""Prometheus as a source: ``query_range`` over HTTP for a set of PromQL
queries, each sample a :class:`MetricSample`.

For SLIs that already live in Prometheus (good/total counters, latency
histograms).  The time range is walked in windows of at most
``max_points_per_query`` steps (Prometheus refuses more than 11,000 points
per series); each window queries every PromQL expression and yields its
samples ordered by time, then by query, then by series as Prometheus
returns them (sorted by labels), cut into batches.

* With ``end`` set the source reads ``[start, end]`` and ends (backfills,
  backtests, replays); with no ``end`` it follows the present, staying
  ``query_delay`` behind the clock so late scrapes are in, and polling every
  ``poll_interval``.
* The checkpoint is the start of the current window and how many of its
  samples were yielded; a resumed source queries that window again and skips
  them (historical data answers the same), so nothing is lost or repeated.
* A query Prometheus refuses (bad PromQL: 400/422) stops the source with a
  :class:`PrometheusQueryError` naming the query.  Unreachable or failing
  servers (5xx, timeouts) are retried with exponential backoff — forever
  when following the present (empty batches keep checkpoints going), up to
  ``retries`` times for a fixed range.

The HTTP client is httpx: anyio-native (so it runs under the runner's event
loop without threads), with timeouts and connection pooling, built on the
same h11 the push receiver uses.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import anyio
import httpx
import msgspec

from .._component import BuildContext, Clock, SourceConfig, SystemClock
from .._duration import Duration
from .._errors import ConfigError, Problem, SrestreamError
from .._records import MetricSample
from .._registry import register
from ..parse._time import parse_timestamp

__all__ = ["PrometheusQuery", "PrometheusQueryError", "PrometheusQueryRange", "PrometheusSource"]

_NS = 1_000_000_000


class PrometheusQueryError(SrestreamError):
    """Prometheus refused a query or could not be reached in time."""


class PrometheusQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One PromQL expression to read."""

    query: str
    """The PromQL expression, e.g. ``sum by (service) (rate(http_requests_total[5m]))``."""
    name: str = ""
    """Metric name of its samples; default: the series' ``__name__``, else the expression."""


class _Series(msgspec.Struct):
    metric: dict[str, str]
    values: list[tuple[float, str]] = []


class _Data(msgspec.Struct):
    resultType: str  # the API's spelling
    result: list[_Series]


class _Reply(msgspec.Struct):
    status: str
    data: _Data | None = None
    errorType: str = ""
    error: str = ""


_REPLY = msgspec.json.Decoder(_Reply)


def _seconds(ns: int) -> str:
    """ns -> the API's decimal seconds, exact to the millisecond."""
    return f"{ns // _NS}.{(ns % _NS) // 1_000_000:03d}"


class PrometheusQueryRange:
    """Running logic of the Prometheus source."""

    def __init__(
        self,
        url: str,
        queries: list[PrometheusQuery],
        *,
        start_ns: int | None,
        end_ns: int | None,
        step_ns: int,
        lookback_ns: int = 3600 * _NS,
        query_delay_ns: int = 60 * _NS,
        poll_interval_s: float = 60.0,
        timeout_s: float = 30.0,
        retries: int = 5,
        max_points_per_query: int = 11000,
        batch_size: int = 1024,
        bearer_token: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/api/v1/query_range"
        self.queries = queries
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.step_ns = step_ns
        self.lookback_ns = lookback_ns
        self.query_delay_ns = query_delay_ns
        self.poll_interval_s = poll_interval_s
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_points = max(1, max_points_per_query)
        self.batch_size = max(1, batch_size)
        self.clock = clock or SystemClock()
        self._headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self._next: int | None = None
        """Start of the window being read."""
        self._skip = 0
        """Samples of that window already yielded."""
        self._last_query_ns: int | None = None

    def snapshot(self) -> dict[str, int] | None:
        return None if self._next is None else {"next_ns": self._next, "skip": self._skip}

    def restore(self, state: dict[str, int] | None) -> None:
        if state:
            self._next, self._skip = int(state["next_ns"]), int(state["skip"])

    def _live_wait_s(self, start: int, limit: int) -> float:
        """Following the present: seconds until the next query is due."""
        if self.end_ns is not None:
            return 0.0
        if start > limit:
            return (start - limit) / _NS
        if self._last_query_ns is None:
            return 0.0
        return self.poll_interval_s - (self.clock.now_ns() - self._last_query_ns) / _NS

    def _first_start(self) -> int:
        if self.start_ns is not None:
            return self.start_ns
        t = self.clock.now_ns() - self.query_delay_ns - self.lookback_ns
        return t - t % self.step_ns

    def _samples(self, qi: int, reply: _Reply) -> list[tuple[int, int, int, MetricSample]]:
        q = self.queries[qi]
        out = []
        assert reply.data is not None
        for si, series in enumerate(reply.data.result):
            labels = dict(series.metric)
            name = q.name or labels.pop("__name__", "") or q.query
            if q.name:
                labels.pop("__name__", None)
            for ts, v in series.values:
                ns = round(ts * 1000) * 1_000_000
                out.append((ns, qi, si, MetricSample(name=name, ts_ns=ns, value=float(v),
                                                     labels=labels)))
        return out

    async def _query(self, client: httpx.AsyncClient, qi: int, start: int, end: int) -> _Reply:
        form = {"query": self.queries[qi].query, "start": _seconds(start), "end": _seconds(end),
                "step": _seconds(self.step_ns)}
        resp = await client.post(self.url, data=form, headers=self._headers)
        if resp.status_code in (400, 422):
            try:
                err = _REPLY.decode(resp.content).error
            except msgspec.DecodeError:
                err = resp.text[:500]
            raise PrometheusQueryError(
                f"Prometheus refused query {qi} {self.queries[qi].query!r}: {err}")
        resp.raise_for_status()
        reply = _REPLY.decode(resp.content)
        if reply.status != "success" or reply.data is None:
            raise PrometheusQueryError(f"query {qi} {self.queries[qi].query!r}: {reply.error}")
        if reply.data.resultType != "matrix":
            raise PrometheusQueryError(
                f"query {qi} {self.queries[qi].query!r} gave a {reply.data.resultType}, not a matrix")
        return reply

    async def __call__(self) -> AsyncIterator[list[MetricSample]]:
        if self._next is None:
            self._next = self._first_start()
        client = httpx.AsyncClient(timeout=self.timeout_s, trust_env=False)
        try:
            while True:
                start = self._next
                limit = self.end_ns if self.end_ns is not None else (
                    self.clock.now_ns() - self.query_delay_ns)
                if start > limit and self.end_ns is not None:
                    return
                wait = self._live_wait_s(start, limit)
                if wait > 0:
                    yield []  # idle: let checkpoints pass
                    await self.clock.sleep(min(wait, 1.0))
                    continue
                self._last_query_ns = self.clock.now_ns()
                end = min(start + (self.max_points - 1) * self.step_ns, limit)
                end -= (end - start) % self.step_ns
                window: list[tuple[int, int, int, MetricSample]] = []
                failures = 0
                qi = 0
                while qi < len(self.queries):
                    try:
                        reply = await self._query(client, qi, start, end)
                    except (httpx.TransportError, httpx.HTTPStatusError, msgspec.DecodeError) as exc:
                        failures += 1
                        if self.end_ns is not None and failures > self.retries:
                            raise PrometheusQueryError(
                                f"Prometheus at {self.url} failed {failures} times: {exc}") from exc
                        yield []  # let checkpoints pass while we wait
                        await self.clock.sleep(min(30.0, 0.5 * 2 ** min(failures, 6)))
                        continue
                    window.extend(self._samples(qi, reply))
                    qi += 1
                window.sort(key=lambda x: (x[0], x[1], x[2]))
                samples = [x[3] for x in window]
                size = self.batch_size
                k = self._skip
                while k < len(samples):
                    batch = samples[k : k + size]
                    k += len(batch)
                    if k >= len(samples):
                        self._next, self._skip = end + self.step_ns, 0
                    else:
                        self._skip = k
                    yield batch
                if k >= len(samples):  # an empty window, or skipped entirely on resume
                    self._next, self._skip = end + self.step_ns, 0
        finally:
            with anyio.CancelScope(shield=True):
                await client.aclose()


def _time_option(value: str | None, path: str, problems: list[Problem]) -> int | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError):
        problems.append(Problem(path, f"not an RFC 3339 time or epoch: {value!r}"))
        return None


@register("Read PromQL queries from Prometheus (query_range over HTTP) as metric samples.")
class PrometheusSource(SourceConfig, frozen=True, kw_only=True, tag="prometheus"):
    """Runs ``query_range`` for every query over windows of at most
    ``max_points_per_query`` steps and yields the samples in time order.
    With ``end`` it reads a fixed range and stops; without, it follows the
    present ``query_delay`` behind the clock.  The checkpoint is the window
    being read and how many of its samples went out.  A query Prometheus
    refuses stops the source with the query named; an unreachable server
    is retried with backoff."""

    url: str
    """Base URL of the Prometheus server, e.g. ``http://127.0.0.1:9090``."""
    queries: list[PrometheusQuery]
    """The PromQL expressions to read, each with an optional metric name."""
    step: Duration = Duration.parse("1m")
    """Resolution: one sample per series per step."""
    start: str | None = None
    """First time to read (RFC 3339 or epoch); default: ``lookback`` ago."""
    end: str | None = None
    """Last time to read; without it the source follows the present."""
    lookback: Duration = Duration.parse("1h")
    """Following the present without ``start``: how far back to begin."""
    query_delay: Duration = Duration.parse("1m")
    """Following the present: stay this far behind the clock (late scrapes)."""
    poll_interval: Duration = Duration.parse("1m")
    """Following the present: how often to ask for the newest steps."""
    timeout: Duration = Duration.parse("30s")
    """Per HTTP request."""
    retries: int = 5
    """For a fixed range: attempts after a failure before giving up."""
    max_points_per_query: int = 11000
    """Steps per query_range request (Prometheus' own limit is 11,000)."""
    bearer_token_file: str | None = None
    """File holding a bearer token for Prometheus (relative to the pipeline file)."""

    def build(self, ctx: BuildContext) -> PrometheusQueryRange:
        where = f"$.sources.{ctx.component_id}"
        problems: list[Problem] = []
        if not self.url.startswith(("http://", "https://")):
            problems.append(Problem(f"{where}.url", f"needs http:// or https:// (got {self.url!r})"))
        if not self.queries:
            problems.append(Problem(f"{where}.queries", "at least one query is needed"))
        for i, q in enumerate(self.queries):
            if not q.query.strip():
                problems.append(Problem(f"{where}.queries[{i}].query", "empty PromQL expression"))
        if self.step.ns <= 0:
            problems.append(Problem(f"{where}.step", "must be positive"))
        start = _time_option(self.start, f"{where}.start", problems)
        end = _time_option(self.end, f"{where}.end", problems)
        if end is not None and start is None:
            problems.append(Problem(f"{where}.start", "needed when end is set"))
        if start is not None and end is not None and end < start:
            problems.append(Problem(f"{where}.end", "is before start"))
        if not 1 <= self.max_points_per_query <= 11000:
            problems.append(Problem(f"{where}.max_points_per_query", "must be within 1..11000"))
        token = None
        if self.bearer_token_file:
            try:
                with open(ctx.resolve(self.bearer_token_file), encoding="utf-8") as f:
                    token = f.read().strip()
            except OSError as exc:
                problems.append(Problem(f"{where}.bearer_token_file", f"cannot read: {exc.strerror}"))
        if problems:
            raise ConfigError(problems)
        return PrometheusQueryRange(
            self.url,
            list(self.queries),
            start_ns=start,
            end_ns=end,
            step_ns=self.step.ns,
            lookback_ns=self.lookback.ns,
            query_delay_ns=self.query_delay.ns,
            poll_interval_s=self.poll_interval.seconds,
            timeout_s=self.timeout.seconds if math.isfinite(self.timeout.seconds) else 30.0,
            retries=self.retries,
            max_points_per_query=self.max_points_per_query,
            batch_size=ctx.batch_size,
            bearer_token=token,
            clock=ctx.clock,
        )


"""A small deterministic generator of traffic for the correlation tests.

Topology (a datastore under three layers of callers)::

    web ──► api ──► orders ──► db
             │         └─────► cache
             └────► auth

Every request is one trace: a span per service call, an INFO log per span,
an ERROR log per erroring span.  From ``fail_at_ns`` on, ``db`` calls fail
with probability ``fail_ratio`` and the error propagates up to ``web``.
Some logs carry only a request id, some no id at all, so that all three
link methods are exercised.  Same seed, same records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from srestream import Level, LogRecord, Span

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
T0 = 1_700_000_000 * SECOND - (1_700_000_000 * SECOND) % (60 * MINUTE)


@dataclass
class Cascade:
    seed: int = 7
    requests: int = 600
    interval_ns: int = SECOND
    start_ns: int = T0
    fail_at_ns: int | None = None
    fail_until_ns: int | None = None
    fail_ratio: float = 0.6
    failing_service: str = "db"
    background_error_ratio: float = 0.0
    drop_span_ratio: float = 0.0
    log_without_trace_ratio: float = 0.0
    log_without_ids_ratio: float = 0.0
    records: list[object] = field(default_factory=list)

    def generate(self) -> list[object]:
        rng = random.Random(self.seed)
        out: list[object] = []
        for i in range(self.requests):
            t = self.start_ns + i * self.interval_ns
            out.extend(self._request(rng, i, t))
        # Spans arrive when they end, logs when written: order by event time.
        out.sort(key=_event_ts)
        self.records = out
        return out

    def _request(self, rng: random.Random, i: int, t: int) -> list[object]:
        trace_id = f"{self.seed:08x}{i:024x}"
        request_id = f"req-{self.seed}-{i}"
        failing = self.fail_at_ns is not None and t >= self.fail_at_ns
        if self.fail_until_ns is not None and t >= self.fail_until_ns:
            failing = False
        # (service, name, parent index, start offset ms, duration ms)
        calls = [
            ("web", "GET /checkout", -1, 0, 60),
            ("api", "checkout", 0, 2, 55),
            ("auth", "verify", 1, 4, 8),
            ("orders", "create", 1, 14, 40),
            ("cache", "get", 3, 16, 3),
            ("db", "INSERT orders", 3, 22, 25),
        ]
        err = [False] * len(calls)
        fail_idx = next(k for k, c in enumerate(calls) if c[0] == self.failing_service)
        if failing and rng.random() < self.fail_ratio:
            err[fail_idx] = True
        elif self.background_error_ratio and rng.random() < self.background_error_ratio:
            err[2] = True  # a flaky auth call now and then
        # Errors propagate to every caller up to the entry span.
        for k in range(len(calls) - 1, -1, -1):
            if err[k]:
                p = calls[k][2]
                while p >= 0:
                    err[p] = True
                    p = calls[p][2]
        spans: list[object] = []
        logs: list[object] = []
        for k, (service, name, parent, off_ms, dur_ms) in enumerate(calls):
            start = t + off_ms * 1_000_000
            end = start + dur_ms * 1_000_000
            span_id = f"{i:08x}{k:08x}"
            parent_id = f"{i:08x}{parent:08x}" if parent >= 0 else ""
            if not (k == 0 or rng.random() >= self.drop_span_ratio):
                pass  # this span was lost by the exporter; its children stay
            else:
                spans.append(
                    Span(
                        trace_id=trace_id, span_id=span_id, parent_span_id=parent_id,
                        service=service, name=name, start_ts_ns=start, end_ts_ns=end,
                        error=err[k], attrs={"request_id": request_id} if k == 0 else {},
                    )
                )  # fmt: skip
            level = Level.ERROR if err[k] else Level.INFO
            msg = f"{name} failed: connection reset" if err[k] else f"{name} ok"
            r = rng.random()
            no_ids = r < self.log_without_ids_ratio
            no_trace = no_ids or r < self.log_without_ids_ratio + self.log_without_trace_ratio
            logs.append(
                LogRecord(
                    ts_ns=start + 1_000_000, service=service, level=level, message=msg,
                    template_id=f"{service}:{'err' if err[k] else 'ok'}",
                    source="cascade.jsonl", position=i * 10 + k,
                    trace_id="" if no_trace else trace_id, span_id="" if no_trace else span_id,
                    request_id="" if no_ids else request_id,
                )
            )  # fmt: skip
        return spans + logs


def _event_ts(r: object) -> tuple[int, str]:
    if isinstance(r, Span):
        return (r.end_ts_ns, r.span_id)
    assert isinstance(r, LogRecord)
    return (r.ts_ns, str(r.position))

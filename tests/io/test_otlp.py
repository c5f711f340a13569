"""The OTLP JSON file source on a fixture in the Collector file exporter's format."""

from __future__ import annotations

import pathlib
import shutil
from contextlib import aclosing
from typing import Any

import anyio

from srestream._component import BuildContext, Outputs
from srestream._duration import Duration
from srestream._records import DeadLetter, Level, LogRecord, MetricSample, Span
from srestream.io import OtlpFileSource

TRACE = "5b8efff798038103d269b633813fc60c"


async def read_all(data_dir: pathlib.Path, tmp: pathlib.Path, *, follow: bool = False,
                   batch_size: int = 1024, expect: int = 0) -> tuple[list[Any], list[DeadLetter]]:
    shutil.copy(data_dir / "io" / "otlp" / "collector-export.jsonl", tmp / "otel.jsonl")
    outputs = Outputs("otel")
    ctx = BuildContext(component_id="otel", outputs=outputs, base_dir=str(tmp),
                       batch_size=batch_size)
    logic = OtlpFileSource(paths=["*.jsonl"], follow=follow, poll_interval=Duration.parse("10ms")).build(ctx)
    out: list[Any] = []
    with anyio.fail_after(20):
        async with aclosing(logic()) as gen:
            async for batch in gen:
                out.extend(batch)
                if follow and len(out) >= expect:
                    break
    return out, outputs.take().get("deadletter", [])


async def test_spans_logs_and_metrics_from_a_collector_file(
    data_dir: pathlib.Path, tmp_path: pathlib.Path, batch_size: int
) -> None:
    out, dead = await read_all(data_dir, tmp_path, batch_size=batch_size)
    spans = [r for r in out if isinstance(r, Span)]
    logs = [r for r in out if isinstance(r, LogRecord)]
    metrics = [r for r in out if isinstance(r, MetricSample)]
    assert len(out) == len(spans) + len(logs) + len(metrics) == 11

    root, client, charge = spans
    assert (root.trace_id, root.span_id, root.parent_span_id) == (TRACE, "eee19b7ec3c1b174", "")
    assert root.service == "checkout" and root.name == "POST /api/checkout"
    assert (root.start_ts_ns, root.end_ts_ns) == (1767225600000000000, 1767225600250000000)
    assert root.error and root.status_message == "upstream payments failed"
    assert root.attrs == {"http.request.method": "POST", "http.response.status_code": 502,
                          "span.kind": "SERVER"}
    assert client.parent_span_id == root.span_id and not client.error
    assert client.attrs == {"span.kind": "CLIENT"}
    # ids are lower-cased; times given as JSON numbers are read too
    assert (charge.trace_id, charge.span_id, charge.service) == (TRACE, "a1b2c3d4e5f60718", "payments")
    assert charge.parent_span_id == client.span_id and charge.error
    assert charge.start_ts_ns == 1767225600020000000
    assert charge.attrs == {"retry": True, "amount": 12.5, "span.kind": "SERVER"}

    err, warn = logs
    assert err.ts_ns == 1767225600245000000 and err.level == Level.ERROR
    assert err.message == "charge failed: upstream timeout"
    assert (err.service, err.environment, err.component) == ("checkout", "prod", "checkout.handlers")
    assert (err.trace_id, err.span_id) == (TRACE, "eee19b7ec3c1b174")
    assert err.attrs == {"order.id": "o-123"}
    assert (err.source, err.position) == ("otel.jsonl", 3)
    assert warn.ts_ns == 1767225601000000000 and warn.level == Level.WARN  # observed time, text
    assert warn.message == '{"event":"retry","attempt":2}'
    assert warn.attrs == {"tags": ["a", "b"]}

    by_name = {(m.name, m.labels.get("le", "")): m for m in metrics}
    assert by_name[("http.server.requests", "")].value == 1200.0
    assert by_name[("http.server.requests", "")].labels == {
        "http.response.status_code": "200", "service": "checkout"}
    assert [by_name[("http.server.duration_bucket", le)].value for le in ("0.1", "0.25", "+Inf")] == [
        2.0, 7.0, 10.0]
    assert by_name[("http.server.duration_count", "")].value == 10.0
    assert by_name[("http.server.duration_sum", "")].value == 1.75
    assert all(m.ts_ns == 1767225600000000000 for m in metrics)

    reasons = [(d.position, d.reason.split(":")[0]) for d in dead]
    assert reasons == [
        (2, "bad span"),
        (3, "bad log record"),
        (5, "not OTLP JSON"),
        (6, "not an OTLP export"),
    ]
    assert all(d.source == "otel.jsonl" and d.stage == "otel" for d in dead)
    assert '"spanId":"a1b2c3d4e5f60719"' in dead[0].raw


async def test_follow_mode_reads_the_same_records(
    data_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    once, _ = await read_all(data_dir, tmp_path)
    (tmp_path / "otel.jsonl").unlink()
    followed, dead = await read_all(data_dir, tmp_path, follow=True, expect=len(once))
    assert followed == once
    assert len(dead) == 4

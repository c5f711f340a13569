"""The self-metrics endpoint serves runner statistics as Prometheus text."""

from __future__ import annotations

import functools
import pathlib
import subprocess
import sys

import anyio

from srestream import Runner, pipeline_from_dict
from srestream._metrics_http import serve_metrics
from srestream.testing import CaptureSink, ListSource


async def _get(port: int, path: str) -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as s:
        await s.send(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        with anyio.fail_after(5):
            while True:
                try:
                    data += await s.receive()
                except anyio.EndOfStream:
                    break
    return data


async def test_metrics_endpoint_reports_each_stage() -> None:
    p = pipeline_from_dict(
        {
            "name": "m",
            "sources": {"src": {"type": "list"}},
            "stages": {"a": {"type": "passthrough", "inputs": ["src"]}},
            "sinks": {"out": {"type": "capture", "inputs": ["a"]}},
        }
    )
    gate = anyio.Event()
    sink = CaptureSink()
    r = Runner(p, bindings={"src": ListSource(list(range(50)), batch_size=10), "out": sink})

    async with anyio.create_task_group() as tg:
        port = await tg.start(serve_metrics, r, "127.0.0.1", 0)

        async def run() -> None:
            await r.run()
            gate.set()

        tg.start_soon(run)
        await gate.wait()
        body = (await _get(port, "/metrics")).decode()
        missing = await _get(port, "/nope")
        tg.cancel_scope.cancel()
    head, _, text = body.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200")
    assert "text/plain; version=0.0.4" in head
    assert 'srestream_stage_records_in_total{pipeline="m",component="a",kind="stage"} 50' in text
    assert 'srestream_stage_records_out_total{pipeline="m",component="src",kind="source"} 50' in text
    assert 'srestream_records_out_total{pipeline="m"} 50' in text
    assert "# TYPE srestream_stage_queue_depth gauge" in text
    assert missing.startswith(b"HTTP/1.1 404")


async def test_with_a_bearer_token_metrics_need_it() -> None:
    p = pipeline_from_dict(
        {
            "name": "m",
            "sources": {"src": {"type": "list"}},
            "sinks": {"out": {"type": "capture", "inputs": ["src"]}},
        }
    )
    r = Runner(p)
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            functools.partial(serve_metrics, bearer_token="s3cret"), r, "127.0.0.1", 0
        )
        denied = await _get(port, "/metrics")
        async with await anyio.connect_tcp("127.0.0.1", port) as s:
            await s.send(
                b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
                b"Connection: close\r\n\r\n"
            )
            allowed = b""
            with anyio.fail_after(5):
                while True:
                    try:
                        allowed += await s.receive()
                    except anyio.EndOfStream:
                        break
        tg.cancel_scope.cancel()
    assert denied.startswith(b"HTTP/1.1 401") and b"s3cret" not in denied
    assert allowed.startswith(b"HTTP/1.1 200") and b"srestream_records_in_total" in allowed


def test_metrics_off_loopback_require_a_token_file(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(
        "sources: {s: {type: stdin}}\nsinks: {o: {type: stdout, inputs: [s]}}\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "srestream", "run", str(p), "--metrics-addr", "0.0.0.0:9",
         "--store", str(tmp_path / "s.sqlite")],
        capture_output=True, text=True, timeout=30, input="",
    )
    assert r.returncode == 2
    assert "--metrics-addr" in r.stderr and "--metrics-token-file" in r.stderr

"""Self-metrics: the runner statistics as Prometheus text over HTTP.

Binds to loopback unless told otherwise; serves ``GET /metrics`` only.
"""

from __future__ import annotations

from typing import Any

import anyio
from anyio.abc import SocketStream, TaskStatus

from ._runner import Runner, RunnerStatistics

__all__ = ["serve_metrics", "render_metrics"]

_COUNTERS = (
    ("records_in", "counter", "Records received"),
    ("records_out", "counter", "Records sent on the main output"),
    ("batches_in", "counter", "Batches received"),
    ("batches_out", "counter", "Batches sent on the main output"),
    ("errors", "counter", "Records sent to the dead-letter output"),
    ("queue_depth", "gauge", "Batches waiting in the input buffer"),
    ("lag_seconds", "gauge", "Wall-clock now minus event time of the newest record out"),
)


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(st: RunnerStatistics, pipeline: str) -> str:
    """Prometheus text exposition (version 0.0.4) of runner statistics."""
    lines: list[str] = []
    p = _esc(pipeline)
    for name, typ, help_ in _COUNTERS:
        metric = f"srestream_stage_{name}" + ("_total" if typ == "counter" else "")
        lines.append(f"# HELP {metric} {help_}, per component.")
        lines.append(f"# TYPE {metric} {typ}")
        for s in st.stages.values():
            v = getattr(s, name)
            if v is None:
                continue
            lines.append(
                f'{metric}{{pipeline="{p}",component="{_esc(s.component_id)}",kind="{s.kind}"}} {v}'
            )
    for name, typ, help_ in (
        ("records_in", "counter", "Records out of all sources"),
        ("records_out", "counter", "Records into all sinks"),
        ("errors", "counter", "Dead letters of all components"),
        ("checkpoints", "counter", "Checkpoints written"),
        ("uptime_seconds", "gauge", "Seconds since the run started"),
    ):
        metric = f"srestream_{name}" + ("_total" if typ == "counter" else "")
        lines.append(f"# HELP {metric} {help_}.")
        lines.append(f"# TYPE {metric} {typ}")
        lines.append(f'{metric}{{pipeline="{p}"}} {getattr(st, name)}')
    return "\n".join(lines) + "\n"


async def _handle(stream: SocketStream, runner: Runner) -> None:
    async with stream:
        data = b""
        with anyio.move_on_after(5):
            while b"\r\n\r\n" not in data and len(data) < 16384:
                chunk = await stream.receive(4096)
                if not chunk:
                    break
                data += chunk
        request_line = data.split(b"\r\n", 1)[0].split()
        if len(request_line) >= 2 and request_line[0] == b"GET" and request_line[1] in (
            b"/metrics",
            b"/",
        ):
            body = render_metrics(runner.statistics(), runner.pipeline.name).encode()
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        else:
            body = b"not found: GET /metrics\n"
            head = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
        head += b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        await stream.send(head + body)


async def serve_metrics(
    runner: Runner,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``GET /metrics`` until cancelled; reports the bound port."""
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    bound: Any = listener.extra(anyio.abc.SocketAttribute.local_port)
    task_status.started(int(bound))
    async with listener:
        await listener.serve(lambda s: _handle(s, runner))

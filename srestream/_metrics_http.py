"""Self-metrics: the runner statistics as Prometheus text over HTTP.

Binds to loopback unless told otherwise; bound anywhere else it requires a
bearer token (SPEC §3.12).  Serves ``GET /metrics`` only.
"""

from __future__ import annotations

import hmac

import anyio
from anyio.abc import TaskStatus

from ._runner import Runner, RunnerStatistics
from .io._httpserver import Headers, Response, serve_http

__all__ = ["render_metrics", "serve_metrics"]

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


async def serve_metrics(
    runner: Runner,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    bearer_token: str | None = None,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``GET /metrics`` until cancelled; reports the bound port.  With
    ``bearer_token``, a request without ``Authorization: Bearer <token>``
    gets a 401."""
    expected = f"Bearer {bearer_token}".encode() if bearer_token else None

    def handler(method: str, path: str, headers: Headers, body: bytes) -> Response:
        if expected is not None:
            got = next((v for k, v in headers if k == "authorization"), "")
            if not hmac.compare_digest(got.encode(), expected):
                return 401, [("www-authenticate", "Bearer")], b"bearer token required\n"
        if method == "GET" and path.split("?", 1)[0] in ("/metrics", "/"):
            text = render_metrics(runner.statistics(), runner.pipeline.name).encode()
            return 200, [("content-type", "text/plain; version=0.0.4; charset=utf-8")], text
        return 404, [("content-type", "text/plain")], b"not found: GET /metrics\n"

    await serve_http(handler, host, port, task_status=task_status)

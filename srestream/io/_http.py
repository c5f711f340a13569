"""The HTTP push receiver: events POSTed as JSON become :class:`Event` records.

Endpoints (all ``POST``, JSON bodies):

* ``/alertmanager`` — an Alertmanager webhook (payload version 4): one
  ``alertmanager`` event per alert, at its ``startsAt`` when firing and its
  ``endsAt`` when resolved; ``attrs`` hold ``status``, ``alertname``,
  ``labels``, ``annotations``, ``fingerprint``, ``group_key``, ``receiver``,
  ``generator_url``;
* ``/deploy`` — ``{"service": ..., "version"?, "environment"?, "ts"?, ...}``;
* ``/ci`` — ``{"status": ..., "pipeline"? | "service"?, "ts"?, ...}``;
* ``/ack`` — ``{"person": ..., "dedup_key"? | "incident_id"?, "ts"?, ...}``;
* ``/events`` — one object or a list of objects, each with an
  ``event_type`` (one of the above, or any other snake_case word such as
  ``note`` or ``action``).

``ts`` is RFC 3339 or epoch s/ms/µs/ns; without it the event is stamped
with the time it was received.  ``summary`` and ``service`` go to the
record's fields, every other field to ``attrs``.  ``GET /healthz`` answers
``ok``.

A request is answered only after its events have been yielded to the
pipeline (the runner asked for the next batch), so a ``200`` means "taken"
and a slow pipeline slows its pushers down.  A bad payload gets a ``400``
with the reason and goes to the dead-letter output; a request without the
right bearer token gets a ``401`` and is not kept.  The receiver binds to
loopback unless told otherwise and then requires a bearer token (from a
file or an environment variable, never from the pipeline file).

Connections are served one at a time inside the source (each bounded by
``request_timeout``): a source's generator cannot own a task group across
its yields, and pushed events are small and rare next to log lines.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import h11
import msgspec
from anyio.abc import SocketAttribute, SocketStream

from .._component import BuildContext, Clock, Outputs, SourceConfig, SystemClock
from .._duration import Duration
from .._errors import ConfigError, Problem
from .._records import Event
from .._registry import register
from ..parse._time import parse_timestamp
from ._httpserver import (
    HttpError,
    HttpRequest,
    error_response,
    open_listener_port,
    read_request,
    send_response,
)

__all__ = ["HttpReceiver", "HttpReceiverSource", "events_from_payload"]

_JSON = [("content-type", "application/json")]
_TEXT = [("content-type", "text/plain; charset=utf-8")]
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_DEADLETTER_CHARS = 65536
_MAX_CONNECTIONS_PER_BATCH = 64


class BadPayload(ValueError):
    """A payload we refuse, with the reason sent back to the pusher."""


# --------------------------------------------------------------- payloads
class _AmAlert(msgspec.Struct, rename="camel"):
    status: str
    labels: dict[str, str]
    starts_at: str
    annotations: dict[str, str] = {}
    ends_at: str = ""
    generator_url: str = msgspec.field(default="", name="generatorURL")
    fingerprint: str = ""


class _AmWebhook(msgspec.Struct, rename="camel"):
    version: str
    status: str
    alerts: list[_AmAlert]
    receiver: str = ""
    group_key: str = ""
    group_labels: dict[str, str] = {}
    common_labels: dict[str, str] = {}
    common_annotations: dict[str, str] = {}
    external_url: str = msgspec.field(default="", name="externalURL")
    truncated_alerts: int = 0


_AM_DECODER = msgspec.json.Decoder(_AmWebhook)
_ANY_DECODER = msgspec.json.Decoder()
_MIN_TS = 86400 * 1_000_000_000  # Alertmanager's "0001-01-01T00:00:00Z" means unset


def _time(value: Any, field: str) -> int:
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise BadPayload(f"{field}: not a timestamp: {value!r}") from None


def _alertmanager(body: bytes, source: str) -> list[Event]:
    try:
        hook = _AM_DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise BadPayload(f"not an Alertmanager webhook: {exc}") from None
    if hook.version != "4":
        raise BadPayload(f"Alertmanager webhook version {hook.version!r}, expected '4'")
    out = []
    for i, a in enumerate(hook.alerts):
        if a.status not in ("firing", "resolved"):
            raise BadPayload(f"$.alerts[{i}].status: {a.status!r} is not firing or resolved")
        starts = _time(a.starts_at, f"$.alerts[{i}].startsAt")
        ends = _time(a.ends_at, f"$.alerts[{i}].endsAt") if a.ends_at else 0
        ends = ends if ends > _MIN_TS else 0
        ts = ends if a.status == "resolved" and ends else starts
        name = a.labels.get("alertname", "")
        attrs: dict[str, Any] = {
            "status": a.status,
            "alertname": name,
            "labels": a.labels,
            "annotations": a.annotations,
            "fingerprint": a.fingerprint,
            "group_key": hook.group_key,
            "receiver": hook.receiver,
            "generator_url": a.generator_url,
            "starts_at_ns": starts,
        }
        if ends:
            attrs["ends_at_ns"] = ends
        out.append(
            Event(
                ts_ns=ts,
                event_type="alertmanager",
                service=a.labels.get("service") or a.labels.get("job", ""),
                summary=a.annotations.get("summary") or a.annotations.get("description") or name,
                source=source,
                attrs=attrs,
            )
        )
    return out


def _required(obj: dict[str, Any], *names: str, where: str) -> None:
    if not any(isinstance(obj.get(n), str) and obj.get(n) for n in names):
        raise BadPayload(f"{where}: needs {' or '.join(repr(n) for n in names)} (a non-empty string)")


def _generic(obj: Any, event_type: str, now_ns: int, source: str, where: str) -> Event:
    if not isinstance(obj, dict):
        raise BadPayload(f"{where}: expected a JSON object")
    if event_type == "deploy":
        _required(obj, "service", where=where)
    elif event_type == "ci":
        _required(obj, "status", where=where)
        _required(obj, "pipeline", "service", where=where)
    elif event_type == "ack":
        _required(obj, "person", where=where)
        _required(obj, "dedup_key", "incident_id", where=where)
    attrs = {k: v for k, v in obj.items() if k not in ("ts", "service", "summary", "event_type")}
    ts = _time(obj["ts"], f"{where}.ts") if obj.get("ts") is not None else now_ns
    service = obj.get("service", "")
    summary = obj.get("summary")
    if not isinstance(service, str) or (summary is not None and not isinstance(summary, str)):
        raise BadPayload(f"{where}: service and summary must be strings")
    if summary is None:
        summary = _default_summary(event_type, obj)
    return Event(ts_ns=ts, event_type=event_type, service=service, summary=summary,
                 source=source, attrs=attrs)


def _default_summary(event_type: str, obj: dict[str, Any]) -> str:
    if event_type == "deploy":
        return " ".join(str(x) for x in ("deploy", obj["service"], obj.get("version", "")) if x)
    if event_type == "ci":
        return f"ci {obj.get('pipeline') or obj.get('service')} {obj['status']}"
    if event_type == "ack":
        return f"ack {obj.get('dedup_key') or obj.get('incident_id')} by {obj['person']}"
    return event_type


def events_from_payload(path: str, body: bytes, now_ns: int, source: str = "") -> list[Event]:
    """The events of one POSTed body at ``path``; :class:`BadPayload` with
    the reason when it is refused (nothing of it is kept then).

    >>> [e] = events_from_payload("/deploy", b'{"service": "api", "version": "v2", "ts": 1}', 0)
    >>> (e.event_type, e.service, e.summary, e.ts_ns, e.attrs)
    ('deploy', 'api', 'deploy api v2', 1000000000, {'version': 'v2'})
    >>> events_from_payload("/ack", b'{"person": "ana"}', 0)
    Traceback (most recent call last):
    ...
    srestream.io._http.BadPayload: $: needs 'dedup_key' or 'incident_id' (a non-empty string)
    """
    source = source or path
    if path == "/alertmanager":
        return _alertmanager(body, source)
    try:
        doc = _ANY_DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise BadPayload(f"not JSON: {exc}") from None
    kind = path.lstrip("/")
    if kind in ("deploy", "ci", "ack"):
        return [_generic(doc, kind, now_ns, source, "$")]
    # /events: one object or a list, each naming its event_type
    items = doc if isinstance(doc, list) else [doc]
    out = []
    for i, obj in enumerate(items):
        where = f"$[{i}]" if isinstance(doc, list) else "$"
        et = obj.get("event_type") if isinstance(obj, dict) else None
        if not isinstance(et, str) or not _EVENT_TYPE.match(et):
            raise BadPayload(f"{where}.event_type: needs a snake_case event type, got {et!r}")
        if et == "alertmanager":
            raise BadPayload(f"{where}: post Alertmanager webhooks to /alertmanager")
        out.append(_generic(obj, et, now_ns, source, where))
    return out


_ROUTES = ("/alertmanager", "/deploy", "/ci", "/ack", "/events")


# ------------------------------------------------------------------ logic
class HttpReceiver:
    """Running logic of the push receiver.  ``port`` is the bound port once
    it listens (useful with ``port=0``)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bearer_token: str | None = None,
        outputs: Outputs | None = None,
        clock: Clock | None = None,
        max_body_bytes: int = 1 << 20,
        request_timeout_s: float = 10.0,
        poll_interval_s: float = 0.25,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._token = bearer_token
        self.outputs = outputs if outputs is not None else Outputs("http_receiver")
        self.clock = clock or SystemClock()
        self.max_body_bytes = max_body_bytes
        self.request_timeout_s = request_timeout_s
        self.poll_interval_s = poll_interval_s
        self.requests = 0

    def _authorized(self, req: HttpRequest) -> bool:
        if self._token is None:
            return True
        got = req.header("authorization") or ""
        return hmac.compare_digest(got.encode(), f"Bearer {self._token}".encode())

    def handle(self, req: HttpRequest) -> tuple[int, list[tuple[str, str]], bytes, list[Event]]:
        """Answer one request: (status, headers, body, events)."""
        self.requests += 1
        path = req.path.split("?", 1)[0].rstrip("/") or "/"
        if req.method == "GET" and path == "/healthz":
            return 200, _TEXT, b"ok\n", []
        if path not in _ROUTES:
            return 404, _TEXT, f"no such endpoint: POST one of {', '.join(_ROUTES)}\n".encode(), []
        if req.method != "POST":
            return 405, _TEXT + [("allow", "POST")], b"use POST\n", []
        if not self._authorized(req):
            return 401, _TEXT + [("www-authenticate", "Bearer")], b"bearer token required\n", []
        try:
            events = events_from_payload(path, req.body, self.clock.now_ns(), source=path)
        except BadPayload as exc:
            reason = str(exc)
            raw = req.body.decode("utf-8", "replace")[:_MAX_DEADLETTER_CHARS]
            self.outputs.deadletter(raw, f"http {req.method} {path}", self.requests, reason)
            return 400, _JSON, msgspec.json.encode({"status": "error", "error": reason}), []
        body = msgspec.json.encode({"status": "ok", "events": len(events)})
        return 200, _JSON, body, events

    async def _exchange(self, stream: SocketStream) -> tuple[h11.Connection, Any, list[Event]]:
        conn = h11.Connection(h11.SERVER)
        try:
            with anyio.fail_after(self.request_timeout_s):
                req = await read_request(stream, conn, max_body_bytes=self.max_body_bytes)
        except TimeoutError:
            return conn, None, []
        except HttpError as exc:
            return conn, error_response(exc), []
        if req is None:
            return conn, None, []
        status, headers, body, events = self.handle(req)
        return conn, (status, headers, body), events

    async def _accept(self, socks: list[socket.socket], timeout: float) -> list[SocketStream]:
        """Connections waiting on the listening sockets, after waiting up to
        ``timeout`` for one.  Only the wait is ever cancelled, never an
        accept, so a timeout cannot drop a connection the kernel handed over."""
        with anyio.move_on_after(timeout):
            if len(socks) == 1:
                await anyio.wait_readable(socks[0])
            else:
                async with anyio.create_task_group() as tg:

                    async def one(sock: socket.socket) -> None:
                        await anyio.wait_readable(sock)
                        tg.cancel_scope.cancel()

                    for sock in socks:
                        tg.start_soon(one, sock)
        out: list[SocketStream] = []
        for sock in socks:
            while len(out) < _MAX_CONNECTIONS_PER_BATCH:
                try:
                    conn, _addr = sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                conn.setblocking(False)
                out.append(await SocketStream.from_socket(conn))
        return out

    async def __call__(self) -> AsyncIterator[list[Event]]:
        multi = await anyio.create_tcp_listener(local_host=self.host, local_port=self.requested_port)
        self.port = open_listener_port(multi)
        listeners = [lst.extra(SocketAttribute.raw_socket) for lst in multi.listeners]
        for sock in listeners:
            sock.setblocking(False)
        waiting: list[tuple[SocketStream, h11.Connection, Any]] = []
        try:
            while True:
                events: list[Event] = []
                for stream in await self._accept(listeners, self.poll_interval_s):
                    conn, response, evs = await self._exchange(stream)
                    events.extend(evs)
                    waiting.append((stream, conn, response))
                yield events
                await self._answer(waiting)
        finally:
            with anyio.CancelScope(shield=True):
                for stream, _conn, _resp in waiting:
                    await stream.aclose()
                await multi.aclose()

    async def _answer(self, waiting: list[tuple[SocketStream, h11.Connection, Any]]) -> None:
        while waiting:
            stream, conn, response = waiting.pop()
            if response is not None:
                with anyio.move_on_after(self.request_timeout_s):
                    try:
                        await send_response(stream, conn, *response, close=True)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError):
                        pass  # the pusher went away; it will retry
            await stream.aclose()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@register("Receive pushed events over HTTP: Alertmanager webhooks, deploys, CI runs, acks.")
class HttpReceiverSource(SourceConfig, frozen=True, kw_only=True, tag="http_receiver"):
    """POST ``/alertmanager`` (webhook v4), ``/deploy``, ``/ci``, ``/ack`` or
    ``/events`` with JSON; each becomes ``event`` records (``event_type``
    alertmanager, deploy, ci, ack, ...).  The answer (200) is sent once the
    events are handed to the pipeline; a bad payload gets 400 with the
    reason and goes to ``.deadletter``.  Binds to loopback by default; any
    other address requires a bearer token (from a file or the environment)."""

    side_outputs = ("deadletter",)
    host: str = "127.0.0.1"
    """Address to bind.  Anything but loopback requires a bearer token."""
    port: int = 9467
    """TCP port to listen on (0: any free port)."""
    bearer_token_file: str | None = None
    """File holding the bearer token pushers must send (relative to the pipeline file)."""
    bearer_token_env: str | None = None
    """Environment variable holding the bearer token."""
    max_body_bytes: int = 1 << 20
    """Larger bodies are refused with 413."""
    request_timeout: Duration = Duration.parse("10s")
    """How long one client may take to send its request or read the answer."""
    poll_interval: Duration = Duration.parse("250ms")
    """Longest wait for a request before an empty batch lets checkpoints pass."""

    def build(self, ctx: BuildContext) -> HttpReceiver:
        where = f"$.sources.{ctx.component_id}"
        token = self._token(ctx, where)
        problems = []
        if token is None and not _is_loopback(self.host):
            problems.append(Problem(f"{where}.bearer_token_file",
                                    f"required when host is not loopback (host {self.host!r})"))
        if not 0 <= self.port <= 65535:
            problems.append(Problem(f"{where}.port", f"{self.port} is not a TCP port"))
        if problems:
            raise ConfigError(problems)
        return HttpReceiver(
            host=self.host,
            port=self.port,
            bearer_token=token,
            outputs=ctx.outputs,
            clock=ctx.clock,
            max_body_bytes=self.max_body_bytes,
            request_timeout_s=self.request_timeout.seconds,
            poll_interval_s=self.poll_interval.seconds,
        )

    def _token(self, ctx: BuildContext, where: str) -> str | None:
        if self.bearer_token_file:
            path = ctx.resolve(self.bearer_token_file)
            try:
                with open(path, encoding="utf-8") as f:
                    token = f.read().strip()
            except OSError as exc:
                raise ConfigError([Problem(f"{where}.bearer_token_file",
                                           f"cannot read {path}: {exc.strerror}")]) from None
            if not token:
                raise ConfigError([Problem(f"{where}.bearer_token_file", f"{path} is empty")])
            return token
        if self.bearer_token_env:
            token = os.environ.get(self.bearer_token_env, "").strip()
            if not token:
                raise ConfigError([Problem(f"{where}.bearer_token_env",
                                           f"environment variable {self.bearer_token_env} is unset or empty")])
            return token
        return None

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

Every open connection is read a little at a time: each round waits (at
most ``poll_interval``) until some socket is ready, then takes what each
connection's socket holds with non-blocking reads into that connection's
own h11 state.  A complete request is therefore handled, and its events
yielded, in the next batch however many other pushers are slow, idle or
half-sent (a "slowloris" cannot hold an on-call ack or a firing alert
back).  Each connection gets ``request_timeout`` from its accept to send
its whole request (then a ``408`` and it is closed) and as long again to
read its answer; at most ``max_connections`` are open at once, and the
ones beyond get a ``503`` and are closed.  A source's generator cannot own
a task group across its yields, so the wait for ready sockets opens its
task group and closes it again within one round.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import h11
import msgspec
from anyio.abc import SocketAttribute

from .._component import BuildContext, Clock, Outputs, SourceConfig, SystemClock
from .._duration import Duration
from .._errors import ConfigError, Problem
from .._records import Event
from .._registry import register
from ..parse._time import parse_timestamp
from ._httpserver import (
    HttpError,
    HttpRequest,
    RequestReader,
    Response,
    encode_response,
    error_response,
    open_listener_port,
)

__all__ = ["HttpReceiver", "HttpReceiverSource", "events_from_payload"]

_JSON = [("content-type", "application/json")]
_TEXT = [("content-type", "text/plain; charset=utf-8")]
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_DEADLETTER_CHARS = 65536
_MAX_ACCEPTS_PER_ROUND = 64
_RECEIVE_BYTES = 65536
_READS_PER_ROUND = 16  # at most 1 MiB from one pusher per round
_LINGER_S = 1.0  # how long an answered connection may take to close its side
_MAX_LINGERING = 256
_BUSY: Response = (503, _TEXT + [("retry-after", "1")], b"too many open connections\n")
_TIMEOUT: Response = (408, _TEXT, b"request not received within request_timeout\n")


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
class _Pusher:
    """One accepted connection, read a little each round: its raw
    non-blocking socket, its own h11 state, and its deadline (accept +
    ``request_timeout`` while it sends its request, answer +
    ``request_timeout`` while it reads our answer)."""

    __slots__ = ("conn", "deadline", "outbox", "reader", "sock")

    def __init__(self, sock: socket.socket, *, deadline: float, max_body_bytes: int) -> None:
        self.sock = sock
        self.conn = h11.Connection(h11.SERVER)
        self.reader = RequestReader(self.conn, max_body_bytes=max_body_bytes)
        self.deadline = deadline
        self.outbox = b""
        """Answer bytes the socket has not taken yet (empty while reading)."""

    def read_nowait(self) -> bool:
        """Take what the socket holds now (a bounded amount, so one fast
        pusher cannot starve the others) and advance the request: True once
        it is complete or the pusher closed; :class:`HttpError` when it is
        refused."""
        done = self.reader.advance()
        reads = 0
        while not done and reads < _READS_PER_ROUND:
            try:
                data = self.sock.recv(_RECEIVE_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""  # reset by the pusher: the end of its stream
            reads += 1
            self.conn.receive_data(data)  # b"" tells h11 the stream ended
            done = self.reader.advance()
        return done

    def answer(self, response: Response, deadline: float) -> None:
        """Queue the answer; the connection closes once it is sent."""
        try:
            self.outbox = encode_response(self.conn, *response, close=True)
        except h11.LocalProtocolError:
            self.outbox = b""  # h11 cannot answer in this state: just close
        self.deadline = deadline

    def flush_nowait(self) -> bool:
        """Send what the socket takes now: True once all is sent (or the
        pusher went away; it will retry)."""
        while self.outbox:
            try:
                sent = self.sock.send(self.outbox)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                self.outbox = b""
                break
            self.outbox = self.outbox[sent:]
        return True

    def shut_nowait(self, linger_deadline: float) -> bool:
        """End our side (a FIN after the answer) and drop what the pusher
        still sends: True once closed; False while it has yet to close its
        side, to be drained until ``linger_deadline``.  Closing at once over
        unread bytes would make the kernel reset the connection and lose
        the answer on its way (a 503 sent right after accept, say)."""
        self.outbox = b""
        self.deadline = linger_deadline
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.sock.close()
            return True
        return self.drain_nowait()

    def drain_nowait(self) -> bool:
        """Read and drop what the pusher sent: True once it closed its side
        (and so the socket is closed)."""
        try:
            for _ in range(_READS_PER_ROUND):
                if not self.sock.recv(_RECEIVE_BYTES):
                    break
            else:
                return False
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            pass  # reset by the pusher: nothing left to drain
        self.sock.close()
        return True


class HttpReceiver:
    """Running logic of the push receiver.  ``port`` is the bound port once
    it listens (useful with ``port=0``).  ``requests``, ``timeouts`` (408s)
    and ``refused`` (503s: over ``max_connections``) count connections;
    ``open_connections`` is how many were open after the last round."""

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
        max_connections: int = 128,
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
        self.max_connections = max_connections
        self.requests = 0
        self.timeouts = 0
        self.refused = 0
        self.open_connections = 0
        self._lingering: list[_Pusher] = []  # answered, draining until the pusher closes

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

    async def __call__(self) -> AsyncIterator[list[Event]]:
        multi = await anyio.create_tcp_listener(local_host=self.host, local_port=self.requested_port)
        self.port = open_listener_port(multi)
        listeners = [lst.extra(SocketAttribute.raw_socket) for lst in multi.listeners]
        for sock in listeners:
            sock.setblocking(False)
        pushers: list[_Pusher] = []  # sending their request or reading our answer
        taken: list[tuple[_Pusher, Response]] = []  # answered once the batch is taken
        self._lingering = []
        try:
            while True:
                await self._wait(listeners, pushers + self._lingering)
                now = anyio.current_time()
                self._accept(listeners, pushers, now)
                events: list[Event] = []
                pushers = self._serve(pushers, now, events, taken)
                self._lingering = [p for p in self._lingering
                                   if not p.drain_nowait() and not _expired(p, now)]
                self.open_connections = len(pushers) + len(taken)
                yield events
                now = anyio.current_time()
                for pusher, response in taken:
                    pusher.answer(response, now + self.request_timeout_s)
                    if pusher.flush_nowait():
                        self._close(pusher, now)
                    else:
                        pushers.append(pusher)
                taken.clear()
                self.open_connections = len(pushers)
        finally:
            for pusher in pushers + self._lingering + [p for p, _ in taken]:
                pusher.sock.close()
            with anyio.CancelScope(shield=True):
                await multi.aclose()

    def _close(self, pusher: _Pusher, now: float) -> None:
        """Close once answered, lingering a little (bounded in time and
        number) for the pusher to close its side first."""
        if pusher.shut_nowait(now + min(_LINGER_S, self.request_timeout_s)):
            return
        if len(self._lingering) < _MAX_LINGERING:
            self._lingering.append(pusher)
        else:
            pusher.sock.close()

    async def _wait(self, listeners: list[socket.socket], pushers: list[_Pusher]) -> None:
        """Wait until a socket is ready (a new connection, bytes from a
        pusher, room for an answer), the nearest deadline or
        ``poll_interval``.  Only waits are cancelled, never a read, accept
        or send, so no byte is lost; the task group closes before we yield."""
        timeout = self.poll_interval_s
        if pushers:
            timeout = min(timeout, min(p.deadline for p in pushers) - anyio.current_time())
        if timeout <= 0:
            return
        waits = [(anyio.wait_readable, sock) for sock in listeners]
        waits += [(anyio.wait_writable if p.outbox else anyio.wait_readable, p.sock)
                  for p in pushers]
        with anyio.move_on_after(timeout):
            if len(waits) == 1:
                wait, sock = waits[0]
                await wait(sock)
                return
            async with anyio.create_task_group() as tg:

                async def one(wait: Callable[[socket.socket], Awaitable[None]],
                              sock: socket.socket) -> None:
                    await wait(sock)
                    tg.cancel_scope.cancel()

                for wait, sock in waits:
                    tg.start_soon(one, wait, sock)

    def _accept(self, listeners: list[socket.socket], pushers: list[_Pusher], now: float) -> None:
        """Take the connections waiting on the listening sockets (a bounded
        number per round); beyond ``max_connections`` open ones, answer 503."""
        accepted = 0
        for sock in listeners:
            while accepted < _MAX_ACCEPTS_PER_ROUND:
                try:
                    conn, _addr = sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                accepted += 1
                conn.setblocking(False)
                pusher = _Pusher(conn, deadline=now + self.request_timeout_s,
                                 max_body_bytes=self.max_body_bytes)
                if len(pushers) < self.max_connections:
                    pushers.append(pusher)
                    continue
                self.refused += 1
                pusher.answer(_BUSY, now)
                pusher.flush_nowait()  # a fresh socket takes these few bytes
                self._close(pusher, now)

    def _serve(
        self,
        pushers: list[_Pusher],
        now: float,
        events: list[Event],
        taken: list[tuple[_Pusher, Response]],
    ) -> list[_Pusher]:
        """One round over the open connections: read what each sent, handle
        the complete requests (their events into ``events``, their answers
        into ``taken``), answer 408 to those past their deadline, go on
        sending answers.  Returns the connections still open."""
        still: list[_Pusher] = []
        for p in pushers:
            if p.outbox:  # reading our answer
                if p.flush_nowait():
                    self._close(p, now)
                elif now >= p.deadline:
                    p.sock.close()
                else:
                    still.append(p)
                continue
            try:
                done = p.read_nowait()
            except HttpError as exc:
                taken.append((p, error_response(exc)))
                continue
            if done:
                if p.reader.request is None:
                    p.sock.close()  # it went away without a request
                    continue
                status, headers, body, evs = self.handle(p.reader.request)
                events.extend(evs)
                taken.append((p, (status, headers, body)))
            elif now >= p.deadline:
                self.timeouts += 1
                p.answer(_TIMEOUT, now + self.request_timeout_s)
                if p.flush_nowait():
                    self._close(p, now)
                else:
                    still.append(p)
            else:
                still.append(p)
        return still


def _expired(pusher: _Pusher, now: float) -> bool:
    if now < pusher.deadline:
        return False
    pusher.sock.close()
    return True


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
    reason and goes to ``.deadletter``.  All open connections are read
    concurrently, so a slow or stalled client delays no one else; it gets
    408 after ``request_timeout``, and connections beyond
    ``max_connections`` get 503.  Binds to loopback by default; any other
    address requires a bearer token (from a file or the environment)."""

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
    """How long one client may take to send its request (from its connect;
    then 408) or to read the answer.  Slow clients do not delay the others."""
    max_connections: int = 128
    """Connections open at once (sending a request or reading the answer);
    more get 503 and are closed."""
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
        if self.max_connections < 1:
            problems.append(Problem(f"{where}.max_connections",
                                    f"{self.max_connections}: must be at least 1"))
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
            max_connections=self.max_connections,
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

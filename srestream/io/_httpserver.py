"""A small HTTP/1.1 server on anyio streams, with h11 doing the protocol.

Nothing here parses HTTP by hand: h11 (the sans-IO HTTP/1.1 state machine
that httpx is built on) turns bytes into request events and responses into
bytes; this module moves the bytes over anyio socket streams and bounds
every wait (``request_timeout``) and every body (``max_body_bytes``).

Two levels, for the two ways srestream serves HTTP:

* :func:`serve_http` runs a concurrent server until cancelled (the
  ``/metrics`` endpoint runs it in the runner's task group);
* :class:`RequestReader` (bytes in, one request out) and
  :func:`encode_response` are the sans-IO halves of one exchange, for a
  component that must answer only after it has handed the request on (the
  push receiver, which runs inside a source's async generator, so cannot
  own a task group across its yields, and reads many connections
  incrementally instead); :func:`read_request` and :func:`send_response`
  run them over one stream.

A handler takes ``(method, path, headers, body)`` (headers as lower-case
``(name, value)`` string pairs, ``path`` with its query string) and returns
``(status, headers, body)``; it may be a coroutine function.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import h11
from anyio.abc import ByteStream, TaskStatus

__all__ = [
    "Handler",
    "Headers",
    "HttpError",
    "HttpRequest",
    "RequestReader",
    "Response",
    "encode_response",
    "error_response",
    "open_listener_port",
    "read_request",
    "send_response",
    "serve_http",
]

Headers = list[tuple[str, str]]
Response = tuple[int, Headers, bytes]
Handler = Callable[[str, str, Headers, bytes], Response | Awaitable[Response]]

_SERVER = ("server", "srestream")
_RECEIVE_BYTES = 65536


class HttpError(Exception):
    """A request that cannot be served: ``status`` and ``reason`` say why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class HttpRequest:
    """One request as read from a connection."""

    __slots__ = ("body", "headers", "method", "path")

    def __init__(self, method: str, path: str, headers: Headers, body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None


class RequestReader:
    """Assembles one request from the bytes a connection delivers, without
    doing any I/O: feed what arrived to ``conn.receive_data`` (``b""`` at
    end of stream), then call :meth:`advance`.  This lets one task read many
    connections a little at a time, each keeping its own h11 state."""

    __slots__ = ("_body", "_head", "conn", "done", "max_body_bytes", "request")

    def __init__(self, conn: h11.Connection, *, max_body_bytes: int = 1 << 20) -> None:
        self.conn = conn
        self.max_body_bytes = max_body_bytes
        self.done = False
        self.request: HttpRequest | None = None
        """The request once :attr:`done`; None if the client closed first."""
        self._head: h11.Request | None = None
        self._body = bytearray()

    def advance(self) -> bool:
        """Consume the bytes received so far: True once the request is
        complete (or the client closed before sending one), False while
        more bytes are needed; :class:`HttpError` (400, 413, 431) when what
        arrived is not a request we accept."""
        while not self.done:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise HttpError(exc.error_status_hint, f"bad HTTP request: {exc}") from None
            if event is h11.NEED_DATA:
                return False
            if isinstance(event, h11.Request):
                self._head = event
                length = dict(event.headers).get(b"content-length")
                if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                    raise HttpError(413, f"body larger than {self.max_body_bytes} bytes")
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > self.max_body_bytes:
                    raise HttpError(413, f"body larger than {self.max_body_bytes} bytes")
            elif isinstance(event, h11.EndOfMessage):
                head = self._head
                assert head is not None
                self.request = HttpRequest(
                    head.method.decode("ascii", "replace"),
                    head.target.decode("ascii", "replace"),
                    [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in head.headers],
                    bytes(self._body),
                )
                self.done = True
            elif isinstance(event, h11.ConnectionClosed):
                self.done = True
            # h11.PAUSED cannot happen before the response; other events carry nothing
        return True


async def read_request(
    stream: ByteStream, conn: h11.Connection, *, max_body_bytes: int = 1 << 20
) -> HttpRequest | None:
    """Read one request from ``stream``.  None when the client closed the
    connection before sending one; :class:`HttpError` (400 or 413) when it
    sent something that is not a request we accept.  The caller bounds the
    time (``anyio.fail_after``)."""
    reader = RequestReader(conn, max_body_bytes=max_body_bytes)
    while not reader.advance():
        try:
            data = await stream.receive(_RECEIVE_BYTES)
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
            data = b""
        conn.receive_data(data)
    return reader.request


def encode_response(
    conn: h11.Connection,
    status: int,
    headers: Headers,
    body: bytes,
    *,
    close: bool = False,
) -> bytes:
    """The bytes of one response (with Content-Length; ``close`` asks the
    client to close the connection afterwards)."""
    hs = [(k.lower(), v) for k, v in headers if k.lower() not in ("content-length", "connection")]
    if not any(k == "server" for k, _ in hs):
        hs.append(_SERVER)
    hs.append(("content-length", str(len(body))))
    if close:
        hs.append(("connection", "close"))
    data = conn.send(h11.Response(status_code=status, headers=hs))
    assert data is not None
    if body:
        more = conn.send(h11.Data(data=body))
        assert more is not None
        data += more
    end = conn.send(h11.EndOfMessage())
    assert end is not None
    return data + end


async def send_response(
    stream: ByteStream,
    conn: h11.Connection,
    status: int,
    headers: Headers,
    body: bytes,
    *,
    close: bool = False,
) -> None:
    """Send one response (see :func:`encode_response`)."""
    await stream.send(encode_response(conn, status, headers, body, close=close))


def error_response(exc: HttpError) -> Response:
    return exc.status, [("content-type", "text/plain; charset=utf-8")], (exc.reason + "\n").encode()


async def _call(handler: Handler, req: HttpRequest) -> Response:
    res = handler(req.method, req.path, req.headers, req.body)
    if inspect.isawaitable(res):
        res = await res
    return res


async def _serve_connection(
    stream: ByteStream, handler: Handler, *, max_body_bytes: int, request_timeout: float
) -> None:
    """Requests on one connection, kept alive while the client wants."""
    conn = h11.Connection(h11.SERVER)
    async with stream:
        while True:
            try:
                with anyio.fail_after(request_timeout):
                    req = await read_request(stream, conn, max_body_bytes=max_body_bytes)
            except TimeoutError:
                return  # an idle keep-alive connection, or a client too slow: drop it
            except HttpError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    with anyio.move_on_after(request_timeout):
                        await send_response(stream, conn, *error_response(exc), close=True)
                return
            if req is None:
                return
            status, headers, body = await _call(handler, req)
            with anyio.move_on_after(request_timeout):
                try:
                    await send_response(stream, conn, status, headers, body)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError):
                    return
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return


async def serve_http(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_body_bytes: int = 1 << 20,
    request_timeout: float = 10.0,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve HTTP on ``host:port`` until cancelled, each connection in its
    own task.  Reports the bound port (useful with ``port=0``) through
    ``task_status``: ``port = await tg.start(serve_http, handler)``."""
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    task_status.started(open_listener_port(listener))

    async def one(stream: Any) -> None:
        await _serve_connection(
            stream, handler, max_body_bytes=max_body_bytes, request_timeout=request_timeout
        )

    async with listener:
        await listener.serve(one)


def open_listener_port(listener: Any) -> int:
    """The local port a (multi-)listener is bound to."""
    return int(listener.extra(anyio.abc.SocketAttribute.local_port))

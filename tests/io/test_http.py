"""The HTTP push receiver and the small h11 server, over real sockets."""

from __future__ import annotations

import json
import pathlib
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager

import anyio
import httpx
import pytest

from srestream._component import BuildContext, Outputs
from srestream._errors import ConfigError
from srestream._records import DeadLetter, Event
from srestream.io import HttpReceiver, HttpReceiverSource
from srestream.io._httpserver import serve_http
from srestream.parse._time import parse_timestamp


class Running:
    def __init__(self, receiver: HttpReceiver) -> None:
        self.receiver = receiver
        self.events: list[Event] = []
        self.batches = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.receiver.port}"

    def dead(self) -> list[DeadLetter]:
        return list(self.receiver.outputs.take().get("deadletter", []))


@asynccontextmanager
async def running(receiver: HttpReceiver) -> AsyncIterator[Running]:
    r = Running(receiver)

    async def consume() -> None:
        async with aclosing(receiver()) as gen:
            async for batch in gen:
                r.events.extend(batch)
                r.batches += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        with anyio.fail_after(10):
            while receiver.port is None:
                await anyio.sleep(0.005)
        yield r
        tg.cancel_scope.cancel()


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=10, trust_env=False)


async def test_alertmanager_webhooks_become_events(data_dir: pathlib.Path) -> None:
    firing = (data_dir / "io/alertmanager/alertmanager_webhook_v4_firing.json").read_bytes()
    resolved = (data_dir / "io/alertmanager/alertmanager_webhook_v4_resolved.json").read_bytes()
    async with running(HttpReceiver(port=0, poll_interval_s=0.02)) as r, client() as c:
        a = await c.post(r.url + "/alertmanager", content=firing)
        b = await c.post(r.url + "/alertmanager", content=resolved)
        assert (a.status_code, b.status_code) == (200, 200)
        assert a.json() == {"status": "ok", "events": 1}
    fire, res = r.events
    src = json.loads(firing)["alerts"][0]
    assert fire.event_type == res.event_type == "alertmanager"
    assert fire.ts_ns == parse_timestamp(src["startsAt"]) == 1795356158660917983
    assert res.ts_ns == parse_timestamp("2026-11-22T14:03:14.095396Z")
    assert fire.service == "checkout"
    assert fire.summary == src["annotations"]["summary"]
    assert fire.attrs["status"] == "firing" and res.attrs["status"] == "resolved"
    assert fire.attrs["labels"]["slo"] == "checkout-availability"
    assert fire.attrs["fingerprint"] == src["fingerprint"] == res.attrs["fingerprint"]
    assert "ends_at_ns" not in fire.attrs  # 0001-01-01 means unset
    assert fire.source == "/alertmanager"
    assert r.dead() == []


async def test_deploy_ci_ack_and_generic_events() -> None:
    async with running(HttpReceiver(port=0, poll_interval_s=0.02)) as r, client() as c:
        replies = [
            await c.post(r.url + "/deploy", json={"service": "checkout", "version": "v42",
                                                   "ts": "2026-01-01T00:00:00Z", "author": "ana"}),
            await c.post(r.url + "/ci", json={"pipeline": "checkout-main", "status": "failed",
                                               "ts": 1767225600}),
            await c.post(r.url + "/ack", json={"dedup_key": "abc123", "person": "bob",
                                                "ts": 1767225600123}),
            await c.post(r.url + "/events", json=[
                {"event_type": "note", "summary": "rolled back", "ts": "2026-01-01T00:05:00Z"},
                {"event_type": "deploy", "service": "payments"},
            ]),
        ]
        assert [x.status_code for x in replies] == [200, 200, 200, 200]
    deploy, ci, ack, note, deploy2 = r.events
    assert (deploy.event_type, deploy.service, deploy.summary) == ("deploy", "checkout", "deploy checkout v42")
    assert deploy.ts_ns == 1767225600_000000000 and deploy.attrs == {"version": "v42", "author": "ana"}
    assert (ci.event_type, ci.summary, ci.ts_ns) == ("ci", "ci checkout-main failed", 1767225600_000000000)
    assert (ack.event_type, ack.attrs["dedup_key"], ack.attrs["person"]) == ("ack", "abc123", "bob")
    assert ack.ts_ns == 1767225600_123000000
    assert (note.event_type, note.summary) == ("note", "rolled back")
    assert deploy2.service == "payments" and deploy2.ts_ns > 1767225600_000000000  # stamped on receipt


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/deploy", b"{not json", "not JSON"),
        ("/deploy", b'{"version": "v1"}', "$: needs 'service'"),
        ("/ack", b'{"person": "bob"}', "$: needs 'dedup_key' or 'incident_id'"),
        ("/ci", b'{"status": "ok", "pipeline": "p", "ts": "yesterday"}', "$.ts: not a timestamp"),
        ("/events", b'[{"event_type": "Bad Type"}]', "$[0].event_type"),
        ("/alertmanager", b'{"version": "3", "status": "firing", "alerts": []}', "version '3'"),
        ("/alertmanager", b'{"version": "4", "status": "firing"}', "not an Alertmanager webhook"),
    ],
)
async def test_bad_payload_gets_400_with_reason_and_is_dead_lettered(
    path: str, body: bytes, reason: str
) -> None:
    async with running(HttpReceiver(port=0, poll_interval_s=0.02)) as r, client() as c:
        reply = await c.post(r.url + path, content=body)
        ok = await c.post(r.url + "/deploy", json={"service": "still-works"})
    assert reply.status_code == 400
    assert reply.json()["status"] == "error" and reason in reply.json()["error"]
    [dead] = r.dead()
    assert dead.raw == body.decode() and reason in dead.reason
    assert dead.source == f"http POST {path}" and dead.stage == "http_receiver"
    assert ok.status_code == 200 and [e.service for e in r.events] == ["still-works"]


async def test_routes_methods_token_and_idle_batches() -> None:
    async with running(HttpReceiver(port=0, bearer_token="s3cret", poll_interval_s=0.02)) as r, \
            client() as c:
        assert (await c.get(r.url + "/healthz")).text == "ok\n"
        assert (await c.post(r.url + "/nope", json={})).status_code == 404
        assert (await c.get(r.url + "/deploy")).status_code == 405
        denied = await c.post(r.url + "/deploy", json={"service": "x"})
        wrong = await c.post(r.url + "/deploy", json={"service": "x"},
                             headers={"Authorization": "Bearer nope"})
        good = await c.post(r.url + "/deploy", json={"service": "x"},
                            headers={"Authorization": "Bearer s3cret"})
        assert (denied.status_code, wrong.status_code, good.status_code) == (401, 401, 200)
        assert "s3cret" not in denied.text
        batches = r.batches
        with anyio.fail_after(5):
            while r.batches < batches + 3:  # idle: empty batches keep coming
                await anyio.sleep(0.01)
    assert [e.service for e in r.events] == ["x"]
    assert r.dead() == []


async def _connect(port: int, sent: bytes) -> anyio.abc.SocketStream:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    if sent:
        await stream.send(sent)
    return stream


async def _wait_open(receiver: HttpReceiver, n: int) -> None:
    with anyio.fail_after(5):
        while receiver.open_connections < n:
            await anyio.sleep(0.005)


async def _answer_of(stream: anyio.abc.SocketStream, within_s: float) -> bytes:
    """Everything the receiver sends until it closes the connection."""
    got = b""
    with anyio.fail_after(within_s):
        while True:
            try:
                got += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return got


_HALF_REQUEST = b"POST /ack HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le"


async def test_slow_and_idle_clients_do_not_delay_a_webhook(data_dir: pathlib.Path) -> None:
    firing = (data_dir / "io/alertmanager/alertmanager_webhook_v4_firing.json").read_bytes()
    receiver = HttpReceiver(port=0, poll_interval_s=0.05, request_timeout_s=8)
    async with running(receiver) as r, client() as c:
        slow = await _connect(r.receiver.port or 0, _HALF_REQUEST)  # a slowloris
        idle = await _connect(r.receiver.port or 0, b"")
        await _wait_open(receiver, 2)  # both accepted, so they come first
        started = anyio.current_time()
        with anyio.fail_after(2):
            hook = await c.post(r.url + "/alertmanager", content=firing)
            ack = await c.post(r.url + "/ack", json={"dedup_key": "k1", "person": "ana"})
        took = anyio.current_time() - started
        with anyio.fail_after(2):  # taken, i.e. already in a batch the pipeline has
            while len(r.events) < 2:
                await anyio.sleep(0.005)
        assert receiver.open_connections == 2  # the slow ones are still open, unanswered
        with anyio.move_on_after(0.1) as nothing_yet:
            await slow.receive()
        assert nothing_yet.cancelled_caught
        await slow.aclose()
        await idle.aclose()
    assert (hook.status_code, ack.status_code) == (200, 200) and took < 2
    assert [e.event_type for e in r.events] == ["alertmanager", "ack"]
    assert r.events[0].attrs["labels"]["slo"] == "checkout-availability"
    assert receiver.timeouts == 0


async def test_a_client_too_slow_gets_408_after_its_request_timeout() -> None:
    receiver = HttpReceiver(port=0, poll_interval_s=0.05, request_timeout_s=0.6)
    async with running(receiver) as r, client() as c:
        started = anyio.current_time()
        slow = await _connect(r.receiver.port or 0, _HALF_REQUEST)
        idle = await _connect(r.receiver.port or 0, b"")
        await _wait_open(receiver, 2)
        # it trickles on, but a connection's time counts from its accept
        await anyio.sleep(0.3)
        await slow.send(b"ngth: 2")
        slow_answer = await _answer_of(slow, within_s=3)
        waited = anyio.current_time() - started
        idle_answer = await _answer_of(idle, within_s=3)
        ok = await c.post(r.url + "/deploy", json={"service": "checkout"})
        await slow.aclose()
        await idle.aclose()
    assert slow_answer.startswith(b"HTTP/1.1 408 ") and b"connection: close" in slow_answer
    assert idle_answer.startswith(b"HTTP/1.1 408 ")
    assert 0.55 <= waited < 2.5
    assert (receiver.timeouts, receiver.open_connections) == (2, 0)
    assert ok.status_code == 200 and [e.service for e in r.events] == ["checkout"]
    assert r.dead() == []


async def test_connections_beyond_max_connections_get_503() -> None:
    receiver = HttpReceiver(port=0, poll_interval_s=0.05, max_connections=2)
    async with running(receiver) as r, client() as c:
        held = [await _connect(r.receiver.port or 0, b"") for _ in range(2)]
        await _wait_open(receiver, 2)
        refused = await c.post(r.url + "/deploy", json={"service": "refused"})
        for stream in held:
            await stream.aclose()
        with anyio.fail_after(5):
            while receiver.open_connections:
                await anyio.sleep(0.005)
        ok = await c.post(r.url + "/deploy", json={"service": "taken"})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert ok.status_code == 200 and [e.service for e in r.events] == ["taken"]
    assert receiver.refused == 1


def test_binding_beyond_loopback_needs_a_token(tmp_path: pathlib.Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = BuildContext(component_id="push", outputs=Outputs("push"), base_dir=str(tmp_path))
    with pytest.raises(ConfigError) as err:
        HttpReceiverSource(host="0.0.0.0").build(ctx)
    assert err.value.problems[0].path == "$.sources.push.bearer_token_file"
    (tmp_path / "token").write_text("t0k\n")
    logic = HttpReceiverSource(host="0.0.0.0", bearer_token_file="token").build(ctx)
    assert logic._token == "t0k"
    monkeypatch.setenv("PUSH_TOKEN", "from-env")
    assert HttpReceiverSource(host="::", bearer_token_env="PUSH_TOKEN").build(ctx)._token == "from-env"
    with pytest.raises(ConfigError, match="UNSET_TOKEN"):
        HttpReceiverSource(bearer_token_env="UNSET_TOKEN").build(ctx)
    assert HttpReceiverSource().build(ctx)._token is None  # loopback: optional
    with pytest.raises(ConfigError) as err:
        HttpReceiverSource(max_connections=0).build(ctx)
    assert err.value.problems[0].path == "$.sources.push.max_connections"


async def test_serve_http_keeps_alive_and_bounds_bodies() -> None:
    seen: list[tuple[str, str, bytes]] = []

    async def handler(method: str, path: str, headers: list[tuple[str, str]],
                      body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        seen.append((method, path, body))
        return 200, [("content-type", "text/plain")], f"{method} {path} {len(body)}".encode()

    async with anyio.create_task_group() as tg:
        port = await tg.start(lambda task_status: serve_http(handler, "127.0.0.1", 0,
                                                             max_body_bytes=100,
                                                             task_status=task_status))
        async with client() as c:
            a = await c.get(f"http://127.0.0.1:{port}/metrics?x=1")
            b = await c.post(f"http://127.0.0.1:{port}/p", content=b"12345")
            big = await c.post(f"http://127.0.0.1:{port}/p", content=b"x" * 500)
        tg.cancel_scope.cancel()
    assert (a.status_code, a.text) == (200, "GET /metrics?x=1 0")
    assert (b.status_code, b.text) == (200, "POST /p 5")
    assert big.status_code == 413
    assert seen == [("GET", "/metrics?x=1", b""), ("POST", "/p", b"12345")]
    assert a.headers["server"] == "srestream"




# A stopped Runner (core) leaves its edge streams to the garbage collector.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_receiver_in_a_pipeline_routes_events_and_dead_letters(tmp_path: pathlib.Path) -> None:
    import gc

    from srestream._pipeline import parse_pipeline
    from srestream._runner import Runner

    (tmp_path / "p.yaml").write_text(
        "name: push\n"
        "sources:\n  push: {type: http_receiver, port: 0, poll_interval: 20ms}\n"
        "sinks:\n"
        "  events: {type: capture, inputs: [push]}\n"
        "  dead: {type: capture, inputs: [push.deadletter]}\n"
    )
    runner = Runner(parse_pipeline((tmp_path / "p.yaml").read_bytes(), path=str(tmp_path / "p.yaml")))
    receiver = runner.logic("push")
    async with anyio.create_task_group() as tg:
        tg.start_soon(runner.run)
        with anyio.fail_after(10):
            while receiver.port is None:
                await anyio.sleep(0.005)
        async with client() as c:
            url = f"http://127.0.0.1:{receiver.port}"
            good = await c.post(url + "/deploy", json={"service": "checkout"})
            bad = await c.post(url + "/deploy", json={"version": "v1"})
        with anyio.fail_after(10):
            while not runner.logic("dead").records:
                await anyio.sleep(0.01)
        runner.stop()
    assert (good.status_code, bad.status_code) == (200, 400)
    assert [e.service for e in runner.logic("events").records] == ["checkout"]
    [dead] = runner.logic("dead").records
    assert dead.stage == "push" and "needs 'service'" in dead.reason
    assert runner.statistics().stages["push"].errors == 1
    del runner, receiver
    gc.collect()

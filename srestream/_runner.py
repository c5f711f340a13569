"""The graph runner: runs a validated pipeline in one task group.

* One bounded anyio memory object stream feeds each stage and sink; its
  capacity is ``edge_capacity_batches`` for each of its input edges.  A
  producer with several consumers sends each batch to each of them in turn,
  so it goes at the pace of the slowest (no silent drop); a consumer with
  several inputs merges them.
* An idle source's empty batch is passed on too (not counted as a batch):
  stages that act on wall-clock time, such as the idle flush of
  ``fold_stack_traces``, get their turn while no data comes.
* Side outputs (``<stage>.deadletter``, ``<stage>.late``) are queued by the
  stage without awaiting and forwarded whenever the stage yields or asks for
  its next batch.
* Checkpoints are aligned barriers: the runner asks the sources to pause,
  each source sends a barrier after its last batch; a stage that has a
  barrier from every open input has processed everything before it, so its
  snapshot is taken and the barrier forwarded; when every sink has flushed
  on it, the source offsets and stage snapshots are written to the store in
  one transaction and the sources resume.
* Stopping (SIGINT/SIGTERM or :meth:`Runner.stop`) takes a final checkpoint
  the same way, then cancels the graph: in-flight batches are drained and
  flushed, nothing is half-processed, and a resumed run starts exactly
  after the last record that reached the sinks.
"""

from __future__ import annotations

import inspect
import math
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._component import Batch, BuildContext, Clock, Outputs, SystemClock
from ._errors import GraphError, SrestreamError, StageError
from ._pipeline import Pipeline
from ._store import Checkpoint, Store

__all__ = ["RunSummary", "Runner", "RunnerStatistics", "StageStatistics", "run_pipeline"]


class StageStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of one component.  The runner's totals use the same names."""

    component_id: str
    kind: str
    records_in: int
    records_out: int
    batches_in: int
    batches_out: int
    errors: int
    """Records sent to the dead-letter output."""
    queue_depth: int
    """Batches waiting in this component's input buffer."""
    lag_seconds: float | None
    """Wall-clock now minus the event time of the newest record out."""
    unrouted: int = 0
    """Side-output records with no consumer (counted, reported, not kept)."""


class RunnerStatistics(msgspec.Struct, frozen=True, kw_only=True):
    records_in: int
    """Records out of all sources."""
    records_out: int
    """Records into all sinks."""
    batches_in: int
    batches_out: int
    errors: int
    queue_depth: int
    lag_seconds: float | None
    checkpoints: int
    uptime_seconds: float
    stages: dict[str, StageStatistics]


class RunSummary(msgspec.Struct, frozen=True, kw_only=True):
    pipeline: str
    stopped: bool
    """True when stopped by a signal or stop() before the sources ended."""
    resumed_from: int | None
    """Checkpoint id the run resumed from, if any."""
    statistics: RunnerStatistics


class _Barrier:
    __slots__ = ("checkpoint_id", "final", "sender")

    def __init__(self, checkpoint_id: int, final: bool, sender: str) -> None:
        self.checkpoint_id = checkpoint_id
        self.final = final
        self.sender = sender


class _End:
    __slots__ = ("sender",)

    def __init__(self, sender: str) -> None:
        self.sender = sender


class _Node:
    __slots__ = (
        "barrier_sent",
        "batches_in",
        "batches_out",
        "chain",
        "ended",
        "errors",
        "fused",
        "in_next",
        "id",
        "input_keys",
        "kind",
        "last_event_ns",
        "logic",
        "outputs",
        "ports",
        "records_in",
        "records_out",
        "recv",
        "unrouted",
        "wait_scope",
    )

    def __init__(self, cid: str, kind: str, logic: Any, outputs: Outputs) -> None:
        self.id = cid
        self.kind = kind
        self.logic = logic
        self.outputs = outputs
        self.ports: dict[str, list[MemoryObjectSendStream[Any]]] = {}
        self.recv: MemoryObjectReceiveStream[Any] | None = None
        self.input_keys: tuple[str, ...] = ()
        self.records_in = self.records_out = self.batches_in = self.batches_out = 0
        self.errors = self.unrouted = 0
        self.last_event_ns: int | None = None
        self.wait_scope: anyio.CancelScope | None = None
        self.barrier_sent = 0
        self.ended = False
        self.chain: tuple[_Node, ...] = (self,)
        """For the head of a chain of fused stages: every member, in order."""
        self.fused = False
        """True when this stage runs inside the task of the stage before it."""
        self.in_next = False
        """A source: True while the runner waits for its next batch."""


class _Checkpoint:
    __slots__ = ("acked", "done", "final", "id", "states")

    def __init__(self, cid: int, final: bool) -> None:
        self.id = cid
        self.final = final
        self.done = anyio.Event()
        self.states: dict[str, Any] = {}
        self.acked: set[str] = set()


class Runner:
    """Runs a pipeline.  Use :meth:`run` once; :meth:`stop` from anywhere in
    the same event loop (or a signal) ends it gracefully.

    ``bindings`` replaces the built logic of named components with your own
    objects (e.g. a :class:`srestream.testing.ListSource` as a source).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        speed: float | None = None,
        batch_size: int | None = None,
        edge_capacity_batches: int | None = None,
        out_dir: str | None = None,
        resume: bool = True,
        bindings: dict[str, Any] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.speed = speed
        self.batch_size = batch_size or pipeline.runtime.batch_size
        self.capacity = edge_capacity_batches or pipeline.runtime.edge_capacity_batches
        self.out_dir = out_dir
        self.resume = resume
        self._nodes: dict[str, _Node] = {}
        self._started_ns = 0
        self._stopping = False
        self._stop_requested = False
        self._tg: TaskGroup | None = None
        self._current: _Checkpoint | None = None
        self._next_checkpoint = 1
        self._final_pending = False
        self._ended_states: dict[str, Any] = {}
        self._live_sinks: set[str] = set()
        self._checkpoints = 0
        self._resumed_from: int | None = None
        self._build(bindings or {})

    # ----------------------------------------------------------------- build
    def _build(self, bindings: dict[str, Any]) -> None:
        p = self.pipeline
        for cid, cfg in p.components():
            outputs = Outputs(cid)
            if cid in bindings:
                logic = bindings[cid]
            else:
                ctx = BuildContext(
                    component_id=cid,
                    outputs=outputs,
                    batch_size=self.batch_size,
                    clock=self.clock,
                    speed=self.speed,
                    base_dir=p.base_dir,
                    out_dir=self.out_dir,
                )
                try:
                    logic = cfg.build(ctx)  # type: ignore[attr-defined]
                except SrestreamError:
                    raise
                except (OSError, ValueError) as exc:
                    raise GraphError(f"cannot build {cfg.kind} {cid!r}: {exc}") from exc
            self._nodes[cid] = _Node(cid, cfg.kind, logic, outputs)
        self._fused = self._fuse_chains() if p.runtime.chain_stages else set()
        for cid, cfg in p.components():
            inputs: list[str] = list(getattr(cfg, "inputs", ()))
            if len(set(inputs)) != len(inputs):
                raise GraphError(f"{cid!r} lists the same input twice: {inputs}")
        self._live_sinks = {cid for cid in p.sinks}

    def _wire(self) -> None:
        """One bounded stream into each stage or sink that heads a task
        (created when the run starts, so a runner never run holds none)."""
        for cid, cfg in self.pipeline.components():
            inputs: list[str] = list(getattr(cfg, "inputs", ()))
            if not inputs or cid in self._fused:
                continue
            node = self._nodes[cid]
            send, recv = anyio.create_memory_object_stream[Any](self.capacity * len(inputs))
            node.recv = recv
            keys = []
            for ref in inputs:
                name, _, port = ref.partition(".")
                self._nodes[name].ports.setdefault(port, []).append(send.clone())
                keys.append(f"{name}.{port}" if port else name)
            node.input_keys = tuple(keys)
            send.close()

    def _fuse_chains(self) -> set[str]:
        """Fuse each stage or sink whose only input is the whole main output
        of the stage before it into that stage's task: the batches go from
        one async generator to the next (~0.1 µs a hop) instead of through a
        memory stream (~5 µs).  The chain's input keeps its bounded stream,
        so backpressure is unchanged; sources keep their own task, so their
        reads overlap the processing."""
        p = self.pipeline
        consumers: dict[str, list[str]] = {}
        for cid, cfg in p.components():
            for ref in getattr(cfg, "inputs", ()):
                consumers.setdefault(ref, []).append(cid)
        fused: set[str] = set()
        head_of: dict[str, _Node] = {}
        for cid in p.topological_order():
            cfg = p.component(cid)
            inputs = list(getattr(cfg, "inputs", ()))
            if cfg.kind == "source" or len(inputs) != 1 or "." in inputs[0]:
                continue
            prev = inputs[0]
            if p.component(prev).kind != "stage" or consumers.get(prev) != [cid]:
                continue
            head = head_of.get(prev) or self._nodes[prev]
            node = self._nodes[cid]
            head_of[cid] = head
            head.chain = head.chain + (node,)
            node.fused = True
            fused.add(cid)
        return fused

    def logic(self, component_id: str) -> Any:
        """The running logic of a component (e.g. a capture sink's records)."""
        return self._nodes[component_id].logic

    # ------------------------------------------------------------ statistics
    def statistics(self) -> RunnerStatistics:
        now = self.clock.now_ns()
        stages: dict[str, StageStatistics] = {}
        for n in self._nodes.values():
            depth = n.recv.statistics().current_buffer_used if n.recv is not None else 0
            lag = (now - n.last_event_ns) / 1e9 if n.last_event_ns is not None else None
            stages[n.id] = StageStatistics(
                component_id=n.id,
                kind=n.kind,
                records_in=n.records_in,
                records_out=n.records_out,
                batches_in=n.batches_in,
                batches_out=n.batches_out,
                errors=n.errors,
                queue_depth=depth,
                lag_seconds=lag,
                unrouted=n.unrouted,
            )
        srcs = [s for s in stages.values() if s.kind == "source"]
        sinks = [s for s in stages.values() if s.kind == "sink"]
        lags = [s.lag_seconds for s in stages.values() if s.lag_seconds is not None]
        return RunnerStatistics(
            records_in=sum(s.records_out for s in srcs),
            records_out=sum(s.records_in for s in sinks),
            batches_in=sum(s.batches_out for s in srcs),
            batches_out=sum(s.batches_in for s in sinks),
            errors=sum(s.errors for s in stages.values()),
            queue_depth=sum(s.queue_depth for s in stages.values()),
            lag_seconds=max(lags) if lags else None,
            checkpoints=self._checkpoints,
            uptime_seconds=(time.monotonic_ns() - self._started_ns) / 1e9 if self._started_ns else 0.0,
            stages=stages,
        )

    # ------------------------------------------------------------------- run
    def stop(self) -> None:
        """Stop gracefully: pause sources, drain, flush sinks, checkpoint."""
        if self._stop_requested:
            return
        self._stop_requested = True
        if not any(n.kind == "source" and not n.ended for n in self._nodes.values()):
            return  # everything is draining to its natural end already
        self._stopping = True
        self._request_checkpoint(final=True)
        self._interrupt_waiting_sources()

    def _interrupt_waiting_sources(self) -> None:
        for n in self._nodes.values():
            if n.kind == "source" and n.in_next and n.wait_scope is not None:
                n.wait_scope.cancel()

    async def run(self, *, handle_signals: bool = False) -> RunSummary:
        """Run until every source has ended (a replay), or until stopped."""
        if self._started_ns:
            raise GraphError("a Runner runs once; build a new one")
        self._started_ns = time.monotonic_ns()
        self._all_ended = anyio.Event()
        await self._restore()
        self._wire()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                if handle_signals:
                    tg.start_soon(self._watch_signals)
                if self.store is not None:
                    tg.start_soon(self._checkpoint_timer)
                for n in self._nodes.values():
                    if not n.fused:
                        tg.start_soon(self._guard, n)
                tg.start_soon(self._wait_done, tg)
        except BaseExceptionGroup as eg:
            err = _first_error(eg)
            raise err from err.__cause__
        finally:
            self._close_streams()
        stopped = self._stopping
        if not stopped and self.store is not None:
            await self._write_checkpoint(self._next_checkpoint, dict(self._ended_states), True)
        return RunSummary(
            pipeline=self.pipeline.name,
            stopped=stopped,
            resumed_from=self._resumed_from,
            statistics=self.statistics(),
        )

    def _close_streams(self) -> None:
        for n in self._nodes.values():
            for streams in n.ports.values():
                for st in streams:
                    st.close()
            if n.recv is not None:
                n.recv.close()

    def _mark_ended(self, node: _Node) -> None:
        node.ended = True
        if all(n.ended for n in self._nodes.values() if not n.fused):
            self._all_ended.set()

    async def _wait_done(self, tg: TaskGroup) -> None:
        """Cancel the timers once every node has ended (a stop cancels the
        graph itself, after its final checkpoint)."""
        await self._all_ended.wait()
        tg.cancel_scope.cancel()

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if self._stop_requested:
                    print("srestream: second signal, stopping now", file=sys.stderr)
                    assert self._tg is not None
                    self._tg.cancel_scope.cancel()
                    return
                self.stop()

    async def _guard(self, node: _Node) -> None:
        runner = {"source": self._run_source, "stage": self._run_stage, "sink": self._run_sink}
        try:
            await runner[node.kind](node)
        except anyio.get_cancelled_exc_class():
            raise
        except StageError:
            raise
        except Exception as exc:
            raise StageError(node.id, f"{type(exc).__name__}: {exc}") from exc

    async def _restore(self) -> None:
        if self.store is None or not self.resume:
            return
        cp = await self.store.load_checkpoint(self.pipeline.name)
        if cp is None or cp.complete:
            return
        for cid, blob in cp.states.items():
            node = self._nodes.get(cid)
            restore = getattr(node.logic, "restore", None) if node else None
            if restore is not None:
                restore(msgspec.msgpack.decode(blob))
        self._resumed_from = cp.checkpoint_id
        self._next_checkpoint = cp.checkpoint_id + 1

    # ------------------------------------------------------------- the nodes
    async def _send(self, node: _Node, port: str, batch: Any) -> None:
        for s in node.ports.get(port, ()):
            await s.send(batch)

    @staticmethod
    def _count_out(node: _Node, batch: Batch) -> None:
        node.records_out += len(batch)
        node.batches_out += 1
        ts = getattr(batch[-1], "ts_ns", None)
        if ts.__class__ is int:
            node.last_event_ns = ts

    async def _emit(self, node: _Node, batch: Batch) -> None:
        self._count_out(node, batch)
        for s in node.ports.get("", ()):
            await s.send(batch)

    async def _attributed(self, member: _Node, gen: AsyncIterator[Batch]) -> AsyncIterator[Batch]:
        """In a chain, an exception raised by a member's own code names that
        member (those from further up are StageErrors already)."""
        try:
            async with aclosing(gen):  # type: ignore[type-var]
                async for batch in gen:
                    yield batch
        except (StageError, anyio.get_cancelled_exc_class(), GeneratorExit):
            raise
        except Exception as exc:
            raise StageError(member.id, f"{type(exc).__name__}: {exc}") from exc

    async def _link(
        self, prev: _Node, nxt: _Node, gen: AsyncIterator[Batch]
    ) -> AsyncIterator[Batch]:
        """The upstream of a fused stage: the generator of the one before."""
        async with aclosing(gen):  # type: ignore[type-var]
            async for batch in gen:
                if prev.outputs.pending:
                    await self._flush_side(prev)
                if not batch:
                    continue
                self._count_out(prev, batch)
                nxt.records_in += len(batch)
                nxt.batches_in += 1
                yield batch

    async def _flush_side(self, node: _Node) -> None:
        for name, records in node.outputs.take().items():
            if name == "deadletter":
                node.errors += len(records)
            streams = node.ports.get(name)
            if not streams:
                node.unrouted += len(records)
                continue
            for s in streams:
                await s.send(records)

    async def _run_source(self, node: _Node) -> None:
        gen = node.logic()
        exhausted = False
        try:
            # A stop cancels this scope only while the source waits for its
            # next batch (in_next): a batch it has yielded is always sent on.
            with anyio.CancelScope() as scope:
                node.wait_scope = scope
                while not self._stopping:
                    node.in_next = True
                    try:
                        batch = await gen.__anext__()
                    except StopAsyncIteration:
                        exhausted = True
                        break
                    finally:
                        node.in_next = False
                    if scope.cancel_called:
                        # Stopped just as the batch came: anyio keeps delivering
                        # the cancellation, so hand the batch on shielded.
                        with anyio.CancelScope(shield=True):
                            if batch:
                                await self._emit(node, batch)
                            if node.outputs.pending:
                                await self._flush_side(node)
                        break
                    if batch:
                        await self._emit(node, batch)
                    else:  # idle: stages that act on wall-clock time get their turn
                        await self._send(node, "", batch)
                    if node.outputs.pending:
                        await self._flush_side(node)
                    cp = self._current
                    if cp is not None and node.barrier_sent < cp.id:
                        await self._source_barrier(node, cp)
                        if cp.final:
                            break
                        await cp.done.wait()
            node.wait_scope = None
        finally:
            with anyio.CancelScope(shield=True):
                await gen.aclose()
        if exhausted and not self._stopping:
            self._ended_states[node.id] = _snapshot(node.logic)
            await self._end(node)
            return
        # Stopping: send the final barrier (unless sent), then hold the
        # streams open until the runner cancels the graph, so that no stage
        # mistakes a stop for the end of its input.
        while True:
            cp = self._current
            if cp is not None and node.barrier_sent < cp.id:
                await self._source_barrier(node, cp)
            if cp is not None and cp.final:
                break
            await anyio.sleep(0.005)
        self._mark_ended(node)
        await anyio.sleep_forever()

    async def _source_barrier(self, node: _Node, cp: _Checkpoint) -> None:
        cp.states[node.id] = _snapshot(node.logic)
        node.barrier_sent = cp.id
        await self._send_barrier(node, cp)

    async def _send_barrier(self, node: _Node, cp: _Checkpoint) -> None:
        for port, streams in node.ports.items():
            sender = f"{node.id}.{port}" if port else node.id
            for s in streams:
                await s.send(_Barrier(cp.id, cp.final, sender))

    async def _end(self, node: _Node) -> None:
        for port, streams in node.ports.items():
            sender = f"{node.id}.{port}" if port else node.id
            for s in streams:
                await s.send(_End(sender))
                s.close()
        self._mark_ended(node)

    async def _upstream(self, node: _Node) -> AsyncIterator[Batch]:
        """The upstream a stage or sink iterates: data batches only; barriers
        and end markers are handled here."""
        recv = node.recv
        assert recv is not None
        open_inputs = set(node.input_keys)
        arrived: set[str] = set()
        barrier: _Barrier | None = None
        with recv:
            while True:
                try:
                    item = await recv.receive()
                except anyio.EndOfStream:
                    return
                cls = item.__class__
                if cls is _Barrier:
                    arrived.add(item.sender)
                    barrier = item
                elif cls is _End:
                    open_inputs.discard(item.sender)
                    arrived.discard(item.sender)
                else:
                    if item:
                        node.records_in += len(item)
                        node.batches_in += 1
                    yield item
                    if node.outputs.pending:
                        await self._flush_side(node)
                    continue
                if barrier is not None and arrived and arrived >= open_inputs:
                    arrived.clear()
                    b, barrier = barrier, None
                    await self._node_barrier(node, b)

    async def _node_barrier(self, node: _Node, b: _Barrier) -> None:
        cp = self._current
        if cp is None or cp.id != b.checkpoint_id:
            raise GraphError(f"{node.id!r} got barrier {b.checkpoint_id} out of turn")
        sink = None
        for member in node.chain:
            if member.outputs.pending:
                await self._flush_side(member)
            if member.kind == "sink":
                sink = member
                flush = getattr(member.logic, "flush", None)
                if flush is not None:
                    res = flush()
                    if inspect.isawaitable(res):
                        await res
            cp.states[member.id] = _snapshot(member.logic)
        for member in node.chain:
            if member.kind != "sink":
                await self._send_barrier(member, cp)
        if sink is not None:
            cp.acked.add(sink.id)
            await self._maybe_complete(cp)

    async def _run_stage(self, node: _Node) -> None:
        gen = node.logic(self._upstream(node))
        if len(node.chain) > 1:
            gen = self._attributed(node, gen)
        last = node
        sink = node.chain[-1] if node.chain[-1].kind == "sink" else None
        for member in node.chain[1:]:
            if member is sink:
                break
            gen = self._attributed(member, member.logic(self._link(last, member, gen)))
            last = member
        if sink is not None:
            try:
                await sink.logic(self._link(last, sink, gen))
            except (StageError, anyio.get_cancelled_exc_class()):
                raise
            except Exception as exc:
                raise StageError(sink.id, f"{type(exc).__name__}: {exc}") from exc
        else:
            async with aclosing(gen) as out:
                async for batch in out:
                    if batch:
                        await self._emit(last, batch)
                    if last.outputs.pending:
                        await self._flush_side(last)
        for member in node.chain:
            if member.outputs.pending:
                await self._flush_side(member)
            self._ended_states[member.id] = _snapshot(member.logic)
        for member in node.chain:
            if member.kind == "sink":
                await self._sink_ended(member)
            else:
                await self._end(member)

    async def _run_sink(self, node: _Node) -> None:
        upstream = self._upstream(node)
        async with aclosing(upstream):  # type: ignore[type-var]
            await node.logic(upstream)
        self._ended_states[node.id] = _snapshot(node.logic)
        await self._sink_ended(node)

    async def _sink_ended(self, node: _Node) -> None:
        self._mark_ended(node)
        self._live_sinks.discard(node.id)
        if self._current is not None:
            await self._maybe_complete(self._current)

    # ----------------------------------------------------------- checkpoints
    def _request_checkpoint(self, *, final: bool) -> _Checkpoint | None:
        if self._current is not None:
            if final and not self._current.final:
                self._final_pending = True
            return self._current
        if not any(n.kind == "source" and not n.ended for n in self._nodes.values()):
            return None
        cp = _Checkpoint(self._next_checkpoint, final)
        self._next_checkpoint += 1
        self._current = cp
        return cp

    async def _maybe_complete(self, cp: _Checkpoint) -> None:
        if not cp.acked >= self._live_sinks or cp.done.is_set():
            return
        states = dict(self._ended_states)
        states.update(cp.states)
        if self.store is not None:
            await self._write_checkpoint(cp.id, states, False)
        self._checkpoints += 1
        self._current = None
        cp.done.set()
        if cp.final:
            assert self._tg is not None
            self._tg.cancel_scope.cancel()
        elif self._final_pending:
            self._final_pending = False
            self._request_checkpoint(final=True)
            self._interrupt_waiting_sources()

    async def _write_checkpoint(self, cid: int, states: dict[str, Any], complete: bool) -> None:
        assert self.store is not None
        enc = msgspec.msgpack.encode
        cp = Checkpoint(
            checkpoint_id=cid,
            created_ns=self.clock.now_ns(),
            complete=complete,
            states={k: enc(v) for k, v in states.items() if v is not None},
        )
        with anyio.CancelScope(shield=True):
            await self.store.save_checkpoint(self.pipeline.name, cp)

    async def _checkpoint_timer(self) -> None:
        interval = self.pipeline.runtime.checkpoint_interval.seconds
        if interval <= 0 or math.isinf(interval):
            return
        while True:
            await anyio.sleep(interval)
            cp = self._request_checkpoint(final=False)
            if cp is None:
                return
            await cp.done.wait()


def _snapshot(logic: Any) -> Any:
    snap: Callable[[], Any] | None = getattr(logic, "snapshot", None)
    return snap() if snap is not None else None


def _first_error(eg: BaseExceptionGroup[Any]) -> BaseException:
    """The error to show for a failed run: a StageError if any (the stage
    that failed first), else the first exception."""
    flat: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for x in e.exceptions:
                walk(x)
        else:
            flat.append(e)

    walk(eg)
    for e in flat:
        if isinstance(e, StageError):
            return e
    return flat[0]


async def run_pipeline(pipeline: Pipeline, **kwargs: Any) -> RunSummary:
    """Build a :class:`Runner` and run it to the end."""
    return await Runner(pipeline, **kwargs).run()


"""The ``srestream`` command line.

Exit codes: 0 success; 1 a stage failed while running; 2 bad configuration
or usage; 130 stopped by a signal before the end (state checkpointed).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
import time
from collections.abc import Sequence

import anyio

from ._errors import ConfigError, Problem, SrestreamError
from ._pipeline import Pipeline, load_pipeline
from ._registry import components
from ._runner import Runner, RunnerStatistics

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_STOPPED = 130

# Modules that contribute subcommands through ``add_commands(subparsers)``.
_COMMAND_MODULES: tuple[str, ...] = (
    "srestream.slo._commands",
    "srestream.slo._export_commands",
    "srestream.sim._commands",
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_CONFIG
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        print(f"srestream: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except SrestreamError as exc:
        print(f"srestream: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_STOPPED
    except BrokenPipeError:  # `srestream components | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="srestream",
        description="Logs, traces and metrics in; SLO status, budgets, alerts and incidents out.",
    )
    sub = p.add_subparsers(metavar="COMMAND")

    run = sub.add_parser("run", help="run a pipeline as a long-lived process")
    _common_run_args(run)
    run.set_defaults(func=_cmd_run, replay=False)

    rep = sub.add_parser("replay", help="replay recorded files through a pipeline")
    _common_run_args(rep)
    rep.add_argument(
        "--speed",
        type=float,
        default=None,
        help="event-time speed factor (60 = one hour per minute); default: as fast as possible",
    )
    rep.add_argument("--out", metavar="DIR", help="output directory for directory sinks")
    rep.add_argument("--fresh", action="store_true", help="ignore an unfinished checkpoint")
    rep.set_defaults(func=_cmd_run, replay=True)

    val = sub.add_parser("validate", help="check a pipeline file and report every problem")
    val.add_argument("pipeline")
    val.set_defaults(func=_cmd_validate)

    comp = sub.add_parser("components", help="list the component types and their options")
    comp.add_argument("--options", action="store_true", help="show each component's options")
    comp.add_argument(
        "--markdown", action="store_true", help="print the component reference (docs/components.md)"
    )
    comp.set_defaults(func=_cmd_components)

    for mod in _COMMAND_MODULES:
        importlib.import_module(mod).add_commands(sub)
    return p


def _common_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pipeline", help="pipeline file (.yaml or .toml)")
    p.add_argument("--batch-size", type=int, default=None, help="records per batch")
    p.add_argument("--store", metavar="PATH", help="SQLite store for checkpoints")
    p.add_argument(
        "--metrics-addr",
        metavar="HOST:PORT",
        help="serve runner statistics as Prometheus text (e.g. 127.0.0.1:9464)",
    )
    p.add_argument(
        "--metrics-token-file",
        metavar="PATH",
        help="file holding the bearer token /metrics requires (needed off loopback)",
    )
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress line on stderr (auto: when stderr is a terminal)",
    )
    p.add_argument("--quiet", action="store_true", help="no summary at the end")


def _cmd_validate(args: argparse.Namespace) -> int:
    pipeline = load_pipeline(args.pipeline)
    n = sum(1 for _ in pipeline.components())
    warnings = _unread_side_outputs(pipeline)
    for w in warnings:
        print(f"srestream: warning: {w}", file=sys.stderr)
    print(f"{args.pipeline}: ok ({n} components)")
    return EXIT_OK


def _unread_side_outputs(pipeline: Pipeline) -> list[str]:
    consumed = {ref for _, c in pipeline.components() for ref in getattr(c, "inputs", ())}
    out = []
    for cid, c in pipeline.components():
        for port in c.side_outputs:
            if f"{cid}.{port}" not in consumed:
                out.append(f"{cid}.{port} has no consumer: its records are counted, not kept")
    return out


def _cmd_components(args: argparse.Namespace) -> int:
    if args.markdown:
        from ._docs import render_component_docs

        print(render_component_docs(), end="")
        return EXIT_OK
    infos = components()
    width = max(len(t) for t in infos)
    for kind in ("source", "stage", "sink"):
        print(f"{kind}s:")
        for t, info in infos.items():
            if info.kind != kind:
                continue
            print(f"  {t:<{width}}  {info.summary}")
            if args.options:
                for name, typ, default in info.options():
                    if len(default) > 60:
                        default = default[:57] + "..."
                    print(f"  {'':<{width}}    {name}: {typ} = {default}")
    return EXIT_OK


def _store_path(args: argparse.Namespace, pipeline: Pipeline) -> str:
    if args.store:
        return str(args.store)
    if getattr(args, "out", None):
        return os.path.join(args.out, "srestream.sqlite")
    st = pipeline.runtime.store
    return st if os.path.isabs(st) else os.path.join(pipeline.base_dir, st)


def _cmd_run(args: argparse.Namespace) -> int:
    pipeline = load_pipeline(args.pipeline)
    return anyio.run(_run, args, pipeline)


async def _run(args: argparse.Namespace, pipeline: Pipeline) -> int:
    from ._metrics_http import serve_metrics
    from ._store import open_store

    endpoint = _metrics_endpoint(args) if args.metrics_addr else None
    store_path = _store_path(args, pipeline)
    show_progress = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    async with open_store(store_path) as store:
        runner = Runner(
            pipeline,
            store=store,
            speed=getattr(args, "speed", None),
            batch_size=args.batch_size,
            out_dir=getattr(args, "out", None),
            resume=not getattr(args, "fresh", False),
        )
        async with anyio.create_task_group() as tg:
            if endpoint is not None:
                host, port, token = endpoint
                await tg.start(
                    functools.partial(serve_metrics, bearer_token=token), runner, host, port
                )
            if show_progress:
                tg.start_soon(_progress, runner)
            summary = await runner.run(handle_signals=True)
            tg.cancel_scope.cancel()
    if show_progress:
        print(file=sys.stderr)
    if not args.quiet:
        _print_summary(pipeline.name, summary.statistics, summary.stopped, summary.resumed_from)
    return EXIT_STOPPED if summary.stopped else EXIT_OK


def _metrics_endpoint(args: argparse.Namespace) -> tuple[str, int, str | None]:
    """(host, port, bearer token) of --metrics-addr; off loopback a token is required."""
    from .io._http import _is_loopback

    host, _, port = str(args.metrics_addr).rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit():
        raise ConfigError([Problem("--metrics-addr", f"expected HOST:PORT, got {args.metrics_addr!r}")])
    token = None
    if args.metrics_token_file:
        try:
            with open(args.metrics_token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as exc:
            raise ConfigError(
                [Problem("--metrics-token-file", f"cannot read: {exc.strerror}")]
            ) from None
        if not token:
            raise ConfigError([Problem("--metrics-token-file", "the file is empty")])
    elif not _is_loopback(host):
        raise ConfigError(
            [Problem("--metrics-addr", f"{host} is not loopback: give --metrics-token-file")]
        )
    return host, int(port), token


async def _progress(runner: Runner) -> None:
    last_n, last_t = 0, time.monotonic()
    while True:
        await anyio.sleep(0.5)
        st = runner.statistics()
        now = time.monotonic()
        rate = (st.records_in - last_n) / max(now - last_t, 1e-9)
        last_n, last_t = st.records_in, now
        lag = f"{st.lag_seconds:,.1f}s" if st.lag_seconds is not None else "-"
        print(
            f"\r{st.records_in:>12,} records  {rate:>12,.0f}/s  lag {lag}  "
            f"dead letters {st.errors:,}  queued {st.queue_depth}",
            end="",
            file=sys.stderr,
            flush=True,
        )


def _print_summary(
    name: str, st: RunnerStatistics, stopped: bool, resumed_from: int | None
) -> None:
    how = "stopped (checkpointed; run again to resume)" if stopped else "finished"
    rate = st.records_in / st.uptime_seconds if st.uptime_seconds else 0.0
    lines = [
        f"srestream: pipeline {name!r} {how}"
        + (f", resumed from checkpoint {resumed_from}" if resumed_from else ""),
        f"  {st.records_in:,} records in, {st.records_out:,} out, {st.errors:,} dead letters, "
        f"{st.uptime_seconds:.2f}s ({rate:,.0f} records/s), {st.checkpoints} checkpoints",
    ]
    for s in st.stages.values():
        extra = f", {s.unrouted:,} unrouted" if s.unrouted else ""
        lines.append(
            f"  {s.kind:<6} {s.component_id:<20} in {s.records_in:>10,}  out {s.records_out:>10,}"
            f"  errors {s.errors:>6,}{extra}"
        )
    print("\n".join(lines), file=sys.stderr)


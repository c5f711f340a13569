"""``srestream backtest``: replay recorded logs against SLO alert rules and
score the pages against known incidents (see :mod:`srestream.slo._backtest`).

    srestream backtest HISTORY... --slos FILE --truth FILE
        [--objective [SLO=]PERCENT]... [--compare FILE]...
        [--grace 30m] [--no-dependents] [--allowed-lateness 0s] [--json FILE]

Variants: ``baseline`` is the SLO file as written; each ``--objective``
adds the baseline with a proposed objective (for every SLO, for SLOs
named SLO, or ``SERVICE/NAME``); each ``--compare`` adds another SLO file
(other alert windows, factors or SLIs).  Exit 0 when the report is
written, 2 on bad input (every problem at once, each with its file and
path).
"""

from __future__ import annotations

import argparse
import os
import sys

from .._duration import parse_duration
from .._errors import ConfigError, Problem

__all__ = ["add_backtest_command"]


def add_backtest_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``backtest``; it sets ``func=`` returning an exit code."""
    b = subparsers.add_parser(
        "backtest",
        help="replay recorded logs against SLO alert rules and score the pages against incidents",
        description="Replay recorded JSON logs (in event-time order) through the SLO windows and "
        "burn-rate alerts of one SLO file and its variants, and report per variant, SLO, service "
        "and tier: pages, true and false positives, missed incidents, precision, recall, "
        "detection delay (median, max) and pages per week.  The ground truth is a truth.json "
        "from `srestream sim` or an incidents file (YAML/JSON: incidents: [{id, service, start, "
        "end, slo, affected}]).",
    )
    b.add_argument("history", nargs="+", metavar="HISTORY", help="JSON log files (globs allowed)")
    b.add_argument("--slos", required=True, metavar="FILE",
                   help="the SLO file (srestream, Sloth or OpenSLO): the baseline variant")
    b.add_argument("--truth", required=True, metavar="FILE",
                   help="truth.json from srestream sim, or an incidents file (YAML or JSON)")
    b.add_argument("--objective", action="append", default=[], metavar="[SLO=]PERCENT",
                   help="a variant: the baseline with this objective for every SLO, for the SLOs "
                   "named SLO, or for SERVICE/NAME (repeatable)")
    b.add_argument("--compare", action="append", default=[], metavar="FILE",
                   help="a variant: another SLO file, e.g. other alert windows (repeatable)")
    b.add_argument("--grace", default="30m", metavar="DURATION",
                   help="a page up to this long after an incident's end still counts for it (default 30m)")
    b.add_argument("--no-dependents", action="store_true",
                   help="only pages of an incident's own service count, not of the services "
                   "it lists as affected")
    b.add_argument("--allowed-lateness", default="0s", metavar="DURATION",
                   help="allowed lateness of the SLI windows, as in the pipeline (default 0s)")
    b.add_argument("--json", metavar="FILE", help="also write the full report (pages included) as JSON")
    b.set_defaults(func=_cmd_backtest)


def _duration(text: str, option: str, problems: list[Problem]) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        problems.append(Problem(option, f"bad duration {text!r}: {exc}"))
        return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    import anyio

    from ..io._files import expand_paths
    from ._backtest import BacktestReport, BacktestVariant, backtest, objective_variant
    from ._backtest_render import render_backtest_json, render_backtest_markdown
    from ._ground_truth import GroundTruth, load_ground_truth
    from ._spec import load_slos

    problems: list[Problem] = []
    grace = _duration(args.grace, "--grace", problems)
    lateness = _duration(args.allowed_lateness, "--allowed-lateness", problems)
    try:
        paths = expand_paths(args.history, ".", where="HISTORY")
    except ConfigError as exc:
        problems.extend(exc.problems)
        paths = []
    variants: list[BacktestVariant] = []
    try:
        variants.append(BacktestVariant(name="baseline", slos=load_slos(args.slos), description=f"{args.slos} as written"))
    except ConfigError as exc:
        problems.extend(exc.problems)
    for i, text in enumerate(args.objective):
        select, _, pct = text.rpartition("=")
        try:
            objective = float(pct)
        except ValueError:
            problems.append(Problem(f"--objective[{i}]", f"expected [SLO=]PERCENT, got {text!r}"))
            continue
        if variants:
            try:
                variants.append(objective_variant(variants[0], objective, select=select))
            except ValueError as exc:
                problems.append(Problem(f"--objective[{i}]", str(exc), args.slos))
            except ConfigError as exc:
                problems.extend(Problem(f"--objective[{i}]: {p.path}", p.message, p.file) for p in exc.problems)
    for i, path in enumerate(args.compare):
        try:
            slos = load_slos(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        name = f"slos {os.path.basename(path)}"
        if any(v.name == name for v in variants):
            name = f"slos {path} (--compare[{i}])"
        variants.append(BacktestVariant(name=name, slos=slos, description=f"{path} as written"))
    truth: GroundTruth | None = None
    try:
        truth = load_ground_truth(args.truth)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    assert truth is not None

    async def run() -> BacktestReport:
        return await backtest(paths, variants, truth, grace_ns=grace, dependents=not args.no_dependents,
                              allowed_lateness_ns=lateness)

    report = anyio.run(run)
    if args.json:
        tmp = f"{args.json}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(render_backtest_json(report))
            os.replace(tmp, args.json)
        except OSError as exc:
            raise ConfigError([Problem("--json", f"cannot write: {exc.strerror}", args.json)]) from exc
    sys.stdout.write(render_backtest_markdown(report))
    sys.stdout.flush()
    return 0

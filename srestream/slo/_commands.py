"""CLI subcommands contributed by this package (see srestream._cli).

``srestream gate SERVICE --slos FILE --budgets PATH [--at TIME]`` answers
whether SERVICE may deploy now (or at TIME), and why: exit 0 allowed, 1
refused, 2 bad input.  PATH is a ``budgets.jsonl`` file, an output
directory holding one, or the SQLite file of the budget ledger (the
budgets are then computed from its rollups at TIME).  With
``--governance STORE`` (alias ``--audit``) the gate reads the SLOs in
effect at TIME (approved changes applied) and appends its decision to the
store's audit trail, ``--by NAME`` naming who asked.

``srestream slo ...`` (reviews, proposals, approvals, the audit trail) is
in :mod:`srestream.slo._governance_commands`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .._errors import ConfigError, Problem
from .._output import rfc3339_ms
from ._governance import GovernanceStore
from ._governance_changes import effective_slos
from ._governance_commands import add_governance_commands, default_actor
from ._policy import BudgetGate, budgets_from_ledger, load_budgets
from ._records import Budget
from ._spec import SLOSet, load_slos

__all__ = ["add_commands"]


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this package's subcommands; each sets ``func=`` returning an exit code."""
    gate = subparsers.add_parser(
        "gate",
        help="is deployment of SERVICE allowed now, and why (exit 0 yes, 1 no)",
        description="Answer from the error budgets and the budget policy whether SERVICE may deploy.",
    )
    gate.add_argument("service", metavar="SERVICE")
    gate.add_argument("--slos", required=True, metavar="FILE", help="SLO file (YAML)")
    gate.add_argument(
        "--budgets",
        required=True,
        metavar="PATH",
        help="budgets.jsonl, an output directory holding it, or the SQLite store of the budget ledger",
    )
    gate.add_argument("--at", metavar="TIME", help="RFC 3339 time or epoch (default: now)")
    gate.add_argument("--json", action="store_true", help="print the decision as JSON")
    gate.add_argument("--governance", "--audit", dest="governance", metavar="STORE",
                      help="governance store: use the SLOs in effect (approved changes) and "
                      "audit the decision there (created if missing)")
    gate.add_argument("--by", metavar="NAME", help="who asks, for the audit trail (default: $USER)")
    gate.set_defaults(func=_cmd_gate)
    add_governance_commands(subparsers)


def _read_budgets(path: str, slos: SLOSet, at_ns: int) -> list[Budget]:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except IsADirectoryError:
        head = b""
    except OSError as exc:
        raise ConfigError([Problem("--budgets", f"cannot read: {exc.strerror}", path)]) from exc
    if head.startswith(b"SQLite format 3"):
        return budgets_from_ledger(path, slos, at_ns)
    return load_budgets(path)


def _parse_at(text: str | None) -> int:
    if text is None:
        return time.time_ns()
    from ..parse._time import parse_timestamp

    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise ConfigError([Problem("--at", f"bad time {text!r}: {exc}")]) from exc


def _cmd_gate(args: argparse.Namespace) -> int:
    at = _parse_at(args.at)
    if not args.governance:
        slos = load_slos(args.slos)
        d = BudgetGate(slos, _read_budgets(args.budgets, slos, at)).deployment_allowed(args.service, at)
    else:
        with GovernanceStore(args.governance) as store:
            slos = effective_slos(args.slos, store, at)
            gate = BudgetGate(slos, _read_budgets(args.budgets, slos, at), audit=store,
                              actor=args.by or default_actor())
            d = gate.deployment_allowed(args.service, at)
    if args.json:
        print(json.dumps({"service": d.service, "at": rfc3339_ms(d.at_ns), "allowed": d.allowed,
                          "reasons": d.reasons, "actions": d.actions}))
    else:
        verdict = "yes" if d.allowed else "no"
        print(f"deploy {d.service} at {rfc3339_ms(d.at_ns)}: {verdict}")
        for r in d.reasons:
            print(f"  - {r}")
    sys.stdout.flush()
    return 0 if d.allowed else 1

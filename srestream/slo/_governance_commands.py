"""``srestream slo ...``: SLO governance from the command line.

* ``slo reviews SLOFILE [--at TIME] [--within 14d] [--all] [--json]``: SLOs
  whose review is overdue or due soon, with who reviews them;
* ``slo reviewed SLOFILE SLO_ID --by NAME [--note TEXT]``: record a review;
* ``slo propose SLOFILE SLO_ID --set FIELD=VALUE... --by NAME --reason TEXT``;
* ``slo approve PROPOSAL_ID --by NAME``, ``slo reject PROPOSAL_ID --by NAME
  --reason TEXT``, ``slo proposals [--state S] [--json]``;
* ``slo apply SLOFILE --by NAME``: write approved changes into the file;
* ``slo effective SLOFILE [--at TIME]``: the SLO document in effect (YAML),
  e.g. to replay history with the SLOs of that time;
* ``slo audit [--since TIME] [--json] [--verify]``.

The store is ``--store PATH``, or the one beside ``SLOFILE``/``--slos FILE``
(see :func:`default_store_path`).  Exit codes: 0 done, 1 refused (an
approval, a broken audit chain), 2 bad input (with the path of each problem).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import msgspec

from .._duration import parse_duration
from .._errors import ConfigError, Problem
from .._output import rfc3339_ms
from ._governance import AuditEntry, GovernanceStore, Proposal, default_store_path
from ._governance_changes import (
    ApprovalRefused,
    approve_proposal,
    check_proposal,
    effective_document,
    effective_slos,
    parse_changes,
    propose_change,
    read_slo_document,
    record_review,
    reject_proposal,
    review_schedule,
)

__all__ = ["add_governance_commands", "default_actor"]


def default_actor() -> str:
    """Who acts when ``--by`` is not given (the gate): the login name."""
    return os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown"


def add_governance_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``srestream slo`` and its subcommands."""
    slo = subparsers.add_parser(
        "slo", help="SLO governance: reviews, proposed changes and approvals, the audit trail",
        description="SLO reviews and their cadence, changes proposed and approved by a named "
        "reviewer before they take effect, and a hash-chained audit trail (docs/slo.md, Governance).",
    )
    sub = slo.add_subparsers(metavar="ACTION")
    slo.set_defaults(func=lambda args: _usage(slo))

    p = sub.add_parser("reviews", help="SLOs whose review is overdue or due soon, and who reviews them")
    p.add_argument("slo_file", metavar="SLOFILE")
    _store_arg(p)
    p.add_argument("--at", metavar="TIME", help="RFC 3339 time or epoch (default: now)")
    p.add_argument("--within", default="14d", metavar="DURATION", help="look-ahead for 'due' (default 14d)")
    p.add_argument("--all", action="store_true", help="list every SLO with a review block")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_reviews)

    p = sub.add_parser("reviewed", help="record that NAME reviewed an SLO")
    p.add_argument("slo_file", metavar="SLOFILE")
    p.add_argument("slo_id", metavar="SLO_ID", help="service/name, or name when unique")
    p.add_argument("--by", required=True, metavar="NAME")
    p.add_argument("--note", default="")
    _store_arg(p)
    p.set_defaults(func=_cmd_reviewed)

    p = sub.add_parser("propose", help="propose a change to an SLO (effective once approved)")
    p.add_argument("slo_file", metavar="SLOFILE")
    p.add_argument("slo_id", metavar="SLO_ID", help="service/name, or name when unique")
    p.add_argument("--set", dest="changes", action="append", default=[], metavar="FIELD=VALUE",
                   help="a dotted SLO field and its YAML value (repeatable; null removes the field)")
    p.add_argument("--by", required=True, metavar="NAME")
    p.add_argument("--reason", required=True, metavar="TEXT")
    _store_arg(p)
    p.set_defaults(func=_cmd_propose)

    for verb, helptext in (("approve", "approve a proposal (not its proposer; an approver of the SLO)"),
                           ("reject", "reject a proposal (an approver of the SLO, or its proposer)")):
        p = sub.add_parser(verb, help=helptext)
        p.add_argument("proposal_id", metavar="PROPOSAL_ID", type=int)
        p.add_argument("--by", required=True, metavar="NAME")
        if verb == "approve":
            p.add_argument("--note", default="")
        else:
            p.add_argument("--reason", required=True, metavar="TEXT")
        _store_arg(p, slos=True)
        p.set_defaults(func=_cmd_approve if verb == "approve" else _cmd_reject)

    p = sub.add_parser("proposals", help="list proposals and their state")
    _store_arg(p, slos=True)
    p.add_argument("--state", choices=("pending", "approved", "rejected"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_proposals)

    p = sub.add_parser("apply", help="write the approved changes into the SLO file")
    p.add_argument("slo_file", metavar="SLOFILE")
    p.add_argument("--by", required=True, metavar="NAME")
    _store_arg(p)
    p.set_defaults(func=_cmd_apply)

    p = sub.add_parser("effective", help="print the SLO document in effect (YAML), now or --at TIME")
    p.add_argument("slo_file", metavar="SLOFILE")
    p.add_argument("--at", metavar="TIME", help="RFC 3339 time or epoch (default: now)")
    _store_arg(p)
    p.set_defaults(func=_cmd_effective)

    p = sub.add_parser("audit", help="the audit trail; --verify checks its hash chain")
    _store_arg(p, slos=True)
    p.add_argument("--since", metavar="TIME", help="entries recorded at or after TIME")
    p.add_argument("--json", action="store_true")
    p.add_argument("--verify", action="store_true", help="check the chain and the rows it covers")
    p.set_defaults(func=_cmd_audit)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _store_arg(p: argparse.ArgumentParser, *, slos: bool = False) -> None:
    p.add_argument("--store", metavar="PATH",
                   help="governance store (default: beside the SLO file, <name>.governance.sqlite)")
    if slos:
        p.add_argument("--slos", metavar="FILE", help="the SLO file (its store is beside it)")


def _store_path(args: argparse.Namespace) -> str:
    if args.store:
        return str(args.store)
    slo_file = getattr(args, "slo_file", None) or getattr(args, "slos", None)
    if not slo_file:
        raise ConfigError([Problem("--store", "give --store PATH or --slos FILE (the store is beside it)")])
    return default_store_path(slo_file)


def _existing_store(args: argparse.Namespace) -> str | None:
    """The store to read, None when the default one was never created; a
    ``--store`` given explicitly must exist (a typo is not an empty store)."""
    path = _store_path(args)
    if os.path.exists(path):
        return path
    if args.store:
        raise ConfigError([Problem("--store", f"no governance store at {path}")])
    return None


def _open(args: argparse.Namespace, *, create: bool) -> GovernanceStore:
    return GovernanceStore(_store_path(args), create=create)


def _parse_time(text: str | None, option: str) -> int:
    if text is None:
        return time.time_ns()
    from ..parse._time import parse_timestamp

    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise ConfigError([Problem(option, f"bad time {text!r}: {exc}")]) from exc


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))
    sys.stdout.flush()


def _time_or(ns: int | None, default: str) -> str:
    return rfc3339_ms(ns) if ns else default


# ---------------------------------------------------------------- reviews


def _cmd_reviews(args: argparse.Namespace) -> int:
    at = _parse_time(args.at, "--at")
    try:
        within = parse_duration(args.within)
    except ValueError as exc:
        raise ConfigError([Problem("--within", str(exc))]) from exc
    path = _existing_store(args)
    store = GovernanceStore(path, create=False) if path else None
    try:
        slos = effective_slos(args.slo_file, store, at)
        rows = review_schedule(slos, store, at, within_ns=within)
    finally:
        if store is not None:
            store.close()
    if not args.all:
        rows = [r for r in rows if r.status != "ok"]
    if args.json:
        _print_json([msgspec.to_builtins(r) | {"last_reviewed": _time_or(r.last_reviewed_ts_ns, ""),
                                                "next_due": _time_or(r.next_due_ts_ns, "")} for r in rows])
        return 0
    if not rows:
        print(f"no SLO review is due by {rfc3339_ms(at + within)}")
    for r in rows:
        last = (f"last {rfc3339_ms(r.last_reviewed_ts_ns)[:10]} by {r.last_reviewed_by}"
                if r.last_reviewed_ts_ns is not None else "never reviewed")
        due = f"due {rfc3339_ms(r.next_due_ts_ns)[:10]}" if r.next_due_ts_ns is not None else "due now"
        print(f"{r.status:<15} {r.subject:<40} owner {r.owner:<12} every {r.cadence:<5} {due} ({last})")
    sys.stdout.flush()
    return 0


def _cmd_reviewed(args: argparse.Namespace) -> int:
    with _open(args, create=True) as store:
        r = record_review(store, args.slo_file, args.slo_id, by=args.by, note=args.note)
    print(f"review of {r.subject} by {r.reviewer} recorded at {rfc3339_ms(r.ts_ns)}")
    return 0


# ---------------------------------------------------------------- proposals


def _describe(p: Proposal) -> str:
    changes = ", ".join(f"{k}: {p.before.get(k)!r} -> {v!r}" for k, v in p.changes.items())
    state = p.state if p.state == "pending" else f"{p.state} by {p.decided_by} at {rfc3339_ms(p.decided_ns)}"
    applied = f", written into the file at {rfc3339_ms(p.applied_ns)}" if p.applied_ns else ""
    return (f"proposal {p.proposal_id} [{state}{applied}] {p.subject}: {changes}\n"
            f"    proposed by {p.proposer} at {rfc3339_ms(p.proposed_ns)}: {p.reason}")


def _cmd_propose(args: argparse.Namespace) -> int:
    changes = parse_changes(args.changes)
    if not os.path.exists(_store_path(args)):  # no store for a proposal that is refused
        check_proposal(os.path.abspath(args.slo_file), args.slo_id, changes, (), time.time_ns())
    with _open(args, create=True) as store:
        p = propose_change(store, args.slo_file, args.slo_id, changes, by=args.by, reason=args.reason)
    print(_describe(p))
    print(f"    takes effect once approved: srestream slo approve {p.proposal_id} --by REVIEWER")
    return 0


def _decide(args: argparse.Namespace, approve: bool) -> int:
    with _open(args, create=False) as store:
        try:
            if approve:
                p = approve_proposal(store, args.proposal_id, by=args.by, note=args.note, slo_file=args.slos)
            else:
                p = reject_proposal(store, args.proposal_id, by=args.by, reason=args.reason, slo_file=args.slos)
        except ApprovalRefused as exc:
            verb = "approval" if approve else "rejection"
            print(f"srestream: {verb} of proposal {exc.proposal_id} by {exc.by} refused:", file=sys.stderr)
            for r in exc.reasons:
                print(f"  - {r}", file=sys.stderr)
            return 1
    print(_describe(p))
    return 0


def _cmd_approve(args: argparse.Namespace) -> int:
    return _decide(args, approve=True)


def _cmd_reject(args: argparse.Namespace) -> int:
    return _decide(args, approve=False)


def _cmd_proposals(args: argparse.Namespace) -> int:
    path = _existing_store(args)
    if path is None:
        rows: list[Proposal] = []
    else:
        with GovernanceStore(path, create=False) as store:
            rows = store.proposals(state=args.state)
    if args.json:
        _print_json([msgspec.to_builtins(p) | {"proposed": rfc3339_ms(p.proposed_ns),
                                                "decided": _time_or(p.decided_ns, ""),
                                                "applied": _time_or(p.applied_ns, "")} for p in rows])
        return 0
    if not rows:
        print("no proposals")
    for p in rows:
        print(_describe(p))
    sys.stdout.flush()
    return 0


def _cmd_apply(args: argparse.Namespace) -> int:
    from ._governance_yaml import apply_approved

    with _open(args, create=False) as store:
        result = apply_approved(args.slo_file, store, by=args.by)
    if not result.applied:
        print("no approved change waits to be written")
        return 0
    for p in result.applied:
        print(f"applied proposal {p.proposal_id} to {p.subject}: "
              + ", ".join(f"{k} = {v!r}" for k, v in p.changes.items()))
    if not result.comments_kept:
        print(f"note: {args.slo_file} was rewritten whole (a change added or removed a field): "
              "its comments and layout were not kept", file=sys.stderr)
    return 0


def _cmd_effective(args: argparse.Namespace) -> int:
    import yaml

    at = _parse_time(args.at, "--at")
    path = _existing_store(args)
    doc = read_slo_document(args.slo_file)
    if path is None:
        effective_slos(args.slo_file)  # validates (raises with every problem otherwise)
    else:
        with GovernanceStore(path, create=False) as store:
            doc = effective_document(doc, store.proposals(state="approved"), at)
            effective_slos(args.slo_file, store, at)
    print(f"# SLOs of {args.slo_file} in effect at {rfc3339_ms(at)}")
    sys.stdout.write(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    sys.stdout.flush()
    return 0


# ---------------------------------------------------------------- audit


def _entry_json(e: AuditEntry) -> dict[str, Any]:
    return {"seq": e.seq, "ts": rfc3339_ms(e.ts_ns), "ts_ns": e.ts_ns, "actor": e.actor,
            "action": e.action, "subject": e.subject, "before": e.before, "after": e.after,
            "reason": e.reason, "prev_hash": e.prev_hash, "hash": e.hash}


def _cmd_audit(args: argparse.Namespace) -> int:
    since = _parse_time(args.since, "--since") if args.since else None
    with _open(args, create=False) as store:
        if args.verify:
            v = store.verify_audit()
            if args.json:
                _print_json(msgspec.to_builtins(v))
            elif v.ok:
                print(f"audit trail OK: {v.entries} entries, head hash {v.head_hash}")
            else:
                print(f"audit trail BROKEN ({v.entries} entries):")
                for problem in v.problems:
                    print(f"  - {problem}")
            sys.stdout.flush()
            return 0 if v.ok else 1
        entries = store.audit_entries(since_ns=since)
    if args.json:
        _print_json([_entry_json(e) for e in entries])
        return 0
    for e in entries:
        print(f"{e.seq:>5} {rfc3339_ms(e.ts_ns)} {e.actor:<12} {e.action:<15} {e.subject}: {e.reason}")
    sys.stdout.flush()
    return 0

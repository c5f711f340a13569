"""SLO governance workflow: proposed changes, approval, reviews due.

A change to an SLO is *proposed* (``--set objective=99.5``), validated at
once against the SLO schema (the SLO with the change must pass the same
validation as the file, every problem reported with its path), and takes
effect only when *approved*.  The approval rule, in one sentence:

    a change is approved by someone other than its proposer who, when the
    SLO has a ``review`` block, is its ``review.owner`` or one of its
    ``review.approvers`` (without a ``review`` block, anyone but the
    proposer).

The rule is checked against the SLO as it stands when the approval is
given (an approved change to ``review.approvers`` governs the next
approvals), and so is the change itself: a proposal that no longer passes
validation (another approved change made it invalid) is refused.  Refused
approvals are audited too.

:func:`effective_slos` is the SLO set as of a time: the file with every
change approved at or before that time applied, in approval order.  A
change already written into the file (``srestream slo apply``) but
approved after that time is taken out again, so a replay as of an earlier
time sees the old objective.  Proposals name their SLO as
``service/name``; keep one governance store per SLO file (the default is
beside it).

>>> doc = {"slos": [{"name": "availability", "service": "checkout", "objective": 99.9,
...        "sli": {"kind": "availability", "total": {}, "good": {"status": {"lt": 500}}}}]}
>>> changed = apply_changes(doc, "checkout/availability", {"objective": 99.5})
>>> changed["slos"][0]["objective"], doc["slos"][0]["objective"]
(99.5, 99.9)
"""

from __future__ import annotations

import calendar
import copy
import os
from collections.abc import Iterable, Sequence
from typing import Any, Final

import msgspec

from .._errors import ConfigError, Problem, SrestreamError
from ._governance import GovernanceStore, Proposal
from ._spec import SLOSet, SLOSpec
from ._validate import load_slos, parse_slos

__all__ = [
    "ApprovalRefused",
    "ReviewDue",
    "apply_changes",
    "approve_proposal",
    "approvers_of",
    "check_proposal",
    "effective_document",
    "effective_slos",
    "find_slo",
    "parse_changes",
    "propose_change",
    "read_slo_document",
    "record_review",
    "reject_proposal",
    "review_schedule",
    "slo_entry",
    "slo_subject",
]

_IDENTITY: Final = ("name", "service")
_SLO_FIELDS: Final = frozenset(f.encode_name for f in msgspec.structs.fields(SLOSpec))
_DAY_NS: Final = 86_400_000_000_000


class ApprovalRefused(SrestreamError):
    """An approval or rejection was refused; ``reasons`` says why (each
    reason a sentence naming the rule)."""

    def __init__(self, proposal_id: int, by: str, reasons: Sequence[str]) -> None:
        self.proposal_id = proposal_id
        self.by = by
        self.reasons = list(reasons)
        super().__init__(f"proposal {proposal_id}: {by} refused: " + "; ".join(self.reasons))


def slo_subject(slo: SLOSpec) -> str:
    """How governance names an SLO: ``service/name``."""
    return f"{slo.service}/{slo.name}"


def find_slo(slos: SLOSet, slo_id: str) -> SLOSpec:
    """The SLO named ``service/name``, or ``name`` when only one service
    has an SLO of that name; :class:`ConfigError` otherwise."""
    if "/" in slo_id:
        service, _, name = slo_id.partition("/")
        hits = [s for s in slos.slos if s.service == service and s.name == name]
    else:
        hits = [s for s in slos.slos if s.name == slo_id]
    if len(hits) == 1:
        return hits[0]
    if hits:
        names = ", ".join(slo_subject(s) for s in hits)
        raise ConfigError([Problem("SLO_ID", f"{slo_id!r} names {len(hits)} SLOs ({names}): "
                                              "give service/name", slos.file)])
    known = ", ".join(slo_subject(s) for s in slos.slos) or "none"
    raise ConfigError([Problem("SLO_ID", f"no SLO {slo_id!r} in this file (known: {known})", slos.file)])


def parse_changes(assignments: Sequence[str]) -> dict[str, Any]:
    """``["objective=99.5", "sli.threshold=300ms"]`` -> ``{"objective":
    99.5, "sli.threshold": "300ms"}``: a dotted field path of the SLO, a
    YAML value (``null`` removes the field, back to its default).  Every
    bad assignment is reported, each as ``--set[i]``."""
    import yaml

    out: dict[str, Any] = {}
    problems: list[Problem] = []
    if not assignments:
        problems.append(Problem("--set", "give at least one change, e.g. --set objective=99.5"))
    for i, text in enumerate(assignments):
        where = f"--set[{i}]"
        key, eq, raw = text.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not eq or not key or not all(parts):
            problems.append(Problem(where, f"expected FIELD=VALUE (e.g. objective=99.5), got {text!r}"))
            continue
        if parts[0] in _IDENTITY:
            problems.append(Problem(where, f"{parts[0]} identifies the SLO and cannot be changed by a "
                                           "proposal (add a new SLO instead)"))
            continue
        if parts[0] not in _SLO_FIELDS:
            problems.append(Problem(where, f"unknown SLO field {parts[0]!r} (known: {', '.join(sorted(_SLO_FIELDS))})"))
            continue
        if key in out:
            problems.append(Problem(where, f"{key} is set twice"))
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            problems.append(Problem(where, f"the value of {key} is not YAML: {exc}"))
            continue
        out[key] = msgspec.to_builtins(value)  # dates as text: stored as JSON
    if problems:
        raise ConfigError(problems)
    return out


def read_slo_document(slo_file: str) -> dict[str, Any]:
    """The raw YAML document of an srestream SLO file (governance changes
    apply to srestream's own format, not to imported Sloth/OpenSLO specs)."""
    import yaml

    from ._promql_sli import is_imported_format

    try:
        with open(slo_file, encoding="utf-8") as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d is not None]
    except OSError as exc:
        raise ConfigError([Problem("$", f"cannot read SLO file: {exc.strerror}", slo_file)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("$", f"invalid YAML: {exc}", slo_file)]) from exc
    if is_imported_format(docs):
        raise ConfigError([Problem("$", "governance changes apply to srestream SLO files; this is a "
                                        "Sloth or OpenSLO spec: change it where it is maintained", slo_file)])
    if len(docs) != 1 or not isinstance(docs[0], dict):
        load_slos(slo_file)  # reports what is wrong with it
        raise ConfigError([Problem("$", "expected one mapping with a 'slos' list", slo_file)])
    return docs[0]


def slo_entry(doc: dict[str, Any], subject: str) -> dict[str, Any] | None:
    service, _, name = subject.partition("/")
    for entry in doc.get("slos") or ():
        if isinstance(entry, dict) and entry.get("service") == service and entry.get("name") == name:
            return entry
    return None


_MISSING: Final = object()


def _get(entry: dict[str, Any], path: str) -> Any:
    node: Any = entry
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _set(entry: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = entry
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = copy.deepcopy(value)


def apply_changes(doc: dict[str, Any], subject: str, changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` with ``changes`` set on the SLO ``subject`` (an
    SLO no longer in the file is left out: nothing to change)."""
    out = copy.deepcopy(doc)
    entry = slo_entry(out, subject)
    if entry is not None:
        for path, value in changes.items():
            _set(entry, path, value)
    return out


def _current(doc: dict[str, Any], subject: str, paths: Iterable[str]) -> dict[str, Any]:
    entry = slo_entry(doc, subject) or {}
    out = {}
    for p in paths:
        v = _get(entry, p)
        out[p] = None if v is _MISSING else msgspec.to_builtins(v)
    return out


def effective_document(doc: dict[str, Any], approved: Sequence[Proposal], at_ns: int) -> dict[str, Any]:
    """The SLO document in effect at ``at_ns``: approved changes written
    into the file but approved after ``at_ns`` taken out (where the file
    still holds the approved value), those approved by then and not yet
    written applied, in approval order."""
    ordered = sorted((p for p in approved if p.state == "approved"), key=lambda p: (p.decided_ns, p.proposal_id))
    out = copy.deepcopy(doc)
    for p in reversed(ordered):
        if p.applied_ns and p.decided_ns > at_ns:
            entry = slo_entry(out, p.subject)
            for path, value in p.changes.items():
                if entry is not None and _current(out, p.subject, [path])[path] == value:
                    _set(entry, path, p.before.get(path))
    for p in ordered:
        if not p.applied_ns and p.decided_ns <= at_ns:
            out = apply_changes(out, p.subject, p.changes)
    return out


def _store(store: GovernanceStore | str) -> tuple[GovernanceStore, bool]:
    if isinstance(store, GovernanceStore):
        return store, False
    return GovernanceStore(store, create=False), True


def effective_slos(slo_file: str | os.PathLike[str], store: GovernanceStore | str | None = None,
                   at_ns: int | None = None) -> SLOSet:
    """The SLO set of ``slo_file`` with the changes approved in ``store``
    (a :class:`GovernanceStore` or the path of an existing one) as of
    ``at_ns`` (default: now).  Without a store, or without approved
    changes, this is :func:`load_slos`."""
    import time

    path = os.fspath(slo_file)
    if store is None:
        return load_slos(path)
    gov, owned = _store(store)
    try:
        approved = gov.proposals(state="approved")
    finally:
        if owned:
            gov.close()
    if not approved:
        return load_slos(path)
    at = time.time_ns() if at_ns is None else at_ns
    return parse_slos(effective_document(read_slo_document(path), approved, at), file=path)


def _validate_change(doc: dict[str, Any], subject: str, changes: dict[str, Any], file: str) -> None:
    """Raise :class:`ConfigError` with every problem of the changed SLO set."""
    try:
        parse_slos(apply_changes(doc, subject, changes), file=file)
    except ConfigError as exc:
        raise ConfigError([Problem(p.path, f"with the proposed change: {p.message}", p.file)
                           for p in exc.problems]) from exc


def propose_change(store: GovernanceStore, slo_file: str, slo_id: str, changes: dict[str, Any], *,
                   by: str, reason: str, now_ns: int | None = None) -> Proposal:
    """Validate and record a proposed change to one SLO (pending until approved)."""
    import time

    now = time.time_ns() if now_ns is None else now_ns
    problems = []
    if not by.strip():
        problems.append(Problem("--by", "name who proposes the change"))
    if not reason.strip():
        problems.append(Problem("--reason", "say why the SLO should change"))
    if problems:
        raise ConfigError(problems)
    path = os.path.abspath(slo_file)
    subject, before = check_proposal(path, slo_id, changes, store.proposals(state="approved"), now)
    return store.add_proposal(subject=subject, slo_file=path, changes=changes, before=before,
                              proposer=by, reason=reason, ts_ns=now)


def check_proposal(slo_file: str, slo_id: str, changes: dict[str, Any], approved: Sequence[Proposal],
                   at_ns: int) -> tuple[str, dict[str, Any]]:
    """Check a change against the SLOs in effect at ``at_ns``: raise
    :class:`ConfigError` with every problem (each with its path), else
    return the SLO's subject and the values the change replaces."""
    doc = effective_document(read_slo_document(slo_file), approved, at_ns)
    slo = find_slo(parse_slos(doc, file=slo_file), slo_id)
    subject = slo_subject(slo)
    before = _current(doc, subject, changes)
    same = [k for k, v in changes.items() if before[k] == v]
    if same:
        raise ConfigError([Problem(f"--set {k}", f"{subject} already has {k} = {changes[k]!r}: "
                                                 "nothing to change", slo_file) for k in same])
    _validate_change(doc, subject, changes, slo_file)
    return subject, before


def approvers_of(slo: SLOSpec) -> list[str] | None:
    """Who may approve changes to ``slo``: its review owner and approvers;
    None when it has no ``review`` block (anyone but the proposer)."""
    if slo.review is None:
        return None
    return [slo.review.owner, *(a for a in slo.review.approvers if a != slo.review.owner)]


def _decision_context(store: GovernanceStore, proposal_id: int, by: str, slo_file: str | None,
                      now: int) -> tuple[Proposal, SLOSpec | None, dict[str, Any], str, list[str]]:
    p = store.proposal(proposal_id)
    if not by.strip():
        raise ConfigError([Problem("--by", "name who decides")])
    reasons: list[str] = []
    if p.state != "pending":
        reasons.append(f"it is already {p.state} (by {p.decided_by})")
        return p, None, {}, "", reasons
    path = slo_file or p.slo_file
    doc = effective_document(read_slo_document(path), store.proposals(state="approved"), now)
    slos = parse_slos(doc, file=path)
    slo = next((s for s in slos.slos if slo_subject(s) == p.subject), None)
    if slo is None:
        reasons.append(f"{p.subject} is no longer in {path}")
    return p, slo, doc, path, reasons


def _authority(slo: SLOSpec, by: str) -> str:
    """Why ``by`` may not decide on changes to ``slo`` ('' when they may)."""
    allowed = approvers_of(slo)
    if allowed is None or by in allowed:
        return ""
    assert slo.review is not None
    extra = f" and review.approvers {slo.review.approvers}" if slo.review.approvers else ""
    return (f"{by} is not an approver of {slo_subject(slo)}: changes to it are approved by its "
            f"review.owner {slo.review.owner!r}{extra}")


def approve_proposal(store: GovernanceStore, proposal_id: int, *, by: str, note: str = "",
                     slo_file: str | None = None, now_ns: int | None = None) -> Proposal:
    """Approve a pending proposal (see the rule in the module docstring);
    raise :class:`ApprovalRefused` with the reasons, after auditing the
    refusal.  ``slo_file`` defaults to the file the proposal was made on."""
    import time

    now = time.time_ns() if now_ns is None else now_ns
    p, slo, doc, path, reasons = _decision_context(store, proposal_id, by, slo_file, now)
    if slo is not None:
        if by == p.proposer:
            reasons.append(f"{by} proposed this change and cannot approve it: a second person must")
        why = _authority(slo, by)
        if why:
            reasons.append(why)
        try:
            _validate_change(doc, p.subject, p.changes, path)
        except ConfigError as exc:
            reasons.extend(f"the change no longer passes validation: {q.path}: {q.message}" for q in exc.problems)
    if reasons:
        store.record(actor=by, action="approve_refused", subject=p.subject,
                     after={"refused_proposal": proposal_id}, reason="; ".join(reasons), ts_ns=now)
        raise ApprovalRefused(proposal_id, by, reasons)
    return store.decide_proposal(proposal_id, state="approved", by=by, note=note, ts_ns=now)


def reject_proposal(store: GovernanceStore, proposal_id: int, *, by: str, reason: str,
                    slo_file: str | None = None, now_ns: int | None = None) -> Proposal:
    """Reject a pending proposal: its proposer withdrawing it, or someone
    who may approve it; refusals are audited and raised as :class:`ApprovalRefused`."""
    import time

    if not reason.strip():
        raise ConfigError([Problem("--reason", "say why the change is rejected")])
    now = time.time_ns() if now_ns is None else now_ns
    p, slo, _, _, reasons = _decision_context(store, proposal_id, by, slo_file, now)
    if slo is not None and by != p.proposer:
        why = _authority(slo, by)
        if why:
            reasons.append(why)
    if reasons:
        store.record(actor=by, action="reject_refused", subject=p.subject,
                     after={"refused_proposal": proposal_id}, reason="; ".join(reasons), ts_ns=now)
        raise ApprovalRefused(proposal_id, by, reasons)
    return store.decide_proposal(proposal_id, state="rejected", by=by, note=reason, ts_ns=now)


# ---------------------------------------------------------------- reviews


class ReviewDue(msgspec.Struct, frozen=True, kw_only=True):
    """When one SLO's next review is due and who does it.  ``status``:
    ``never_reviewed``, ``overdue`` (next review before the time asked),
    ``due`` (within the look-ahead) or ``ok``."""

    subject: str
    owner: str
    cadence: str
    last_reviewed_ts_ns: int | None
    last_reviewed_by: str
    next_due_ts_ns: int | None
    status: str


def _date_ns(d: Any) -> int:
    return calendar.timegm(d.timetuple()) * 1_000_000_000


def review_schedule(slos: SLOSet, store: GovernanceStore | None, at_ns: int, *,
                    within_ns: int = 14 * _DAY_NS) -> list[ReviewDue]:
    """Every SLO with a ``review`` block, its last review (the file's
    ``last_reviewed`` date at 00:00 UTC, or a later review or approved
    change in the store at or before ``at_ns``) and its next one (last +
    cadence), most urgent first."""
    recorded = store.last_reviewed(at_ns) if store is not None else {}
    out = []
    for slo in slos.slos:
        r = slo.review
        if r is None:
            continue
        subject = slo_subject(slo)
        last: tuple[int, str] | None = None
        if r.last_reviewed is not None:
            last = (_date_ns(r.last_reviewed), r.owner)
        seen = recorded.get(subject)
        if seen is not None and (last is None or seen[0] > last[0]):
            last = seen
        if last is None:
            out.append(ReviewDue(subject=subject, owner=r.owner, cadence=str(r.cadence),
                                 last_reviewed_ts_ns=None, last_reviewed_by="", next_due_ts_ns=None,
                                 status="never_reviewed"))
            continue
        due = last[0] + r.cadence.ns
        status = "overdue" if due < at_ns else "due" if due <= at_ns + within_ns else "ok"
        out.append(ReviewDue(subject=subject, owner=r.owner, cadence=str(r.cadence),
                             last_reviewed_ts_ns=last[0], last_reviewed_by=last[1],
                             next_due_ts_ns=due, status=status))
    out.sort(key=lambda d: (d.next_due_ts_ns if d.next_due_ts_ns is not None else -1, d.subject))
    return out


def record_review(store: GovernanceStore, slo_file: str, slo_id: str, *, by: str, note: str = "",
                  now_ns: int | None = None) -> Any:
    """Record that ``by`` reviewed an SLO (its next review is due a cadence later)."""
    import time

    if not by.strip():
        raise ConfigError([Problem("--by", "name who reviewed the SLO")])
    now = time.time_ns() if now_ns is None else now_ns
    slo = find_slo(effective_slos(slo_file, store, now), slo_id)
    return store.add_review(subject=slo_subject(slo), reviewer=by, note=note, ts_ns=now)

"""The governance store: SLO reviews, proposed changes and the audit trail.

One SQLite file (WAL mode, owner-only, schema version in ``PRAGMA
user_version``), by default beside the SLO file (``slos.yaml`` ->
``slos.governance.sqlite``, see :func:`default_store_path`), holds::

    proposal   proposed changes to one SLO, pending, approved or rejected
    review     recorded SLO reviews (who, when, a note)
    audit      every review, proposal, approval, refusal, rejection,
               application and gate decision, append-only, hash-chained

Why a hash chain: each audit entry carries the SHA-256 of its own content
and of the previous entry's hash, so editing or deleting a row breaks the
chain from that entry on, and :meth:`GovernanceStore.verify_audit` names
it.  Triggers also refuse ``UPDATE``/``DELETE`` on the audit table, so
only someone who drops them on purpose can tamper.  The proposal and
review rows are checked against the trail too: the latest audited state
of each proposal (and every audited review) must equal its row, so
approving a change by editing the ``proposal`` table is detected as well.
What a chain alone cannot show is the loss of its newest entries: keep
the head hash that ``srestream slo audit --verify`` prints somewhere else
to anchor it.

The store is synchronous on purpose: it is used by the CLI, by the deploy
gate and once when a pipeline stage is built, never per record.  The
workflow rules (who may approve, what a change must pass) live in
:mod:`srestream.slo._governance_changes`.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, Literal, Self

import msgspec

from .._errors import ConfigError, Problem, StoreError

__all__ = [
    "GENESIS_HASH",
    "SCHEMA_VERSION",
    "AuditEntry",
    "AuditVerification",
    "GovernanceStore",
    "Proposal",
    "ProposalState",
    "ReviewRecord",
    "default_store_path",
    "open_governance_store",
]

SCHEMA_VERSION: Final = 1
GENESIS_HASH: Final = "0" * 64
"""The ``prev_hash`` of the first audit entry."""

ProposalState = Literal["pending", "approved", "rejected"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    ts_ns INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    reason TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TABLE IF NOT EXISTS proposal (
    proposal_id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject TEXT NOT NULL,
    slo_file TEXT NOT NULL,
    changes TEXT NOT NULL,
    before TEXT NOT NULL,
    proposer TEXT NOT NULL,
    reason TEXT NOT NULL,
    proposed_ns INTEGER NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT NOT NULL DEFAULT '',
    decided_ns INTEGER NOT NULL DEFAULT 0,
    decision_note TEXT NOT NULL DEFAULT '',
    applied_ns INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS review (
    review_id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS review_subject ON review (subject, ts_ns);
"""


class Proposal(msgspec.Struct, frozen=True, kw_only=True):
    """A proposed change to one SLO: ``changes`` maps a dotted field path
    of the SLO (``objective``, ``sli.threshold``) to its new value (None
    removes the field); ``before`` holds the values it replaces."""

    proposal_id: int
    subject: str
    """``service/name`` of the SLO."""
    slo_file: str
    changes: dict[str, Any]
    before: dict[str, Any]
    proposer: str
    reason: str
    proposed_ns: int
    state: ProposalState = "pending"
    decided_by: str = ""
    decided_ns: int = 0
    decision_note: str = ""
    applied_ns: int = 0
    """When ``srestream slo apply`` wrote the change into the SLO file (0: not yet)."""


class ReviewRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded review of an SLO."""

    review_id: int
    subject: str
    reviewer: str
    ts_ns: int
    note: str = ""


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the audit trail.  ``before``/``after`` are JSON values
    (the proposal or review record, the gate decision); ``hash`` covers
    every other field and ``prev_hash``."""

    seq: int
    ts_ns: int
    actor: str
    action: str
    subject: str
    before: Any
    after: Any
    reason: str
    prev_hash: str
    hash: str


class AuditVerification(msgspec.Struct, frozen=True, kw_only=True):
    """The result of checking the audit trail: ``ok``, how many entries,
    the head hash (to keep elsewhere), and every problem found, each
    naming the entry (``seq``) or the row it concerns."""

    ok: bool
    entries: int
    head_hash: str
    problems: list[str]


_PROPOSAL_ACTIONS: Final = ("propose", "approve", "reject", "apply")
"""Audit actions whose ``after`` holds a proposal's full record (``apply``
under ``after.proposal``): verification compares the latest with the row."""

_enc = msgspec.json.Encoder(order="sorted")


def _json(value: Any) -> str:
    return _enc.encode(value).decode()


def _entry_hash(seq: int, ts_ns: int, actor: str, action: str, subject: str,
                before: str, after: str, reason: str, prev_hash: str) -> str:
    """SHA-256 of the entry's stored text (the JSON as stored, so the hash
    never depends on re-encoding)."""
    body = _enc.encode([seq, ts_ns, actor, action, subject, before, after, reason, prev_hash])
    return hashlib.sha256(body).hexdigest()


def default_store_path(slo_file: str | os.PathLike[str]) -> str:
    """The governance store beside an SLO file: ``slos.yaml`` ->
    ``slos.governance.sqlite``.

    >>> default_store_path("/etc/srestream/slos.yaml")
    '/etc/srestream/slos.governance.sqlite'
    """
    root, _ = os.path.splitext(os.fspath(slo_file))
    return root + ".governance.sqlite"


_PROPOSAL_COLUMNS = (
    "proposal_id, subject, slo_file, changes, before, proposer, reason, proposed_ns, state, "
    "decided_by, decided_ns, decision_note, applied_ns"
)


def _proposal(row: tuple[Any, ...]) -> Proposal:
    return Proposal(
        proposal_id=row[0], subject=row[1], slo_file=row[2], changes=msgspec.json.decode(row[3]),
        before=msgspec.json.decode(row[4]), proposer=row[5], reason=row[6], proposed_ns=row[7],
        state=row[8], decided_by=row[9], decided_ns=row[10], decision_note=row[11], applied_ns=row[12],
    )


class GovernanceStore:
    """The governance store (see the module docstring).  Every write runs
    in one ``BEGIN IMMEDIATE`` transaction together with its audit entry:
    a change is never recorded without its entry, nor the other way."""

    def __init__(self, path: str, *, create: bool = True) -> None:
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            if not create:
                raise ConfigError([Problem("$", "no governance store here (it is created by the "
                                                "first review, proposal or audited gate decision)",
                                           self.path)])
            d = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(d, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            self._db = db
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigError([Problem("$", f"governance store schema version {version} is newer "
                                                f"than this srestream understands ({SCHEMA_VERSION})",
                                           self.path)])
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if version < SCHEMA_VERSION:
                db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ConfigError([Problem("$", f"not a governance store: {exc}", self.path)]) from exc

    # ------------------------------------------------------------ plumbing

    def close(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None  # type: ignore[assignment]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction (writers queue, never
        interleave their audit entries); SQLite errors become
        :class:`StoreError` naming the file."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    # ------------------------------------------------------------ audit trail

    def _append(self, db: sqlite3.Connection, *, ts_ns: int, actor: str, action: str, subject: str,
                before: Any, after: Any, reason: str) -> AuditEntry:
        """Append one entry, chained to the newest; the caller holds the transaction."""
        row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS_HASH)
        b, a = _json(before), _json(after)
        h = _entry_hash(seq, ts_ns, actor, action, subject, b, a, reason, prev)
        db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (seq, ts_ns, actor, action, subject, b, a, reason, prev, h))
        return AuditEntry(seq=seq, ts_ns=ts_ns, actor=actor, action=action, subject=subject,
                          before=before, after=after, reason=reason, prev_hash=prev, hash=h)

    def record(self, *, actor: str, action: str, subject: str, before: Any = None, after: Any = None,
               reason: str = "", ts_ns: int | None = None) -> AuditEntry:
        """Append an entry of an action that changes nothing here (a gate
        decision, a refused approval)."""
        with self._transaction() as db:
            return self._append(db, ts_ns=time.time_ns() if ts_ns is None else ts_ns, actor=actor,
                                action=action, subject=subject, before=before, after=after, reason=reason)

    def record_gate_decision(self, decision: Any, *, actor: str = "") -> AuditEntry:
        """Audit one deploy-gate decision (a :class:`GateDecision`)."""
        verdict = "allowed" if decision.allowed else "refused"
        refusals = [r for r in decision.reasons if "frozen" in r]
        return self.record(
            actor=actor, action="gate", subject=decision.service,
            after={"at_ns": decision.at_ns, "allowed": decision.allowed,
                   "reasons": list(decision.reasons), "actions": list(decision.actions)},
            reason=f"deploy {verdict}" + (f": {refusals[0]}" if refusals else ""),
        )

    def audit_entries(self, *, since_ns: int | None = None) -> list[AuditEntry]:
        """The audit trail in order (entries recorded at or after ``since_ns``)."""
        rows = self._query(
            "SELECT seq, ts_ns, actor, action, subject, before, after, reason, prev_hash, hash "
            "FROM audit WHERE ts_ns >= ? ORDER BY seq", (since_ns if since_ns is not None else -(2**63),))
        return [AuditEntry(seq=r[0], ts_ns=r[1], actor=r[2], action=r[3], subject=r[4],
                           before=msgspec.json.decode(r[5]), after=msgspec.json.decode(r[6]),
                           reason=r[7], prev_hash=r[8], hash=r[9]) for r in rows]

    def verify_audit(self) -> AuditVerification:
        """Recompute the chain; check the proposal and review rows against
        the latest audited state of each.  Every problem names its entry."""
        rows = self._query("SELECT seq, ts_ns, actor, action, subject, before, after, reason, "
                           "prev_hash, hash FROM audit ORDER BY seq")
        problems: list[str] = []
        prev = GENESIS_HASH
        expected_seq = 1
        proposals: dict[int, Any] = {}
        reviews: dict[int, Any] = {}
        for seq, ts, actor, action, subject, b, a, reason, prev_hash, h in rows:
            if seq != expected_seq:
                problems.append(f"entry {seq}: entries {expected_seq}..{seq - 1} are missing")
            if prev_hash != prev:
                problems.append(f"entry {seq}: its prev_hash does not match entry {seq - 1}'s hash "
                                "(an entry before it was changed or removed)")
            if _entry_hash(seq, ts, actor, action, subject, b, a, reason, prev_hash) != h:
                problems.append(f"entry {seq}: its content does not match its hash (the entry was edited)")
            prev, expected_seq = h, seq + 1
            try:
                after = msgspec.json.decode(a)
            except msgspec.DecodeError:
                continue  # the hash problem above already names the entry
            if action in _PROPOSAL_ACTIONS and isinstance(after, dict):
                record = after.get("proposal", after)
                if isinstance(record, dict) and isinstance(record.get("proposal_id"), int):
                    proposals[record["proposal_id"]] = (seq, record)
            if action == "review" and isinstance(after, dict) and isinstance(after.get("review_id"), int):
                reviews[after["review_id"]] = (seq, after)
        problems.extend(self._check_rows(proposals, reviews))
        return AuditVerification(ok=not problems, entries=len(rows), head_hash=prev, problems=problems)

    def _check_rows(self, proposals: dict[int, Any], reviews: dict[int, Any]) -> list[str]:
        out = []
        for p in self.proposals():
            seen = proposals.pop(p.proposal_id, None)
            if seen is None:
                out.append(f"proposal {p.proposal_id}: no audit entry records it")
            elif msgspec.to_builtins(p) != seen[1]:
                out.append(f"proposal {p.proposal_id}: its row differs from its latest audit entry "
                           f"(entry {seen[0]})")
        out.extend(f"proposal {pid}: audited at entry {seq} but missing from the store"
                   for pid, (seq, _) in sorted(proposals.items()))
        for r in self.reviews():
            seen = reviews.pop(r.review_id, None)
            if seen is None:
                out.append(f"review {r.review_id}: no audit entry records it")
            elif msgspec.to_builtins(r) != seen[1]:
                out.append(f"review {r.review_id}: its row differs from its audit entry (entry {seen[0]})")
        out.extend(f"review {rid}: audited at entry {seq} but missing from the store"
                   for rid, (seq, _) in sorted(reviews.items()))
        return out

    # ------------------------------------------------------------ proposals

    def add_proposal(self, *, subject: str, slo_file: str, changes: dict[str, Any],
                     before: dict[str, Any], proposer: str, reason: str,
                     ts_ns: int | None = None) -> Proposal:
        """Record a pending proposal (already validated by the caller)."""
        now = time.time_ns() if ts_ns is None else ts_ns
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO proposal (subject, slo_file, changes, before, proposer, reason, "
                "proposed_ns, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                (subject, slo_file, _json(changes), _json(before), proposer, reason, now))
            assert cur.lastrowid is not None
            p = self._proposal_in(db, cur.lastrowid)
            self._append(db, ts_ns=now, actor=proposer, action="propose", subject=subject,
                         before=None, after=msgspec.to_builtins(p), reason=reason)
            return p

    def decide_proposal(self, proposal_id: int, *, state: Literal["approved", "rejected"], by: str,
                        note: str = "", ts_ns: int | None = None) -> Proposal:
        """Approve or reject a pending proposal (the caller checked who may)."""
        now = time.time_ns() if ts_ns is None else ts_ns
        with self._transaction() as db:
            before = self._proposal_in(db, proposal_id)
            if before.state != "pending":
                raise StoreError(f"{self.path}: proposal {proposal_id} is already {before.state}")
            db.execute("UPDATE proposal SET state = ?, decided_by = ?, decided_ns = ?, decision_note = ? "
                       "WHERE proposal_id = ?", (state, by, now, note, proposal_id))
            after = self._proposal_in(db, proposal_id)
            self._append(db, ts_ns=now, actor=by, action="approve" if state == "approved" else "reject",
                         subject=after.subject, before=msgspec.to_builtins(before),
                         after=msgspec.to_builtins(after), reason=note)
            return after

    def mark_applied(self, proposal_ids: list[int], *, actor: str, file_before: Any, file_after: Any,
                     ts_ns: int | None = None) -> list[Proposal]:
        """Record that approved proposals were written into the SLO file:
        one ``apply`` entry per proposal, the file's SLO before and after."""
        now = time.time_ns() if ts_ns is None else ts_ns
        out = []
        with self._transaction() as db:
            for pid in proposal_ids:
                before = self._proposal_in(db, pid)
                db.execute("UPDATE proposal SET applied_ns = ? WHERE proposal_id = ?", (now, pid))
                after = self._proposal_in(db, pid)
                self._append(db, ts_ns=now, actor=actor, action="apply", subject=after.subject,
                             before={"slo": file_before.get(after.subject),
                                     "proposal": msgspec.to_builtins(before)},
                             after={"slo": file_after.get(after.subject),
                                    "proposal": msgspec.to_builtins(after)},
                             reason=f"proposal {pid} written into {after.slo_file}")
                out.append(after)
        return out

    def _proposal_in(self, db: sqlite3.Connection, proposal_id: int) -> Proposal:
        row = db.execute(f"SELECT {_PROPOSAL_COLUMNS} FROM proposal WHERE proposal_id = ?",
                         (proposal_id,)).fetchone()
        if row is None:
            raise ConfigError([Problem("PROPOSAL_ID", f"no proposal {proposal_id} in this store", self.path)])
        return _proposal(row)

    def proposal(self, proposal_id: int) -> Proposal:
        try:
            return self._proposal_in(self._db, proposal_id)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def proposals(self, *, state: ProposalState | None = None) -> list[Proposal]:
        """Proposals in the order they were made (of one state if given)."""
        sql = f"SELECT {_PROPOSAL_COLUMNS} FROM proposal"
        rows = self._query(sql + (" WHERE state = ?" if state else "") + " ORDER BY proposal_id",
                           (state,) if state else ())
        return [_proposal(r) for r in rows]

    # ------------------------------------------------------------ reviews

    def add_review(self, *, subject: str, reviewer: str, note: str = "",
                   ts_ns: int | None = None) -> ReviewRecord:
        now = time.time_ns() if ts_ns is None else ts_ns
        with self._transaction() as db:
            cur = db.execute("INSERT INTO review (subject, reviewer, ts_ns, note) VALUES (?, ?, ?, ?)",
                             (subject, reviewer, now, note))
            assert cur.lastrowid is not None
            r = ReviewRecord(review_id=cur.lastrowid, subject=subject, reviewer=reviewer, ts_ns=now, note=note)
            self._append(db, ts_ns=now, actor=reviewer, action="review", subject=subject,
                         before=None, after=msgspec.to_builtins(r), reason=note)
            return r

    def reviews(self) -> list[ReviewRecord]:
        rows = self._query("SELECT review_id, subject, reviewer, ts_ns, note FROM review ORDER BY review_id")
        return [ReviewRecord(review_id=r[0], subject=r[1], reviewer=r[2], ts_ns=r[3], note=r[4]) for r in rows]

    def last_reviewed(self, at_ns: int) -> dict[str, tuple[int, str]]:
        """Per SLO subject, the latest review or approved change at or
        before ``at_ns``: (time, who).  An approval counts as a review:
        the approver looked at the SLO."""
        out: dict[str, tuple[int, str]] = {}
        for subject, ts, who in self._query(
            "SELECT subject, ts_ns, reviewer FROM review WHERE ts_ns <= ? UNION ALL "
            "SELECT subject, decided_ns, decided_by FROM proposal WHERE state = 'approved' AND decided_ns <= ? "
            "ORDER BY 2", (at_ns, at_ns)):
            out[subject] = (ts, who)
        return out


def open_governance_store(path: str, *, create: bool = True) -> GovernanceStore:
    """Open (or, with ``create``, create) the governance store at ``path``;
    use it as a context manager or call ``close()``."""
    return GovernanceStore(path, create=create)

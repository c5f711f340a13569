"""The store: checkpoints now, incidents and the budget ledger later.

:class:`Store` is the seam; :class:`SQLiteStore` is the embedded default
(stdlib ``sqlite3`` in WAL mode, every call run in a worker thread so the
event loop never blocks on disk).  A checkpoint is written in one
transaction: either all of its component states land, or none.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar, runtime_checkable

import anyio
import msgspec

from ._errors import StoreError

__all__ = ["Checkpoint", "SQLiteStore", "Store", "open_store"]

T = TypeVar("T")


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """Source offsets and stage snapshots of one pipeline at one barrier."""

    checkpoint_id: int
    created_ns: int
    complete: bool
    """True when the run ended because its sources ended (a finished replay):
    a new run starts afresh instead of resuming."""
    states: dict[str, bytes]
    """Component id -> msgpack-encoded snapshot."""


@runtime_checkable
class Store(Protocol):
    async def load_checkpoint(self, pipeline: str) -> Checkpoint | None: ...

    async def save_checkpoint(self, pipeline: str, checkpoint: Checkpoint) -> None: ...

    async def aclose(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoint (
    pipeline TEXT PRIMARY KEY,
    checkpoint_id INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    complete INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint_state (
    pipeline TEXT NOT NULL,
    component TEXT NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (pipeline, component)
);
"""


class SQLiteStore:
    """The embedded store: one SQLite file, created owner-only (0600)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._limiter = anyio.CapacityLimiter(1)
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            d = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(d, exist_ok=True)
            if not os.path.exists(self.path):
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            try:
                return fn(self._connect())
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc

        return await anyio.to_thread.run_sync(run, limiter=self._limiter)

    async def load_checkpoint(self, pipeline: str) -> Checkpoint | None:
        def q(db: sqlite3.Connection) -> Checkpoint | None:
            row = db.execute(
                "SELECT checkpoint_id, created_ns, complete FROM checkpoint WHERE pipeline=?",
                (pipeline,),
            ).fetchone()
            if row is None:
                return None
            states = dict(
                db.execute(
                    "SELECT component, state FROM checkpoint_state WHERE pipeline=?", (pipeline,)
                ).fetchall()
            )
            return Checkpoint(
                checkpoint_id=row[0], created_ns=row[1], complete=bool(row[2]), states=states
            )

        return await self._call(q)

    async def save_checkpoint(self, pipeline: str, checkpoint: Checkpoint) -> None:
        def w(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(
                    "INSERT OR REPLACE INTO checkpoint VALUES (?, ?, ?, ?)",
                    (pipeline, checkpoint.checkpoint_id, checkpoint.created_ns, int(checkpoint.complete)),
                )
                db.execute("DELETE FROM checkpoint_state WHERE pipeline=?", (pipeline,))
                db.executemany(
                    "INSERT INTO checkpoint_state VALUES (?, ?, ?)",
                    [(pipeline, k, v) for k, v in checkpoint.states.items()],
                )

        await self._call(w)

    async def execute(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in the store's worker thread (for stages
        that keep their own tables in the same file)."""
        return await self._call(fn)

    async def aclose(self) -> None:
        def c(db: sqlite3.Connection) -> None:
            db.close()

        if self._db is not None:
            await self._call(c)
            self._db = None


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, et: Any, e: Any, tb: Any) -> None:
        self.db.execute("COMMIT" if et is None else "ROLLBACK")


@asynccontextmanager
async def open_store(path: str) -> AsyncIterator[SQLiteStore]:
    """Open the embedded SQLite store at ``path`` (created if missing)."""
    store = SQLiteStore(path)
    try:
        yield store
    finally:
        with anyio.CancelScope(shield=True):
            await store.aclose()

"""The budget ledger: ``sli_rollup`` records kept in SQLite for reports.

Three tables hold the same counts at three resolutions::

    sli_rollup_minute   the buckets as the windows stage closed them
    sli_rollup_hour     sums per UTC hour
    sli_rollup_day      sums per UTC day

Each row carries ``good``, ``total``, ``span_ns`` (how much time its
buckets cover) and ``no_data_ns`` (how much of that had no data), so
coverage survives aggregation: ``(span_ns - no_data_ns) / window``.

Why three tables, filled together: a 90-day report over 100 services x 3
SLOs must take well under a second, which scanning 39 M minute rows never
will; the day table answers whole days, the hour and minute tables only
the ragged edges of a window.  The hour and day rows are updated in the
same transaction as the minute rows, by the *difference* a rollup makes to
its minute, so a rollup delivered twice (a replay after a restart) leaves
every table unchanged.

**Compaction**: minute rows older than ``minute_retention`` (event time,
from the newest bucket seen) are deleted; their counts are already in the
hour and day rows, so totals are unchanged.  **Retention**: hour and day
rows older than ``retention`` (at least 90 days) are deleted.

All SQL runs in one worker thread (``anyio.to_thread``), on a WAL-mode
connection of its own: the event loop never waits on disk, and the file
can be the pipeline's store.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import aclosing
from typing import Any, TypeVar

import anyio
import msgspec

from .._component import BuildContext, SinkConfig
from .._duration import Duration
from .._errors import StoreError
from .._registry import register
from ._records import SliRollup

__all__ = [
    "LEDGER_SCHEMA",
    "MIN_RETENTION_NS",
    "BudgetLedger",
    "BudgetLedgerSink",
    "LedgerStatistics",
    "compact",
    "open_ledger_db",
    "write_rollups",
]

T = TypeVar("T")

MINUTE_NS = 60_000_000_000
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS
MIN_RETENTION_NS = 90 * DAY_NS

_TABLES = ("sli_rollup_minute", "sli_rollup_hour", "sli_rollup_day")

LEDGER_SCHEMA = "\n".join(
    f"""CREATE TABLE IF NOT EXISTS {t} (
    bucket_ts_ns INTEGER NOT NULL,
    slo TEXT NOT NULL,
    service TEXT NOT NULL,
    good INTEGER NOT NULL,
    total INTEGER NOT NULL,
    span_ns INTEGER NOT NULL,
    no_data_ns INTEGER NOT NULL,
    PRIMARY KEY (bucket_ts_ns, slo, service)
) WITHOUT ROWID;"""
    for t in _TABLES
) + """
CREATE TEMP TABLE IF NOT EXISTS incoming_rollup (
    bucket_ts_ns INTEGER NOT NULL,
    slo TEXT NOT NULL,
    service TEXT NOT NULL,
    good INTEGER NOT NULL,
    total INTEGER NOT NULL,
    span_ns INTEGER NOT NULL,
    no_data_ns INTEGER NOT NULL
);
"""

_ADD_DELTA = """
INSERT INTO {table} (bucket_ts_ns, slo, service, good, total, span_ns, no_data_ns)
SELECT i.bucket_ts_ns - (i.bucket_ts_ns % {size}), i.slo, i.service,
       SUM(i.good - COALESCE(m.good, 0)), SUM(i.total - COALESCE(m.total, 0)),
       SUM(i.span_ns - COALESCE(m.span_ns, 0)), SUM(i.no_data_ns - COALESCE(m.no_data_ns, 0))
FROM incoming_rollup AS i
LEFT JOIN sli_rollup_minute AS m
  ON m.bucket_ts_ns = i.bucket_ts_ns AND m.slo = i.slo AND m.service = i.service
WHERE true
GROUP BY 1, 2, 3
ON CONFLICT (bucket_ts_ns, slo, service) DO UPDATE SET
    good = good + excluded.good, total = total + excluded.total,
    span_ns = span_ns + excluded.span_ns, no_data_ns = no_data_ns + excluded.no_data_ns
"""


def open_ledger_db(path: str) -> sqlite3.Connection:
    """Open (creating owner-only if missing) the ledger file in WAL mode."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    if not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(LEDGER_SCHEMA)
    return db


def write_rollups(db: sqlite3.Connection, rollups: Iterable[SliRollup]) -> int:
    """Store ``rollups`` (one transaction); return how many were stored.

    A rollup for a bucket already stored replaces it; the hour and day rows
    change by the difference.  A rollup longer than a minute (the windows
    stage sends one per key for a long data gap) is kept whole in the hour
    and day of its start: a gap holds no events and no covered time, so no
    sum or coverage changes by where it is kept."""
    latest: dict[tuple[int, str, str], tuple[int, str, str, int, int, int, int]] = {}
    for r in rollups:
        latest[(r.bucket_ts_ns, r.slo, r.service)] = (
            r.bucket_ts_ns, r.slo, r.service, r.good, r.total, r.resolution_ns, r.no_data_ns)
    if not latest:
        return 0
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("DELETE FROM incoming_rollup")
        db.executemany("INSERT INTO incoming_rollup VALUES (?, ?, ?, ?, ?, ?, ?)", latest.values())
        db.execute(_ADD_DELTA.format(table="sli_rollup_hour", size=HOUR_NS))
        db.execute(_ADD_DELTA.format(table="sli_rollup_day", size=DAY_NS))
        db.execute("INSERT OR REPLACE INTO sli_rollup_minute SELECT * FROM incoming_rollup")
        db.execute("DELETE FROM incoming_rollup")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return len(latest)


def compact(db: sqlite3.Connection, *, now_ns: int, minute_retention_ns: int,
            retention_ns: int) -> tuple[int, int]:
    """Drop minute rows older than ``now - minute_retention`` (their counts
    live on in the hour and day rows) and every row older than
    ``now - retention``.  Returns (minute rows compacted, rows expired)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        n_min = db.execute("DELETE FROM sli_rollup_minute WHERE bucket_ts_ns < ?",
                           (now_ns - minute_retention_ns,)).rowcount
        expire = now_ns - retention_ns
        n_old = 0
        for t in ("sli_rollup_hour", "sli_rollup_day"):
            n_old += db.execute(f"DELETE FROM {t} WHERE bucket_ts_ns < ?", (expire,)).rowcount
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return n_min, n_old


class LedgerStatistics(msgspec.Struct, kw_only=True):
    records_in: int = 0
    rollups_stored: int = 0
    ignored: int = 0
    """Records that were not ``sli_rollup`` (counted, not stored)."""
    minute_rows_compacted: int = 0
    rows_expired: int = 0
    compactions: int = 0


class BudgetLedger:
    """Running logic of the ``budget_ledger`` sink."""

    def __init__(self, path: str, *, minute_retention_ns: int, retention_ns: int,
                 compaction_interval_ns: int = HOUR_NS) -> None:
        self.path = path
        self.minute_retention_ns = minute_retention_ns
        self.retention_ns = retention_ns
        self.compaction_interval_ns = compaction_interval_ns
        self._db: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._newest_ns: int | None = None
        self._compacted_at_ns: int | None = None
        self._stats = LedgerStatistics()

    def statistics(self) -> LedgerStatistics:
        return msgspec.structs.replace(self._stats)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            try:
                if self._db is None:
                    self._db = open_ledger_db(self.path)
                return fn(self._db)
            except sqlite3.Error as exc:
                raise StoreError(f"budget ledger {self.path}: {exc}") from exc

        return await anyio.to_thread.run_sync(run, limiter=self._limiter)

    async def write(self, batch: Sequence[Any]) -> None:
        self._stats.records_in += len(batch)
        rollups = [r for r in batch if type(r) is SliRollup]
        self._stats.ignored += len(batch) - len(rollups)
        if not rollups:
            return
        self._stats.rollups_stored += await self._call(lambda db: write_rollups(db, rollups))
        newest = max(r.bucket_ts_ns + r.resolution_ns for r in rollups)
        if self._newest_ns is None or newest > self._newest_ns:
            self._newest_ns = newest
        if self._compacted_at_ns is None or \
                self._newest_ns - self._compacted_at_ns >= self.compaction_interval_ns:
            await self.compact()

    async def compact(self) -> None:
        """Compact and expire as of the newest bucket end seen (event time)."""
        if self._newest_ns is None:
            return
        now = self._newest_ns
        n_min, n_old = await self._call(lambda db: compact(
            db, now_ns=now, minute_retention_ns=self.minute_retention_ns,
            retention_ns=self.retention_ns))
        self._compacted_at_ns = now
        self._stats.minute_rows_compacted += n_min
        self._stats.rows_expired += n_old
        self._stats.compactions += 1

    def snapshot(self) -> dict[str, int | None]:
        # Rows are committed per batch; a replay after restore re-delivers the
        # rollups since the checkpoint and write_rollups absorbs them.
        return {"newest_ns": self._newest_ns, "compacted_at_ns": self._compacted_at_ns}

    def restore(self, state: dict[str, int | None]) -> None:
        self._newest_ns = state.get("newest_ns")
        self._compacted_at_ns = state.get("compacted_at_ns")

    async def aclose(self) -> None:
        if self._db is not None:
            db = self._db
            await anyio.to_thread.run_sync(db.close, limiter=self._limiter)
            self._db = None

    async def __call__(self, batches: AsyncIterator[Sequence[Any]], /) -> None:
        try:
            async with aclosing(batches):  # type: ignore[type-var]
                async for batch in batches:
                    await self.write(batch)
        finally:
            with anyio.CancelScope(shield=True):
                await self.aclose()


@register("Store sli_rollup records in a SQLite budget ledger (minute/hour/day, "
          "compaction and >= 90-day retention) for `srestream report`.")
class BudgetLedgerSink(SinkConfig, frozen=True, kw_only=True, tag="budget_ledger"):
    """Options: ``path`` of the SQLite file (relative to ``--out`` when
    given, else to the pipeline file; may be the pipeline's store); ``minute_retention``: how long minute
    rows stay before compaction into hours; ``retention``: how long hour
    and day rows stay (at least 90d)."""

    path: str = "srestream.sqlite"
    minute_retention: Duration = Duration(7 * DAY_NS)
    retention: Duration = Duration(400 * DAY_NS)

    def __post_init__(self) -> None:
        # ValueError: msgspec reports it as a validation problem of this sink.
        problems = []
        if self.retention.ns < MIN_RETENTION_NS:
            problems.append("retention must be at least 90d (reports cover 90 days)")
        if not 0 < self.minute_retention.ns <= self.retention.ns:
            problems.append("minute_retention must be positive and at most retention")
        if problems:
            raise ValueError("; ".join(problems))

    def build(self, ctx: BuildContext) -> BudgetLedger:
        # A relative path follows --out when given (next to the run's other
        # outputs and its store), else the pipeline file.
        path = (os.path.join(ctx.out_dir, self.path) if ctx.out_dir and not os.path.isabs(self.path)
                else ctx.resolve(self.path))
        return BudgetLedger(path, minute_retention_ns=self.minute_retention.ns,
                            retention_ns=self.retention.ns)

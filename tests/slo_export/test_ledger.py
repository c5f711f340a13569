"""Budget ledger: rollups stored at three resolutions; compaction and retention keep totals."""

from __future__ import annotations

import pathlib
import random
import sqlite3

import msgspec
import pytest

from srestream._component import BuildContext, Outputs
from srestream._duration import dec_hook
from srestream.slo._ledger import (
    DAY_NS,
    HOUR_NS,
    MINUTE_NS,
    BudgetLedger,
    BudgetLedgerSink,
    compact,
    open_ledger_db,
    write_rollups,
)
from srestream.slo._records import SliRollup
from srestream.testing import ListSource

KEYS = [("availability", "checkout"), ("latency", "checkout"), ("availability", "search")]


def minute_rollups(days: int, seed: int = 7) -> list[SliRollup]:
    rnd = random.Random(seed)
    out = []
    for m in range(days * 1440):
        for slo, service in KEYS:
            total = rnd.randint(0, 50)
            out.append(SliRollup(slo=slo, service=service, bucket_ts_ns=m * MINUTE_NS,
                                 resolution_ns=MINUTE_NS, good=total - rnd.randint(0, total // 10),
                                 total=total, no_data_ns=rnd.choice((0, 0, 0, 15 * 10**9))))
    return out


def table_totals(db: sqlite3.Connection, table: str) -> dict[tuple[str, str], tuple[int, ...]]:
    rows = db.execute(f"SELECT slo, service, SUM(good), SUM(total), SUM(span_ns), SUM(no_data_ns) "
                      f"FROM {table} GROUP BY slo, service").fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def expected_totals(rollups: list[SliRollup]) -> dict[tuple[str, str], tuple[int, ...]]:
    acc: dict[tuple[str, str], list[int]] = {}
    for r in rollups:
        a = acc.setdefault((r.slo, r.service), [0, 0, 0, 0])
        a[0] += r.good
        a[1] += r.total
        a[2] += r.resolution_ns
        a[3] += r.no_data_ns
    return {k: tuple(v) for k, v in acc.items()}


def test_hour_and_day_tables_hold_the_minute_sums(tmp_path: pathlib.Path) -> None:
    rollups = minute_rollups(3)
    db = open_ledger_db(str(tmp_path / "ledger.sqlite"))
    for i in range(0, len(rollups), 500):
        write_rollups(db, rollups[i:i + 500])
    want = expected_totals(rollups)
    for table in ("sli_rollup_minute", "sli_rollup_hour", "sli_rollup_day"):
        assert table_totals(db, table) == want
    # one hour row per key per hour, each the sum of its 60 minutes
    (good,) = db.execute("SELECT good FROM sli_rollup_hour WHERE slo='latency' AND "
                         "service='checkout' AND bucket_ts_ns=?", (5 * HOUR_NS,)).fetchone()
    assert good == sum(r.good for r in rollups if (r.slo, r.service) == ("latency", "checkout")
                       and 5 * HOUR_NS <= r.bucket_ts_ns < 6 * HOUR_NS)


def test_redelivered_or_corrected_rollups_do_not_double_count(tmp_path: pathlib.Path) -> None:
    rollups = minute_rollups(1)
    db = open_ledger_db(str(tmp_path / "ledger.sqlite"))
    write_rollups(db, rollups)
    write_rollups(db, rollups[100:900])  # a replay after a restart
    corrected = [msgspec.structs.replace(r, good=0) for r in rollups[:30]]
    write_rollups(db, corrected + corrected)  # twice in one batch, too
    final = corrected + rollups[30:]
    want = expected_totals(final)
    for table in ("sli_rollup_minute", "sli_rollup_hour", "sli_rollup_day"):
        assert table_totals(db, table) == want


def test_compaction_and_retention_keep_totals(tmp_path: pathlib.Path) -> None:
    rollups = minute_rollups(10)
    db = open_ledger_db(str(tmp_path / "ledger.sqlite"))
    write_rollups(db, rollups)
    before_hour = table_totals(db, "sli_rollup_hour")
    n_min, n_old = compact(db, now_ns=10 * DAY_NS, minute_retention_ns=2 * DAY_NS,
                           retention_ns=90 * DAY_NS)
    assert n_min == 8 * 1440 * len(KEYS) and n_old == 0
    (oldest,) = db.execute("SELECT MIN(bucket_ts_ns) FROM sli_rollup_minute").fetchone()
    assert oldest == 8 * DAY_NS
    assert table_totals(db, "sli_rollup_hour") == before_hour == expected_totals(rollups)
    assert table_totals(db, "sli_rollup_day") == before_hour
    # retention: at day 95, only days 5..9 are within the 90 days kept
    n_min, n_old = compact(db, now_ns=(10 + 85) * DAY_NS, minute_retention_ns=2 * DAY_NS,
                           retention_ns=90 * DAY_NS)
    (left,) = db.execute("SELECT COUNT(*) FROM sli_rollup_day").fetchone()
    assert left == 5 * len(KEYS)  # days 5..9 are within 90 days of day 95
    assert table_totals(db, "sli_rollup_day") == expected_totals(
        [r for r in rollups if r.bucket_ts_ns >= 5 * DAY_NS])


async def test_sink_stores_rollups_and_compacts_in_event_time(tmp_path: pathlib.Path,
                                                            batch_size: int) -> None:
    rollups = minute_rollups(3)
    path = tmp_path / "ledger.sqlite"
    cfg = msgspec.convert({"type": "budget_ledger", "inputs": ["windows.rollups"],
                           "path": "ledger.sqlite", "minute_retention": "1d"}, BudgetLedgerSink,
                          dec_hook=dec_hook)
    ledger = cfg.build(BuildContext(component_id="ledger", outputs=Outputs("ledger"),
                                    base_dir=str(tmp_path)))
    assert isinstance(ledger, BudgetLedger)
    noise = ["not a rollup"]
    await ledger(ListSource(noise + rollups, batch_size=max(batch_size, 200))())
    st = ledger.statistics()
    assert st.ignored == 1 and st.rollups_stored == len(rollups) and st.compactions >= 1
    db = sqlite3.connect(path)
    (oldest,) = db.execute("SELECT MIN(bucket_ts_ns) FROM sli_rollup_minute").fetchone()
    assert oldest >= 3 * DAY_NS - DAY_NS - HOUR_NS  # compacted as event time advanced
    assert table_totals(db, "sli_rollup_day") == expected_totals(rollups)
    assert (path.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("opts", [{"retention": "30d"}, {"minute_retention": "0s"},
                                  {"retention": 7776000}])
def test_sink_options_are_validated(opts: dict[str, object]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"type": "budget_ledger", "inputs": ["w"], **opts}, BudgetLedgerSink,
                        dec_hook=dec_hook)


def test_a_gap_rollup_spanning_hours_keeps_counts_and_coverage(tmp_path: pathlib.Path) -> None:
    """The windows stage reports a long data gap as one rollup spanning it."""
    db = open_ledger_db(str(tmp_path / "ledger.sqlite"))
    before = [SliRollup(slo="a", service="s", bucket_ts_ns=m * MINUTE_NS, resolution_ns=MINUTE_NS,
                        good=9, total=10) for m in range(60)]
    gap = SliRollup(slo="a", service="s", bucket_ts_ns=HOUR_NS, resolution_ns=3 * HOUR_NS,
                    good=0, total=0, no_data_ns=3 * HOUR_NS)
    after = [SliRollup(slo="a", service="s", bucket_ts_ns=4 * HOUR_NS + m * MINUTE_NS,
                       resolution_ns=MINUTE_NS, good=10, total=10) for m in range(60)]
    write_rollups(db, before + [gap] + after)
    for table in ("sli_rollup_minute", "sli_rollup_hour", "sli_rollup_day"):
        good, total, span, no_data = table_totals(db, table)[("a", "s")]
        assert (good, total) == (9 * 60 + 10 * 60, 1200)
        assert span - no_data == 2 * HOUR_NS  # two hours of data in five

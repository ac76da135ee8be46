"""SQLite keeps statement journals in memory for a call's bounded ledger writes, and SQLite's
default (temp files on disk) for every read and every other write, whose temp data (sorts,
DISTINCT, bulk statements) can be as large as the tables."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ledger_helpers import claim, event, reserve

from costplane.attribution.context import Context
from costplane.ledger import open_store
from costplane.ledger.sqlite import SqliteStore

MEMORY, DEFAULT = 2, 0
T0 = datetime(2026, 12, 7, 12, tzinfo=UTC)


def _mode(store: SqliteStore) -> int:
    """temp_store of this thread's connection, read without going through the store."""
    return int(store._conn().execute("PRAGMA temp_store").fetchone()[0])


def test_call_writes_in_memory_reads_and_bulk_writes_on_disk(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert isinstance(store, SqliteStore)
    try:
        store.migrate()
        assert _mode(store) == DEFAULT  # the migration is a bulk write
        res, result = reserve(store, [claim("team", 500, limit_nano=10_000)])
        assert result.ok and _mode(store) == MEMORY
        assert store.spend(group_by=["team"]) == []  # a read: back to the default before it ran
        assert _mode(store) == DEFAULT
        store.settle(res.id, event(300, rid=res.id, ts=T0, ctx=Context(team="ml")))
        assert _mode(store) == MEMORY
        store.rebuild_rollups()  # a bulk write (INSERT … SELECT … GROUP BY over every event)
        assert _mode(store) == DEFAULT
        assert store.record_event(event(200, ts=T0, ctx=Context(team="ml")))
        assert _mode(store) == MEMORY
        assert [(r.group["team"], r.cost_nano, r.events) for r in store.spend(group_by=["team"])] == [("ml", 500, 2)]
    finally:
        store.close()


def test_a_batch_takes_the_mode_of_its_first_write(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert isinstance(store, SqliteStore)
    try:
        store.migrate()
        with store.batch():
            assert store.spend() == []  # reads before the first write take no transaction
            assert _mode(store) == DEFAULT
            assert store.record_event(event(7, ts=T0))
            assert _mode(store) == MEMORY
            assert [r.cost_nano for r in store.spend()] == [7]  # inside the begun transaction: unchanged
            assert _mode(store) == MEMORY
        assert [r.cost_nano for r in store.spend()] == [7]
        assert _mode(store) == DEFAULT
    finally:
        store.close()

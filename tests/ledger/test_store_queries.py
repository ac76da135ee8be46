"""Migrations, timestamps, store URLs and unavailability — on both stores. (What each store contract
requires is in tests/ledger/contracts/.)"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ledger_helpers import event

from costplane.ledger import (
    PostgresStore,
    SqliteStore,
    Store,
    StoreUnavailable,
    open_store,
)
from costplane.ledger.migrations import LATEST


def test_migrate_is_idempotent_and_upgrades_v1(store_url: Callable[[], str]) -> None:
    store = open_store(store_url())
    try:
        assert store.schema_version() == 0
        assert isinstance(store, SqliteStore | PostgresStore)
        store.migrate(target=1)
        assert store.schema_version() == 1
        store.record_event(event(5, eid="old"))  # data written under v1 survives the upgrade
        store.migrate()
        store.migrate()
        assert store.schema_version() == LATEST
        assert store.get_event("old") is not None
        assert store.stats()["events"] == 1
    finally:
        store.close()


def test_naive_datetimes_are_utc(store: Store) -> None:
    store.record_event(event(1, eid="naive", ts=datetime(2025, 1, 1, 12, 0)))
    got = store.get_event("naive")
    assert got is not None and got.ts == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


# -- URLs and availability (dialect specific) ---------------------------------------------


def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = open_store("sqlite:///data/rel.db?synchronous=FULL&busy_timeout=250")
    assert isinstance(rel, SqliteStore)
    assert rel.path == Path("data/rel.db") and rel.synchronous == "FULL" and rel.busy_timeout_ms == 250
    rel.migrate()
    assert (tmp_path / "data" / "rel.db").exists()
    rel.close()
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db")
    assert isinstance(absolute, SqliteStore) and absolute.path == tmp_path / "abs.db"
    pg = open_store("postgres://u:secret@db.example:5432/x?schema=cp&sslmode=disable")
    assert isinstance(pg, PostgresStore) and pg.schema == "cp" and "secret" not in pg.safe_url
    for bad in ("mysql://root:hunter2@x/db", "costplane.db", "sqlite://host/x.db", "sqlite:///:memory:",
                "sqlite:///x.db?journal=off", "sqlite:///x.db?synchronous=SOMETIMES"):  # fmt: skip
        with pytest.raises(ValueError) as info:
            open_store(bad)
        assert "hunter2" not in str(info.value)


def test_unreachable_postgres_is_unavailable_without_credentials() -> None:
    store = open_store("postgresql://cp:s3cret@127.0.0.1:1/nothing?connect_timeout=2")
    with pytest.raises(StoreUnavailable) as info:
        store.count_events()
    assert "s3cret" not in str(info.value) and "127.0.0.1" in str(info.value)


def test_locked_sqlite_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = SqliteStore(path, busy_timeout_ms=100)
    store.migrate()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="busy_timeout=100"):
            store.record_event(event(1))
        assert store.count_events() == 0  # WAL: readers are not blocked
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.record_event(event(1))
    store.close()

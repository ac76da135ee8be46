"""An SQLite library too old for the schema is refused with a clear error, before anything is written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from costplane.ledger import open_store
from costplane.ledger.sqlite import MIN_SQLITE_VERSION
from costplane.ledger.store import StoreUnavailable


def test_old_sqlite_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 30, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.30.1")
    store = open_store(f"sqlite:///{tmp_path / 'old.db'}")
    with pytest.raises(StoreUnavailable, match=r"SQLite library is 3\.30\.1; costplane needs 3\.31\.0 or newer"):
        store.migrate()
    store.close()
    assert not (tmp_path / "old.db").exists()


def test_this_machines_sqlite_is_new_enough() -> None:
    assert sqlite3.sqlite_version_info >= MIN_SQLITE_VERSION

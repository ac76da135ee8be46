"""Conformance of `LedgerAdmin`: migrate is idempotent, the schema version is the latest, stats count."""

from __future__ import annotations

from collections.abc import Callable

from ledger_helpers import decision, event

from costplane.ledger import Store, open_store
from costplane.ledger.migrations import LATEST


def test_stats_and_schema_version(store: Store) -> None:
    for i in range(5):
        store.record_event(event(10 * i))
    store.record_decision(decision("d1"))
    stats = store.stats()
    assert stats["events"] == 5 and stats["decisions"] == 1 and stats["open_reservations"] == 0
    assert stats["schema_version"] == LATEST == store.schema_version()


def test_migrate_twice_keeps_the_data_and_the_url_names_the_database(store_url: Callable[[], str]) -> None:
    url = store_url()
    store = open_store(url)
    try:
        store.migrate()
        store.record_event(event(7, eid="kept"))
        store.migrate()
        assert store.schema_version() == LATEST and store.get_event("kept") is not None
        assert store.url.split(":", 1)[0] == url.split(":", 1)[0]
    finally:
        store.close()

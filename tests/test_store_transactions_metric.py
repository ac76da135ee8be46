"""`costplane_store_transactions_total` on /metrics: the PostgreSQL store's transactions of this
process; none for SQLite."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from costplane.ledger import open_store
from costplane.metrics.process import store_families


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_the_counter_follows_the_store_transactions(store_url: Callable[[], str], store_kind: str) -> None:
    store = open_store(store_url())
    try:
        store.migrate()
        if store_kind == "sqlite":
            assert store_families(store) == []
            return
        [family] = store_families(store)
        before = int(family.samples[0][2])
        store.count_events()
        store.open_reservations()
        [after] = store_families(store)
        assert int(after.samples[0][2]) == before + 2
        assert after.name == "costplane_store_transactions_total" and after.kind == "counter"
    finally:
        store.close()

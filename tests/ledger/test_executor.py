"""StoreExecutor: inline on SQLite; worker threads for PostgreSQL under load; limits hold either way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from ledger_helpers import claim, event, reserve

from costplane.ledger.executor import StoreExecutor
from costplane.ledger.open import open_store
from costplane.ledger.store import Store, StoreError


def test_concurrent_reserves_through_the_executor_never_overspend(store_url: Callable[[], str]) -> None:
    # store_url is parametrized over SQLite (inline) and PostgreSQL (4 worker threads)
    store: Store = open_store(store_url())
    store.migrate()
    executor = StoreExecutor(store, workers=4)
    hard = claim(budget="exec", amount=100, limit_nano=10_000)  # room for exactly 100

    async def main() -> list[bool]:
        with executor.request(), executor.request():  # busy: PostgreSQL calls go to the worker threads
            return await asyncio.gather(*(executor.run(lambda: reserve(store, [hard])[1].ok) for _ in range(300)))

    results = asyncio.run(main())
    executor.close()
    assert results.count(True) == 100
    [state] = store.claim_states([hard])
    assert state.reserved_nano == 10_000 and state.calls == 100
    store.close()


def test_exceptions_reach_the_awaiting_caller(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = open_store(f"sqlite:///{tmp_path}/e.db")
    store.migrate()
    executor = StoreExecutor(store)

    async def main() -> None:
        with pytest.raises(StoreError, match="unknown reservation"):  # inline (idle)
            await executor.run(store.settle, "res_missing", event(1))
        with executor.request(), executor.request():  # queued (busy)
            with pytest.raises(StoreError, match="unknown reservation"):
                await executor.run(store.settle, "res_missing", event(1))
            assert await executor.run(store.count_events) == 0

    asyncio.run(main())
    executor.close()
    store.close()

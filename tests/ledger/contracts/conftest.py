"""Backends the conformance suites run on.

`store` (from tests/conftest.py) is every full store: SQLite and PostgreSQL. `ledger` adds the
backends that implement only the budget ledger (the in-memory ledger). A new backend is added here,
to the parameters of `ledger` (a budget ledger alone) or of `store_kind` (a full store), and must pass
every suite of the contracts it implements.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from costplane.ledger import open_store
from costplane.ledger.contracts import BudgetLedger
from store_fixtures import pg_schema, require_postgres


def _memory_ledger() -> BudgetLedger | None:
    """The in-memory ledger when the build has it."""
    try:
        module = importlib.import_module("costplane.ledger.memory")
    except ImportError:
        return None
    ledger: BudgetLedger = module.MemoryLedger()
    return ledger


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"])
def ledger_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "postgres":
        require_postgres()
    if kind == "memory" and _memory_ledger() is None:
        pytest.skip("this build has no in-memory ledger")
    return kind


@pytest.fixture
def ledger(ledger_kind: str, tmp_path: Path) -> Iterator[BudgetLedger]:
    """A fresh budget ledger of each kind."""
    if ledger_kind == "memory":
        memory = _memory_ledger()
        assert memory is not None
        yield memory
        return
    with ExitStack() as stack:
        url = (f"sqlite:///{tmp_path / 'ledger.db'}" if ledger_kind == "sqlite"
               else stack.enter_context(pg_schema()))
        store = open_store(url)
        stack.callback(store.close)
        store.migrate()
        yield store


@pytest.fixture
def fresh_url(store_url: Callable[[], str]) -> Callable[[], str]:
    """Another empty database of the same kind as `store` (for tests that open two stores)."""
    return store_url

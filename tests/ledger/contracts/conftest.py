"""Backends the conformance suites run on.

`store` is every full store (SQLite and PostgreSQL, the kinds of `store_kind` in tests/conftest.py);
`ledger` adds the backends that implement only the budget ledger: the in-memory ledger, the
lease-based ledger (`LeasedLedger`) over SQLite and over PostgreSQL — on PostgreSQL behind the loop
guard's filter (`LoopIndexedLedger`), as served — and the PostgreSQL store itself behind that
filter (leases off, as served). A new backend is added to the
parameters of `ledger_kind` here (a budget ledger alone) or of `store_kind` (a full store, opened by
URL), and must pass every suite of the contracts it implements.

The leased ledger runs with `hot_per_second=1` and `share=1`, so every hard window is leased from its
first request and a lease may take all of a window's headroom (the leased path is what the suite
must hold to the contract, up to the limit), and without a background writer interval
that could apply its journal between two statements of a test: what it settles is applied when it
reads (`claim_states` applies its own journal first). That is the one allowed difference of a leased
ledger, and the suite needs no hook for it: its counters are exact for its own process at once, and
for other processes after its writer applies the journal.

Each test starts from an empty, migrated database: a new SQLite file, or — migrating a PostgreSQL
schema takes about a second — one schema per session, every table emptied (DELETE) before each test (the
schema version and the credentials generation row, which migrations write, are kept and reset).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from ledger_helpers import NOW

from costplane.ledger import Store, open_store
from costplane.ledger.base import SqlStore
from costplane.ledger.contracts import BudgetLedger
from costplane.ledger.leases import LeasedLedger, LeaseSettings
from costplane.ledger.loopfeed import LoopFeed
from costplane.ledger.loopfilter import LoopFilter
from costplane.ledger.loopindex import LoopIndexedLedger
from costplane.ledger.looppoll import PollingLoopFeed
from costplane.ledger.memory import MemoryLedger
from costplane.ledger.postgres import PostgresStore
from costplane.ledger.sqlite import SqliteStore
from store_fixtures import PG_URL, pg_schema, require_postgres

_SEEDED = ("schema_version", "credential_generation")  # rows written by the migrations themselves


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory", "leased-sqlite",
                        pytest.param("leased-postgres", marks=pytest.mark.postgres),
                        "indexed-sqlite", pytest.param("indexed-postgres", marks=pytest.mark.postgres)])
def ledger_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind.endswith("postgres"):
        require_postgres()
    return kind


@pytest.fixture(scope="session")
def migrated_pg() -> Iterator[str]:
    """One migrated PostgreSQL schema for the session's conformance tests (its URL)."""
    require_postgres()
    with pg_schema("cp_contract") as url:
        store = open_store(url)
        store.migrate()
        store.close()
        yield url


def _emptied(url: str) -> str:
    """Empty every table of the schema of `url` (as freshly migrated); returns `url`."""
    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(PG_URL) as conn:  # one transaction; DELETE beats TRUNCATE on a few rows
        conn.execute("SET LOCAL session_replication_role = replica")  # no triggers (rollups) while emptying
        tables = [str(r[0]) for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s",
                                                   (schema,)).fetchall()]
        for table in tables:
            if table not in _SEEDED:
                conn.execute(f"DELETE FROM {schema}.{table}")
        conn.execute(f"UPDATE {schema}.credential_generation SET generation = 0")
    return url


def _open(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    if kind == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'contract.db'}")
        store.migrate()
    else:
        store = open_store(_emptied(request.getfixturevalue("migrated_pg")))
    yield store
    store.close()


@pytest.fixture
def store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """An empty, migrated full store of each kind."""
    yield from _open(store_kind, tmp_path, request)


@pytest.fixture
def ledger(ledger_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[BudgetLedger]:
    """An empty budget ledger of each kind (a leased one is closed — its leases given back — before its store)."""
    if ledger_kind == "memory":
        yield MemoryLedger()
        return
    if ledger_kind.startswith("leased-"):
        for store in _open(ledger_kind.removeprefix("leased-"), tmp_path, request):
            if not isinstance(store, SqlStore):
                raise TypeError(f"a leased ledger needs a SQL store, got {type(store).__name__}")
            settings = LeaseSettings(enabled=True, journal_dir=tmp_path / "journal", flush_interval=3600.0,
                                     hot_per_second=1, share=1)
            leased = LeasedLedger(store, settings)
            served = _indexed(store, leased)  # as served: behind the loop guard's filter
            yield served
            served.close()
        return
    if ledger_kind.startswith("indexed-"):  # leases off, as served: the store behind the filter
        for store in _open(ledger_kind.removeprefix("indexed-"), tmp_path, request):
            indexed = _indexed(store, store)
            yield indexed
            indexed.close()
        return
    yield from _open(ledger_kind, tmp_path, request)


def _indexed(store: Store, ledger: BudgetLedger) -> LoopIndexedLedger:
    """`ledger` behind the loop guard's filter, its feed caught up (PostgreSQL: notifications; SQLite:
    the table's tail)."""
    feed: LoopFeed | PollingLoopFeed
    if isinstance(store, PostgresStore):
        feed = LoopFeed(store, LoopFilter(600), clock=lambda: NOW).start()
    elif isinstance(store, SqliteStore):
        feed = PollingLoopFeed(store, LoopFilter(600), clock=lambda: NOW, poll_seconds=0.01).start()
    else:
        raise TypeError(f"no loop feed for {type(store).__name__}")
    assert feed.wait_ready(30), "the loop feed did not catch up"
    return LoopIndexedLedger(ledger, feed)

"""Store fixtures: every store test runs on SQLite (a temp file) and on PostgreSQL (a fresh schema).

Fixtures other test packages can reuse (e.g. `from tests.ledger.conftest import store_kind,
store_url, store` in their own conftest, or copy the pattern):

* `store_kind` — "sqlite" / "postgres" (parametrized);
* `store_url` — a factory: each call returns the URL of a new empty database of that kind
  (SQLite file under tmp_path; PostgreSQL schema `cp_test_<random>`, dropped afterwards);
* `store` — an opened, migrated store on one such URL, closed afterwards.

PostgreSQL comes from env `COSTPLANE_TEST_PG` (default
postgresql://postgres@127.0.0.1:5432/test). Unreachable: the postgres tests skip, or
fail when env `CI` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from costplane.ledger import Store, open_store

PG_URL = os.environ.get("COSTPLANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
_pg_error: list[str | None] = []  # memo of the reachability probe


def _pg_problem() -> str | None:
    if not _pg_error:
        try:
            with psycopg.connect(PG_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_error.append(None)
        except psycopg.Error as exc:
            _pg_error.append(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    return _pg_error[0]


def require_postgres() -> None:
    problem = _pg_problem()
    if problem is not None:
        message = f"PostgreSQL at COSTPLANE_TEST_PG={PG_URL} is unreachable: {problem}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this is an error)")
        pytest.skip(message)


def pg_schema_url(schema: str) -> str:
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "postgres":
        require_postgres()
    return kind


@pytest.fixture
def store_url(store_kind: str, tmp_path: Path) -> Iterator[Callable[[], str]]:
    schemas: list[str] = []

    def make() -> str:
        if store_kind == "sqlite":
            path = tmp_path / f"ledger-{uuid.uuid4().hex[:8]}.db"
            return f"sqlite:///{path}"  # tmp_path is absolute: sqlite:////tmp/…
        schema = f"cp_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        schemas.append(schema)
        return pg_schema_url(schema)

    yield make
    if schemas:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def store(store_url: Callable[[], str]) -> Iterator[Store]:
    opened = open_store(store_url())
    opened.migrate()
    yield opened
    opened.close()

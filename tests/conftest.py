"""Fixtures every test package shares: the same store tests run on SQLite and on PostgreSQL.

* `store_kind` — "sqlite" / "postgres" (parametrized; postgres tests carry the `postgres` mark);
* `store_url` — a factory: each call returns the URL of a new empty database of that kind
  (a SQLite file under tmp_path, or a fresh PostgreSQL schema dropped afterwards);
* `store` — an opened, migrated store on one such URL, closed afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from costplane.ledger import Store, open_store
from store_fixtures import pg_schema, require_postgres

# A worker of `pytest -n` starts with COLUMNS=80 and LINES=24 in its environment; the CLI's consoles,
# built at import, would then keep 80 columns even where a test passes a wider COLUMNS, unlike a run
# in one process. Each worker forgets them, so both kinds of run print the same tables.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("COLUMNS", "LINES"):
        os.environ.pop(_name, None)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "postgres":
        require_postgres()
    return kind


@pytest.fixture
def store_url(store_kind: str, tmp_path: Path) -> Iterator[Callable[[], str]]:
    with ExitStack() as schemas:

        def make() -> str:
            if store_kind == "sqlite":
                return f"sqlite:///{tmp_path / f'store-{uuid.uuid4().hex[:8]}.db'}"
            return schemas.enter_context(pg_schema())

        yield make


@pytest.fixture
def store(store_url: Callable[[], str]) -> Iterator[Store]:
    opened = open_store(store_url())
    opened.migrate()
    yield opened
    opened.close()

"""PostgreSQL for tests: the server from env COSTPLANE_TEST_PG, a fresh schema per use.

Unreachable: the test is skipped with the reason — or fails when env CI is set, because
CI must run every store test on both stores.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

__all__ = ["PG_URL", "pg_schema", "require_postgres"]

PG_URL = os.environ.get("COSTPLANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
_probe: list[str | None] = []  # memo of the reachability probe (one per test session)


def require_postgres() -> None:
    if not _probe:
        try:
            with psycopg.connect(PG_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _probe.append(None)
        except psycopg.Error as exc:
            _probe.append(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    if _probe[0] is not None:
        message = f"PostgreSQL at COSTPLANE_TEST_PG={PG_URL} is unreachable: {_probe[0]}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this is an error)")
        pytest.skip(message)


@contextmanager
def pg_schema(prefix: str = "cp_test") -> Iterator[str]:
    """A fresh schema, dropped afterwards; yields a store URL that selects it."""
    require_postgres()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

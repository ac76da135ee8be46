"""PostgreSQL for tests: the server from env COSTPLANE_TEST_PG, a fresh schema per use.

Unreachable: the test is skipped with the reason — or fails when env CI is set, because
CI must run every store test on both stores.

The first probe of a session also turns off `synchronous_commit` for the test database (new
connections only): a commit then returns without waiting for its WAL flush (about 0.1 ms instead
of 4 ms on a laptop disk). What every other connection sees is unchanged — only a crash of the
PostgreSQL server itself could lose the last commits, which no test does — so the store tests
assert exactly what they did, and the ones that write thousands of rows one commit at a time
(the detectors' and replay's synthetic histories) stop waiting on the disk.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg
import pytest
from psycopg import sql

__all__ = ["PG_URL", "pg_schema", "require_postgres"]

PG_URL = os.environ.get("COSTPLANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
_probe: list[str | None] = []  # memo of the reachability probe (one per test session)


def require_postgres() -> None:
    if not _probe:
        try:
            with psycopg.connect(PG_URL, connect_timeout=3, autocommit=True) as conn:
                conn.execute("SELECT 1")
                _skip_wal_flush_waits(conn)
            _probe.append(None)
        except psycopg.Error as exc:
            _probe.append(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    if _probe[0] is not None:
        message = f"PostgreSQL at COSTPLANE_TEST_PG={PG_URL} is unreachable: {_probe[0]}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this is an error)")
        pytest.skip(message)


def _skip_wal_flush_waits(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """`ALTER DATABASE <test database> SET synchronous_commit = off`, unless it is already (a new
    connection shows the database's setting) or this role may not (then commits wait for the disk
    and the tests only take longer); two sessions racing to set it: one of them does."""
    row = conn.execute("SELECT current_database(), current_setting('synchronous_commit')").fetchone()
    if row is None or row[1] == "off":
        return
    with suppress(psycopg.Error):
        conn.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(sql.Identifier(str(row[0]))))


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

"""The PostgreSQL store passes the hot path's arrays as array literals (`pg_array`): whatever the
text — quotes, backslashes, commas, braces, the word NULL, any Unicode — PostgreSQL reads back
exactly the values given, and None as NULL."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costplane.ledger.postgres import pg_array
from store_fixtures import PG_URL, require_postgres

pytestmark = pytest.mark.postgres

_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
_BIGINT = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@pytest.fixture(scope="module")
def conn() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    require_postgres()
    with psycopg.connect(PG_URL, autocommit=True) as connection:
        yield connection


def test_awkward_text_round_trips(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    values = ['a,b', '{x}', 'say "hi"', "back\\slash", "NULL", "null", "", " padded ", "ünï", None, "\\\"", "}"]
    row = conn.execute("SELECT %s::text[]", (pg_array(values),)).fetchone()
    assert row is not None and row[0] == values


def test_numbers_booleans_and_nulls(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    row = conn.execute("SELECT %s::bigint[], %s::boolean[], %s::bigint[]",
                       (pg_array([0, -1, 2**63 - 1, None]), pg_array([True, False, None]), pg_array([]))).fetchone()
    assert row == ([0, -1, 2**63 - 1, None], [True, False, None], [])


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(st.one_of(st.none(), _TEXT), max_size=8), numbers=st.lists(st.one_of(st.none(), _BIGINT),
                                                                                    max_size=8))
def test_any_values_round_trip(conn: psycopg.Connection[tuple[object, ...]], texts: list[str | None],
                               numbers: list[int | None]) -> None:
    row = conn.execute("SELECT %s::text[], %s::bigint[]", (pg_array(texts), pg_array(numbers))).fetchone()
    assert row == (texts, numbers)

"""The store goes away under a request — its PostgreSQL connections are terminated — at the key's
read or at the admission: the client gets a 503 in its protocol's shape that says it may retry,
never a 500, and nothing is sent upstream; the next request reconnects and is served."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from costplane.ledger.open import open_store
from store_fixtures import PG_URL, pg_schema, require_postgres

pytestmark = pytest.mark.postgres

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


@pytest.fixture
def schema_url() -> Iterator[str]:
    require_postgres()
    with pg_schema() as url:
        yield url


def _cut_connections(store: Any) -> int:
    """Terminate the server sessions behind this store's connections (this process's, only)."""
    pids = [conn.info.backend_pid for conn in list(store._all) if not conn.closed]
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return len(pids)


@pytest.mark.parametrize("cached", [False, True], ids=["key-read", "admission"])
def test_a_lost_store_connection_is_a_503_then_the_gateway_recovers(
        make_gateway: Callable[..., Any], schema_url: str, cached: bool) -> None:
    gw = make_gateway(store_url=schema_url)
    secret = gw.key(team="ml")
    headers = {"authorization": f"Bearer {secret}"}
    if cached:  # the key is in the cache: the first store call is the admission's step
        assert httpx.post(gw.url + "/v1/chat/completions", json=CHAT, headers=headers, timeout=10).status_code == 200
    observer = open_store(schema_url)  # a handle of its own: the gateway's connections are the ones cut
    events = observer.count_events()
    assert _cut_connections(gw.app.store) >= 1

    response = httpx.post(gw.url + "/v1/chat/completions", json=CHAT, headers=headers, timeout=10)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "spend_unverifiable" and "failing closed" in error["message"]

    again = httpx.post(gw.url + "/v1/chat/completions", json=CHAT, headers=headers, timeout=10)
    assert again.status_code == 200, again.text
    assert observer.count_events() == events + 1  # the refused call was never served or charged
    assert observer.open_reservations() == 0
    observer.close()

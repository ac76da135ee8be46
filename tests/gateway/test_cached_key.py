"""A governed call reads and checks its request with the key as the authenticator's cache holds it,
and confirms the key — under a credential generation read in the authenticator's trust window, which
every revocation waits out before it returns — in the store step that admits the call, or before
any error answer. So a key revoked after it was cached is refused with 401 and nothing else: not
served, not admitted, not told why another check failed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from costplane.auth import Authenticator
from costplane.gateway.keys import create_key

OK = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def _post(url: str, secret: str, body: Any, **headers: str) -> httpx.Response:
    send = {"authorization": f"Bearer {secret}", **headers}
    if isinstance(body, bytes):
        return httpx.post(url + "/v1/chat/completions", content=body,
                          headers={"content-type": "application/json", **send}, timeout=10)
    return httpx.post(url + "/v1/chat/completions", json=body, headers=send, timeout=10)


# each would be answered otherwise: 200, 400 (body), 400 (header), 403 (policy), 413, 415
LATER = [
    pytest.param(OK, {}, 200, id="served"),
    pytest.param(b"{not json", {}, 400, id="malformed-body"),
    pytest.param(OK, {"x-costplane-teem": "ml"}, 400, id="bad-header"),
    pytest.param({**OK, "model": "o3-mini"}, {}, 403, id="policy-denial"),
    pytest.param({**OK, "messages": [{"role": "user", "content": "x" * 30_000}]}, {}, 413, id="too-large"),
    pytest.param(b"{}", {"content-type": "text/plain"}, 415, id="media-type"),
]


@pytest.mark.parametrize(("body", "headers", "otherwise"), LATER)
def test_a_key_revoked_after_it_was_cached_only_ever_gets_401(
        make_gateway: Callable[..., Any], body: Any, headers: dict[str, str], otherwise: int) -> None:
    gw = make_gateway(max_request_bytes=20_000)
    secret = gw.key(team="ml", tier="experiment")
    other = gw.key(team="ml", tier="experiment")
    assert _post(gw.url, secret, OK).status_code == 200  # cached now
    assert _post(gw.url, other, body, **headers).status_code == otherwise  # what the request gets from a live key

    events, decisions = gw.app.store.count_events(), len(gw.app.store.list_decisions())
    [record] = [k for k in gw.app.store.list_keys() if gw.app.auth.cached_key(secret) == k]
    gw.app.store.revoke_key(record.id, datetime.now(UTC))  # committed; this process's cache still holds the key
    assert gw.app.auth.cached_key(secret) == record  # the cache alone is not revocation-exact...

    response = _post(gw.url, secret, body, **headers)
    assert response.status_code == 401, response.text  # ...the call's own generation read is
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert gw.app.store.count_events() == events
    assert len(gw.app.store.list_decisions()) == decisions  # never admitted, never decided
    assert gw.app.store.open_reservations() == 0
    assert gw.app.auth.cached_key(secret) is None


def test_the_anthropic_route_confirms_too(make_gateway: Callable[..., Any]) -> None:
    gw = make_gateway()
    secret, record = create_key(gw.app.store, "a", {"team": "ml"})
    body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    client = gw.anthropic(secret)
    client.messages.create(**body)
    gw.app.store.revoke_key(record.id, datetime.now(UTC))
    response = httpx.post(gw.url + "/v1/messages", json=body, headers={"x-api-key": secret}, timeout=10)
    assert response.status_code == 401
    assert response.json()["type"] == "error"  # the protocol's own error shape


def test_cached_key_answers_from_the_cache_only(store: Any) -> None:
    auth = Authenticator(store)
    secret, record = create_key(store, "k", {"team": "ml"})
    assert auth.cached_key(secret) is None  # never resolved: not cached
    assert auth.cached_key("sk-not-ours") is None
    assert auth.key(secret) == record
    assert auth.cached_key(secret) == record
    loads = auth.loads
    assert auth.cached_key(secret) == record and auth.loads == loads  # no store look-up
    auth.invalidate()
    assert auth.cached_key(secret) is None

    now = datetime.now(UTC)
    clock = [now]
    timed = Authenticator(store, clock=lambda: clock[0])
    soon, _ = create_key(store, "soon", {"team": "ml"}, now + timedelta(seconds=30))
    assert timed.key(soon) is not None and timed.cached_key(soon) is not None
    clock[0] = now + timedelta(seconds=31)
    assert timed.cached_key(soon) is None  # expiry is checked on every use, cached or not


def test_the_gateway_reads_the_generation_once_per_window_not_once_per_call(
        make_gateway: Callable[..., Any]) -> None:
    gw = make_gateway()
    secret = gw.key(team="ml", tier="experiment")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    with httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {secret}"}, timeout=10) as client:
        assert client.post("/v1/chat/completions", json=body).status_code == 200
        reads = gw.app.auth.generation_reads
        for _ in range(100):
            assert client.post("/v1/chat/completions", json=body).status_code == 200
    # one read per 0.2 s: 100 calls would need 20 s to need 100 reads (they take well under that)
    assert gw.app.auth.generation_reads - reads < 50

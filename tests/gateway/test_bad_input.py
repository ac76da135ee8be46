"""Malformed bodies, unknown models, bad headers, bad keys, oversized inputs:
a clear error in the provider's format, naming the field or header — and nothing written."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture
def gw(make_gateway):  # type: ignore[no-untyped-def]
    return make_gateway(max_request_bytes=20_000)


def post(gw, key: str, body: bytes | dict, path: str = "/v1/chat/completions", **headers: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    send = {"authorization": f"Bearer {key}", **headers} if key else dict(headers)
    if isinstance(body, dict):
        return httpx.post(gw.url + path, json=body, headers=send, timeout=10)
    return httpx.post(gw.url + path, content=body, headers={**send, "content-type": "application/json"}, timeout=10)


OK = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("body", "headers", "status", "needle"),
    [
        (b"{not json", {}, 400, "not valid JSON"),
        (b"[1, 2]", {}, 400, "JSON object"),
        ({"messages": [{"role": "user", "content": "x"}]}, {}, 400, "model: this field is required"),
        ({"model": "gpt-4o-mini", "messages": []}, {}, 400, "messages: expected an array of at least 1 item(s)"),
        ({**OK, "max_tokens": -5}, {}, 400, "max_tokens: expected an integer from 1"),
        ({**OK, "model": "llama-unknown"}, {}, 400, "not served by any openai provider"),
        (OK, {"x-costplane-team": "bad value!"}, 400, "x-costplane-team header"),
        (OK, {"x-costplane-teem": "ml"}, 400, "did you mean x-costplane-team"),
        (OK, {"baggage": "costplane.run"}, 400, "baggage header"),
        (OK, {"traceparent": "00-xyz"}, 400, "traceparent header"),
        ({**OK, "messages": [{"role": "user", "content": "x" * 30_000}]}, {}, 413, "exceeds 20000 bytes"),
    ],
)
def test_bad_requests_are_explained_and_nothing_is_written(gw, body, headers, status, needle) -> None:  # type: ignore[no-untyped-def]
    key = gw.key(team="ml")
    response = post(gw, key, body, **headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert needle in error["message"]
    assert gw.app.store.count_events() == 0
    assert gw.app.store.list_decisions() == []
    assert gw.app.store.open_reservations() == 0


def test_anthropic_errors_use_anthropic_format(gw) -> None:  # type: ignore[no-untyped-def]
    response = post(gw, gw.key(), {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}]},
                    path="/v1/messages")
    assert response.status_code == 400
    assert response.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": "max_tokens: this field is required"}}


@pytest.mark.parametrize("key", ["", "cpk_not-a-real-key", "sk-something"])
def test_unknown_keys_are_refused(gw, key: str) -> None:  # type: ignore[no-untyped-def]
    response = post(gw, key, OK)
    assert response.status_code == 401
    assert gw.app.store.count_events() == 0


def test_revoked_and_expired_keys_are_refused(gw) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    from costplane.gateway.keys import create_key

    expired, _ = create_key(gw.app.store, "old", {"team": "ml"}, datetime.now(UTC) - timedelta(seconds=1))
    assert post(gw, expired, OK).status_code == 401
    secret, record = create_key(gw.app.store, "soon-revoked", {"team": "ml"})
    gw.app.store.revoke_key(record.id, datetime.now(UTC))
    assert post(gw, secret, OK).status_code == 401


def test_key_bound_attributes_cannot_be_overridden(gw) -> None:  # type: ignore[no-untyped-def]
    key = gw.key(team="support")
    response = post(gw, key, OK, **{"x-costplane-team": "ml"})
    assert response.status_code == 403
    assert "bound team='support'" in response.json()["error"]["message"]
    # ambient baggage cannot change it either; it is simply outranked
    assert post(gw, key, OK, baggage="costplane.team=ml").status_code == 200
    [event] = gw.app.store.list_events()
    assert event.context.team == "support"

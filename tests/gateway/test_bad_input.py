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


def _deep(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = [value]
    return value


TRACE = "0af7651916cd43dd8448eb211c80319c"
ANT = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("path", "body", "headers", "param"),
    [
        ("/v1/chat/completions", {**OK, "messages": [{"role": "user", "content": _deep(300)}]}, {},
         "messages[0].content[0]"),  # a content part must be an object
        ("/v1/chat/completions", {**OK, "tools": _deep(300)}, {}, "tools[0]"),
        ("/v1/chat/completions", {**OK, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "a", "extra": _deep(300)}]}]}, {},
         "messages[0].content[0].extra" + "[0]" * 59),  # the container at level 65
        ("/v1/chat/completions", {**OK, "tools": [{"type": "function", "function": {
            "name": "f", "parameters": {"a": _deep(300)}}}]}, {}, "tools[0].function.parameters.a" + "[0]" * 59),
        ("/v1/messages", {**ANT, "tools": [{"name": "t", "input_schema": {"a": _deep(300)}}]}, {},
         "tools[0].input_schema.a" + "[0]" * 60),
        ("/v1/chat/completions", {**OK, "stream": True, "stream_options": "yes"}, {}, "stream_options"),
        ("/v1/chat/completions", {**OK, "stream_options": {"include_usage": True}}, {}, "stream_options"),
        ("/v1/chat/completions", {**OK, "stream": True, "stream_options": {"include_usage": "yes"}}, {},
         "stream_options.include_usage"),
        ("/v1/chat/completions", {**OK, "stream": "yes"}, {}, "stream"),
        ("/v1/chat/completions", {**OK, "stream": 1}, {}, "stream"),
        ("/v1/chat/completions", {**OK, "stream": [True]}, {}, "stream"),
        ("/v1/chat/completions", {**OK, "stream": 0}, {}, "stream"),
        ("/v1/chat/completions", {**OK, "stream": {}}, {}, "stream"),
        ("/v1/chat/completions", {**OK, "temperature": 2.5}, {}, "temperature"),
        ("/v1/chat/completions", {**OK, "max_tokens": 0}, {}, "max_tokens"),
        ("/v1/chat/completions", {**OK, "max_tokens": 10.0}, {}, "max_tokens"),
        ("/v1/chat/completions", {**OK, "n": 2}, {}, "n"),
        ("/v1/chat/completions", {**OK, "tools": [{"type": "function", "function": {"description": "x"}}]}, {},
         "tools[0].function.name"),
        ("/v1/chat/completions", {**OK, "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": [
            {"type": "text", "text": "b"}, {"type": "bogus", "x": 1}]}]}, {}, "messages[1].content[1].type"),
        ("/v1/chat/completions", {**OK, "messages": [{"role": "robot", "content": "a"}]}, {}, "messages[0].role"),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", [1, 2]]}, {}, "input[1]"),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "a", "dimensions": True}, {}, "dimensions"),
        ("/v1/messages", {**ANT, "stream": "yes"}, {}, "stream"),
        ("/v1/messages", {**ANT, "messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]}, {},
         "messages[0].content[0].type"),
        ("/v1/messages", {**ANT, "messages": [{"role": "system", "content": "x"}]}, {}, "messages[0].role"),
        ("/v1/messages", {**ANT, "temperature": 1.5}, {}, "temperature"),
        ("/v1/messages", {**ANT, "tools": [{"name": "t"}]}, {}, "tools[0].input_schema"),
        ("/v1/chat/completions", OK, {"traceparent": f"ff-{TRACE}-b7ad6b7169203331-01"}, "traceparent header"),
        ("/v1/chat/completions", OK, {"traceparent": f"00-{TRACE.upper()}-b7ad6b7169203331-01"},
         "traceparent header"),
        ("/v1/chat/completions", OK, {"traceparent": f"00-{TRACE}-0000000000000000-01"}, "traceparent header"),
        ("/v1/chat/completions", OK, {"traceparent": f"00-{TRACE}-b7ad6b7169203331-01-extra"}, "traceparent header"),
        ("/v1/chat/completions", OK, {"baggage": "costplane.team=ml%zz"}, "baggage header"),
        ("/v1/chat/completions", OK, {"baggage": "costplane.team=%ff"}, "baggage header"),
        ("/v1/chat/completions", OK, {"baggage": ",".join(f"k{i}=v" for i in range(65))}, "baggage header"),
        ("/v1/chat/completions", OK, {"x-costplane-cache": "maybe"}, "x-costplane-cache"),
        ("/v1/messages", ANT, {"traceparent": f"ff-{TRACE}-b7ad6b7169203331-01"}, "traceparent header"),
    ],
)
def test_strict_types_and_headers_name_the_field(gw, path, body, headers, param) -> None:  # type: ignore[no-untyped-def]
    response = post(gw, gw.key(), body, path=path, **headers)
    assert response.status_code == 400, response.text
    assert response.headers["x-costplane-error-param"] == param
    payload = response.json()
    if path == "/v1/messages":
        assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
        assert param in payload["error"]["message"]
    else:
        assert payload["error"]["param"] == param and payload["error"]["type"] == "invalid_request_error"
        assert param in payload["error"]["message"]
    assert gw.app.store.count_events() == 0


@pytest.mark.parametrize(
    "headers",
    [{"traceparent": f"01-{TRACE}-b7ad6b7169203331-01-future"},  # a later version may add fields
     {"traceparent": f"fe-{TRACE}-b7ad6b7169203331-00"},
     {"baggage": "costplane.run=r%2F1;prop, vendor=x;k=v"},
     {"x-costplane-cache": "off"}],
)
def test_valid_headers_per_their_specs_are_accepted(gw, headers) -> None:  # type: ignore[no-untyped-def]
    response = post(gw, gw.key(), OK, **headers)
    assert response.status_code == 200, response.text
    [event] = gw.app.store.list_events()
    if "traceparent" in headers:
        assert event.context.trace == TRACE
    if "baggage" in headers:
        assert event.context.run == "r/1"


def test_non_json_content_types_get_415_in_the_protocol_format(gw) -> None:  # type: ignore[no-untyped-def]
    import json

    for path, body in (("/v1/chat/completions", OK), ("/v1/messages", ANT)):
        response = httpx.post(gw.url + path, content=json.dumps(body),
                              headers={"authorization": f"Bearer {gw.key()}", "content-type": "text/plain"})
        assert response.status_code == 415
        assert response.headers["x-costplane-error-param"] == "content-type"
        assert "content-type header" in response.text
    assert gw.app.store.count_events() == 0


def test_a_dimension_header_given_twice_with_two_values_is_refused(gw) -> None:  # type: ignore[no-untyped-def]
    response = httpx.post(gw.url + "/v1/chat/completions", json=OK,
                          headers=[("authorization", f"Bearer {gw.key()}"), ("x-costplane-team", "a"),
                                   ("x-costplane-team", "b")])
    assert response.status_code == 400
    assert response.headers["x-costplane-error-param"] == "x-costplane-team header"


def test_unknown_top_level_parameters_are_forwarded(gw) -> None:  # type: ignore[no-untyped-def]
    response = post(gw, gw.key(), {**OK, "some_future_parameter": {"nested": [1, 2, {"a": None}]}})
    assert response.status_code == 200, response.text


def test_a_chunked_body_over_the_limit_gets_413_naming_the_body(gw) -> None:  # type: ignore[no-untyped-def]
    def chunks():  # type: ignore[no-untyped-def]  # no content-length: transfer-encoding chunked
        yield b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}]}'

    response = httpx.post(gw.url + "/v1/chat/completions", content=chunks(),
                          headers={"authorization": f"Bearer {gw.key()}", "content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["x-costplane-error-param"] == "body"
    assert "exceeds 20000 bytes" in response.json()["error"]["message"]
    assert gw.app.store.count_events() == 0

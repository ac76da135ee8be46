"""Malformed requests get 400s in each API's own error format."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest

from costplane.serving import BackgroundServer


@pytest.mark.parametrize(("body", "param", "fragment"), [
    ({"messages": [{"role": "user", "content": "x"}]}, None, "model"),
    ({"model": "gpt-4o"}, "messages", "messages"),
    ({"model": "gpt-4o", "messages": []}, "messages", "empty array"),
    ({"model": "gpt-4o", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "robot"),
    ({"model": "gpt-4o", "messages": [{"role": "user"}]}, "messages[0].content", "content"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
     "max_tokens", ">= 1"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream_options": {}},
     "stream_options", "stream"),
])
def test_openai_bad_requests(sim: BackgroundServer, body: dict[str, Any], param: str | None,
                             fragment: str) -> None:
    response = httpx.post(sim.url + "/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert fragment in error["message"]


@pytest.mark.parametrize(("body", "fragment"), [
    ({"max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"model": "claude-haiku-4-5", "max_tokens": 10}, "messages"),
    ({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]},
     "role"),
    ({"model": "claude-haiku-4-5", "max_tokens": 10, "system": 5,
      "messages": [{"role": "user", "content": "x"}]},
     "system"),
])
def test_anthropic_bad_requests(sim: BackgroundServer, body: dict[str, Any], fragment: str) -> None:
    response = httpx.post(sim.url + "/v1/messages", json=body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    assert fragment in payload["error"]["message"]


def test_sdks_raise_bad_request(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="gpt-4o", messages=[])
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model="text-embedding-3-small", input="x", dimensions=99999)
    too_many: list[Any] = [{"role": "user", "content": [
        {"type": "text", "text": str(i), "cache_control": {"type": "ephemeral"}} for i in range(5)]}]
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4"):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=too_many)


def test_invalid_json_bad_headers_and_unknown_paths(sim: BackgroundServer) -> None:
    response = httpx.post(sim.url + "/v1/chat/completions", content=b"{not json")
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    response = httpx.post(sim.url + "/v1/chat/completions", headers={"x-simulator-fault": "boom"},
                          json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400 and response.json()["error"]["param"] == "x-simulator-fault"
    response = httpx.post(sim.url + "/v1/chat/completions", headers={"x-simulator-output-tokens": "-1"},
                          json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400
    response = httpx.get(sim.url + "/v1/nothing")
    assert response.status_code == 404 and "error" in response.json()
    response = httpx.get(sim.url + "/v1/messages")
    assert response.status_code == 405 and response.json()["type"] == "error"


def test_control_endpoints(sim: BackgroundServer) -> None:
    httpx.post(sim.url + "/v1/chat/completions", headers={"authorization": "Bearer secret"},
               json={"model": "gpt-4o", "messages": [{"role": "user", "content": "recorded"}]})
    assert httpx.get(sim.url + "/health").json()["simulator"] is True
    last = httpx.get(sim.url + "/_simulator/requests", params={"limit": 1}).json()["requests"]
    assert len(last) == 1 and last[0]["body"]["messages"][0]["content"] == "recorded"
    assert last[0]["headers"]["authorization"] == "***"
    stats = httpx.get(sim.url + "/_simulator/stats").json()
    assert stats["requests"] >= 1 and stats["by_path"]["/v1/chat/completions"] >= 1

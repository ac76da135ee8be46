"""Injected faults surface as the SDKs' own errors (max_retries=0, small timeouts)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

from costplane.serving import BackgroundServer
from costplane.simulator import SimulatorConfig, create_app

FAULT = "x-simulator-fault"
MSGS: list[Any] = [{"role": "user", "content": "fault please"}]


@pytest.mark.parametrize(("fault", "error", "status"), [
    ("500", openai.InternalServerError, 500),
    ("503", openai.InternalServerError, 503),
    ("429", openai.RateLimitError, 429),
])
def test_openai_status_faults(oai: openai.OpenAI, fault: str, error: type[openai.APIStatusError],
                              status: int) -> None:
    with pytest.raises(error) as caught:
        oai.chat.completions.create(model="gpt-4o", messages=MSGS, extra_headers={FAULT: fault})
    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(("fault", "error", "status"), [
    ("500", anthropic.InternalServerError, 500),
    ("529", anthropic.InternalServerError, 529),
    ("429", anthropic.RateLimitError, 429),
])
def test_anthropic_status_faults(claude: anthropic.Anthropic, fault: str,
                                 error: type[anthropic.APIStatusError], status: int) -> None:
    with pytest.raises(error) as caught:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MSGS,
                               extra_headers={FAULT: fault})
    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error" and "message" in body["error"]


def test_timeout_fault_hangs_until_client_gives_up(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    # a timeout error (not the 504 the hang limit ends in) shows the client's own deadline ended the call
    with pytest.raises(openai.APITimeoutError):
        oai.chat.completions.create(model="gpt-4o", messages=MSGS, extra_headers={FAULT: "timeout"},
                                    timeout=0.3)
    with pytest.raises(anthropic.APITimeoutError):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MSGS, stream=True,
                               extra_headers={FAULT: "timeout"}, timeout=0.3)


def test_timeout_fault_is_bounded_by_hang_limit() -> None:
    with BackgroundServer(create_app(SimulatorConfig(timeout_hang_s=0.2))) as server, \
            openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=5) as client, \
            pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=MSGS, extra_headers={FAULT: "timeout"})
    assert caught.value.status_code == 504


def test_cut_plain_is_a_connection_error(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="gpt-4o", messages=MSGS, extra_headers={FAULT: "cut"})
    with pytest.raises(anthropic.APIConnectionError):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MSGS,
                               extra_headers={FAULT: "cut"})


def test_cut_openai_stream_stops_midway_without_usage(oai: openai.OpenAI) -> None:
    headers = {FAULT: "cut", "x-simulator-output-tokens": "40"}
    seen: list[Any] = []
    stream = oai.chat.completions.create(model="gpt-4o", messages=MSGS, stream=True,
                                         stream_options={"include_usage": True}, extra_headers=headers)
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        seen.extend(stream)
    contents = [c for c in seen if c.choices and c.choices[0].delta.content]
    assert len(contents) == 20
    assert all(c.usage is None for c in seen)
    assert all(c.choices[0].finish_reason is None for c in seen)


def test_cut_anthropic_stream_has_no_message_delta(claude: anthropic.Anthropic) -> None:
    headers = {FAULT: "cut", "x-simulator-output-tokens": "30"}
    seen: list[Any] = []
    stream = claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MSGS, stream=True,
                                    extra_headers=headers)
    with pytest.raises((httpx2.HTTPError, anthropic.APIError)):
        seen.extend(stream)
    kinds = [e.type for e in seen]
    assert kinds[0] == "message_start" and kinds.count("content_block_delta") == 15
    assert "message_delta" not in kinds and "message_stop" not in kinds


def test_embeddings_fault(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        oai.embeddings.create(model="text-embedding-3-small", input="x", extra_headers={FAULT: "429"})


@pytest.fixture()
def flaky() -> Iterator[BackgroundServer]:
    config = SimulatorConfig(fault_rate=0.5, faults=("429", "500"), seed=7)
    with BackgroundServer(create_app(config)) as server:
        yield server


def _outcomes(url: str, n: int) -> list[str]:
    out = []
    with openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=5) as client:
        for _ in range(n):
            try:
                client.chat.completions.create(model="gpt-4o", messages=MSGS)
                out.append("ok")
            except openai.APIStatusError as exc:
                out.append(str(exc.status_code))
    return out


def test_global_fault_rate_is_seeded(flaky: BackgroundServer) -> None:
    first = _outcomes(flaky.url, 40)
    assert {"ok", "429", "500"} <= set(first)
    httpx.post(flaky.url + "/_simulator/reset").raise_for_status()
    assert _outcomes(flaky.url, 40) == first
    stats = httpx.get(flaky.url + "/_simulator/stats").json()
    assert stats["requests"] == 40
    assert sum(stats["faults"].values()) == first.count("429") + first.count("500")


def test_latency_and_stream_delay() -> None:
    config = SimulatorConfig(latency_ms=100, stream_delay_ms=10)
    with BackgroundServer(create_app(config)) as server, \
            openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0) as client:
        started = time.monotonic()
        client.chat.completions.create(model="gpt-4o", messages=MSGS,
                                       extra_headers={"x-simulator-output-tokens": "5"})
        assert time.monotonic() - started >= 0.1
        started = time.monotonic()
        chunks = list(client.chat.completions.create(model="gpt-4o", messages=MSGS, stream=True,
                                                     extra_headers={"x-simulator-output-tokens": "20"}))
        assert time.monotonic() - started >= 0.1 + 20 * 0.01
        assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 20

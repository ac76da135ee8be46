"""Probing every protocol from the outside: malformed input never reaches a 5xx, upstream errors
come back in the client's own shape uncharged, a client that hangs up is still charged, and a hard
budget holds while every protocol spends from it at once."""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.app import create_gateway
from costplane.gateway.keys import create_key
from costplane.ledger.types import CostEvent
from costplane.serving import BackgroundServer
from costplane.simulator import bedrock_api
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

from .conformance.cases import CASES, ConformanceCase
from .conformance.conftest import BEDROCK_KEY_ENV, PROVIDERS

BUDGET_NANO = 2_000_000  # $0.002: a few dozen calls
BUNDLE = f"""
kind: Budget
name: shared-hot
scope: ctx.team == "hot"
amount: {Decimal(BUDGET_NANO) / 10**9} USD
window: {{rolling: 1h}}
enforcement: hard
"""


@dataclass
class Probe:
    url: str
    app: Application
    simulator_url: str

    def key(self, team: str) -> str:
        secret, _ = create_key(self.app.store, "probe", {"team": team})
        return secret

    def events(self, team: str) -> list[CostEvent]:
        return [e for e in self.app.store.list_events(limit=100_000) if e.context.team == team]


def _start(tmp: Path, simulator: SimulatorConfig) -> Iterator[Probe]:
    bundle = tmp / "bundle"
    bundle.mkdir(parents=True)
    (bundle / "bundle.yaml").write_text(textwrap.dedent(BUNDLE))
    with BackgroundServer(create_app(simulator)) as sim:
        providers = {name: {k: (v.format(sim=sim.url) if isinstance(v, str) else v) for k, v in spec.items()}
                     for name, spec in PROVIDERS.items()}
        app = Application(parse_config({"store": f"sqlite:///{tmp}/gateway.db", "bundle": str(bundle),
                                        "providers": providers}, base=tmp))
        with BackgroundServer(create_gateway(app)) as server:
            yield Probe(server.url, app, sim.url)
        app.close()


@pytest.fixture(scope="module", autouse=True)
def bedrock_key() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(BEDROCK_KEY_ENV, bedrock_api.SIMULATOR_API_KEY)
        yield


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory, bedrock_key: None) -> Iterator[Probe]:
    yield from _start(tmp_path_factory.mktemp("probe"), SimulatorConfig())


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory, bedrock_key: None) -> Iterator[Probe]:
    yield from _start(tmp_path_factory.mktemp("probe429"), SimulatorConfig(fault_rate=1.0, faults=("429",)))


def _send(probe: Probe, case: ConformanceCase, method: str, path: str, key: str, content: bytes,
          extra: dict[str, str] | None = None) -> httpx.Response:
    headers = {**case.auth(key), "content-type": "application/json", **(extra or {})}
    if case.adapter == "anthropic-messages":
        headers["anthropic-version"] = "2023-06-01"
    return httpx.request(method, probe.url + path, content=content, headers=headers, timeout=20)


def _governed_path(case: ConformanceCase) -> str:
    return case.plain(case.model, "x").path


# -- malformed input -------------------------------------------------------------------------

MALFORMED = [b"", b"{", b"[]", b"null", b'"text"', b"\xff\xfe", b"{}", b'{"a":' * 3000 + b"1" + b"}" * 3000,
             b'{"model": 1e400}', b'{"messages": NaN}']


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_bodies_get_a_4xx_in_the_protocols_shape_and_charge_nothing(probe: Probe, name: str) -> None:
    case = CASES[name]
    team = f"malformed-{name}"
    key = probe.key(team)
    for raw in MALFORMED:
        response = _send(probe, case, "POST", _governed_path(case), key, raw)
        assert 400 <= response.status_code < 500, (raw[:40], response.status_code, response.text[:200])
        message = case.error_message(response.content, response.headers)
        if case.adapter != "bedrock":  # Bedrock names the error in x-amzn-errortype
            assert message, (raw[:40], response.text[:200])
        assert message is None or "body" in message or ":" in message
    assert probe.events(team) == []


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)
FIELDS = ["model", "messages", "input", "contents", "max_tokens", "max_output_tokens", "stream", "tools",
          "inferenceConfig", "generationConfig", "system", "instructions", "previous_response_id", "n",
          "stream_options", "toolConfig", "web_search_options", "max_tool_calls"]


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=8, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4))
def test_arbitrary_json_objects_never_reach_a_5xx(probe: Probe, name: str, body: dict[str, Any]) -> None:
    case = CASES[name]
    key = probe.key("fuzz")
    response = _send(probe, case, "POST", _governed_path(case), key, json.dumps(body).encode())
    assert response.status_code < 500, (body, response.status_code, response.text[:300])
    if response.status_code >= 400 and case.adapter != "bedrock":
        assert case.error_message(response.content, response.headers), response.text[:300]


@pytest.mark.parametrize("model", ["amazon.nova-lite-v1:0%3Fx=1", "amazon.nova-lite-v1:0%23frag", "%20amazon.nova"])
def test_a_bedrock_model_id_outside_its_alphabet_is_refused_naming_model_id(probe: Probe, model: str) -> None:
    case = CASES["bedrock"]
    response = _send(probe, case, "POST", f"/model/{model}/converse", probe.key("bedrock-ids"),
                     orjson.dumps(case.plain("m", "hi").body))
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"] == "ValidationException"
    assert "modelId" in response.json()["message"]
    assert probe.events("bedrock-ids") == []


# -- upstream errors and hung-up clients -----------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_an_upstream_429_reaches_the_client_with_its_status_and_nothing_is_charged(throttled: Probe,
                                                                                  name: str) -> None:
    case = CASES[name]
    team = f"throttled-{name}"
    key = throttled.key(team)
    wires = [case.plain(case.model, "hello")] + ([case.stream(case.model, "hello")] if case.stream else [])
    for wire in wires:
        response = _send(throttled, case, wire.method, wire.path, key, orjson.dumps(wire.body), dict(wire.headers))
        assert response.status_code == 429, response.text[:200]
        assert response.headers["x-costplane-cost-usd"] == "0"
        assert "429" in response.text
    assert throttled.events(team) == []
    assert throttled.app.store.open_reservations() == 0


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.stream is not None))
def test_a_client_that_hangs_up_at_once_is_still_charged_for_the_whole_stream(probe: Probe, name: str) -> None:
    case = CASES[name]
    assert case.stream is not None
    team = f"hangup-{name}"
    key = probe.key(team)
    wire = case.stream(case.model, "tell me a long story " * 5)
    with httpx.Client(timeout=20) as client, client.stream(
            wire.method, probe.url + wire.path, json=wire.body, headers={**case.auth(key), **wire.headers}) as reply:
        assert reply.status_code == 200
    plain = case.plain(case.model, "tell me a long story " * 5)
    answered = httpx.request(plain.method, probe.url + plain.path, json=plain.body,
                             headers={**case.auth(probe.key(team + "-plain")), **plain.headers}, timeout=20)
    usage = case.usage(answered.json())
    expected = genai_prices.calc_price(genai_prices.Usage(**usage), case.priced_model,
                                       provider_id=case.pricing_provider).total_price
    for _ in range(100):  # the hung-up stream settles on a store thread
        events = probe.events(team)
        if events:
            break
        time.sleep(0.05)
    assert len(events) == 1
    event = events[0]
    assert event.cost_nano > 0
    # the upstream answered in full: the stream is charged what the same plain call costs
    assert event.status == "ok"
    assert Decimal(event.cost_nano) == expected * 10**9


def test_a_chat_stream_without_include_usage_is_still_metered_exactly(probe: Probe) -> None:
    key = probe.key("no-usage-chunk")
    body = {"model": "gpt-4o-mini", "max_tokens": 40, "stream": True, "stream_options": {"include_usage": False},
            "messages": [{"role": "user", "content": "hello there"}]}
    reply = httpx.post(f"{probe.url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"},
                       timeout=20)
    assert reply.status_code == 200 and "data: [DONE]" in reply.text
    chunks = [orjson.loads(line[6:]) for line in reply.text.splitlines() if line.startswith("data: {")]
    assert not any(chunk.get("usage") for chunk in chunks)  # the client asked for none and gets none
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert text
    (event,) = probe.events("no-usage-chunk")
    assert event.status == "ok" and event.usage.output_tokens > 0
    expected = genai_prices.calc_price(genai_prices.Usage(input_tokens=event.usage.input_tokens,
                                                          output_tokens=event.usage.output_tokens),
                                       "gpt-4o-mini", provider_id="openai").total_price
    assert Decimal(event.cost_nano) == expected * 10**9


def test_another_keys_response_items_and_token_counts_are_not_reachable(probe: Probe) -> None:
    owner, other = probe.key("owner"), probe.key("other")
    created = httpx.post(f"{probe.url}/v1/responses", json={"model": "gpt-4o-mini", "input": "my secret is 42",
                                                            "max_output_tokens": 30},
                         headers={"authorization": f"Bearer {owner}"}, timeout=20).json()
    response_id = created["id"]
    auth = {"authorization": f"Bearer {other}"}
    items = httpx.get(f"{probe.url}/v1/responses/{response_id}/input_items", headers=auth, timeout=20)
    count = httpx.post(f"{probe.url}/v1/responses/input_tokens", headers=auth, timeout=20,
                       json={"model": "gpt-4o-mini", "input": "x", "previous_response_id": response_id})
    for reply in (items, count):
        assert reply.status_code == 404
        assert reply.json()["error"]["code"] == "response_not_found"
        assert "secret" not in reply.text
    assert probe.events("other") == []


# -- one hard budget, every protocol at once ------------------------------------------------

def _budget_wires(key: str) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    prompt = "word " * 40
    bearer = {"authorization": f"Bearer {key}"}
    return [
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "max_tokens": 300,
                                  "messages": [{"role": "user", "content": prompt}]}, bearer),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "max_tokens": 300, "stream": True,
                                  "messages": [{"role": "user", "content": prompt}]}, bearer),
        ("/v1/responses", {"model": "gpt-4o-mini", "input": prompt, "max_output_tokens": 300}, bearer),
        ("/v1/responses", {"model": "gpt-4o-mini", "input": prompt, "max_output_tokens": 300, "stream": True},
         bearer),
        ("/v1beta/models/gemini-2.0-flash:generateContent",
         {"contents": [{"parts": [{"text": prompt}]}], "generationConfig": {"maxOutputTokens": 300}},
         {"x-goog-api-key": key}),
        ("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
         {"contents": [{"parts": [{"text": prompt}]}], "generationConfig": {"maxOutputTokens": 300}},
         {"x-goog-api-key": key}),
        ("/model/amazon.nova-lite-v1:0/converse",
         {"messages": [{"role": "user", "content": [{"text": prompt}]}], "inferenceConfig": {"maxTokens": 300}},
         bearer),
        ("/model/amazon.nova-lite-v1:0/converse-stream",
         {"messages": [{"role": "user", "content": [{"text": prompt}]}], "inferenceConfig": {"maxTokens": 300}},
         bearer),
        ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 300,
                          "messages": [{"role": "user", "content": prompt}]},
         {"x-api-key": key, "anthropic-version": "2023-06-01"}),
        ("/openai/deployments/prod-mini/chat/completions?api-version=2024-10-21",
         {"max_tokens": 300, "messages": [{"role": "user", "content": prompt}]}, {"api-key": key}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": [prompt] * 5}, bearer),
    ]


def test_a_hard_budget_holds_while_every_protocol_spends_from_it_at_once(probe: Probe) -> None:
    wires = _budget_wires(probe.key("hot"))

    async def run() -> list[int]:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as client:
            async def one(i: int) -> int:
                path, body, headers = wires[i % len(wires)]
                reply = await client.post(probe.url + path, json=body, headers=headers)
                await reply.aread()
                return reply.status_code

            return list(await asyncio.gather(*(one(i) for i in range(140))))

    statuses = asyncio.run(run())
    assert set(statuses) <= {200, 402, 429}, statuses
    # the budget was really spent from, not refused up front. How many fit depends on how the 140
    # admissions overlap: a 300-token Claude Haiku call reserves 75 % of the budget while in flight,
    # so a burst decided within one call's lifetime can leave room for only a few
    assert statuses.count(200) >= 1
    assert statuses.count(200) < len(statuses)  # and it ran out
    events = probe.events("hot")
    assert len(events) == statuses.count(200)
    assert all(e.cost_nano > 0 and e.status == "ok" for e in events)  # no silent $0
    assert sum(e.cost_nano for e in events) <= BUDGET_NANO
    assert probe.app.store.open_reservations() == 0


# -- findings of the outside-in probe, fixed --------------------------------------------------------

@pytest.fixture(scope="module")
def cutting(tmp_path_factory: pytest.TempPathFactory, bedrock_key: None) -> Iterator[Probe]:
    yield from _start(tmp_path_factory.mktemp("probecut"), SimulatorConfig(fault_rate=1.0, faults=("cut",)))


def test_another_keys_response_cannot_be_continued(probe: Probe) -> None:
    owner, other = probe.key("chain-owner"), probe.key("chain-other")
    created = httpx.post(f"{probe.url}/v1/responses", headers={"authorization": f"Bearer {owner}"}, timeout=20,
                         json={"model": "gpt-4o-mini", "input": "my secret is 42", "max_output_tokens": 30}).json()
    for path, body in [("/v1/responses", {"input": "what was my secret?", "max_output_tokens": 30}),
                       ("/v1/responses", {"input": "x", "max_output_tokens": 30, "stream": True}),
                       ("/v1/responses/compact", {})]:
        reply = httpx.post(probe.url + path, headers={"authorization": f"Bearer {other}"}, timeout=20,
                           json={"model": "gpt-4o-mini", "previous_response_id": created["id"], **body})
        assert reply.status_code == 404, (path, reply.status_code, reply.text[:200])
        assert reply.json()["error"]["param"] == "previous_response_id"
    assert probe.events("chain-other") == []


def test_the_response_cache_is_not_shared_between_keys(probe: Probe) -> None:
    body = {"model": "gpt-4o-mini", "max_tokens": 30, "temperature": 0,
            "messages": [{"role": "user", "content": "Summarise the confidential acquisition of ACME"}]}
    owner = {"authorization": f"Bearer {probe.key('cache-a')}", "x-costplane-cache": "on"}
    first = httpx.post(f"{probe.url}/v1/chat/completions", json=body, timeout=20, headers=owner)
    again = httpx.post(f"{probe.url}/v1/chat/completions", json=body, timeout=20, headers=owner)
    second = httpx.post(f"{probe.url}/v1/chat/completions", json=body, timeout=20,
                        headers={"authorization": f"Bearer {probe.key('cache-b')}", "x-costplane-cache": "on"})
    assert first.status_code == again.status_code == second.status_code == 200
    assert again.headers.get("x-costplane-cache") == "hit"  # the same key is answered from the cache
    assert second.headers.get("x-costplane-cache") != "hit"
    assert second.json()["id"] != first.json()["id"]


def test_the_response_cache_never_answers_another_endpoint(probe: Probe) -> None:
    headers = {"authorization": f"Bearer {probe.key('cache-x')}", "x-costplane-cache": "on"}
    body = {"model": "gpt-4o-mini", "input": "hello there", "temperature": 0, "max_output_tokens": 30}
    assert httpx.post(f"{probe.url}/v1/responses", json=body, headers=headers, timeout=20).status_code == 200
    embedded = httpx.post(f"{probe.url}/v1/embeddings", json=body, headers=headers, timeout=20)
    assert embedded.headers.get("x-costplane-cache") != "hit"
    assert embedded.status_code != 200 or embedded.json().get("object") == "list"


def test_a_plain_answer_cut_after_its_headers_is_still_charged(cutting: Probe) -> None:
    key = cutting.key("plain-cut")
    reply = httpx.post(f"{cutting.url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=20,
                       json={"model": "gpt-4o-mini", "max_tokens": 50,
                             "messages": [{"role": "user", "content": "hello"}]})
    assert reply.status_code == 502
    assert "charged its bound" in reply.json()["error"]["message"]
    events = cutting.events("plain-cut")
    assert len(events) == 1 and events[0].cost_nano > 0 and events[0].status == "cut"
    assert cutting.app.store.open_reservations() == 0


def test_an_upstream_error_keeps_the_providers_back_off_headers(throttled: Probe) -> None:
    direct = httpx.post(f"{throttled.simulator_url}/v1/chat/completions", timeout=20,
                        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert direct.status_code == 429 and "retry-after" in direct.headers
    relayed = httpx.post(f"{throttled.url}/v1/chat/completions", timeout=20,
                         headers={"authorization": f"Bearer {throttled.key('backoff')}"},
                         json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert relayed.status_code == 429
    assert relayed.headers.get("retry-after") == direct.headers["retry-after"]

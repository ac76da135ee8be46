"""The Gemini API through the governed gateway with the official `google-genai` client: generate,
stream, embed and countTokens metered exactly (cost = tokens x the effective-dated prices, checked
against genai-prices), attributed, and denied in Google's error shape. The harness here (`make_gateway`)
also serves test_gemini_concurrency.py."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import httpx
import pytest
from google import genai
from google.genai import errors, types

from billed_units_data import data_price
from billed_units_data import expected_nano as expected_billed
from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.app import create_gateway
from costplane.gateway.keys import create_key
from costplane.gateway.protocols import ADAPTERS
from costplane.gateway.protocols.gemini import ADAPTER
from costplane.ledger.types import CostEvent
from costplane.money import decimal_to_nano, format_usd
from costplane.serving import BackgroundServer
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

SERVED = ADAPTERS if any(a.name == ADAPTER.name for a in ADAPTERS) else (*ADAPTERS, ADAPTER)
WEATHER = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Current weather of a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}})])
NO_AUTO = types.AutomaticFunctionCallingConfig(disable=True)


@dataclass
class Gateway:
    url: str
    app: Application
    simulator_url: str

    def key(self, **attributes: str) -> str:
        secret, _ = create_key(self.app.store, "test", attributes)
        return secret

    def client(self, key: str, **headers: str) -> genai.Client:
        return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=self.url, headers=headers or None,
                                                                         timeout=20_000))

    def events(self) -> list[CostEvent]:
        return sorted(self.app.store.list_events(limit=10_000), key=lambda e: e.ts)


def config_data(simulator_url: str, store_url: str, bundle: Path | None) -> dict[str, Any]:
    return {"store": store_url, "bundle": str(bundle) if bundle else None,
            "providers": {"openai": {"type": "openai", "base_url": f"{simulator_url}/v1", "models": ["gpt-*"]},
                          "gemini": {"type": "gemini", "base_url": simulator_url, "models": ["gemini-*"]}}}


@pytest.fixture(scope="module")
def simulator() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(SimulatorConfig())) as server:
        yield server


@pytest.fixture(scope="module")
def cutting_simulator() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(SimulatorConfig(fault_rate=1.0, faults=("cut",)))) as server:
        yield server


@pytest.fixture
def make_gateway(tmp_path: Path, simulator: BackgroundServer) -> Iterator[Callable[..., Gateway]]:
    started: list[tuple[BackgroundServer, Application]] = []

    def make(bundle: str = "", *, simulator_url: str | None = None, store_url: str | None = None) -> Gateway:
        root = tmp_path / f"g{len(started)}"
        bundle_dir = None
        if bundle:
            bundle_dir = root / "bundle"
            bundle_dir.mkdir(parents=True)
            (bundle_dir / "bundle.yaml").write_text(textwrap.dedent(bundle))
        sim_url = simulator_url or simulator.url
        store = store_url or f"sqlite:///{tmp_path}/g{len(started)}.db"
        application = Application(parse_config(config_data(sim_url, store, bundle_dir), base=tmp_path))
        server = BackgroundServer(create_gateway(application, adapters=SERVED))
        server.__enter__()
        started.append((server, application))
        return Gateway(server.url, application, sim_url)

    yield make
    for server, application in started:
        server.__exit__(None, None, None)
        application.close()


def expected_nano(model: str, usage: types.GenerateContentResponseUsageMetadata) -> int:
    """The cost genai-prices computes from the usage the client itself received."""
    output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
    prompt = (usage.prompt_token_count or 0) + (usage.tool_use_prompt_token_count or 0)
    price = genai_prices.calc_price(genai_prices.Usage(input_tokens=prompt, output_tokens=output,
                                                       cache_read_tokens=usage.cached_content_token_count or 0),
                                    model, provider_id="google")
    return decimal_to_nano(Decimal(price.total_price))


def test_generate_is_metered_exactly_attributed_and_explained(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.client(gw.key(team="ml", agent="bot"), **{"x-costplane-run": "run-9"})
    response = client.models.generate_content(
        model="gemini-2.5-flash", contents="Summarise the quarterly report in two lines.",
        config=types.GenerateContentConfig(system_instruction="Be brief.",
                                           thinking_config=types.ThinkingConfig(thinking_budget=64)))
    usage = response.usage_metadata
    assert usage is not None and usage.thoughts_token_count and usage.candidates_token_count
    [event] = gw.events()
    want = expected_nano("gemini-2.5-flash", usage)
    assert event.cost_nano == want
    headers = response.sdk_http_response.headers  # type: ignore[union-attr]
    assert headers["x-costplane-cost-usd"] == format_usd(want)
    assert headers["x-costplane-decision-id"] == event.decision_id
    assert (event.context.team, event.context.agent, event.context.run) == ("ml", "bot", "run-9")
    assert event.usage.reasoning_tokens == usage.thoughts_token_count
    assert event.status == "ok" and gw.app.store.open_reservations() == 0
    # the gateway set the output cap and kept the thinking budget; the client's key went nowhere
    [sent] = [r for r in httpx.get(f"{gw.simulator_url}/_simulator/requests").json()["requests"]
              if r["path"].endswith(":generateContent")][-1:]
    config = sent["body"]["generationConfig"]
    assert config["maxOutputTokens"] == gw.app.config.gateway.default_max_tokens
    assert config["thinkingConfig"]["thinking_budget"] == 64


def test_stream_embed_and_count_tokens(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    key = gw.key(team="search")
    client = gw.client(key)
    plain = client.models.generate_content(model="gemini-2.0-flash", contents="Write a haiku about invoices.")
    chunks = list(client.models.generate_content_stream(model="gemini-2.0-flash",
                                                        contents="Write a haiku about invoices."))
    assert "".join(c.text or "" for c in chunks) == plain.text
    assert chunks[-1].usage_metadata == plain.usage_metadata
    counted = client.models.count_tokens(model="gemini-2.0-flash", contents="Write a haiku about invoices.")
    assert counted.total_tokens == plain.usage_metadata.prompt_token_count  # type: ignore[union-attr]
    embedded = client.models.embed_content(model="gemini-embedding-001", contents=["alpha beta", "gamma"])
    assert embedded.embeddings is not None and len(embedded.embeddings) == 2
    events = gw.events()
    want = expected_nano("gemini-2.0-flash", plain.usage_metadata)  # type: ignore[arg-type]
    assert [(e.model, e.cost_nano, e.status) for e in events[:2]] == [("gemini-2.0-flash", want, "ok")] * 2
    embed_price = genai_prices.calc_price(genai_prices.Usage(input_tokens=3), "gemini-embedding-001",
                                          provider_id="google")
    assert (events[2].model, events[2].usage.input_tokens, events[2].cost_nano) == (
        "gemini-embedding-001", 3, decimal_to_nano(Decimal(embed_price.total_price)))
    assert len(events) == 3  # countTokens is passed through, never charged
    single = httpx.post(f"{gw.url}/v1beta/models/gemini-embedding-001:embedContent", headers={"x-goog-api-key": key},
                        json={"content": {"parts": [{"text": "alpha beta"}]}, "outputDimensionality": 4})
    assert single.status_code == 200 and len(single.json()["embedding"]["values"]) == 4
    assert single.headers["x-costplane-cost-usd"] == format_usd(gw.events()[-1].cost_nano)
    assert gw.events()[-1].usage.input_tokens == single.json()["usageMetadata"]["promptTokenCount"] == 2
    assert gw.app.store.open_reservations() == 0


def test_the_async_client_streams_through_the_gateway(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.client(gw.key(team="async"))

    async def run() -> tuple[str, types.GenerateContentResponseUsageMetadata | None]:
        text = ""
        usage = None
        async for chunk in await client.aio.models.generate_content_stream(model="gemini-2.5-flash",
                                                                           contents="Describe a budget."):
            text += chunk.text or ""
            usage = chunk.usage_metadata
        return text, usage

    text, usage = asyncio.run(run())
    assert text and usage is not None and usage.thoughts_token_count
    [event] = gw.events()
    assert event.status == "ok" and event.cost_nano == expected_nano("gemini-2.5-flash", usage)


def test_cached_prompt_and_function_calls_are_metered(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.client(gw.key(team="support"))
    policy = "Our refund policy covers every invoice issued within thirty days of delivery. " * 110
    client.models.generate_content(model="gemini-2.5-pro", contents=policy + "Is order 7 covered?")
    second = client.models.generate_content(model="gemini-2.5-pro", contents=policy + "Is order 8 covered?")
    usage = second.usage_metadata
    assert usage is not None and usage.cached_content_token_count and usage.cached_content_token_count >= 1024
    config = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=NO_AUTO)
    called = client.models.generate_content(model="gemini-2.5-flash", contents="Weather in Oslo?", config=config)
    assert called.function_calls and called.function_calls[0].name == "get_weather"
    events = gw.events()
    assert events[1].usage.cache_read_tokens == usage.cached_content_token_count
    assert events[1].cost_nano == expected_nano("gemini-2.5-pro", usage)
    assert events[2].cost_nano == expected_nano("gemini-2.5-flash", called.usage_metadata)  # type: ignore[arg-type]


def test_google_search_grounding_is_billed_per_prompt_with_its_tool_prompt_tokens(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.client(gw.key(team="research"))
    response = client.models.generate_content(
        model="gemini-2.5-flash", contents="Who won the match yesterday?",
        config=types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())]))
    usage = response.usage_metadata
    assert usage is not None and usage.tool_use_prompt_token_count and usage.thoughts_token_count
    [event] = gw.events()
    prompt = (usage.prompt_token_count or 0) + usage.tool_use_prompt_token_count
    want = expected_billed(data_price("google", "gemini-2.5-flash"), input_total=prompt, web_searches=1,
                           output_total=(usage.candidates_token_count or 0) + usage.thoughts_token_count)
    assert event.usage.count("web_searches") == 1 and event.usage.input_tokens == prompt
    assert event.cost_nano == want
    # the tool's results are not in the request: the reservation covered a whole context window
    [decision] = [d for d in gw.app.store.list_decisions() if d.id == event.decision_id]
    assert int(decision.result["reserved_nano"]) > want


def test_a_route_policy_sends_the_routed_model_in_the_path_and_the_cache_answers_repeats(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway("""
        kind: Policy
        name: flash-for-experiments
        on: llm.request
        when: ctx.tier == "experiment" && request.model == "gemini-2.5-pro"
        effect: route
        set: {model: gemini-2.0-flash}
        reason: experiments use the flash model
    """)
    client = gw.client(gw.key(team="lab", tier="experiment"), **{"x-costplane-cache": "on"})
    config = types.GenerateContentConfig(temperature=0)
    first = client.models.generate_content(model="gemini-2.5-pro", contents="Name three ledgers.", config=config)
    assert first.model_version == "gemini-2.0-flash"  # the simulator answers as the model in the path
    assert first.sdk_http_response.headers["x-costplane-model"] == "gemini-2.0-flash"  # type: ignore[union-attr]
    again = client.models.generate_content(model="gemini-2.5-pro", contents="Name three ledgers.", config=config)
    assert again.text == first.text
    assert again.sdk_http_response.headers["x-costplane-cache"] == "hit"  # type: ignore[union-attr]
    events = gw.events()
    assert [e.status for e in events] == ["ok", "cached"]
    assert events[0].model == "gemini-2.0-flash" and events[0].requested_model == "gemini-2.5-pro"
    assert events[0].cost_nano == expected_nano("gemini-2.0-flash", first.usage_metadata)  # type: ignore[arg-type]


def test_budget_and_policy_denials_reach_the_client_in_googles_shape(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway("""
        kind: Budget
        name: tiny
        scope: ctx.team == "tiny"
        amount: 0.000001 USD
        enforcement: hard
        ---
        kind: Policy
        name: no-pro-in-experiments
        on: llm.request
        when: ctx.tier == "experiment" && request.model == "gemini-2.5-pro"
        effect: deny
        reason: the experiment tier uses flash models
    """)
    tiny = gw.client(gw.key(team="tiny"))
    with pytest.raises(errors.ClientError) as denied:
        tiny.models.generate_content(model="gemini-2.5-flash", contents="Hello")
    assert denied.value.code == 402 and denied.value.status == "RESOURCE_EXHAUSTED"
    assert "tiny" in (denied.value.message or "")
    with pytest.raises(errors.ClientError) as streamed:
        list(tiny.models.generate_content_stream(model="gemini-2.5-flash", contents="Hello"))
    assert streamed.value.code == 402
    experiment = gw.client(gw.key(team="lab", tier="experiment"))
    with pytest.raises(errors.ClientError) as policy:
        experiment.models.generate_content(model="gemini-2.5-pro", contents="Hello")
    assert policy.value.code == 403 and policy.value.status == "PERMISSION_DENIED"
    assert "no-pro-in-experiments" in (policy.value.message or "")
    assert gw.events() == [] and gw.app.store.open_reservations() == 0


def test_bad_requests_name_the_field_and_the_query_key_is_not_forwarded(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    key = gw.key(team="ml")
    url = f"{gw.url}/v1beta/models/gemini-2.5-flash"
    bad = httpx.post(f"{url}:generateContent", params={"key": key},
                     json={"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": "9"}})
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert bad.headers["x-costplane-error-param"] == "generationConfig.maxOutputTokens"
    cache = httpx.post(f"{url}:generateContent", params={"key": key},
                       json={"contents": [{"parts": [{"text": "hi"}]}], "cachedContent": "cachedContents/abc"})
    assert cache.status_code == 400 and cache.headers["x-costplane-error-param"] == "cachedContent"
    unknown = httpx.post(f"{url}:predictLongRunning", params={"key": key}, json={})
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    assert ":generateContent" in unknown.json()["error"]["message"]
    shared = httpx.post(f"{gw.url}/v1/models/gemini-2.5-flash:predict", headers={"x-goog-api-key": key}, json={})
    assert shared.status_code == 404 and shared.json()["error"]["status"] == "NOT_FOUND"  # Google's shape under /v1/
    nokey = httpx.post(f"{url}:generateContent", json={"contents": [{"parts": [{"text": "hi"}]}]})
    assert nokey.status_code == 401 and nokey.json()["error"]["status"] == "UNAUTHENTICATED"
    ok = httpx.post(f"{url}:streamGenerateContent", params={"key": key},
                    json={"contents": [{"parts": [{"text": "hi"}]}]})
    assert ok.status_code == 200 and ok.json()[-1]["candidates"][0]["finishReason"] == "STOP"  # the JSON array
    sent = httpx.get(f"{gw.simulator_url}/_simulator/requests?limit=1").json()["requests"][0]
    assert sent["query"] == {} and sent["headers"]["x-goog-api-key"] == "***"
    assert [e.status for e in gw.events()] == ["ok"]


def test_cut_stream_is_charged_for_what_was_received_and_the_client_sees_an_error(  # type: ignore[no-untyped-def]
        make_gateway, cutting_simulator: BackgroundServer) -> None:
    gw = make_gateway(simulator_url=cutting_simulator.url)
    client = gw.client(gw.key(team="ml"))
    received = []
    with pytest.raises(errors.ServerError) as cut:
        for chunk in client.models.generate_content_stream(model="gemini-2.0-flash",
                                                           contents="Tell me a long story about ledgers."):
            received.append(chunk)
    assert cut.value.code == 502 and received
    [event] = gw.events()
    seen = received[-1].usage_metadata
    assert seen is not None
    assert event.status == "cut" and event.usage.output_tokens >= (seen.candidates_token_count or 0) > 0
    assert event.usage.input_tokens == seen.prompt_token_count
    assert gw.app.store.open_reservations() == 0

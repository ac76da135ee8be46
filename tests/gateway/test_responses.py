"""The OpenAI Responses API through the governed gateway, with the official `openai` client:
plain and streamed calls metered exactly, previous_response_id chains bounded by what the gateway
recorded, GET/cancel/delete under key scoping, function and built-in tool calls, denials in
OpenAI's error format, cut, failed and incomplete responses, and 500 concurrent requests that never
overspend a hard budget."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import httpx
import openai
import pytest

from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.app import create_gateway
from costplane.gateway.protocols import ADAPTERS
from costplane.gateway.protocols.openai_responses import ADAPTER, StoreResponseLookup, measure_responses
from costplane.gateway.proxy import GovernedProxy
from costplane.ledger.types import CostEvent
from costplane.money import decimal_to_nano, format_usd
from costplane.pricing.catalog import Catalog
from costplane.serving import BackgroundServer
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

from .conftest import DEFAULT_BUNDLE, Harness, gateway_config, write_bundle
from .processes import pg_schema

TOOLS: list[Any] = [{"type": "function", "name": "get_weather", "description": "The weather of a city",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                    "required": ["city"], "additionalProperties": False}, "strict": True}]
LONG = " ".join(["careful ledger budget window"] * 400)  # > 1,024 tokens: the second call reads the cache


@contextlib.contextmanager
def responses_gateways(tmp_path: Path, simulator_url: str) -> Iterator[Callable[..., Harness]]:
    """Gateways serving the Responses API, with the response record that scopes and bounds chains."""
    started: list[Harness] = []
    adapters = ADAPTERS if ADAPTER in ADAPTERS else (*ADAPTERS, ADAPTER)

    def make(bundle: str = DEFAULT_BUNDLE, *, simulator_url: str = simulator_url,
             store_url: str | None = None) -> Harness:
        root = tmp_path / f"r{len(started)}"
        data = gateway_config(simulator_url, store_url or f"sqlite:///{root}.db", write_bundle(root, bundle))
        application = Application(parse_config(data, base=tmp_path))
        server = BackgroundServer(create_gateway(application, adapters=adapters,
                                                 lookup=StoreResponseLookup(application.store)))
        server.__enter__()
        started.append(Harness(server.url, application, simulator_url, [server]))
        return started[-1]

    try:
        yield make
    finally:
        for harness in started:
            for server in harness.servers:
                server.__exit__(None, None, None)
            harness.app.close()


@pytest.fixture
def make_gateway(tmp_path: Path, simulator: BackgroundServer) -> Iterator[Callable[..., Harness]]:
    with responses_gateways(tmp_path, simulator.url) as make:
        yield make


def expected_nano(model: str, usage: Any, searches: int = 0) -> int:
    """The cost of a response's usage, computed by genai-prices from the same price data."""
    cached = usage.input_tokens_details.cached_tokens or 0
    price = genai_prices.calc_price(genai_prices.Usage(input_tokens=usage.input_tokens, cache_read_tokens=cached,
                                                       output_tokens=usage.output_tokens,
                                                       **({"web_searches": searches} if searches else {})),
                                    model, provider_id="openai")
    return decimal_to_nano(Decimal(price.total_price))


def events(gw: Harness) -> list[CostEvent]:
    return list(reversed(gw.app.store.list_events()))  # oldest first


def decision_bound(gw: Harness, decision_id: str) -> int:
    found = [d for d in gw.app.store.list_decisions(limit=1000) if d.id == decision_id]
    assert found, decision_id
    return int(found[0].input["input_tokens_bound"])


def budget(amount_nano: int, team: str = "t") -> str:
    return f"""
kind: Budget
name: cap
scope: ctx.team == "{team}"
amount: {format_usd(amount_nano)} USD
enforcement: hard
"""


def test_plain_response_is_metered_exactly(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.openai(gw.key(team="ml", agent="writer"))
    raw = client.responses.with_raw_response.create(model="gpt-4o-mini", instructions="Be brief.",
                                                    input="Summarise the quarterly report.",
                                                    extra_headers={"x-costplane-run": "run-9"})
    response = raw.parse()
    assert response.status == "completed" and response.output_text
    assert response.usage is not None
    want = expected_nano("gpt-4o-mini", response.usage)
    (event,) = events(gw)
    assert event.cost_nano == want and raw.headers["x-costplane-cost-usd"] == format_usd(want)
    assert (event.endpoint, event.model, event.response_id) == ("responses", "gpt-4o-mini", response.id)
    assert (event.context.team, event.context.agent, event.context.run) == ("ml", "writer", "run-9")
    assert event.usage.input_tokens == response.usage.input_tokens
    assert event.usage.output_tokens == response.usage.output_tokens
    # the gateway set the output cap it reserved for, and the bound covered the prompt
    assert response.max_output_tokens == gw.app.config.gateway.default_max_tokens
    body = {"instructions": "Be brief.", "input": "Summarise the quarterly report."}
    assert decision_bound(gw, event.decision_id or "") == measure_responses(body).bound >= response.usage.input_tokens
    assert gw.app.store.open_reservations() == 0


def test_streamed_response_with_cached_and_reasoning_tokens(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.openai(gw.key(team="ml"))
    client.responses.create(model="gpt-5", input=LONG + " first")
    stream = client.responses.create(model="gpt-5", input=LONG + " second", stream=True, max_output_tokens=300)
    seen = [event for event in stream]
    assert seen[0].type == "response.created" and seen[-1].type in ("response.completed", "response.incomplete")
    final = seen[-1].response
    assert final.usage is not None
    assert final.usage.input_tokens_details.cached_tokens > 0
    assert final.usage.output_tokens_details.reasoning_tokens > 0
    text = "".join(e.delta for e in seen if e.type == "response.output_text.delta")
    assert text == final.output_text
    first, second = events(gw)
    assert second.response_id == final.id and second.status == "ok"
    assert second.usage.cache_read_tokens == final.usage.input_tokens_details.cached_tokens
    assert second.usage.reasoning_tokens == final.usage.output_tokens_details.reasoning_tokens
    assert second.cost_nano == expected_nano("gpt-5", final.usage)
    assert first.cost_nano > 0 and gw.app.store.open_reservations() == 0


def test_previous_response_chain_is_bounded_by_the_recorded_tokens(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.openai(gw.key(team="ml"))
    first = client.responses.create(model="gpt-4o-mini", input="Name three budget rules.")
    follow = {"input": "And a fourth one?"}
    second = client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, **follow)
    assert first.usage is not None and second.usage is not None
    one, two = events(gw)
    recorded = one.usage.input_tokens + one.usage.output_tokens
    bound = decision_bound(gw, two.decision_id or "")
    assert bound == measure_responses(follow).bound + recorded
    assert bound >= second.usage.input_tokens > first.usage.input_tokens
    assert two.cost_nano == expected_nano("gpt-4o-mini", second.usage)


def test_a_chain_the_gateway_has_not_seen_is_bounded_by_the_context_window(make_gateway) -> None:  # type: ignore[no-untyped-def]
    sheet = Catalog.load().resolve("gpt-4o-mini", "openai")
    seen_worst = sheet.max_cost_nano(5_000, 4096)
    window_worst = sheet.max_cost_nano(128_000, 4096)
    assert seen_worst * 3 < window_worst
    gw = make_gateway(budget(seen_worst * 3))
    owner, other = gw.key(team="t"), gw.key(team="t")
    first = gw.openai(owner).responses.create(model="gpt-4o-mini", input="Start a plan.")
    gw.openai(owner).responses.create(model="gpt-4o-mini", previous_response_id=first.id, input="Go on.")
    with pytest.raises(openai.APIStatusError) as caught:  # unknown: the context window does not fit the budget
        gw.openai(owner).responses.create(model="gpt-4o-mini", previous_response_id="resp_never_seen", input="Go")
    assert caught.value.status_code == 402 and caught.value.body["code"] == "budget_exceeded"  # type: ignore[index]
    with pytest.raises(openai.APIStatusError) as other_key:  # another key's response: never continued for it
        gw.openai(other).responses.create(model="gpt-4o-mini", previous_response_id=first.id, input="Go on.")
    assert other_key.value.status_code in (402, 404)  # bounded as unseen, or refused by scoping
    assert len(events(gw)) == 2


def test_retrieve_cancel_and_delete_only_the_keys_own_responses(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    owner, stranger = gw.openai(gw.key(team="a")), gw.openai(gw.key(team="a"))
    created = owner.responses.create(model="gpt-4o-mini", input="Keep this.")
    assert owner.responses.retrieve(created.id).output_text == created.output_text
    for call in (lambda: stranger.responses.retrieve(created.id), lambda: stranger.responses.delete(created.id),
                 lambda: stranger.responses.cancel(created.id), lambda: owner.responses.retrieve("resp_nope")):
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        assert caught.value.body["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):  # not a background response: the provider refuses
        owner.responses.cancel(created.id)
    owner.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):  # gone upstream
        owner.responses.retrieve(created.id)
    assert len(events(gw)) == 1  # reading, cancelling and deleting is never charged


def test_function_tool_round_trip(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.openai(gw.key(team="ml"))
    asked = client.responses.create(model="gpt-4.1-mini", input="What is the weather in Paris?", tools=TOOLS)
    (call,) = [item for item in asked.output if item.type == "function_call"]
    assert call.name == "get_weather" and "city" in call.arguments
    answer = client.responses.create(model="gpt-4.1-mini", previous_response_id=asked.id, tools=TOOLS,
                                     input=[{"type": "function_call_output", "call_id": call.call_id,
                                             "output": "sunny, 21°C"}])
    assert answer.output_text and not [i for i in answer.output if i.type == "function_call"]
    first, second = events(gw)
    assert asked.usage is not None and answer.usage is not None
    assert first.cost_nano == expected_nano("gpt-4.1-mini", asked.usage)
    assert second.cost_nano == expected_nano("gpt-4.1-mini", answer.usage)


def test_web_search_is_capped_and_metered_per_call(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.openai(gw.key(team="ml"))
    response = client.responses.create(model="gpt-4o-mini", input="Latest cloud prices?",
                                       tools=[{"type": "web_search"}])
    assert response.output[0].type == "web_search_call"
    assert response.max_tool_calls == gw.app.config.gateway.default_max_tool_uses  # set and forwarded
    (event,) = events(gw)
    assert event.usage.count("web_searches") == 1
    assert event.cost_nano == expected_nano("gpt-4o-mini", response.usage, searches=1)
    decision = next(d for d in gw.app.store.list_decisions(limit=10) if d.id == event.decision_id)
    assert decision.result["tool_uses"] == {"web_searches": gw.app.config.gateway.default_max_tool_uses}


def test_denials_are_in_openai_format(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(DEFAULT_BUNDLE + "---" + budget(1))
    with pytest.raises(openai.APIStatusError) as caught:
        gw.openai(gw.key(team="t")).responses.create(model="gpt-4o-mini", input="hi")
    assert caught.value.status_code == 402
    error = caught.value.body
    assert isinstance(error, dict) and error["type"] == "insufficient_quota" and "budget 'cap'" in error["message"]
    with pytest.raises(openai.PermissionDeniedError) as denied:
        gw.openai(gw.key(tier="experiment")).responses.create(model="o3", input="hi")
    assert denied.value.body["code"] == "policy_denied"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad:
        gw.openai(gw.key(team="x")).responses.create(model="gpt-4o-mini", input="hi", max_output_tokens=4)
    assert bad.value.body["param"] == "max_output_tokens"  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError):
        gw.openai("cp_wrong").responses.create(model="gpt-4o-mini", input="hi")
    assert events(gw) == []


def test_incomplete_and_failed_responses_are_charged_what_they_report(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.openai(gw.key(team="ml"))
    short = client.responses.create(model="gpt-4o-mini", input="Write a long essay.", max_output_tokens=16)
    assert short.status == "incomplete" and short.usage is not None and short.usage.output_tokens == 16
    stream = client.responses.create(model="gpt-4o-mini", input="Try this.", stream=True,
                                     metadata={"simulator_outcome": "failed"})
    last = [event for event in stream][-1]
    assert last.type == "response.failed"
    first, second = events(gw)
    assert first.cost_nano == expected_nano("gpt-4o-mini", short.usage)
    assert last.response.usage is not None
    assert second.usage.output_tokens == last.response.usage.output_tokens and second.status == "ok"


@pytest.fixture(scope="module")
def cutting() -> Iterator[str]:
    with BackgroundServer(create_app(SimulatorConfig(fault_rate=1.0, faults=("cut",)))) as server:
        yield server.url


def test_cut_stream_is_charged_for_what_was_received(make_gateway, cutting: str) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(simulator_url=cutting)
    client = gw.openai(gw.key(team="ml"))
    seen = list(client.responses.create(model="gpt-4o-mini", input="Tell me a story.", stream=True))
    assert seen[0].type == "response.created" and seen[-1].type == "error"  # the stream's own error event
    assert seen[-1].code == "upstream_cut"
    assert not [e for e in seen if e.type == "response.completed"]
    (event,) = events(gw)
    assert event.status == "cut" and event.usage.output_tokens > 0
    assert event.usage.input_tokens == measure_responses({"input": "Tell me a story."}).estimate
    assert gw.app.store.open_reservations() == 0


REQUESTS = 500
MAX_TOKENS = 40
BODY = {"model": "gpt-4o-mini", "input": "Classify this ticket: my invoice shows the wrong VAT number.",
        "max_output_tokens": MAX_TOKENS}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_500_concurrent_responses_never_overspend(make_gateway, backend: str) -> None:  # type: ignore[no-untyped-def]
    sheet = Catalog.load().resolve("gpt-4o-mini", "openai")
    limit = sheet.max_cost_nano(measure_responses(BODY).bound, MAX_TOKENS) * 100
    with pg_schema() if backend == "postgres" else contextlib.nullcontext(None) as store_url:
        gw = make_gateway(budget(limit, "burst"), store_url=store_url)
        statuses = asyncio.run(fire(gw, gw.key(team="burst")))
        served = statuses.count(200)
        assert set(statuses) <= {200, 402}, sorted(set(statuses))
        spent = sum(e.cost_nano for e in gw.app.store.list_events(limit=10_000))
        assert spent <= limit
        assert served >= 95, (served, statuses.count(402))
        assert gw.app.store.count_events() == served
        assert gw.app.store.open_reservations() == 0


async def fire(gw: Harness, key: str) -> list[int]:

    limits = httpx.Limits(max_connections=600, max_keepalive_connections=600)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def one() -> int:
            response = await client.post(gw.url + "/v1/responses", json=BODY,
                                         headers={"authorization": f"Bearer {key}"})
            return response.status_code
        return await asyncio.gather(*(one() for _ in range(REQUESTS)))


WIRED = hasattr(GovernedProxy, "_settle_held")


@pytest.mark.skipif(not WIRED, reason="the proxy does not hold background responses (BackgroundResponses not wired)")
def test_background_responses_hold_their_reservation_until_read_finished(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    owner, stranger = gw.openai(gw.key(team="ml")), gw.openai(gw.key(team="ml"))
    raw = owner.responses.with_raw_response.create(model="gpt-4o-mini", input="A long report.", background=True)
    queued = raw.parse()
    assert queued.status == "queued" and raw.headers["x-costplane-cost-final"] == "false"
    assert gw.app.store.open_reservations() == 1 and events(gw) == []
    with pytest.raises(openai.NotFoundError):
        stranger.responses.retrieve(queued.id)
    for _ in range(100):
        done = owner.responses.retrieve(queued.id)
        if done.status == "completed":
            break
        time.sleep(0.05)
    assert done.status == "completed" and done.usage is not None
    (event,) = events(gw)
    assert event.response_id == queued.id and event.cost_nano == expected_nano("gpt-4o-mini", done.usage)
    assert gw.app.store.open_reservations() == 0
    running = owner.responses.create(model="gpt-4o-mini", input="Another long report.", background=True)
    cancelled = owner.responses.cancel(running.id)
    assert cancelled.status == "cancelled" and cancelled.usage is not None
    assert events(gw)[-1].usage.output_tokens == 0 and gw.app.store.open_reservations() == 0


def test_compaction_is_governed_and_token_counts_are_free(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.openai(gw.key(team="ml"))
    first = client.responses.create(model="gpt-4o-mini", input="Plan the migration in ten steps.")
    compacted = client.responses.compact(model="gpt-4o-mini", previous_response_id=first.id, input="Keep going.")
    assert compacted.output[0].type == "compaction"
    counted = client.responses.input_tokens.count(model="gpt-4o-mini", input="Keep going.", instructions="Be brief.")
    assert counted.input_tokens > 0
    with pytest.raises(openai.NotFoundError):  # counting another key's chain is refused like reading it
        gw.openai(gw.key(team="ml")).responses.input_tokens.count(model="gpt-4o-mini", previous_response_id=first.id)
    one, two = events(gw)  # the count is never charged
    assert (two.endpoint, two.response_id) == ("responses.compact", compacted.id)
    assert two.cost_nano == expected_nano("gpt-4o-mini", compacted.usage)
    bound = decision_bound(gw, two.decision_id or "")
    assert bound == measure_responses({"input": "Keep going."}).bound + one.usage.input_tokens + one.usage.output_tokens
    assert gw.app.store.open_reservations() == 0


def test_the_stream_helper_and_the_response_cache(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.openai(gw.key(team="ml"))
    with client.responses.stream(model="gpt-4o-mini", input="Name a budget rule.") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text and final.usage is not None
    ask = {"model": "gpt-4o-mini", "input": "Classify: refund request.", "temperature": 0}
    first = client.responses.with_raw_response.create(**ask, extra_headers={"x-costplane-cache": "on"})
    again = client.responses.with_raw_response.create(**ask, extra_headers={"x-costplane-cache": "on"})
    assert again.headers["x-costplane-cache"] == "hit" and again.parse().id == first.parse().id
    streamed, cached_miss, hit = events(gw)
    assert streamed.cost_nano == expected_nano("gpt-4o-mini", final.usage)
    assert hit.status == "cached" and hit.cost_nano == 0 and hit.saved_nano == cached_miss.cost_nano > 0

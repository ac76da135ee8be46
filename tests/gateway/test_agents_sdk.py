"""An `openai-agents` Agent with a function tool, on the SDK's default model (which calls the
Responses API), pointed at the gateway the way its documentation says (`set_default_openai_client`):
every model step is metered exactly and attributed, and a budget denial reaches the agent's caller
as the error it raises."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import genai_prices
import openai
import pytest
from agents import Agent, Runner, function_tool, set_default_openai_api, set_default_openai_client, set_tracing_disabled
from agents.models import _openai_shared
from agents.models.default_models import OPENAI_DEFAULT_MODEL_ENV_VARIABLE_NAME, get_default_model

from costplane.money import decimal_to_nano, format_usd
from costplane.serving import BackgroundServer

from .conftest import Harness
from .test_responses import responses_gateways

ASKED: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The current weather of a city."""
    ASKED.append(city)
    return f"Sunny and 21 degrees in {city}."


@pytest.fixture
def make_gateway(tmp_path: Path, simulator: BackgroundServer) -> Iterator[Callable[..., Harness]]:
    with responses_gateways(tmp_path, simulator.url) as make:
        yield make


@pytest.fixture
def agents_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The agents SDK's process-wide defaults, restored afterwards; traces are never exported."""
    monkeypatch.delenv(OPENAI_DEFAULT_MODEL_ENV_VARIABLE_NAME, raising=False)
    before = _openai_shared.get_default_openai_client()
    set_tracing_disabled(True)
    set_default_openai_api("responses")
    ASKED.clear()
    yield
    _openai_shared.set_default_openai_client(before)  # type: ignore[arg-type]


def point_at(gw: Harness, key: str, run: str) -> None:
    client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0, timeout=20,
                                default_headers={"x-costplane-run": run})
    set_default_openai_client(client, use_for_tracing=False)


def weather_agent() -> Agent:
    return Agent(name="weather", instructions="Answer questions about the weather; use the tool.",
                 tools=[get_weather])  # no model: the SDK's default


def test_every_model_step_of_an_agent_is_metered_and_attributed(make_gateway, agents_client) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    point_at(gw, gw.key(team="support", agent="weather-bot"), "run-agent-1")
    result = asyncio.run(Runner.run(weather_agent(), "What is the weather in Paris?"))
    assert ASKED and isinstance(result.final_output, str) and result.final_output
    model = get_default_model()
    steps = result.raw_responses
    assert len(steps) == 2  # a function call, then the answer
    metered = {e.response_id: e for e in gw.app.store.list_events()}
    assert len(metered) == 2
    for step in steps:
        event = metered[step.response_id]
        usage = step.usage
        assert (event.model, event.endpoint, event.status) == (model, "responses", "ok")
        assert (event.context.team, event.context.agent, event.context.run) == ("support", "weather-bot",
                                                                                 "run-agent-1")
        assert (event.usage.input_tokens, event.usage.output_tokens) == (usage.input_tokens, usage.output_tokens)
        price = genai_prices.calc_price(genai_prices.Usage(input_tokens=usage.input_tokens,
                                                           output_tokens=usage.output_tokens), model,
                                        provider_id="openai")
        assert event.cost_nano == decimal_to_nano(Decimal(price.total_price)) > 0
    assert gw.app.store.open_reservations() == 0


def test_a_streamed_agent_run_is_metered_step_by_step(make_gateway, agents_client) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    point_at(gw, gw.key(team="support"), "run-agent-3")

    async def run() -> tuple[list[str], object]:
        result = Runner.run_streamed(weather_agent(), "What is the weather in Lima?")
        kinds = [event.type async for event in result.stream_events()]
        return kinds, result

    kinds, result = asyncio.run(run())
    assert "raw_response_event" in kinds and len(ASKED) == 1  # the tool ran once, between the two steps
    steps = result.raw_responses  # type: ignore[attr-defined]
    metered = {e.response_id: e for e in gw.app.store.list_events()}
    assert len(steps) == 2 and set(metered) == {step.response_id for step in steps}
    for step in steps:
        assert metered[step.response_id].usage.output_tokens == step.usage.output_tokens
        assert metered[step.response_id].context.run == "run-agent-3"
    assert gw.app.store.open_reservations() == 0


def test_a_budget_denial_reaches_the_agent_as_an_error(make_gateway, agents_client) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(f"""
kind: Budget
name: agents-monthly
scope: ctx.team == "support"
amount: {format_usd(1)} USD
enforcement: hard
""")
    point_at(gw, gw.key(team="support"), "run-agent-2")
    with pytest.raises(openai.APIStatusError) as caught:
        asyncio.run(Runner.run(weather_agent(), "What is the weather in Oslo?"))
    assert caught.value.status_code == 402
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "budget_exceeded"
    assert "agents-monthly" in body["message"]
    assert not ASKED and gw.app.store.list_events() == []


def test_a_denial_mid_run_reaches_the_agent_after_its_tool_ran(make_gateway, agents_client) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway("""
kind: Budget
name: one-model-call-per-run
scope: ctx.team == "support"
per: [run]
max_calls: 1
""")
    point_at(gw, gw.key(team="support"), "run-agent-4")
    with pytest.raises(openai.RateLimitError) as caught:  # the second model step is refused
        asyncio.run(Runner.run(weather_agent(), "What is the weather in Rome?"))
    body = caught.value.body
    assert isinstance(body, dict) and "one-model-call-per-run" in body["message"]
    assert len(ASKED) == 1  # the first step called the tool, which ran
    (event,) = gw.app.store.list_events()  # only the admitted step was charged
    assert event.context.run == "run-agent-4" and gw.app.store.open_reservations() == 0

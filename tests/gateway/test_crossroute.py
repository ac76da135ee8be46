"""A call routed to another vendor's model is translated both ways, plain and streamed: the client
gets its own protocol back, the cost event records both models and the served model's price.

The decision core that routes across families is stood in for by `CrossVendorCore`, which admits
team `cross` as routed to a fixed model of another family through the real core."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import genai_prices
import openai
import pytest
from starlette.applications import Starlette

from costplane.app import Application
from costplane.config import parse_config
from costplane.core.requests import Admission
from costplane.gateway.keys import create_key
from costplane.gateway.protocols import ADAPTERS
from costplane.gateway.proxy import GovernedProxy
from costplane.gateway.routes import adapter_routes
from costplane.gateway.upstream import AiohttpTransport
from costplane.ledger.executor import StoreExecutor
from costplane.ledger.types import CostEvent
from costplane.money import decimal_to_nano
from costplane.serving import BackgroundServer

from .conftest import gateway_config

WEATHER: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ASK: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Two lines on cloud spend."}]


class CrossVendorCore:
    """The real decision core, except that team `cross` is routed to `model` of `family`."""

    def __init__(self, core: Any, family: str, model: str) -> None:
        self._core, self._family, self._model = core, family, model

    def admit(self, ctx: Any, req: Any, **kwargs: Any) -> Any:
        if ctx.team != "cross":
            return self._core.admit(ctx, req, **kwargs)
        got = self._core.admit(ctx, replace(req, protocol=self._family, model=self._model), **kwargs)
        return replace(got, request=req, effect="route") if isinstance(got, Admission) else got

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)


class Routed:
    def __init__(self, url: str, app: Application) -> None:
        self.url, self.app = url, app
        self.key, _ = create_key(app.store, "cross", {"team": "cross"})

    def events(self) -> list[CostEvent]:
        return self.app.store.list_events()


@pytest.fixture
def routed_to(tmp_path: Path, simulator: BackgroundServer) -> Iterator[Any]:
    opened: list[tuple[BackgroundServer, Application, StoreExecutor]] = []

    def make(family: str, model: str) -> Routed:
        data = gateway_config(simulator.url, f"sqlite:///{tmp_path}/x{len(opened)}.db", None)
        data["providers"]["gemini"] = {"type": "gemini", "base_url": simulator.url, "models": ["gemini-*"]}
        application = Application(parse_config(data, base=tmp_path))
        store = StoreExecutor(application.store)
        transport = AiohttpTransport()
        proxy = GovernedProxy(CrossVendorCore(application.core, family, model), application.auth,  # type: ignore[arg-type]
                              transport, 1 << 20, 20.0, store)

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            yield
            await transport.close()

        server = BackgroundServer(Starlette(routes=adapter_routes(ADAPTERS, proxy.handle), lifespan=lifespan))
        server.__enter__()
        opened.append((server, application, store))
        return Routed(server.url, application)

    yield make
    for server, application, store in opened:
        server.__exit__(None, None, None)
        store.close()
        application.close()


def cost(model: str, provider: str, event: CostEvent) -> int:
    u = event.usage
    price = genai_prices.calc_price(genai_prices.Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                                                       cache_read_tokens=u.cache_read_tokens,
                                                       cache_write_tokens=u.cache_write_tokens), model,
                                    provider_id=provider)
    return decimal_to_nano(Decimal(price.total_price))


def test_openai_chat_routed_to_anthropic_plain_and_with_a_tool_call(routed_to) -> None:  # type: ignore[no-untyped-def]
    gw = routed_to("anthropic", "claude-haiku-4-5")
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0, timeout=20)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK, max_tokens=80)
    reply = raw.parse()
    assert reply.object == "chat.completion" and reply.choices[0].message.content
    assert reply.model == "gpt-4o-mini" and raw.headers["x-costplane-model"] == "claude-haiku-4-5"
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    (event,) = gw.events()
    assert (event.model, event.requested_model, event.status) == ("claude-haiku-4-5", "gpt-4o-mini", "ok")
    assert event.cost_nano == cost("claude-haiku-4-5", "anthropic", event) > 0
    called = client.chat.completions.create(model="gpt-4o-mini", messages=[ASK[1]], tools=WEATHER,
                                            tool_choice={"type": "function", "function": {"name": "get_weather"}})
    call = called.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and "city" in call.function.arguments  # type: ignore[union-attr]
    assert gw.app.store.open_reservations() == 0


def test_openai_chat_stream_routed_to_gemini(routed_to) -> None:  # type: ignore[no-untyped-def]
    gw = routed_to("gemini", "gemini-2.0-flash")
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0, timeout=20)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=80, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage is not None
    (event,) = gw.events()
    assert (event.model, event.status) == ("gemini-2.0-flash", "ok")
    assert event.usage.output_tokens == chunks[-1].usage.completion_tokens
    assert event.cost_nano == cost("gemini-2.0-flash", "google", event) > 0
    assert gw.app.store.open_reservations() == 0


def test_anthropic_stream_routed_to_openai(routed_to) -> None:  # type: ignore[no-untyped-def]
    gw = routed_to("openai", "gpt-4o-mini")
    client = anthropic.Anthropic(base_url=gw.url, api_key=gw.key, max_retries=0, timeout=20)
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=80, system="Be brief.",
                                messages=[{"role": "user", "content": "Two lines on cloud spend."}]) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text  # type: ignore[union-attr]
    (event,) = gw.events()
    assert (event.model, event.requested_model) == ("gpt-4o-mini", "claude-haiku-4-5")
    assert event.usage.output_tokens == final.usage.output_tokens
    assert event.cost_nano == cost("gpt-4o-mini", "openai", event) > 0


def test_embeddings_cannot_be_routed_across_vendors(routed_to) -> None:  # type: ignore[no-untyped-def]
    gw = routed_to("anthropic", "claude-haiku-4-5")
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0, timeout=20)
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert "cannot be translated" in str(refused.value)
    assert gw.events() == [] and gw.app.store.open_reservations() == 0


def test_responses_routed_to_anthropic_answers_a_response(routed_to) -> None:  # type: ignore[no-untyped-def]
    gw = routed_to("anthropic", "claude-haiku-4-5")
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0, timeout=20)
    reply = client.responses.create(model="gpt-4o-mini", instructions="Be brief.", input="Two lines on spend.",
                                    max_output_tokens=80)
    assert reply.output_text and reply.usage is not None
    (event,) = gw.events()
    assert (event.model, event.requested_model, event.endpoint) == ("claude-haiku-4-5", "gpt-4o-mini", "responses")
    assert event.usage.output_tokens == reply.usage.output_tokens
    assert event.cost_nano == cost("claude-haiku-4-5", "anthropic", event) > 0



DEGRADE = """
kind: Budget
name: ml-degrade
scope: ctx.team == "ml"
per: [run]
amount: 0.0012 USD
window: {rolling: 1h}
on_exceed: {route: claude-haiku-4-5}
"""


def test_a_budget_degrades_an_openai_call_to_another_vendors_model(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(DEGRADE)
    client = gw.openai(gw.key(team="ml"))

    def run() -> dict[str, str]:
        return {"x-costplane-run": f"run-{len(gw.app.store.list_events())}"}

    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=ASK, max_tokens=150,
                                                           extra_headers=run())
    reply = raw.parse()
    assert reply.choices[0].message.content and reply.model == "gpt-4o"
    assert raw.headers["x-costplane-effect"] == "route" and raw.headers["x-costplane-model"] == "claude-haiku-4-5"
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=ASK, max_tokens=150, stream=True,
                                                 extra_headers=run()))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    called = client.chat.completions.create(model="gpt-4o", messages=[ASK[1]], max_tokens=150, tools=WEATHER,
                                            extra_headers=run())
    assert called.choices[0].message.tool_calls[0].function.name == "get_weather"  # type: ignore[index,union-attr]
    streamed = list(client.chat.completions.create(model="gpt-4o", messages=[ASK[1]], max_tokens=150, tools=WEATHER,
                                                   stream=True, extra_headers=run()))
    deltas = [d for c in streamed if c.choices for d in c.choices[0].delta.tool_calls or ()]
    assert any(d.function and d.function.name == "get_weather" for d in deltas)
    assert "city" in "".join(d.function.arguments or "" for d in deltas if d.function)
    events = gw.app.store.list_events()
    assert len(events) == 4
    assert {(e.model, e.requested_model) for e in events} == {("claude-haiku-4-5", "gpt-4o")}
    assert all(e.cost_nano == cost("claude-haiku-4-5", "anthropic", e) > 0 for e in events)
    assert gw.app.store.open_reservations() == 0

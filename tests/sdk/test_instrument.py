"""Instrumented official clients against the real simulator and gateway: direct and gateway mode,
sync and async, plain and streamed; the same calls cost the same either way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import anthropic
import openai

import costplane
from costplane.ledger.types import CostEvent
from run_harness import Server

MESSAGES = [{"role": "user", "content": "Where is my parcel? It was due on Monday."}]


def _events(server: Server, run: str) -> list[CostEvent]:
    return server.app.store.run_events(run)


def test_direct_mode_sync_async_stream_openai_and_anthropic(make_server: Callable[..., Server]) -> None:
    server = make_server()
    session = server.session()
    oai = costplane.instrument(openai.OpenAI(base_url=f"{server.simulator_url}/v1", api_key="sk-sim", max_retries=0),
                               mode="direct", session=session)
    aoai = costplane.instrument(openai.AsyncOpenAI(base_url=f"{server.simulator_url}/v1", api_key="sk-sim",
                                                   max_retries=0), mode="direct", session=session)
    ant = costplane.instrument(anthropic.Anthropic(base_url=server.simulator_url, api_key="sk-sim", max_retries=0),
                               mode="direct", session=session)
    aant = costplane.instrument(anthropic.AsyncAnthropic(base_url=server.simulator_url, api_key="sk-sim",
                                                         max_retries=0), mode="direct", session=session)
    with session.agent_run("direct-bot", run="run-direct"), costplane.step("answer"):
        plain = oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=50)
        chunks = list(oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=50, stream=True))
        assert chunks and all(c.choices for c in chunks)  # the usage chunk it asked for is hidden again
        message = ant.messages.create(model="claude-haiku-4-5", messages=MESSAGES, max_tokens=50)
        events = list(ant.messages.create(model="claude-haiku-4-5", messages=MESSAGES, max_tokens=50,
                                          stream=True))
        assert events[0].type == "message_start"

        async def both() -> None:
            await aoai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=50)
            stream = await aoai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=50,
                                                        stream=True)
            async for _ in stream:
                pass
            await aant.messages.create(model="claude-haiku-4-5", messages=MESSAGES, max_tokens=50)

        asyncio.run(both())
    session.close()
    recorded = _events(server, "run-direct")
    assert len(recorded) == 7
    assert {e.context.step for e in recorded} == {"answer"} and all(e.context.agent == "direct-bot" for e in recorded)
    assert all(e.cost_nano > 0 and e.status == "ok" for e in recorded)
    first = next(e for e in recorded if e.model == "gpt-4o-mini")
    assert plain.usage is not None and first.usage.input_tokens == plain.usage.prompt_tokens
    price = server.app.catalog.resolve("gpt-4o-mini", "openai")
    assert first.cost_nano == price.cost_nano(first.usage)
    claude = next(e for e in recorded if e.model == "claude-haiku-4-5")
    assert claude.usage.output_tokens == message.usage.output_tokens


def test_gateway_mode_propagates_context_and_costs_match_direct(make_server: Callable[..., Server]) -> None:
    server = make_server()
    key = server.key(team="support")
    session = server.session()
    via_gateway = costplane.instrument(openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0),
                                       mode="gateway")
    direct = costplane.instrument(openai.OpenAI(base_url=f"{server.simulator_url}/v1", api_key="sk", max_retries=0),
                                  mode="direct", session=session)
    ant_gateway = costplane.instrument(anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0),
                                       mode="gateway")
    with session.agent_run("gw-bot", run="run-gw"):
        with costplane.step("plan"):
            via_gateway.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=40)
        with costplane.tool("lookup"):
            list(via_gateway.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=40,
                                                     stream=True))
        ant_gateway.messages.create(model="claude-haiku-4-5", messages=MESSAGES, max_tokens=40)

        def in_thread() -> None:  # the instrumented client works from worker threads (context carried)
            via_gateway.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=40)

        with costplane.ContextPool(2) as pool:
            pool.submit(in_thread).result()
    with session.agent_run("direct-bot", run="run-direct"):
        direct.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=40)
    with session.agent_run("raw-bot", run="run-raw"):  # with_raw_response goes through the wrapper too
        raw = direct.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=40)
        assert raw.parse().usage is not None
    session.close()
    gw = _events(server, "run-gw")
    assert len(gw) == 4
    assert all(e.context.team == "support" and e.context.agent == "gw-bot" and e.decision_id for e in gw)
    assert gw[0].context.step == "plan" and gw[1].context.tool == "lookup"
    assert gw[1].context.tags["node"].startswith("tool-")  # the SDK's node travels with the call
    (direct_event,) = _events(server, "run-direct")
    assert direct_event.cost_nano == gw[0].cost_nano and direct_event.usage == gw[0].usage
    assert direct_event.decision_id is not None  # admitted by the session's decision core
    (raw_event,) = _events(server, "run-raw")
    assert raw_event.status == "ok" and raw_event.cost_nano == direct_event.cost_nano


def test_threads_without_context_carry_nothing(make_server: Callable[..., Server]) -> None:
    server = make_server()
    session = server.session()
    client = costplane.instrument(openai.OpenAI(base_url=f"{server.simulator_url}/v1", api_key="sk", max_retries=0),
                                  mode="direct", session=session)
    with session.agent_run("pool-bot", run="run-pool"), ThreadPoolExecutor(4) as pool:
        futures = [costplane.run_in_thread(pool, client.chat.completions.create, model="gpt-4o-mini",
                                           messages=MESSAGES, max_tokens=20) for _ in range(8)]
        for future in futures:
            future.result()
    session.close()
    assert len(_events(server, "run-pool")) == 8


def test_anthropic_stream_helper_is_metered_in_direct_mode(make_server: Callable[..., Server]) -> None:
    """`messages.stream()` posts on its own (not through create): it must not go unmetered."""
    server = make_server()
    session = server.session()
    ant = costplane.instrument(anthropic.Anthropic(base_url=server.simulator_url, api_key="sk-sim", max_retries=0),
                               mode="direct", session=session)
    aant = costplane.instrument(anthropic.AsyncAnthropic(base_url=server.simulator_url, api_key="sk-sim",
                                                         max_retries=0), mode="direct", session=session)
    with session.agent_run("stream-bot", run="run-stream"):
        with ant.messages.stream(model="claude-haiku-4-5", messages=MESSAGES, max_tokens=60) as stream:
            final = stream.get_final_message()

        async def streamed() -> None:
            async with aant.messages.stream(model="claude-haiku-4-5", messages=MESSAGES, max_tokens=60) as astream:
                async for _ in astream.text_stream:
                    pass

        asyncio.run(streamed())
    session.close()
    recorded = _events(server, "run-stream")
    assert len(recorded) == 2 and all(e.status == "ok" for e in recorded)
    price = server.app.catalog.resolve("claude-haiku-4-5", "anthropic")
    for event in recorded:
        assert event.usage.output_tokens == final.usage.output_tokens  # same prompt, deterministic simulator
        assert event.cost_nano == price.cost_nano(event.usage) > 0

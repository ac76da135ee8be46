"""An SDK session talking to a costplane server (`Session(api_url=…)`): every direct-mode call of an
instrumented client is admitted by the server's decision core before it is sent (a refusal raises
SpendRefused and nothing reaches the provider), then settled into exactly one cost event priced by
the server. The OpenAI Responses API (`client.responses.create`, plain and streamed) is metered too."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import httpx
import openai
import pytest

import costplane
from costplane.ledger.types import CostEvent
from costplane.sdk.guards import SpendRefused
from costplane.sdk.session import Session
from run_harness import Server

BUNDLE = """
kind: Budget
name: support-hard
scope: ctx.team == "support"
amount: 1 USD
enforcement: hard
"""
ASK = [{"role": "user", "content": "What is the refund window for an annual plan?"}]


def _client(server: Server, session: Session, sent: list[str]) -> openai.OpenAI:
    """An instrumented direct-mode client whose every request to the provider is counted in `sent`."""
    http = httpx.Client(event_hooks={"request": [lambda request: sent.append(request.url.path)]})
    client = openai.OpenAI(base_url=f"{server.simulator_url}/v1", api_key="sk-sim", max_retries=0, http_client=http)
    return costplane.instrument(client, mode="direct", session=session)


def _events(server: Server, run: str) -> list[CostEvent]:
    return server.app.store.run_events(run)


def test_a_server_session_admits_settles_and_refuses_direct_calls(make_server: Callable[..., Server]) -> None:
    server = make_server(BUNDLE)
    sent: list[str] = []
    with Session(api_url=server.url, api_key=server.key(team="support"), flush_interval=0.05) as session:
        assert session.admits
        oai = _client(server, session, sent)
        with session.agent_run("triage", run="r-admitted"):
            completion = oai.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=40)
        session.flush()
        assert sent == ["/v1/chat/completions"]
        (event,) = _events(server, "r-admitted")  # exactly one cost event: the server's settlement
        assert event.decision_id is not None and event.context.team == "support"
        assert event.context.key_id is not None and event.status == "ok" and event.cost_nano > 0
        assert completion.usage is not None and event.usage.input_tokens == completion.usage.prompt_tokens
        assert event.usage.output_tokens == completion.usage.completion_tokens
        (decision,) = [d for d in server.app.store.list_decisions(limit=50) if d.id == event.decision_id]
        assert decision.input["direct"] is True and decision.budgets == ("support-hard",)
        assert server.app.store.open_reservations() == 0

        # spend observed elsewhere exhausts the team's hard budget: the next call is refused before it is sent
        server.app.core.record_spend([replace(event, id="evt_elsewhere", cost_nano=1_000_000_000)], "test")
        with session.agent_run("triage", run="r-refused"), pytest.raises(SpendRefused) as refused:
            oai.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=40)
        session.flush()
        assert refused.value.code == "budget_exceeded" and refused.value.decision_id
        assert sent == ["/v1/chat/completions"]  # nothing more reached the provider
        assert _events(server, "r-refused") == [] and server.app.store.open_reservations() == 0

    # another team's key is not bound by support's budget (the key's team wins over the payload's)
    with Session(api_url=server.url, api_key=server.key(team="sales"), flush_interval=0.05) as other:
        oai = _client(server, other, sent)
        with other.agent_run("triage", run="r-sales", team="support"):
            oai.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=40)
        other.flush()
        (sales,) = _events(server, "r-sales")
        assert sales.context.team == "sales" and sales.decision_id is not None


def test_a_failed_call_gives_its_reservation_back(make_server: Callable[..., Server]) -> None:
    server = make_server(BUNDLE)
    with Session(api_url=server.url, api_key=server.key(team="support"), flush_interval=0.05) as session:
        oai = costplane.instrument(openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-x", max_retries=0),
                                   mode="direct", session=session)
        with session.agent_run("triage", run="r-down"), pytest.raises(openai.APIConnectionError):
            oai.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=40)
        session.flush()
    assert server.app.store.open_reservations() == 0 and _events(server, "r-down") == []
    released = [d for d in server.app.store.list_decisions(limit=20) if d.input.get("direct")]
    assert len(released) == 1


@pytest.mark.parametrize("remote", [False, True], ids=["store-session", "server-session"])
def test_the_responses_api_is_metered_in_direct_mode(make_server: Callable[..., Server], remote: bool) -> None:
    server = make_server(BUNDLE)
    sent: list[str] = []
    session = (Session(api_url=server.url, api_key=server.key(team="support"), flush_interval=0.05) if remote
               else server.session())
    with session:
        oai = _client(server, session, sent)
        with session.agent_run("triage", run="r-plain", team="support"):
            response = oai.responses.create(model="gpt-4o-mini", input="Summarise the refund policy.",
                                            max_output_tokens=60)
        with session.agent_run("triage", run="r-stream", team="support"):
            stream = oai.responses.create(model="gpt-4o-mini", input="Summarise the refund policy.",
                                          max_output_tokens=60, stream=True)
            kinds = [item.type for item in stream]
        session.flush()
    assert sent == ["/v1/responses", "/v1/responses"]
    assert kinds[-1] == "response.completed"
    (plain,) = _events(server, "r-plain")
    (streamed,) = _events(server, "r-stream")
    assert response.usage is not None
    assert plain.endpoint == "responses" and plain.status == "ok" and plain.model == "gpt-4o-mini"
    assert plain.usage.input_tokens == response.usage.input_tokens
    assert plain.usage.output_tokens == response.usage.output_tokens
    price = server.app.catalog.resolve("gpt-4o-mini", "openai")
    assert plain.cost_nano == price.cost_nano(plain.usage) > 0
    assert streamed.status == "ok" and streamed.cost_nano == price.cost_nano(streamed.usage) > 0
    assert streamed.usage.output_tokens > 0
    if remote:  # admitted by the server's decision core, with the output cap the client set
        assert plain.decision_id is not None and streamed.decision_id is not None
        (decision,) = [d for d in server.app.store.list_decisions(limit=50) if d.id == plain.decision_id]
        assert decision.input["request"]["max_tokens"] == 60
    assert server.app.store.open_reservations() == 0


def test_an_async_responses_stream_cut_early_is_charged_what_was_received(make_server: Callable[..., Server]) -> None:
    server = make_server(BUNDLE)
    session = Session(api_url=server.url, api_key=server.key(team="support"), flush_interval=0.05)
    client = costplane.instrument(openai.AsyncOpenAI(base_url=f"{server.simulator_url}/v1", api_key="sk-sim",
                                                     max_retries=0), mode="direct", session=session)

    async def main() -> tuple[int, int]:
        with session.agent_run("triage", run="r-async"):
            whole = await client.responses.create(model="gpt-4o-mini", input="Explain the refund policy in detail.",
                                                  max_output_tokens=200)
        with session.agent_run("triage", run="r-cut"):
            stream = await client.responses.create(model="gpt-4o-mini", input="Explain the refund policy in detail.",
                                                   max_output_tokens=200, stream=True)
            deltas = 0
            async for item in stream:
                deltas += item.type.endswith(".delta")
                if deltas == 2:
                    break
            await stream.close()
        assert whole.usage is not None
        return whole.usage.output_tokens, deltas

    with session:
        output_tokens, deltas = asyncio.run(main())
        session.flush()
    (whole_event,) = _events(server, "r-async")
    (cut,) = _events(server, "r-cut")
    assert whole_event.status == "ok" and whole_event.usage.output_tokens == output_tokens
    assert cut.status == "cut" and cut.usage.output_tokens == deltas == 2 and cut.decision_id is not None
    assert 0 < cut.cost_nano < whole_event.cost_nano and server.app.store.open_reservations() == 0

"""Every registered protocol adapter, against the real simulator and gateway: plain, streamed, cut
stream, cached and reasoning tokens, tool calls, denials (402/403/429/503) in the protocol's own
error shape, unknown paths and methods. Costs are checked against genai-prices' own computation
from the usage the client received."""

from __future__ import annotations

import uuid
from decimal import Decimal

import genai_prices
import pytest

from costplane.gateway.errors import error_response
from costplane.gateway.protocols import ADAPTERS, adapter_named
from costplane.ledger.types import CostEvent
from costplane.money import decimal_to_nano, format_usd

from .cases import CASES, ConformanceCase
from .conftest import Gateway

NAMES = [adapter.name for adapter in ADAPTERS]
LONG = " ".join(f"Line {i}: the quarterly cloud invoice lists compute, storage and egress." for i in range(160))


def case_of(name: str) -> ConformanceCase:
    case = CASES.get(name)
    if case is None:
        pytest.fail(f"adapter {name!r} has no conformance case: add one to tests/gateway/conformance/cases.py")
    return case


def expected_nano(case: ConformanceCase, model: str, usage: dict[str, int]) -> int:
    price = genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id=case.pricing_provider)
    return decimal_to_nano(Decimal(price.total_price))


def team() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def only_event(gw: Gateway, name: str) -> CostEvent:
    events = gw.events(name)
    assert len(events) == 1, events
    return events[0]


def test_every_registered_adapter_has_a_case() -> None:
    assert set(NAMES) <= set(CASES), f"missing conformance cases: {sorted(set(NAMES) - set(CASES))}"


@pytest.mark.parametrize("name", NAMES)
def test_plain_call_is_metered_exactly(gateway: Gateway, name: str) -> None:
    case, who = case_of(name), team()
    reply = gateway.send(case, case.plain(case.model, f"Two lines on spend for {who}."), gateway.key(team=who))
    assert reply.status_code == 200, reply.text
    want = expected_nano(case, case.priced_model, case.usage(reply.json()))
    event = only_event(gateway, who)
    assert (event.status, event.cost_nano, event.model) == ("ok", want, case.priced_model)
    assert reply.headers["x-costplane-cost-usd"] == format_usd(want)
    assert gateway.app.store.open_reservations() == 0


@pytest.mark.parametrize("name", NAMES)
def test_streamed_call_is_metered_like_the_plain_one(gateway: Gateway, name: str) -> None:
    case, who = case_of(name), team()
    if case.stream is None:
        pytest.skip(f"{name} does not stream")
    prompt = f"A haiku about invoices for {who}."
    key = gateway.key(team=who)
    streamed = gateway.send(case, case.stream(case.model, prompt), key)
    assert streamed.status_code == 200 and case.stream_complete(streamed.content), streamed.content[-300:]
    assert streamed.headers["x-costplane-cost-final"] == "false"
    plain = gateway.send(case, case.plain(case.model, prompt), key)
    want = expected_nano(case, case.priced_model, case.usage(plain.json()))
    costs = sorted(e.cost_nano for e in gateway.events(who))
    assert costs == [want, want]  # the same answer, streamed or not, costs the same
    assert all(e.status == "ok" for e in gateway.events(who))


@pytest.mark.parametrize("name", NAMES)
def test_cut_stream_is_charged_for_what_was_received(cutting_gateway: Gateway, name: str) -> None:
    case, who = case_of(name), team()
    if case.stream is None:
        pytest.skip(f"{name} does not stream")
    key = cutting_gateway.key(team=who)
    reply = cutting_gateway.send(case, case.stream(case.model, f"A long story for {who}."), key)
    assert reply.status_code == 200
    assert case.stream_error_marker in reply.content and not case.stream_complete(reply.content)
    event = only_event(cutting_gateway, who)
    assert event.status == "cut" and event.usage.input_tokens > 0 and event.cost_nano > 0
    assert cutting_gateway.app.store.open_reservations() == 0


@pytest.mark.parametrize("name", NAMES)
def test_cached_prompt_tokens_are_metered(gateway: Gateway, name: str) -> None:
    case, who = case_of(name), team()
    if case.cache is None:
        pytest.skip(f"{name} reports no cached prompt tokens")
    key = gateway.key(team=who)
    wire = case.cache(case.model, f"{who}. {LONG}")
    first = gateway.send(case, wire, key)
    second = gateway.send(case, wire, key)
    assert first.status_code == second.status_code == 200, second.text
    usage = case.usage(second.json())
    assert usage.get("cache_read_tokens", 0) > 0
    event = max(gateway.events(who), key=lambda e: e.ts)
    assert event.usage.cache_read_tokens == usage["cache_read_tokens"]
    assert sorted(e.cost_nano for e in gateway.events(who)) == sorted(
        expected_nano(case, case.priced_model, case.usage(r.json())) for r in (first, second))


@pytest.mark.parametrize("name", NAMES)
def test_reasoning_tokens_are_metered(gateway: Gateway, name: str) -> None:
    case, who = case_of(name), team()
    if case.reasoning_model is None or case.reasoning_priced is None:
        pytest.skip(f"{name} reports no reasoning token count")
    reply = gateway.send(case, case.plain(case.reasoning_model, f"Think about {who}."), gateway.key(team=who))
    assert reply.status_code == 200, reply.text
    event = only_event(gateway, who)
    assert event.usage.reasoning_tokens > 0
    assert event.cost_nano == expected_nano(case, case.reasoning_priced, case.usage(reply.json()))


@pytest.mark.parametrize("name", NAMES)
def test_tool_calls_reach_the_client_and_are_metered(gateway: Gateway, name: str) -> None:
    case, who = case_of(name), team()
    if case.tools is None:
        pytest.skip(f"{name} has no tool calls")
    reply = gateway.send(case, case.tools(case.model), gateway.key(team=who))
    assert reply.status_code == 200, reply.text
    assert case.tool_called(reply.json())
    event = only_event(gateway, who)
    assert event.status == "ok"
    assert event.cost_nano == expected_nano(case, case.priced_model, case.usage(reply.json()))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("attributes", "status", "code"), [
    ({"team": "broke"}, 402, "budget_exceeded"),
    ({"team": "denied"}, 403, "policy_denied"),
    ({"team": "limited"}, 429, "call_limit_exceeded"),
])
def test_denials_are_in_the_protocols_error_shape(gateway: Gateway, name: str, attributes: dict[str, str],
                                                   status: int, code: str) -> None:
    case = case_of(name)
    key = gateway.key(**attributes)
    wire = case.plain(case.model, "Refuse me.")
    reply = gateway.send(case, wire, key, **{"x-costplane-run": f"run-{uuid.uuid4().hex}"})
    if status == 429:  # the first call of the run is let through; the second is one too many
        assert reply.status_code == 200, reply.text
        reply = gateway.send(case, wire, key, **{"x-costplane-run": reply.request.headers["x-costplane-run"]})
    assert reply.status_code == status, reply.text
    assert reply.headers["x-costplane-error-code"] == code
    assert reply.headers["x-should-retry"] == "false"
    assert case.error_message(reply.content, reply.headers)


@pytest.mark.parametrize("name", NAMES)
def test_the_store_unavailable_answer_is_in_the_protocols_error_shape(name: str) -> None:
    case = case_of(name)
    response = error_response(adapter_named(name), 503, "spend_unverifiable", "spend cannot be verified",
                              retryable=True)
    assert response.status_code == 503 and response.headers["x-should-retry"] == "true"
    assert case.error_message(bytes(response.body), response.headers) == "spend cannot be verified"


@pytest.mark.parametrize("name", NAMES)
def test_unknown_paths_and_methods_answer_in_the_protocols_shape(gateway: Gateway, name: str) -> None:
    case = case_of(name)
    key = gateway.key()
    adapter = adapter_named(name)
    wire = case.plain(case.model, "x")
    unknown = gateway.send(case, type(wire)("POST", case.unknown_path, wire.body, wire.headers), key)
    assert unknown.status_code == 404
    message = case.error_message(unknown.content, unknown.headers)
    assert message is not None and adapter.routes[0].path in message, message
    route = adapter.routes[0]
    wrong = gateway.send(case, type(wire)("PUT", route.path.replace("{", "").replace("}", "").replace(":path", ""),
                                          None, wire.headers), key)
    assert wrong.status_code == 405
    assert case.error_message(wrong.content, wrong.headers) is not None
    assert route.method in wrong.headers.get("allow", "")

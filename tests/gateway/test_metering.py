"""Plain and streamed calls through the official SDKs are metered exactly:
cost = the tokens the provider reported × the effective-dated prices (checked against genai-prices)."""

from __future__ import annotations

from decimal import Decimal

import genai_prices
import pytest

from costplane.ledger.types import CostEvent
from costplane.money import decimal_to_nano, format_usd

from .conftest import Harness


def expected_nano(model: str, provider: str, **usage: int) -> int:
    price = genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id=provider)
    return decimal_to_nano(Decimal(price.total_price))


def only_event(harness: Harness) -> CostEvent:
    events = harness.app.store.list_events()
    assert len(events) == 1, events
    return events[0]


def test_plain_chat_is_metered_exactly_and_headers_explain_it(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.openai(gw.key(team="ml", agent="bot"))
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Summarise the quarterly report in two lines."}],
        extra_headers={"x-costplane-run": "run-1", "baggage": "costplane.experiment=exp-7"},
    )
    completion = raw.parse()
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    want = expected_nano("gpt-4o-mini", "openai", input_tokens=usage.prompt_tokens,
                         output_tokens=usage.completion_tokens)
    event = only_event(gw)
    assert event.cost_nano == want
    assert raw.headers["x-costplane-cost-usd"] == format_usd(want)
    assert raw.headers["x-costplane-decision-id"] == event.decision_id
    assert (event.context.team, event.context.agent, event.context.run, event.context.experiment) == (
        "ml", "bot", "run-1", "exp-7")
    assert event.usage.input_tokens == usage.prompt_tokens
    assert event.unit_prices["input"] == "0.15" and event.unit_prices["output"] == "0.6"
    assert gw.app.store.open_reservations() == 0


@pytest.mark.parametrize("client_wants_usage", [True, False])
def test_streamed_chat_is_metered_exactly(make_gateway, client_wants_usage: bool) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.openai(gw.key(team="ml"))
    messages = [{"role": "user", "content": "Write a haiku about invoices."}]
    plain = client.chat.completions.create(model="gpt-4o", messages=messages)
    assert plain.usage is not None
    options = {"stream_options": {"include_usage": True}} if client_wants_usage else {}
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=messages, stream=True, **options))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    usage_chunks = [c for c in chunks if c.usage is not None]
    # The gateway always asks the upstream for usage, but only shows it to a client that asked.
    assert len(usage_chunks) == (1 if client_wants_usage else 0)
    want = expected_nano("gpt-4o", "openai", input_tokens=plain.usage.prompt_tokens,
                         output_tokens=plain.usage.completion_tokens)
    events = gw.app.store.list_events()
    assert [e.cost_nano for e in events] == [want, want]
    assert {e.status for e in events} == {"ok"}
    assert gw.app.store.open_reservations() == 0


def test_anthropic_plain_and_stream_with_cache_tokens(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.anthropic(gw.key(team="support"))
    system = [{"type": "text", "text": "You are a careful support agent. " * 40,
               "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(model="claude-haiku-4-5", max_tokens=200, system=system,
                                   messages=[{"role": "user", "content": "Where is my parcel?"}])
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=200, system=system,
                                messages=[{"role": "user", "content": "Where is my parcel?"}]) as stream:
        streamed = stream.get_final_message()
    wants = []
    for message in (first, streamed):
        u = message.usage
        read = u.cache_read_input_tokens or 0
        write = u.cache_creation_input_tokens or 0
        wants.append(expected_nano("claude-haiku-4-5", "anthropic", input_tokens=u.input_tokens + read + write,
                                   cache_read_tokens=read, cache_write_tokens=write, output_tokens=u.output_tokens))
    assert (first.usage.cache_creation_input_tokens or 0) > 0
    assert (streamed.usage.cache_read_input_tokens or 0) > 0
    events = sorted(gw.app.store.list_events(), key=lambda e: e.ts)
    assert [e.cost_nano for e in events] == wants
    assert events[1].usage.cache_read_tokens == streamed.usage.cache_read_input_tokens
    assert gw.app.store.open_reservations() == 0


def test_embeddings_are_metered(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.openai(gw.key(team="ml"))
    result = client.embeddings.create(model="text-embedding-3-small", input=["alpha beta", "gamma delta epsilon"])
    assert len(result.data) == 2
    event = only_event(gw)
    assert event.endpoint == "embeddings"
    assert event.cost_nano == expected_nano("text-embedding-3-small", "openai",
                                            input_tokens=result.usage.prompt_tokens)
    assert event.cost_nano > 0


def test_models_lists_what_the_gateway_serves(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    ids = {m.id for m in gw.openai(gw.key()).models.list()}
    assert {"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"} <= ids
    assert not any(i.startswith("claude") for i in ids)  # served only through /v1/messages


def test_stream_meters_read_the_served_tier_and_tool_fees() -> None:
    import orjson

    from costplane.gateway.metering import billed_facts, served_usage
    from costplane.gateway.protocols.anthropic_messages import MessagesStreamMeter as AnthropicStreamMeter
    from costplane.gateway.protocols.openai_wire import ChatStreamMeter as OpenAIStreamMeter
    from costplane.pricing.types import TokenUsage

    oai = OpenAIStreamMeter(hide_usage_chunk=True)
    head = {"object": "chat.completion.chunk", "service_tier": "priority"}
    frames = [orjson.dumps({**head, "choices": [{"delta": {"content": "hi"}}]}),
              orjson.dumps({**head, "choices": [], "usage": {
                  "prompt_tokens": 20, "completion_tokens": 4,
                  "prompt_tokens_details": {"cached_tokens": 5, "cache_write_tokens": 10}}})]
    forwarded = oai.feed(b"".join(b"data: " + f + b"\n\n" for f in frames) + b"data: [DONE]\n\n")
    assert len(forwarded) == 2  # the usage chunk the gateway asked for is hidden
    assert oai.usage == TokenUsage(20, 4, 5, 10, conditions=(("service_tier", "priority"),))

    ant = AnthropicStreamMeter()
    start = {"type": "message_start", "message": {"usage": {
        "input_tokens": 10, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 0, "output_tokens": 1,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 30}}}}
    delta = {"type": "message_delta", "usage": {"output_tokens": 9, "server_tool_use": {"web_search_requests": 3}}}
    events = [("message_start", start), ("message_delta", delta), ("message_stop", {"type": "message_stop"})]
    ant.feed(b"".join(f"event: {n}\ndata: ".encode() + orjson.dumps(p) + b"\n\n" for n, p in events))
    assert ant.usage == TokenUsage(40, 9, 0, 30, units=(("cache_write_1h", 30), ("web_searches", 3)))

    plain = TokenUsage(10, 2)
    assert served_usage(plain, {"service_tier": "flex"}) == TokenUsage(10, 2, conditions=(("service_tier", "flex"),))
    assert served_usage(plain, {"service_tier": "default", "output": [{"type": "web_search_call"}]}).units == (
        ("web_searches", 1),)
    assert served_usage(plain, {"id": "x"}) is plain
    assert billed_facts({"service_tier": "priority", "tools": [{"type": "web_search_20250305"}]}) == {
        "service_tier": "priority", "billed_units": ["web_searches"]}
    assert billed_facts({"service_tier": "auto"}) == {"service_tier": "auto"}
    assert billed_facts({"model": "m"}) == {}

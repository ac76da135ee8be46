"""Every unit the price data knows is metered: agreement with genai-prices' own arithmetic over
the whole table, the provider usage readers, the worst-case bound and the unknown-unit rule."""

from __future__ import annotations

import random
import warnings
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from genai_prices import Usage

from costplane.attribution.context import Context
from costplane.ledger.codec import event_to_row, row_to_event
from costplane.ledger.types import CostEvent
from costplane.pricing import Catalog, TokenUsage, genai
from costplane.pricing.readers import (
    anthropic_usage,
    bedrock_usage,
    cap_tool_uses,
    gemini_usage,
    openai_usage,
    request_conditions,
    request_units,
    tool_use_limits,
    with_per_call_units,
)
from costplane.pricing.usagecodec import usage_from_json, usage_to_json

AT = datetime(2026, 12, 1, 12, tzinfo=UTC)
FULL = TokenUsage(250_000, 3_000, 1_000, 500, 700, units=(
    ("cache_write_1h", 200), ("input_audio", 300), ("cache_audio_read", 100), ("input_image", 50),
    ("cache_image_read", 10),
    ("output_audio", 400), ("output_image", 30), ("web_searches", 2), ("storage_searches", 1)))
SMALL = TokenUsage(1_200, 90, 100, 300, 0, units=(("cache_write_1h", 120), ("web_searches", 1)))


def _genai_usage(usage: TokenUsage) -> Usage:
    extra = {k + ("" if k.endswith("searches") else "_tokens"): v for k, v in usage.units}
    return Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                 cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens,
                 output_reasoning_tokens=usage.reasoning_tokens, **extra)


def _nano(total: Decimal) -> int:
    return int((total * 10**9).to_integral_value(rounding=ROUND_HALF_UP))


def test_every_model_every_unit_and_variant_agrees_with_genai_prices() -> None:
    """genai-prices' calc_price is the independent reference: all units, all request variants."""
    catalog = Catalog.load()
    compared = variants = 0
    for provider in genai.providers():
        for info in provider.models:
            rule = catalog.history(info.id, provider.id).rule_at(AT)
            if rule is None or rule.sheet is None or rule.not_metered:
                continue
            if any("rounded" in n or "derived" in n for n in rule.notes):
                continue  # float residue in the data; the Anthropic 1-hour rule (tested below)
            contexts: list[dict[str, str]] = [{}] + [dict(v.when) for v in rule.sheet.variants]
            for context in contexts:
                for usage in (FULL, SMALL):
                    served = TokenUsage(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens,
                                        usage.cache_write_tokens, usage.reasoning_tokens, units=usage.units,
                                        conditions=tuple(context.items()))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        expected = info.calc_price(_genai_usage(usage), provider, genai_request_timestamp=AT,
                                                   price_context=context or None).total_price
                    assert rule.sheet.cost_nano(served) == _nano(expected), (provider.id, info.id, context)
                    compared += 1
                variants += bool(context)
    assert compared > 3000 and variants > 100


def _claude_without_1h() -> tuple[str, str] | None:
    """A Claude model some provider prices without a 1-hour cache-write price, found in the data."""
    for provider in genai.providers():
        for info in provider.models:
            price = info.get_prices(AT)
            if ("claude" in info.id and getattr(price, "input_mtok", None) is not None
                    and getattr(price, "cache_write_1h_mtok", None) is None):
                return provider.id, info.id
    return None


def test_anthropic_one_hour_write_rule_where_the_data_lacks_it() -> None:
    catalog = Catalog.load()
    found = _claude_without_1h()
    if found is None:
        pytest.skip("every Claude model in this price data has a 1-hour cache-write price")
    history = catalog.history(found[1], found[0])
    rule = history.rule_at(AT)
    assert rule is not None and rule.sheet is not None
    assert any("2 x input" in note for note in rule.notes)
    rates = rule.sheet.rates()
    assert rates["cache_write_1h"] == 2 * rates["input"]
    one_hour = TokenUsage(1000, 0, 0, 1000, units=(("cache_write_1h", 1000),))
    assert rule.sheet.cost_nano(one_hour) == _nano(1000 * 2 * rates["input"] / 10**6)
    # where the data prices it, the data's price is used
    direct = catalog.resolve("claude-sonnet-4-6", "anthropic", AT)
    assert direct.rates()["cache_write_1h"] == Decimal(str(genai.find_model("claude-sonnet-4-6", "anthropic")[1]
                                                           .get_prices(AT).cache_write_1h_mtok))


def test_worst_case_bounds_every_unit_and_tier() -> None:
    catalog = Catalog.load()
    rng = random.Random(7)
    checked = 0
    for model, provider in [("claude-sonnet-4-5", "anthropic"), ("gpt-5", "openai"), ("gpt-audio", "openai"),
                            ("gpt-6-sol", "openai"), ("gemini-3.1-flash-live-preview", "google"),
                            ("sonar", "perplexity")]:
        sheet = catalog.resolve(model, provider, AT)
        for tier in (None, "auto", "priority", "flex"):
            for _ in range(40):
                bound_in, bound_out = rng.randint(1, 400_000), rng.randint(1, 20_000)
                inp, out = rng.randint(0, bound_in), rng.randint(0, bound_out)
                write = rng.randint(0, inp)
                hour = rng.randint(0, write)
                read = rng.randint(0, inp - write)
                audio_out = rng.randint(0, out)
                served = () if tier in (None, "auto") else (("service_tier", tier),)
                audio_in = rng.randint(0, inp - write)
                usage = TokenUsage(inp, out, read, write, rng.randint(0, out - audio_out), units=(
                    ("cache_write_1h", hour), ("output_audio", audio_out), ("input_audio", audio_in)),
                    conditions=served if tier != "auto" else (("service_tier", "priority"),))
                assert sheet.cost_nano(usage) <= sheet.max_cost_nano(bound_in, bound_out, service_tier=tier)
                checked += 1
    assert checked == 960
    gpt5 = catalog.resolve("gpt-5", "openai", AT)
    assert gpt5.max_cost_nano(1000, 100, service_tier="priority") > gpt5.max_cost_nano(1000, 100)
    assert gpt5.max_cost_nano(1000, 100, service_tier="auto") == gpt5.max_cost_nano(1000, 100,
                                                                                   service_tier="priority")
    sonar = catalog.resolve("sonar", "perplexity", AT)
    if "requests" in sonar.rates():  # a per-request fee in the data: it is in the bound
        assert sonar.max_cost_nano(0, 0) == -(-int(sonar.rates()["requests"] * 10**9) // 1000)


def test_units_without_a_price_are_unpriced_never_zero() -> None:
    from billed_units_data import model_without

    catalog = Catalog.load()
    model = model_without("anthropic", "web_searches_kcount", prefix="claude-", at=AT)
    if model is None:
        pytest.skip("every Claude model in this price data has a web-search price")
    haiku = catalog.resolve(model, "anthropic", AT)
    searched = TokenUsage(100, 10, units=(("web_searches", 3),))
    assert haiku.unpriced(searched) == ("web_searches",) and not haiku.priced("web_searches")
    assert haiku.unpriced(TokenUsage(100, 10, units=(("input_audio", 5),))) == ()  # tokens: the input rate
    sonnet = catalog.resolve("claude-sonnet-4-6", "anthropic", AT)
    assert sonnet.unpriced(searched) == () and sonnet.cost_nano(searched) > sonnet.cost_nano(TokenUsage(100, 10))


def test_readers_map_each_provider_shape() -> None:
    anth = anthropic_usage({"input_tokens": 50, "cache_read_input_tokens": 20, "cache_creation_input_tokens": 30,
                            "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20},
                            "output_tokens": 7, "server_tool_use": {"web_search_requests": 2},
                            "service_tier": "batch"})
    assert anth == TokenUsage(100, 7, 20, 30, units=(("cache_write_1h", 20), ("web_searches", 2)),
                              conditions=(("processing", "batch"),))
    chat = openai_usage({"prompt_tokens": 100, "completion_tokens": 40,
                         "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 20, "audio_tokens": 10},
                         "completion_tokens_details": {"reasoning_tokens": 5, "audio_tokens": 8,
                                                       "accepted_prediction_tokens": 3,
                                                       "rejected_prediction_tokens": 2}},
                        {"service_tier": "priority"})
    assert chat == TokenUsage(100, 40, 30, 20, 5, units=(("input_audio", 10), ("output_audio", 8)),
                              conditions=(("service_tier", "priority"),))
    responses = openai_usage({"input_tokens": 80, "output_tokens": 12,
                              "input_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 16},
                              "output_tokens_details": {"reasoning_tokens": 4}},
                             {"output": [{"type": "web_search_call"}, {"type": "message"}], "service_tier": "flex"})
    assert responses == TokenUsage(80, 12, 8, 16, 4, units=(("web_searches", 1),),
                                   conditions=(("service_tier", "flex"),))
    realtime = openai_usage({"input_tokens": 60, "output_tokens": 30,
                             "input_token_details": {"cached_tokens": 20, "audio_tokens": 40,
                                                     "cached_tokens_details": {"audio_tokens": 15}},
                             "output_token_details": {"audio_tokens": 25}})
    assert realtime == TokenUsage(60, 30, 20, units=(("cache_audio_read", 15), ("input_audio", 40),
                                                     ("output_audio", 25)))
    gemini = gemini_usage({"promptTokenCount": 100, "cachedContentTokenCount": 40, "candidatesTokenCount": 20,
                           "thoughtsTokenCount": 10, "toolUsePromptTokenCount": 5,
                           "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 70},
                                                   {"modality": "AUDIO", "tokenCount": 30}],
                           "cacheTokensDetails": [{"modality": "AUDIO", "tokenCount": 12}],
                           "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 6}]})
    assert gemini == TokenUsage(105, 30, 40, 0, 10, units=(("cache_audio_read", 12), ("input_audio", 30),
                                                          ("output_image", 6)))
    bedrock = bedrock_usage({"inputTokens": 10, "outputTokens": 5, "cacheReadInputTokens": 20,
                             "cacheWriteInputTokens": 30, "cacheDetails": [{"ttl": "1h", "inputTokens": 30}]})
    assert bedrock == TokenUsage(60, 5, 20, 30, units=(("cache_write_1h", 30),))
    assert None in (openai_usage(None), anthropic_usage("x"), gemini_usage(None), bedrock_usage([]))  # type: ignore[arg-type]
    # odd counts besides the input count are clamped, never an exception on the hot path
    odd = anthropic_usage({"input_tokens": 3, "cache_creation": {"ephemeral_1h_input_tokens": "x"},
                           "output_tokens": True})
    assert odd == TokenUsage(3)
    # a usage without a valid input count is no usage at all: the gateway charges the bound, never $0
    for bad in ({}, {"input_tokens": "12"}, {"input_tokens": 12.0}, {"input_tokens": -3},
                {"input_tokens": True}, {"total_tokens": 30}, {"input_tokens": None, "output_tokens": 5}):
        assert anthropic_usage(bad) is None, bad
        assert bedrock_usage({k.replace("input_tokens", "inputTokens"): v for k, v in bad.items()}) is None, bad
        assert gemini_usage({k.replace("input_tokens", "promptTokenCount"): v for k, v in bad.items()}) is None, bad
        assert openai_usage(bad) is None, bad
        assert openai_usage({k.replace("input_tokens", "prompt_tokens"): v for k, v in bad.items()}) is None, bad
    assert openai_usage({"prompt_tokens": 0, "completion_tokens": "x"}) == TokenUsage(0, 0)


def test_request_facts() -> None:
    assert request_conditions({"service_tier": "priority"}) == {"service_tier": "priority"}
    assert request_conditions({"service_tier": "auto"}) == {}
    assert request_units({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}) == {"web_searches"}
    assert request_units({"tools": [{"type": "file_search"}], "web_search_options": {}}) == {
        "web_searches", "storage_searches"}
    assert request_units({"tools": [{"type": "function", "function": {"name": "f"}}]}) == frozenset()


def test_usage_json_and_ledger_rows_keep_every_unit() -> None:
    assert usage_from_json(usage_to_json(FULL)) == FULL
    assert usage_to_json(TokenUsage(1, 2)) == {"input_tokens": 1, "output_tokens": 2, "cache_read_tokens": 0,
                                               "cache_write_tokens": 0, "reasoning_tokens": 0}
    with pytest.raises(ValueError, match="unknown billed unit 'telepathy'"):
        usage_from_json({"input_tokens": 1, "units": {"telepathy": 1}})
    served = TokenUsage(100, 10, 0, 50, units=(("cache_write_1h", 50),), conditions=(("processing", "batch"),))
    event = CostEvent(id="evt_1", ts=AT, context=Context(team="ml"), provider="anthropic",
                      model="claude-sonnet-4-6", cost_nano=5, usage=served,
                      unit_prices={"input": "3"})
    row = event_to_row(event)
    back = row_to_event(row)
    assert back.usage == served and back.unit_prices == {"input": "3"}
    old = list(row)
    old[row.index(next(v for v in row if isinstance(v, str) and "_usage" in v))] = '{"input": "3"}'
    assert row_to_event(tuple(old)).usage == TokenUsage(100, 10, 0, 50)  # a row written before keeps reading


def test_token_usage_validates_nesting() -> None:
    with pytest.raises(ValueError, match="cache_write_1h"):
        TokenUsage(100, 0, 0, 10, units=(("cache_write_1h", 20),))
    with pytest.raises(ValueError, match="output_audio"):
        TokenUsage(10, 5, units=(("output_audio", 6),))
    assert TokenUsage(10, 5, units=(("output_audio", 0),)).units == ()


def test_overrides_declare_unit_prices() -> None:
    from costplane.pricing import PricingConfig, PricingConfigError

    config = PricingConfig.parse({"overrides": [
        {"model": "claude-private-x", "provider": "anthropic", "input": "0.25", "output": "1.25",
         "units": {"web_searches": "10"}},
        {"model": "acme-*", "input": "1", "output": "2"}]}, source="costplane.yaml")
    catalog = Catalog(config)
    haiku = catalog.resolve("claude-private-x", "anthropic", AT)
    searched = TokenUsage(1_000, 100, units=(("web_searches", 2),))
    assert haiku.unpriced(searched) == ()
    assert haiku.cost_nano(searched) == 250_000 + 125_000 + 20_000_000  # 2 x $10/1K searches
    assert haiku.rates()["cache_write_1h"] == Decimal("0.5")  # Anthropic's rule: 2 x the declared input
    assert "cache_write_1h" not in catalog.resolve("acme-x", None, AT).rates()
    with pytest.raises(PricingConfigError, match=r"units\.telepathy: unknown billed unit"):
        PricingConfig.parse({"overrides": [{"model": "m", "input": "1", "output": "1",
                                            "units": {"telepathy": "1"}}]}, source="costplane.yaml")
    with pytest.raises(PricingConfigError, match=r"units\.web_searches: expected a price of zero or more USD per 1K"):
        PricingConfig.parse({"overrides": [{"model": "m", "input": "1", "output": "1",
                                            "units": {"web_searches": "-1"}}]}, source="costplane.yaml")


SEARCH_PRICED = [("claude-sonnet-4-6", "anthropic"), ("claude-opus-4-6", "anthropic"), ("o3", "openai"),
                 ("gpt-5.6-sol", "openai"), ("gemini-3-pro-preview", "google")]


def test_worst_case_bounds_web_searches_up_to_max_uses() -> None:
    catalog = Catalog.load()
    rng = random.Random(11)
    checked = 0
    for model, provider in SEARCH_PRICED:
        sheet = catalog.resolve(model, provider, AT)
        assert sheet.priced("web_searches"), model
        for _ in range(60):
            bound_in, bound_out, max_uses = rng.randint(1, 400_000), rng.randint(1, 20_000), rng.randint(1, 50)
            inp, out = rng.randint(0, bound_in), rng.randint(0, bound_out)
            read = rng.randint(0, inp)
            usage = TokenUsage(inp, out, read, rng.randint(0, inp - read), rng.randint(0, out),
                               units=(("web_searches", max_uses),))
            bound = sheet.max_cost_nano(bound_in, bound_out, units={"web_searches": max_uses})
            assert sheet.cost_nano(usage) <= bound
            checked += 1
            # every search is in the bound: exactly max_uses x the rate, per 1,000 searches, exact in femto-USD
            rate = sheet.rates(bound_in)["web_searches"]
            base_femto = sheet.max_cost_nano(bound_in, bound_out) * 10**6  # ceilings differ by < 1 nano
            with_searches = bound * 10**6
            exact = int(max_uses * rate * 10**15 / 1000)
            assert with_searches - base_femto - 10**6 < exact <= with_searches - base_femto + 10**6
    assert checked == 300
    # without the cap the bound would be short of the cost of the searches a call actually made
    sonnet = catalog.resolve("claude-sonnet-4-6", "anthropic", AT)
    five = TokenUsage(1000, 100, units=(("web_searches", 5),))
    assert sonnet.cost_nano(five) > sonnet.max_cost_nano(1000, 100)
    assert sonnet.cost_nano(five) <= sonnet.max_cost_nano(1000, 100, units={"web_searches": 5})
    # a unit the model does not price adds nothing (the unknown-price rule governs it), 0 uses add nothing
    gpt5 = catalog.resolve("gpt-5", "openai", AT)
    if not gpt5.priced("code_executions"):
        assert gpt5.max_cost_nano(10, 10, units={"code_executions": 9}) == gpt5.max_cost_nano(10, 10)
    assert sonnet.max_cost_nano(10, 10, units={"web_searches": 0}) == sonnet.max_cost_nano(10, 10)
    with pytest.raises(ValueError, match="web_searches"):
        sonnet.max_cost_nano(10, 10, units={"web_searches": True})


def test_the_gateway_caps_anthropic_web_search_uses() -> None:
    body = {"tools": [{"type": "web_search_20250305", "name": "web_search"},
                      {"type": "web_search_20260101", "name": "search2", "max_uses": 3},
                      {"name": "lookup", "input_schema": {}},
                      {"type": "web_fetch_20250910", "name": "web_fetch"},
                      {"type": "code_execution_20250825", "name": "code_execution"}]}
    cap_tool_uses(body, 5)
    tools = body["tools"]
    assert tools[0]["max_uses"] == 5 and tools[1]["max_uses"] == 3  # the client's own value is kept
    assert all("max_uses" not in t for t in tools[2:])  # no max_uses parameter to set
    # code execution is a fee with no cap parameter: reported uncapped, with the field enabling it
    assert tool_use_limits(body) == ({"web_searches": 8}, {"code_executions": "tools[4]"})
    assert request_units(body) == {"web_searches", "code_executions"}
    assert tool_use_limits({"web_search_options": {}}) == ({"web_searches": 1}, {})
    assert tool_use_limits({"model": "x"}) == ({}, {})
    # a built-in tool with no cap parameter is reported with the field that enables it
    assert tool_use_limits({"tools": [{"type": "function"}, {"type": "web_search"}, {"type": "file_search"}]}) == (
        {}, {"web_searches": "tools[1]", "storage_searches": "tools[2]"})
    # an uncapped tool of a unit leaves that unit uncapped, even beside a capped one
    assert tool_use_limits({"web_search_options": {}, "tools": [{"type": "web_search_preview"}]}) == (
        {}, {"web_searches": "tools[0]"})


def test_chat_web_search_options_is_one_search_per_call() -> None:
    usage = TokenUsage(100, 10)
    charged = with_per_call_units(usage, "chat.completions", ["web_searches"])
    assert charged.count("web_searches") == 1 and charged.input_tokens == 100
    assert with_per_call_units(usage, "chat.completions", []) is usage
    assert with_per_call_units(usage, "messages", ["web_searches"]) is usage  # Anthropic reports its count
    reported = TokenUsage(100, 10, units=(("web_searches", 2),))
    assert with_per_call_units(reported, "chat.completions", ["web_searches"]) is reported

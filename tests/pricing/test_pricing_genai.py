"""The genai-prices adapter: every convertible model costs exactly what genai-prices computes."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from importlib.metadata import version

import pytest
from genai_prices import Usage
from genai_prices.types import ModelPrice, Tier, TieredPrices

from costplane.pricing import Catalog, TokenUsage, genai

AT = datetime(2026, 6, 1, 12, tzinfo=UTC)
USAGES = [
    TokenUsage(input_tokens=1_234, output_tokens=567, cache_read_tokens=200, cache_write_tokens=100,
               reasoning_tokens=50),
    TokenUsage(input_tokens=250_000, output_tokens=3_000, cache_read_tokens=1_000, cache_write_tokens=500,
               reasoning_tokens=700),
]


def _genai_nano(total: Decimal) -> int:
    return int((total * 10**9).to_integral_value(rounding=ROUND_HALF_UP))


def test_every_token_priced_model_agrees_with_genai_prices() -> None:
    catalog = Catalog.load()
    compared = 0
    for provider in genai.providers():
        for info in provider.models:
            rule = catalog.history(info.id, provider.id).rule_at(AT)
            if rule is None or rule.sheet is None or rule.not_metered:
                continue  # nothing to compare, or genai-prices would also charge non-token units
            if any("rounded" in note for note in rule.notes):
                continue  # float residue in the data, rounded to femto-USD per token
            for usage in USAGES:
                raw = Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                            cache_read_tokens=usage.cache_read_tokens,
                            cache_write_tokens=usage.cache_write_tokens,
                            output_reasoning_tokens=usage.reasoning_tokens)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    expected = info.calc_price(raw, provider, genai_request_timestamp=AT).total_price
                assert rule.sheet.cost_nano(usage) == _genai_nano(expected), (provider.id, info.id, usage)
                compared += 1
    assert compared > 3000


def test_convert_maps_keys_tiers_and_every_unit() -> None:
    price = ModelPrice(
        input_mtok=TieredPrices(base=Decimal("3"), tiers=[Tier(start=200_000, price=Decimal("6"))]),
        output_mtok=Decimal("15"),
        cache_read_mtok=Decimal("0.3"),
        output_reasoning_mtok=Decimal("20"),
        web_searches_kcount=Decimal("10"),
    )
    converted = genai.convert(price, model="m", provider="p")
    sheet = converted.sheet
    assert sheet is not None
    assert (sheet.input, sheet.output, sheet.cache_read, sheet.reasoning) == (
        Decimal("3"), Decimal("15"), Decimal("0.3"), Decimal("20"))
    assert sheet.cache_write is None
    assert sheet.tiers == ((200_000, {"input": Decimal("6")}),)
    # cache_write is undeclared, so it falls back to input — the tiered input above the tier
    assert sheet.rates(200_001)["cache_write"] == Decimal("6")
    assert sheet.rates(200_001)["cache_read"] == Decimal("0.3")
    assert sheet.rates(100)["cache_write"] == Decimal("3")
    assert converted.not_metered == ()
    assert sheet.units == (("web_searches", Decimal("10")),)
    assert sheet.cost_nano(TokenUsage(units=(("web_searches", 3),))) == 30_000_000  # 3 x $10/1000


def test_convert_refuses_missing_or_zero_token_prices() -> None:
    assert genai.convert(ModelPrice(), model="m", provider="p").sheet is None
    assert genai.convert(ModelPrice(audio_hours=Decimal("0.1")), model="m", provider="p").sheet is None
    zero = genai.convert(ModelPrice(input_mtok=Decimal(0), output_mtok=Decimal(0)), model="m", provider="p")
    assert zero.sheet is None and "treated as unknown" in zero.notes[-1]


def test_embedding_model_without_output_price_charges_input() -> None:
    converted = genai.convert(ModelPrice(input_mtok=Decimal("0.02")), model="e", provider="p")
    assert converted.sheet is not None and converted.sheet.output == 0
    assert converted.sheet.cost_nano(TokenUsage(input_tokens=1_000_000)) == 20_000_000


def test_float_residue_is_rounded_to_femto_per_token_and_noted() -> None:
    converted = genai.convert(ModelPrice(input_mtok=Decimal("0.18000000000000002"), output_mtok=Decimal("1")),
                              model="m", provider="p")
    assert converted.sheet is not None and converted.sheet.input == Decimal("0.18")
    assert any("rounded" in note for note in converted.notes)


@pytest.mark.parametrize(("model", "provider", "expected"), [
    ("gpt-4o-2024-08-06", None, ("openai", "gpt-4o")),
    ("GPT-4o-mini", "openai", ("openai", "gpt-4o-mini")),
    ("claude-sonnet-4-5-20250929", None, ("anthropic", "claude-sonnet-4-5")),
    ("claude-sonnet-4-5-20250929", "anthropic", ("anthropic", "claude-sonnet-4-5")),
    ("gpt-4o", "azure", ("azure", "gpt-4o")),
])
def test_find_model_matches_like_genai_prices(model: str, provider: str | None,
                                               expected: tuple[str, str]) -> None:
    found = genai.find_model(model, provider)
    assert found is not None
    assert (found[0].id, found[1].id) == expected


def test_find_model_is_strict_about_an_explicit_provider() -> None:
    assert genai.find_model("gpt-4o", "no-such-provider") is None
    assert genai.find_model("claude-sonnet-4-5", "openai") is None
    assert genai.find_model("acme-private-llm", None) is None


def test_data_version_names_the_package() -> None:
    assert genai.data_version() == f"genai-prices {version('genai-prices')}"

"""Catalog: exact costs, tiers, effective dating, overrides, unknown-price rule, caching."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from costplane.pricing import Catalog, PricingConfig, TokenUsage, UnknownPrice, genai


def catalog(**pricing: Any) -> Catalog:
    return Catalog.load(PricingConfig.parse(pricing))


def test_gpt_4o_mini_exact_cost() -> None:
    sheet = Catalog.load().lookup("gpt-4o-mini", "openai")
    assert (sheet.input, sheet.cache_read, sheet.output) == (
        Decimal("0.15"), Decimal("0.075"), Decimal("0.6"))
    usage = TokenUsage(input_tokens=1000, output_tokens=500, cache_read_tokens=256)
    # (744 × 0.15 + 256 × 0.075 + 500 × 0.6) USD / 1e6 = 430.8 µUSD = 430,800 nano-USD
    assert sheet.cost_nano(usage) == 430_800


def test_rounding_is_half_up_once_per_event() -> None:
    sheet = Catalog.load().lookup("gpt-4o-mini", "openai")
    # 1 input token = 0.15 µUSD = 150 nano; 3 cached tokens × 0.075 = 225 nano exactly
    assert sheet.cost_nano(TokenUsage(input_tokens=1)) == 150
    assert sheet.cost_nano(TokenUsage(input_tokens=3, cache_read_tokens=3)) == 225
    # deepseek 0.135 USD/MTok: 1 token = 135 nano; cache 0.035 → 35 nano; no per-type rounding
    off_peak = Catalog.load().lookup("deepseek-chat", "deepseek", datetime(2026, 1, 1, 20, tzinfo=UTC))
    assert off_peak.cost_nano(TokenUsage(input_tokens=2, cache_read_tokens=1)) == 135 + 35


def test_tiered_model_switches_every_token_above_the_threshold() -> None:
    sheet = Catalog.load().lookup("claude-sonnet-4-5-20250929", "anthropic")
    assert sheet.tiers and sheet.tiers[0][0] == 200_000
    below = TokenUsage(input_tokens=200_000, output_tokens=1_000)
    above = TokenUsage(input_tokens=200_001, output_tokens=1_000)
    assert sheet.cost_nano(below) == 200_000 * 3_000 + 1_000 * 15_000  # 3 and 15 USD/MTok
    assert sheet.cost_nano(above) == 200_001 * 6_000 + 1_000 * 22_500  # 6 and 22.5 USD/MTok
    # cache reads and writes are tiered too: 0.6 and 7.5 USD/MTok above 200k
    cached = TokenUsage(input_tokens=300_000, output_tokens=0, cache_read_tokens=100_000,
                        cache_write_tokens=50_000)
    assert sheet.cost_nano(cached) == 150_000 * 6_000 + 100_000 * 600 + 50_000 * 7_500


def test_genai_start_date_history_is_honoured() -> None:
    cat = Catalog.load()
    before = cat.lookup("claude-sonnet-4-6", "anthropic", datetime(2026, 3, 12, 23, 59, tzinfo=UTC))
    after = cat.lookup("claude-sonnet-4-6", "anthropic", datetime(2026, 3, 13, 0, 0, tzinfo=UTC))
    assert before.tiers and not after.tiers
    assert after.effective_from == date(2026, 3, 13)
    big = TokenUsage(input_tokens=300_000, output_tokens=1_000)
    assert before.cost_nano(big) == 300_000 * 6_000 + 1_000 * 22_500
    assert after.cost_nano(big) == 300_000 * 3_000 + 1_000 * 15_000
    # an offset instant is compared in UTC: 2026-03-13 01:00+02:00 is still 03-12 in UTC
    eastern = datetime(2026, 3, 13, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert cat.lookup("claude-sonnet-4-6", "anthropic", eastern).tiers
    # naive datetimes are UTC
    assert not cat.lookup("claude-sonnet-4-6", "anthropic", datetime(2026, 3, 13)).tiers


def test_time_of_day_price_is_evaluated_at_the_instant() -> None:
    cat = Catalog.load()
    peak = cat.lookup("deepseek-chat", None, datetime(2026, 1, 1, 8, 0, tzinfo=UTC))
    off = cat.lookup("deepseek-chat", None, datetime(2026, 1, 1, 16, 30, tzinfo=UTC))
    assert (peak.input, peak.output) == (Decimal("0.27"), Decimal("1.1"))
    assert (off.input, off.output) == (Decimal("0.135"), Decimal("0.55"))


def test_private_model_override_and_explicit_zero() -> None:
    cat = catalog(overrides=[
        {"model": "acme-private-llm", "provider": "internal", "input": "0.50", "output": "1.50",
         "cache_read": "0.05"},
        {"model": "self-hosted-*", "input": 0, "output": 0},
    ])
    sheet = cat.resolve("acme-private-llm", "internal")
    assert (sheet.source, sheet.provider, sheet.flagged_default) == ("override", "internal", False)
    assert sheet.cost_nano(TokenUsage(input_tokens=1000, output_tokens=1000, cache_read_tokens=500)) == (
        500 * 500 + 500 * 50 + 1000 * 1500)
    assert cat.resolve("acme-private-llm").model == "acme-private-llm"  # provider unknown: any
    with pytest.raises(UnknownPrice):
        cat.resolve("acme-private-llm", "openai")  # the override names another provider
    free = cat.resolve("self-hosted-llama", "vllm")
    assert free.cost_nano(TokenUsage(input_tokens=10, output_tokens=10)) == 0


def test_override_takes_precedence_from_its_effective_date() -> None:
    cat = catalog(overrides=[
        {"model": "gpt-4o-mini", "provider": "openai", "input": "0.10", "output": "0.40",
         "effective_from": "2026-01-01"},
        {"model": "gpt-4o-mini", "provider": "openai", "input": "0.12", "output": "0.48",
         "effective_from": date(2026, 7, 1)},
    ])

    def at(year: int, month: int, day: int, hour: int = 0) -> datetime:
        return datetime(year, month, day, hour, tzinfo=UTC)

    assert cat.lookup("gpt-4o-mini", "openai", at(2025, 12, 31, 23)).source == "genai-prices"
    assert cat.lookup("gpt-4o-mini", "openai", at(2026, 1, 1)).input == Decimal("0.10")
    assert cat.lookup("gpt-4o-mini", "openai", at(2026, 6, 30, 23)).input == Decimal("0.10")
    july = cat.lookup("gpt-4o-mini", "openai", at(2026, 7, 1))
    assert (july.input, july.source, july.effective_from) == (Decimal("0.12"), "override", date(2026, 7, 1))
    # the alias with a date is the same genai-prices model: the override applies to it too
    assert cat.lookup("gpt-4o-mini-2024-07-18", "openai", at(2026, 7, 2)).input == Decimal("0.12")


def test_exact_override_beats_glob_on_the_same_date() -> None:
    cat = catalog(overrides=[
        {"model": "acme-*", "input": "1", "output": "2"},
        {"model": "acme-large", "input": "5", "output": "10"},
        {"model": "ACME-*", "input": "3", "output": "4", "effective_from": "2026-02-01"},
    ])
    early = datetime(2026, 1, 1, tzinfo=UTC)
    assert cat.lookup("acme-large", None, early).input == Decimal("5")
    assert cat.lookup("acme-small", None, early).input == Decimal("1")
    # the most recently effective override wins, even a glob
    assert cat.lookup("acme-large", None, datetime(2026, 3, 1, tzinfo=UTC)).input == Decimal("3")


def test_override_with_tiers_keeps_fallbacks_tiered() -> None:
    cat = catalog(overrides=[{"model": "tiny", "input": "1", "output": "2",
                              "tiers": [{"above": 1000, "input": "2", "output": "4"}]}])
    sheet = cat.lookup("tiny")
    usage = TokenUsage(input_tokens=2000, output_tokens=10, cache_read_tokens=1000, reasoning_tokens=5)
    assert sheet.cost_nano(usage) == 1000 * 2000 + 1000 * 2000 + 10 * 4000


def test_unknown_model_deny_by_default() -> None:
    cat = Catalog.load()
    with pytest.raises(UnknownPrice) as info:
        cat.resolve("no-such-model-xyz")
    assert info.value.model == "no-such-model-xyz"
    with pytest.raises(UnknownPrice):
        cat.lookup("gpt-4o", "no-such-provider")
    with pytest.raises(UnknownPrice):  # known model whose only prices are per audio hour
        cat.resolve("whisper-large-v3", "groq")


def test_unknown_model_charge_default_is_flagged() -> None:
    cat = catalog(unknown_price={"action": "charge", "input": "10", "output": "30"})
    sheet = cat.resolve("no-such-model-xyz", "openai")
    assert sheet.flagged_default and (sheet.input, sheet.output) == (Decimal("10"), Decimal("30"))
    assert sheet.cost_nano(TokenUsage(input_tokens=100, output_tokens=100)) == 100 * 10_000 + 100 * 30_000
    with pytest.raises(UnknownPrice):
        cat.lookup("no-such-model-xyz", "openai")  # lookup never applies the rule
    assert not cat.resolve("gpt-4o-mini", "openai").flagged_default


def test_free_genai_models_are_never_priced_at_zero() -> None:
    cat = Catalog.load()
    for provider in genai.providers():
        for info in provider.models:
            for rule in cat.history(info.id, provider.id).rules:
                if rule.sheet is not None:
                    assert rule.sheet.input or rule.sheet.output or rule.sheet.tiers, (provider.id, info.id)


def test_resolve_is_cached_after_the_first_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    cat = Catalog.load()
    calls: list[str] = []
    real = genai.find_model

    def counting(model: str, provider: str | None) -> Any:
        calls.append(model)
        return real(model, provider)

    monkeypatch.setattr(genai, "find_model", counting)
    first = cat.resolve("gpt-4o-mini", "openai")
    for _ in range(10):
        assert cat.resolve("gpt-4o-mini", "openai") is first
        cat.resolve("deepseek-chat", None, datetime(2026, 1, 1, 8, tzinfo=UTC))
    assert calls == ["gpt-4o-mini", "deepseek-chat"]


def test_cache_is_bounded() -> None:
    cat = Catalog(PricingConfig.parse({"unknown_price": {"action": "charge", "input": "1", "output": "1"}}),
                  cache_size=8)
    for index in range(50):
        cat.resolve(f"random-model-{index}")
    assert len(cat._cache) <= 8 and len(cat._defaults) <= 8


def test_models_lists_and_filters() -> None:
    cat = catalog(overrides=[{"model": "acme-private-llm", "provider": "internal", "input": "0.5",
                              "output": "1.5"},
                             {"model": "gpt-4o-mini", "provider": "openai", "input": "0.1", "output": "0.2"}])
    everything = cat.models()
    assert len(everything) > 2000
    openai = cat.models(provider="openai", search="GPT-4O-MINI")
    assert {e.provider for e in openai} == {"openai"}
    mini = next(e for e in openai if e.model == "gpt-4o-mini")
    assert mini.source == "override" and mini.sheet is not None and mini.sheet.input == Decimal("0.1")
    private = cat.models(search="acme")
    assert [(e.provider, e.model, e.source) for e in private] == [
        ("internal", "acme-private-llm", "override")]


def test_describe_reports_history_and_every_unit() -> None:
    cat = catalog(overrides=[{"model": "claude-sonnet-4-6", "provider": "anthropic", "input": "2",
                              "output": "10", "effective_from": "2027-01-01", "note": "negotiated"}])
    detail = cat.describe("claude-sonnet-4-6", "anthropic", datetime(2026, 6, 1, tzinfo=UTC))
    shown = [(h.condition, h.source, h.active) for h in detail.history]
    assert shown[:1] == [("always", "genai-prices", False)] and ("from 2026-03-13", "genai-prices", True) in shown
    assert shown[-1] == ("from 2027-01-01", "override", False)
    # the data's request variants (batch) start on their own dates: each price shows from when they apply
    info = genai.find_model("claude-sonnet-4-6", "anthropic")
    assert info is not None
    starts = {v.start for v in genai.variants_of(info[1]) if v.start is not None}
    assert {c for c, _, _ in shown if "its variants" in c} == {
        f"{base}; its variants from {day}" for base in ("always", "from 2026-03-13") for day in starts}
    assert detail.not_metered == ()  # every unit the data prices is metered
    assert detail.sheet is not None and {"cache_write_1h", "web_searches"} <= set(detail.sheet.rates())
    assert detail.data_version.startswith("genai-prices") and not detail.from_override
    later = cat.describe("claude-sonnet-4-6", "anthropic", datetime(2027, 1, 1, tzinfo=UTC))
    assert later.from_override and later.notes == ("negotiated",)
    with pytest.raises(UnknownPrice):
        cat.describe("no-such-model-xyz")
    assert "gpt-4o-mini" in cat.suggest("gpt-4o-mnii")


def test_worst_case_only_reaches_tiers_the_input_bound_can_reach() -> None:
    from decimal import Decimal

    from costplane.pricing.types import PriceSheet, TokenUsage

    sheet = PriceSheet("m", "p", input=Decimal(3), output=Decimal(15), cache_write=Decimal("3.75"),
                       tiers=((200_000, {"input": Decimal(6), "output": Decimal("22.5")}),))
    # below the tier: the base rates (cache write is the dearest input-side rate)
    assert sheet.max_cost_nano(100_000, 1_000) == 100_000 * 3750 + 1_000 * 15_000
    # a bound above the tier start may reach it: the tier's rates (undeclared cache write follows input)
    assert sheet.max_cost_nano(300_000, 1_000) == 300_000 * 6000 + 1_000 * 22_500
    for usage in (TokenUsage(input_tokens=200_000, output_tokens=1_000),
                  TokenUsage(input_tokens=200_001, output_tokens=1_000, cache_write_tokens=5)):
        assert sheet.cost_nano(usage) <= sheet.max_cost_nano(usage.input_tokens, usage.output_tokens)

"""Model and provider names on a bill and in the ledger compare by one explicit rule."""

from __future__ import annotations

import pytest

from costplane.reconcile.normalize import canonical_provider, normalize_model
from costplane.reconcile.settings import parse_reconcile


@pytest.mark.parametrize(("bill", "ledger"), [
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
    ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet"),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
    ("openai/GPT-4o", "gpt-4o"),
    ("models/gemini-2.5-pro", "gemini-2.5-pro"),
])
def test_dated_and_prefixed_names_fold_to_the_ledger_name(bill: str, ledger: str) -> None:
    assert normalize_model(bill) == ledger
    assert normalize_model(ledger) == ledger  # the rule is idempotent: the ledger side is unchanged


def test_names_that_differ_beyond_a_date_stay_apart() -> None:
    assert normalize_model("gpt-4o-mini-2024-07-18") != normalize_model("gpt-4o-2024-08-06")
    assert normalize_model("o1-2024-12-17") == "o1"
    assert normalize_model("gpt-4.1-nano") == "gpt-4.1-nano"  # no date: nothing removed
    assert normalize_model("claude-opus-4-1") == "claude-opus-4-1"  # a version digit is not a date


def test_aliases_from_the_settings_apply_after_the_rule() -> None:
    settings, problems = parse_reconcile({"models": {"gpt-4o-realtime-preview-2024-12-17": "gpt-4o-realtime"}})
    assert problems == []
    assert settings.models == {"gpt-4o-realtime-preview": "gpt-4o-realtime"}
    assert normalize_model("gpt-4o-realtime-preview-2025-06-03", settings.models) == "gpt-4o-realtime"


@pytest.mark.parametrize(("name", "key"), [
    ("OpenAI", "openai"), ("Anthropic", "anthropic"), ("Amazon Web Services", "aws"), ("Microsoft", "azure"),
    ("Google Cloud", "gcp"), ("aws.bedrock", "aws"), ("my-vllm", "my-vllm"),
])
def test_company_names_map_to_provider_keys(name: str, key: str) -> None:
    assert canonical_provider(name) == key


def test_a_ledger_provider_maps_through_the_settings_first() -> None:
    assert canonical_provider("openai-eu", {"openai-eu": "openai"}) == "openai"


def test_settings_problems_name_the_field() -> None:
    _, problems = parse_reconcile({"drift_threshold_pct": "x", "timezone": "Mars/Base", "projects": {"a": 3.5},
                                   "nope": 1})
    fields = sorted(field for field, _ in problems)
    assert fields == ["reconcile.drift_threshold_pct", "reconcile.nope", "reconcile.projects.a", "reconcile.timezone"]


def test_ledger_providers_map_through_settings_company_and_type() -> None:
    from costplane.config import ProviderConfig
    from costplane.reconcile.metered import ledger_provider_map
    from costplane.reconcile.settings import ReconcileSettings

    providers = [ProviderConfig("gw-openai", "openai", "https://x/v1"),
                 ProviderConfig("azure-gpt", "openai-compatible", "https://y/v1", company="Microsoft"),
                 ProviderConfig("groq", "openai-compatible", "https://z/v1", pricing_provider="groq"),
                 ProviderConfig("eu", "openai", "https://w/v1")]
    mapping = ledger_provider_map(providers, ReconcileSettings(providers={"eu": "openai-eu-contract"}))
    assert {name: canonical_provider(billed) for name, billed in mapping.items()} == {
        "gw-openai": "openai", "azure-gpt": "azure", "groq": "groq", "eu": "openai-eu-contract"}

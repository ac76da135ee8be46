"""PricingConfig.parse: the schema, exact decimals, and errors that name file, line and field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import yaml

from costplane.pricing import PricingConfig, PricingConfigError, parse_price


def error_of(data: Any, **kwargs: Any) -> str:
    with pytest.raises(PricingConfigError) as info:
        PricingConfig.parse(data, **kwargs)
    return str(info.value)


def test_defaults() -> None:
    config = PricingConfig.parse(None)
    assert config.overrides == () and config.unknown_price.action == "deny"


def test_full_schema_from_yaml() -> None:
    data = yaml.safe_load("""
overrides:
  - model: acme-private-llm
    provider: internal
    input: "0.50"
    output: 1.5
    cache_read: 0.1
    cache_write: 1
    reasoning: "2"
    effective_from: 2026-01-01
    note: contract price
    tiers:
      - {above: 200000, input: "1.00", output: 3}
  - {model: "self-hosted-*", input: 0, output: 0}
unknown_price: {action: charge, input: "10", output: "30"}
""")
    config = PricingConfig.parse(data)
    first, second = config.overrides
    assert first.input == Decimal("0.50") and first.output == Decimal("1.5")
    assert first.cache_read == Decimal("0.1")  # the YAML float 0.1 via its repr, not 0.1000000000000000055…
    assert (first.cache_write, first.reasoning) == (Decimal(1), Decimal(2))
    assert first.effective_from == date(2026, 1, 1) and first.note == "contract price"
    assert first.tiers == ((200_000, {"input": Decimal("1.00"), "output": Decimal(3)}),)
    assert second.is_glob and not first.is_glob and second.provider is None
    rule = config.unknown_price
    assert (rule.action, rule.input, rule.output) == ("charge", Decimal("10"), Decimal("30"))


@pytest.mark.parametrize(("value", "expected"), [
    ("0.50", Decimal("0.50")), (3, Decimal(3)), (0.1, Decimal("0.1")), (2.675, Decimal("2.675")),
    (1e-7, Decimal("1E-7")), ("  1_000.25 ", Decimal("1000.25")), (Decimal("0.000000001"), Decimal("1E-9")),
])
def test_parse_price_is_exact(value: Any, expected: Decimal) -> None:
    assert parse_price(value) == expected


@pytest.mark.parametrize("value", [-1, "-0.5", float("nan"), float("inf"), "NaN", "abc", True, None, [],
                                   "0.0000000001"])
def test_parse_price_rejects(value: Any) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_price(value)


def test_error_names_field_file_and_line() -> None:
    data = {"overrides": [
        {"model": "a", "input": 1, "output": 1},
        {"model": "b", "input": 1, "output": 1},
        {"model": "c", "input": -2, "output": 1},
    ]}
    lines = {"pricing": 10, "pricing.overrides": 11, "pricing.overrides[2]": 16,
             "pricing.overrides[2].input": 17}
    message = error_of(data, source="conf/costplane.yaml", lines=lines)
    assert message == ("conf/costplane.yaml:17: pricing.overrides[2].input: expected a price of zero or "
                       "more USD per million tokens, got -2")


def test_error_uses_the_closest_parent_line() -> None:
    message = error_of({"overrides": [{"model": "c", "input": 1}]}, lines={"pricing.overrides[0]": 4})
    assert message.startswith("costplane.yaml:4: pricing.overrides[0].output: missing")


@pytest.mark.parametrize(("data", "path", "words"), [
    ([1], "pricing", "expected a mapping"),
    ({"overides": []}, "pricing.overides", "unknown field"),
    ({"overrides": {"model": "x"}}, "pricing.overrides", "expected a list"),
    ({"overrides": ["x"]}, "pricing.overrides[0]", "expected a mapping"),
    ({"overrides": [{"input": 1, "output": 1}]}, "pricing.overrides[0].model", "model name or glob"),
    ({"overrides": [{"model": "m", "input": 1, "output": 1, "ouput": 2}]}, "pricing.overrides[0].ouput",
     "unknown field"),
    ({"overrides": [{"model": "m", "input": "x", "output": 1}]}, "pricing.overrides[0].input", "str 'x'"),
    ({"overrides": [{"model": "m", "input": 1, "output": 1, "effective_from": "soon"}]},
     "pricing.overrides[0].effective_from", "a date such as 2026-01-01"),
    ({"overrides": [{"model": "m", "input": 1, "output": 1, "provider": 3}]}, "pricing.overrides[0].provider",
     "provider name"),
    ({"overrides": [{"model": "m", "input": 1, "output": 1, "tiers": [{"above": -1, "input": 2}]}]},
     "pricing.overrides[0].tiers[0].above", "integer >= 0"),
    ({"overrides": [{"model": "m", "input": 1, "output": 1,
                     "tiers": [{"above": 10, "input": 2}, {"above": 5, "input": 3}]}]},
     "pricing.overrides[0].tiers[1].above", "ascending"),
    ({"overrides": [{"model": "m", "input": 1, "output": 1}, {"model": "M", "input": 2, "output": 2}]},
     "pricing.overrides[1]", "duplicates pricing.overrides[0]"),
    ({"unknown_price": {"action": "allow"}}, "pricing.unknown_price.action", "deny or charge"),
    ({"unknown_price": {"action": "charge", "input": 1}}, "pricing.unknown_price.output", "missing"),
    ({"unknown_price": {"action": "charge", "input": 0, "output": 0}}, "pricing.unknown_price",
     "no silent $0"),
    ({"unknown_price": {"action": "deny", "input": 1}}, "pricing.unknown_price.input", "only used with"),
])
def test_errors_name_the_field(data: Any, path: str, words: str) -> None:
    message = error_of(data)
    assert f"costplane.yaml: {path}: " in message
    assert words in message


def test_all_errors_are_reported_at_once() -> None:
    with pytest.raises(PricingConfigError) as info:
        PricingConfig.parse({"overrides": [{"model": "a", "input": -1, "output": "x"}],
                             "unknown_price": "maybe"})
    assert len(info.value.messages) == 3


def test_unknown_price_shorthand() -> None:
    assert PricingConfig.parse({"unknown_price": "deny"}).unknown_price.action == "deny"

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from costplane.pricing.config import PricingConfig, PricingConfigError
from costplane.pricing.skus import SkuCatalog, UnknownSku


def test_shipped_table_covers_providers_and_gpus() -> None:
    catalog = SkuCatalog.load()
    for gpu in ("H100", "A100-80GB", "A100-40GB", "L4", "T4"):
        assert catalog.lookup(f"aws/gpu/{gpu}").gpu_type == gpu
    assert catalog.lookup("aws/gpu/L40S").hourly_usd > 0 and catalog.lookup("aws/gpu/A10G").gpu_count == 1
    p4d = catalog.lookup("AWS/p4d.24xlarge")
    assert p4d.gpu_count == 8 and p4d.provider == "aws" and p4d.source and p4d.as_of.year >= 2025
    assert catalog.lookup("gcp/g2-standard-4").gpu_type == "L4"
    assert catalog.lookup("azure/Standard_NC24ads_A100_v4").gpu_type == "A100-80GB"


def test_cost_nano_is_exact_and_rounded_once() -> None:
    price = SkuCatalog.load().lookup("aws/p4d.24xlarge")
    assert price.cost_nano(3600) == 32_772_600_000
    assert price.cost_nano(1) == 9_103_500
    assert price.cost_nano(Decimal("0.5"), count=2) == 9_103_500


def test_unknown_sku_is_an_error_never_zero() -> None:
    with pytest.raises(UnknownSku, match="aws/nope"):
        SkuCatalog.load().lookup("aws/nope")


def test_overrides_are_effective_dated() -> None:
    config = PricingConfig.parse({"skus": [{"sku": "aws/gpu/L4", "hourly_usd": "0.50", "effective_from": "2030-01-01"},
                                           {"sku": "onprem/gpu/H100", "hourly_usd": "2.10", "gpu_type": "H100"}]})
    catalog = SkuCatalog.load(config)
    assert catalog.lookup("aws/gpu/L4", datetime(2029, 1, 1, tzinfo=UTC)).hourly_usd == Decimal("0.8048")
    assert catalog.lookup("aws/gpu/L4", datetime(2030, 6, 1, tzinfo=UTC)).hourly_usd == Decimal("0.50")
    assert catalog.lookup("onprem/gpu/H100").gpu_count == 1


def test_bad_override_names_the_field() -> None:
    with pytest.raises(PricingConfigError, match=r"pricing.skus\[0\].hourly_usd"):
        PricingConfig.parse({"skus": [{"sku": "aws/x", "hourly_usd": "cheap"}]})

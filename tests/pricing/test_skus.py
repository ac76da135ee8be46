"""The SKU table: shipped public cloud prices by region, GPU shares, overrides, region gaps."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from costplane.pricing.cloudskus import nearest_region, normalise_region
from costplane.pricing.config import PricingConfig, PricingConfigError
from costplane.pricing.skubuild import BuildError, build_tables, gpu_of
from costplane.pricing.skus import SkuCatalog, UnknownSku, UnpricedRegion

DATA = Path(__file__).resolve().parents[2] / "src" / "costplane" / "data"


def test_shipped_table_covers_providers_and_gpus() -> None:
    catalog = SkuCatalog.load()
    for gpu in ("H100", "A100-80GB", "A100-40GB", "L4", "T4", "A10G", "L40S", "H200", "B200"):
        assert catalog.lookup(f"aws/gpu/{gpu}").gpu_type == gpu
    p4d = catalog.lookup("AWS/p4d.24xlarge")
    assert p4d.gpu_count == 8 and p4d.provider == "aws" and p4d.as_of == date(2026, 7, 20)
    assert "karpenter-provider-aws" in p4d.source and p4d.region == "us-east-1"
    for sku, gpu, count in (("aws/p5.48xlarge", "H100", 8), ("aws/p5en.48xlarge", "H200", 8),
                            ("aws/p6-b200.48xlarge", "B200", 8), ("aws/g6e.12xlarge", "L40S", 4),
                            ("aws/trn1.32xlarge", "Trainium", 16), ("aws/inf2.48xlarge", "Inferentia2", 12),
                            ("gcp/a3-highgpu-8g", "H100", 8), ("gcp/a2-ultragpu-8g", "A100-80GB", 8),
                            ("gcp/g2-standard-4", "L4", 1), ("azure/Standard_NC24ads_A100_v4", "A100-80GB", 1),
                            ("azure/Standard_ND96isr_H100_v5", "H100", 8), ("azure/Standard_NC4as_T4_v3", "T4", 1)):
        price = catalog.lookup(sku)
        assert (price.gpu_type, price.gpu_count) == (gpu, count), sku
        assert price.hourly_usd > 0
    # figures exactly as the public data gives them
    assert catalog.lookup("aws/m5.4xlarge").hourly_usd == Decimal("0.768")
    assert catalog.lookup("aws/p5.48xlarge").hourly_usd == Decimal("55.04")
    assert catalog.lookup("azure/Standard_DS1_v2@westeurope").hourly_usd == Decimal("0.0679")  # eastus: 0.073
    assert catalog.lookup("gcp/a3-highgpu-8g").hourly_usd == Decimal("88.4899999025753")
    assert catalog.lookup("aws/gpu/H100").hourly_usd == Decimal("6.88")  # p5.48xlarge / 8


def test_every_row_of_the_public_data_is_in_the_shipped_tables() -> None:
    catalog = SkuCatalog.load()
    counts = {}
    for provider in ("aws", "azure", "gcp"):
        table = catalog.table(provider)
        assert table is not None
        counts[provider] = (len(table.rows), len(table.regions()))
    assert counts == {"aws": (1367, 1), "azure": (1848, 57), "gcp": (523, 43)}


def test_cost_nano_is_exact_and_rounded_once() -> None:
    price = SkuCatalog.load().lookup("aws/p4d.24xlarge")  # 21.957642 USD/h
    assert price.cost_nano(3600) == 21_957_642_000
    assert price.cost_nano(1) == 6_099_345
    assert price.cost_nano(Decimal("0.5"), count=2) == 6_099_345
    a3 = SkuCatalog.load().lookup("gcp/a3-highgpu-8g")  # 13 decimals: rounded once, half up
    assert a3.hourly_nano() == 88_489_999_903


def test_region_is_honoured_and_gaps_name_the_nearest_region() -> None:
    catalog = SkuCatalog.load()
    east = catalog.lookup("azure/Standard_ND96isr_H100_v5")
    west = catalog.lookup("azure/Standard_ND96isr_H100_v5", region="West Europe")
    assert east.region == "eastus" and west.region == "westeurope" and west.hourly_usd != east.hourly_usd
    assert catalog.lookup("gcp/n2-standard-4", region="europe-west4-a").region == "europe-west4"
    with pytest.raises(UnpricedRegion, match=r"'eu-west-1'.*nearest priced region: us-east-1") as info:
        catalog.lookup("aws/m5.large", region="eu-west-1")
    assert info.value.nearest == "us-east-1" and isinstance(info.value, UnknownSku)
    with pytest.raises(UnpricedRegion, match="lists no region 'mars-north1'"):
        catalog.lookup("gcp/e2-standard-2@mars-north1")


def test_region_fallback_estimates_from_the_nearest_region_and_says_so() -> None:
    config = PricingConfig.parse({"sku_region_fallback": {"aws": "nearest"}})
    catalog = SkuCatalog.load(config)
    price = catalog.lookup("aws/m5.large", region="eu-west-1")
    assert price.estimated and price.region == "us-east-1" and "estimated: eu-west-1" in price.source
    assert price.hourly_usd == catalog.lookup("aws/m5.large").hourly_usd
    with pytest.raises(UnpricedRegion):  # only aws is configured
        catalog.lookup("gcp/e2-standard-2", region="mars-north1")


def test_spot_prices_where_the_data_has_them() -> None:
    catalog = SkuCatalog.load()
    spot = catalog.lookup("gcp/n1-standard-8", spot=True)
    assert spot.spot and spot.hourly_usd == Decimal("0.13402") < catalog.lookup("gcp/n1-standard-8").hourly_usd
    with pytest.raises(UnknownSku, match=r"no Spot price for SKU 'aws/m5\.large'"):
        catalog.lookup("aws/m5.large", spot=True)  # no AWS Spot figures in the data
    declared = SkuCatalog.load(PricingConfig.parse({"skus": [{"sku": "aws/m5.large", "hourly_usd": "0.09"},
                                                             {"sku": "aws/spot/m5.large", "hourly_usd": "0.04"}]}))
    assert declared.lookup("aws/m5.large").hourly_usd == Decimal("0.09")
    spot_price = declared.lookup("aws/m5.large", spot=True)
    assert spot_price.spot and spot_price.hourly_usd == Decimal("0.04") and spot_price.sku == "aws/m5.large"
    with pytest.raises(UnknownSku, match=r"declare aws/spot/m5\.large"):
        SkuCatalog.load(PricingConfig.parse({"skus": [{"sku": "aws/m5.large", "hourly_usd": "0.09"}]})).lookup(
            "aws/m5.large", spot=True)  # an on-demand declaration never stands in for Spot


def test_unknown_sku_is_an_error_never_zero() -> None:
    with pytest.raises(UnknownSku, match="aws/nope"):
        SkuCatalog.load().lookup("aws/nope")
    with pytest.raises(UnknownSku, match="gcp/gpu/T4"):  # GPUs attached to N1: not in the public data
        SkuCatalog.load().lookup("gcp/gpu/T4")


def test_overrides_are_effective_dated_and_regional() -> None:
    config = PricingConfig.parse({"skus": [{"sku": "aws/gpu/L4", "hourly_usd": "0.50", "effective_from": "2030-01-01"},
                                           {"sku": "onprem/gpu/H100", "hourly_usd": "2.10", "gpu_type": "H100"},
                                           {"sku": "aws/p5.48xlarge@eu-west-1", "hourly_usd": "60.10"},
                                           {"sku": "gcp/gpu/T4", "hourly_usd": "0.35", "gpu_type": "T4"}]})
    catalog = SkuCatalog.load(config)
    assert catalog.lookup("aws/gpu/L4", datetime(2029, 1, 1, tzinfo=UTC)).hourly_usd == Decimal("0.8048")
    assert catalog.lookup("aws/gpu/L4", datetime(2030, 6, 1, tzinfo=UTC)).hourly_usd == Decimal("0.50")
    assert catalog.lookup("onprem/gpu/H100").gpu_count == 1
    assert catalog.lookup("onprem/gpu/H100", region="dc-1").hourly_usd == Decimal("2.10")
    eu = catalog.lookup("aws/p5.48xlarge", region="eu-west-1")
    assert (eu.hourly_usd, eu.gpu_type, eu.gpu_count, eu.region) == (Decimal("60.10"), "H100", 8, "eu-west-1")
    assert catalog.lookup("aws/p5.48xlarge").hourly_usd == Decimal("55.04")
    assert catalog.lookup("gcp/gpu/T4").hourly_usd == Decimal("0.35")


def test_bad_override_names_the_field() -> None:
    with pytest.raises(PricingConfigError, match=r"pricing.skus\[0\].hourly_usd"):
        PricingConfig.parse({"skus": [{"sku": "aws/x", "hourly_usd": "cheap"}]})
    with pytest.raises(PricingConfigError, match=r"pricing.sku_region_fallback"):
        PricingConfig.parse({"sku_region_fallback": "closest"})


def test_region_names_and_nearest() -> None:
    assert normalise_region("azure", "West Europe") == "westeurope"
    assert normalise_region("aws", "us-east-1a") == "us-east-1" and normalise_region("gcp", "us-east4-c") == "us-east4"
    near = nearest_region("europe-west10", ["us-central1", "europe-west1", "asia-east1"], "us-central1")
    assert near == "europe-west1"
    assert nearest_region("eu-west-3", ["us-east-1"], "us-east-1") == "us-east-1"
    assert nearest_region("x", [], "us-east-1") is None


def test_refresh_rebuilds_the_shipped_tables_from_source_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "aws_ec2_ondemand_linux_karpenter.csv").write_text(
        "Region,InstanceType,OnDemandUSDPerHour\nus-east-1,p5.48xlarge,55.040000\nus-east-1,t3.small,0.020800\n")
    (src / "azure_vm_ondemand_linux_karpenter.csv").write_text(
        "Region,ArmSkuName,OnDemandUSDPerHour\neastus,Standard_NC8as_T4_v3,0.752000\n"
        "westeurope,Standard_NC8as_T4_v3,0.977\neastus,ARM_SKU_NAME_PLACEHOLDER,1\n")
    (src / "gcp_compute_instances_cyclenerd.csv").write_text(
        "MachineType,Region,vCPUs,MemoryGB,AcceleratorType,AcceleratorCount,LocalSSDGB,HourUSD,HourSpotUSD\n"
        "g2-standard-4,us-central1,4,16,l4,1,,0.706832255,0.397336\n")
    report = build_tables(src, tmp_path / "out")
    assert report.types == {"aws": 2, "azure": 1, "gcp": 1} and report.regions == {"aws": 1, "azure": 2, "gcp": 1}
    aws = gzip.decompress((tmp_path / "out" / "skus-aws.csv.gz").read_bytes()).decode()
    assert "# as_of: 2026-07-20" in aws and "p5.48xlarge,H100,8,,,55.04\n" in aws and "t3.small,,,,,0.0208\n" in aws
    shares = (tmp_path / "out" / "skus.csv").read_text()
    assert "aws/gpu/H100,aws,6.88,H100,1,,,derived: aws/p5.48xlarge / 8" in shares
    assert "azure/gpu/T4" not in shares  # derived from NC4as_T4_v3, absent from this source
    (src / "gcp_compute_instances_cyclenerd.csv").write_text("MachineType,Region\nx,y\n")
    with pytest.raises(BuildError, match=r"gcp_compute_instances_cyclenerd\.csv:1: missing column"):
        build_tables(src, tmp_path / "out2")
    assert gpu_of("azure", "Standard_NC64as_T4_v3") == ("T4", 4) and gpu_of("aws", "m5.large") == ("", 0)


def test_shipped_tables_are_small() -> None:
    sizes = {p.name: p.stat().st_size for p in DATA.glob("skus*")}
    assert set(sizes) == {"skus.csv", "skus-aws.csv.gz", "skus-azure.csv.gz", "skus-gcp.csv.gz"}
    assert sum(sizes.values()) < 400_000


def test_skus_cli_show_and_refresh(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from costplane.cli.main import app

    runner = CliRunner()
    shown = runner.invoke(app, ["skus", "show", "azure/Standard_ND96isr_H100_v5", "--region", "westeurope"])
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert (body["region"], body["gpu_count"], body["as_of"]) == ("westeurope", 8, "2026-06-18")
    gap = runner.invoke(app, ["skus", "show", "aws/m5.large@eu-west-1"])
    assert gap.exit_code == 1 and "nearest priced region: us-east-1" in gap.output
    missing = runner.invoke(app, ["skus", "refresh", "--from", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "--from" in missing.output
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = runner.invoke(app, ["skus", "refresh", "--from", str(empty), "--out", str(tmp_path / "out")])
    assert broken.exit_code == 2 and "aws_ec2_ondemand_linux_karpenter.csv: cannot read" in broken.output


def test_blueprint_skus_may_name_a_region() -> None:
    from dataclasses import replace

    from costplane.core.envpricing import estimate
    from costplane.policy.bundle import load_bundle

    spec = load_bundle(DATA.parents[2] / "examples" / "bundle").blueprint("gpu-finetune")
    assert spec is not None
    regional = replace(spec, resources=(replace(spec.resources[0], sku="gcp/gpu/{gpu_type}@europe-west4"),))
    priced = estimate(regional, {"gpu_type": "H100", "gpus": "2"}, SkuCatalog.load())
    [resource] = priced.resources
    assert resource["sku"] == "gcp/gpu/H100@europe-west4" and resource["count"] == 2
    assert priced.hourly_nano == SkuCatalog.load().lookup("gcp/gpu/H100@europe-west4").hourly_nano(2)
    assert priced.hourly_nano > SkuCatalog.load().lookup("gcp/gpu/H100").hourly_nano(2)

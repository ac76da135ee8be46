"""`costplane iac check`: pricing of planned compute, iac.plan policies, exit codes for CI, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from costplane.cli.main import app
from costplane.iac import PlanError, check_plan, load_plan, parse_plan
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.pricing.config import PricingConfig
from costplane.pricing.skus import SkuCatalog

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "examples" / "iac" / "plan.json"
BUNDLE = ROOT / "examples" / "bundle"
T4 = PricingConfig.parse({"skus": [{"sku": "gcp/gpu/T4", "hourly_usd": "0.35", "gpu_type": "T4"}]})
runner = CliRunner()


def _change(address: str, type_: str, after: dict[str, Any], actions: tuple[str, ...] = ("create",)) -> dict[str, Any]:
    return {"address": address, "mode": "managed", "type": type_, "name": address.split(".")[-1],
            "change": {"actions": list(actions), "after": after, "after_unknown": {}}}


def _plan(tmp_path: Path, *changes: dict[str, Any], config: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "plan.json"
    body: dict[str, Any] = {"format_version": "1.2", "resource_changes": list(changes)}
    if config is not None:
        body["configuration"] = config
    path.write_text(json.dumps(body))
    return path


def test_example_plan_prices_each_type_exactly() -> None:
    report = check_plan(load_plan(PLAN), SkuCatalog.load(T4))
    by = {v.priced.resource.address: v.priced for v in report.verdicts}
    assert by["aws_instance.web"].hourly_nano == 96_000_000  # m6i.large 0.096 USD/h
    assert by["aws_instance.web"].monthly_nano == 96_000_000 * 730 and by["aws_instance.web"].region == "us-east-1"
    trainer = by["aws_instance.trainer"]
    assert (trainer.gpu_type, trainer.gpu_count, trainer.hourly_nano) == ("A100-40GB", 8, 21_957_642_000)
    notebook = by["google_compute_instance.notebook"]  # n1-standard-8 + 1 attached T4 (declared in pricing.skus)
    assert notebook.skus == ("gcp/n1-standard-8", "gcp/gpu/T4") and notebook.region == "us-central1"
    assert notebook.hourly_nano == 379_998_000 + 350_000_000 and (notebook.gpu_type, notebook.gpu_count) == ("T4", 1)
    assert by["azurerm_linux_virtual_machine.api"].skus == ("azure/Standard_D4s_v5",)
    assert report.skipped == ("aws_s3_bucket.artifacts",)
    assert report.total_monthly_nano == sum(p.monthly_nano for p in by.values())
    assert not report.denied  # no engine: prices only


def test_gpus_attached_to_n1_are_a_documented_gap_not_zero() -> None:
    report = check_plan(load_plan(PLAN), SkuCatalog.load())
    [notebook] = [v for v in report.verdicts if v.priced.resource.address == "google_compute_instance.notebook"]
    assert notebook.denied and notebook.policies == ("unknown_price",)
    assert "gcp/gpu/T4" in (notebook.priced.unknown or "") and "N1" in (notebook.priced.unknown or "")
    assert notebook.priced.monthly_nano == 0 and report.as_dict()["unknown_prices"] == 1


def test_machine_types_with_gpus_are_not_charged_twice(tmp_path: Path) -> None:
    plan = _plan(tmp_path, _change("google_compute_instance.a2", "google_compute_instance",
                                   {"machine_type": "a2-highgpu-1g", "zone": "us-central1-b",
                                    "guest_accelerator": [{"type": "nvidia-tesla-a100", "count": 1}]}))
    [verdict] = check_plan(load_plan(plan), SkuCatalog.load()).verdicts
    assert verdict.priced.skus == ("gcp/a2-highgpu-1g",) and verdict.priced.gpu_type == "A100-40GB"
    assert verdict.priced.hourly_nano == 3_673_385_000


def test_policies_deny_per_resource_with_reasons() -> None:
    report = check_plan(load_plan(PLAN), SkuCatalog.load(T4), PolicyEngine(load_bundle(BUNDLE)))
    effects = {v.priced.resource.address: (v.effect, v.policies) for v in report.verdicts}
    assert effects["aws_instance.web"] == ("allow", ())
    assert effects["aws_instance.trainer"][0] == "deny"
    assert set(effects["aws_instance.trainer"][1]) == {"iac-no-big-gpus-in-experiment", "iac-monthly-cost-limit"}
    assert effects["azurerm_linux_virtual_machine.api"] == ("deny", ("iac-cost-tags-required",))
    assert effects["google_compute_instance.notebook"] == ("allow", ())
    assert report.denied and report.bundle_revision


def test_unknown_instance_type_is_reported_never_zero(tmp_path: Path) -> None:
    plan = _plan(tmp_path, _change("aws_instance.x", "aws_instance", {"instance_type": "z9.mega", "tags": {}}),
                 _change("aws_instance.y", "aws_instance", {"tags": {}}))
    result = runner.invoke(app, ["iac", "check", str(plan), "--format", "json"])
    assert result.exit_code == 1, result.output
    body = json.loads(result.output)
    x, y = body["resources"]
    assert x["unknown_price"].startswith("no known price for SKU 'aws/z9.mega'") and x["monthly_usd"] is None
    assert x["effect"] == "deny" and x["policies"] == ["unknown_price"]
    assert "instance_type is missing" in y["unknown_price"] and body["unknown_prices"] == 2
    assert [u["address"] for u in body["unpriced"]] == ["aws_instance.x", "aws_instance.y"]


def test_cli_gate_exit_codes_and_json(tmp_path: Path) -> None:
    denied = runner.invoke(app, ["iac", "check", str(PLAN), "--bundle", str(BUNDLE)])
    assert denied.exit_code == 1, denied.output
    assert "plan denied" in denied.output and "experiment tier may not provision" in denied.output
    assert "unpriced: google_compute_instance.notebook (" in denied.output
    assert "aws_s3_bucket.artifacts" in denied.output and "total monthly" in denied.output
    as_json = runner.invoke(app, ["iac", "check", str(PLAN), "--bundle", str(BUNDLE), "--format", "json"])
    body = json.loads(as_json.output)
    assert as_json.exit_code == 1 and body["denied"] is True and len(body["resources"]) == 4
    assert body["total_monthly_usd"] == "16239.31866"  # (0.096 + 21.957642 + 0.192) × 730; the notebook is unpriced
    ok = _plan(tmp_path, _change("aws_instance.web", "aws_instance",
                                 {"instance_type": "t3.micro", "tags": {"cost_center": "cc-1"}}),
               _change("aws_instance.old", "aws_instance", {"instance_type": "p5.48xlarge"}, ("delete",)))
    passed = runner.invoke(app, ["iac", "check", str(ok), "--bundle", str(BUNDLE), "--format", "json"])
    assert passed.exit_code == 0, passed.output
    assert [r["address"] for r in json.loads(passed.output)["resources"]] == ["aws_instance.web"]
    forced = runner.invoke(app, ["iac", "check", str(ok), "--bundle", str(BUNDLE), "--context", "tier=experiment"])
    assert forced.exit_code == 0
    bad_region = runner.invoke(app, ["iac", "check", str(ok), "--region", "mars=x"])
    assert bad_region.exit_code == 2 and "--region" in bad_region.output


def test_bad_plans_name_file_line_and_field(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"resource_changes": [\n  {"address": }\n]}')
    result = runner.invoke(app, ["iac", "check", str(broken)])
    assert result.exit_code == 2 and f"{broken}:2: not JSON" in result.output
    with pytest.raises(PlanError, match=r"resource_changes\[0\]\.change\.actions"):
        parse_plan({"resource_changes": [{"address": "a.b", "type": "aws_instance", "change": {}}]}, "p.json")
    with pytest.raises(PlanError, match="this is a state, not a plan"):
        parse_plan({"format_version": "1.0", "values": {}}, "state.json")
    with pytest.raises(PlanError, match=r"planned_values\.root_module\.resources\[0\]\.address"):
        parse_plan({"planned_values": {"root_module": {"resources": [{"values": {}}]}}}, "p.json")
    missing = runner.invoke(app, ["iac", "check", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "cannot read" in missing.output
    bad_bundle = runner.invoke(app, ["iac", "check", str(PLAN), "--bundle", str(tmp_path / "none")])
    assert bad_bundle.exit_code == 2 and "--bundle" in bad_bundle.output

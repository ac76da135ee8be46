"""The IaC gate on real public plans and public-style plans: every compute resource priced, by node count and
region, templates resolved, unpriceable compute and unpriced regions reported — never $0."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from costplane.cli.main import app
from costplane.iac import check_plan, load_plan
from costplane.iac.check import PlanReport
from costplane.iac.price import PricedResource
from costplane.pricing.config import PricingConfig
from costplane.pricing.skus import SkuCatalog

DATA = Path(__file__).resolve().parent / "data"
runner = CliRunner()
NANO = Decimal(1_000_000_000)


def _usd(nano: int) -> Decimal:
    return Decimal(nano) / NANO


def _hourly(sku: str, region: str | None = None) -> int:
    return SkuCatalog.load().lookup(sku, region=region).hourly_nano()


def _check(path: Path, config: PricingConfig | None = None) -> tuple[PlanReport, dict[str, PricedResource]]:
    report = check_plan(load_plan(path), SkuCatalog.load(config))
    return report, {v.priced.resource.address: v.priced for v in report.verdicts}


def _change(address: str, type_: str, after: dict[str, Any], unknown: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"address": address, "mode": "managed", "type": type_, "name": address.split(".")[-1],
            "change": {"actions": ["create"], "after": after, "after_unknown": unknown or {}}}


def _write(tmp_path: Path, changes: list[dict[str, Any]], config: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "plan.json"
    body: dict[str, Any] = {"format_version": "1.2", "resource_changes": changes}
    if config is not None:
        body["configuration"] = config
    path.write_text(json.dumps(body))
    return path


def _aws(region: str, resources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"provider_config": {"aws": {"name": "aws", "expressions": {"region": {"constant_value": region}}}},
            "root_module": {"resources": resources or []}}


# --- real public plans, compared with Infracost's expected figures -----------------------------------------------

def test_infracost_example_plan_matches_infracost_compute_figure() -> None:
    expected = json.loads((DATA / "infracost__cmd__infracost__testdata__example_out.json").read_text())
    [project] = expected["projects"]
    web = next(r for r in project["breakdown"]["resources"] if r["name"] == "aws_instance.web_app")
    usage = next(c for c in web["costComponents"] if c["name"].startswith("Instance usage"))
    report, by = _check(DATA / "infracost__cmd__infracost__testdata__example_plan.json")
    assert _usd(by["aws_instance.web_app"].hourly_nano) == Decimal(usage["price"])  # 0.768
    assert _usd(by["aws_instance.web_app"].monthly_nano) == Decimal(usage["monthlyCost"])  # 560.64
    # Infracost prices zero_cost_instance as a reserved instance ($0) from a usage file; the plan alone says on-demand
    assert _usd(by["aws_instance.zero_cost_instance"].monthly_nano) == Decimal("560.64")
    assert not report.unpriced and by["aws_instance.web_app"].region == "us-east-1"


def test_infracost_plans_t3_figures_and_wrapper_output() -> None:
    _, target = _check(DATA / "infracost__cmd__infracost__testdata__plan_with_target.json")
    assert _usd(target["aws_instance.web_app_1"].monthly_nano) == Decimal("15.184")  # Infracost: $15.18
    report, v014 = _check(DATA / "infracost__cmd__infracost__testdata__terraform_v0.14_plan.json")
    assert len(v014) == 6 and {_usd(p.monthly_nano) for p in v014.values()} == {Decimal("3.796")}  # Infracost: $3.80
    assert "module.instances.aws_instance.module_instance_counted[1]" in v014 and not report.unpriced
    assert all(p.region == "us-east-1" for p in v014.values())  # module provider configs resolved
    _, wrapped = _check(DATA / "infracost__cmd__infracost__testdata__plan_with_terraform_wrapper.json")
    assert _usd(wrapped["aws_instance.web_app"].monthly_nano) == Decimal("560.64")


def test_azure_vm_is_priced_in_its_region() -> None:
    _, by = _check(DATA / "Ambika-Awari__vm_linux__tfplan.json")
    vm = by["azurerm_linux_virtual_machine.linuxvm"]
    assert (vm.instance_type, vm.region) == ("Standard_DS1_v2", "westeurope")
    assert vm.hourly_nano == 67_900_000 != _hourly("azure/Standard_DS1_v2")  # westeurope 0.0679, eastus 0.073


def test_gke_a3_node_pool_from_planned_values() -> None:
    gke = "GoogleCloudPlatform__ai-infra-cluster-provisioning__0e851a0__test__pr__a3__gke-gpu.json"
    report, by = _check(DATA / gke)
    pool = by["google_container_node_pool.node-pools[0]"]
    assert (pool.instance_type, pool.region, pool.node_count, pool.gpu_type, pool.gpu_count) == (
        "a3-highgpu-8g", "us-east4", 1, "H100", 8)
    assert pool.hourly_nano == _hourly("gcp/a3-highgpu-8g", "us-east4") > 0
    cluster = by["google_container_cluster.cluster"]  # the default pool GKE creates: e2-medium × 3 zones
    assert (cluster.instance_type, cluster.node_count) == ("e2-medium", 3) and cluster.notes
    assert not report.unpriced


def test_instance_from_template_takes_the_template_machine_type() -> None:
    report, by = _check(DATA / "UmeshIghe__gcp-compute__tfplan.json")
    [vm] = by.values()
    assert (vm.instance_type, vm.region, vm.hourly_nano) == ("f1-micro", "us-central1", 7_600_000)
    assert "module.instance_template.google_compute_instance_template.tpl" in report.templates


# --- public-style plans -------------------------------------------------------------------------------------------

def test_public_style_plan_prices_every_compute_resource(tmp_path: Path) -> None:
    lt_ref = {"launch_template": [{"id": {"references": ["aws_launch_template.gpu.id", "aws_launch_template.gpu"]}}]}
    config = _aws("us-east-1", [{"address": "aws_autoscaling_group.gpu", "type": "aws_autoscaling_group",
                                 "provider_config_key": "aws", "expressions": lt_ref}])
    plan = _write(tmp_path, [
        _change("aws_instance.api", "aws_instance", {"instance_type": "m5.4xlarge"}),
        _change("aws_instance.bastion", "aws_instance", {"instance_type": "t3.small"}),
        _change("aws_launch_template.gpu", "aws_launch_template", {"instance_type": "g5.12xlarge", "name": None},
                {"name": True}),
        _change("aws_autoscaling_group.gpu", "aws_autoscaling_group",
                {"min_size": 1, "max_size": 4, "desired_capacity": 2, "launch_template": [{"id": None}]}),
        _change("aws_eks_node_group.workers", "aws_eks_node_group",
                {"instance_types": ["m6i.xlarge"], "scaling_config": [{"desired_size": 3, "min_size": 2,
                                                                       "max_size": 6}]}),
        _change("azurerm_linux_virtual_machine.vm", "azurerm_linux_virtual_machine",
                {"size": "Standard_DS1_v2", "location": "eastus"}),
        _change("azurerm_kubernetes_cluster.aks", "azurerm_kubernetes_cluster",
                {"location": "westeurope", "default_node_pool": [{"vm_size": "Standard_D4s_v5", "node_count": 3}]}),
        _change("azurerm_linux_virtual_machine_scale_set.ss", "azurerm_linux_virtual_machine_scale_set",
                {"sku": "Standard_NC24ads_A100_v4", "instances": 2, "location": "eastus"}),
        _change("google_container_node_pool.h100", "google_container_node_pool",
                {"location": "us-central1", "node_locations": ["us-central1-a", "us-central1-c"], "node_count": 2,
                 "autoscaling": [{"min_node_count": 0, "max_node_count": 4}],
                 "node_config": [{"machine_type": "a3-highgpu-8g"}]}),
        _change("google_compute_instance_template.t", "google_compute_instance_template",
                {"machine_type": "n2-standard-4", "region": "europe-west4", "name": "web-tpl"}),
        _change("google_compute_region_instance_group_manager.web", "google_compute_region_instance_group_manager",
                {"region": "europe-west4", "target_size": 5, "version": [{"instance_template": "web-tpl"}]}),
    ], config)
    report, by = _check(plan)
    assert not report.unpriced and len(by) == 9
    assert by["aws_instance.api"].hourly_nano == 768_000_000 and by["aws_instance.bastion"].hourly_nano == 20_800_000
    asg = by["aws_autoscaling_group.gpu"]
    g5 = _hourly("aws/g5.12xlarge")
    assert (asg.min_nodes, asg.node_count, asg.max_nodes, asg.instance_type) == (1, 2, 4, "g5.12xlarge")
    assert (asg.hourly_nano, asg.max_hourly_nano, asg.gpu_type, asg.gpu_count) == (2 * g5, 4 * g5, "A10G", 8)
    assert report.templates == {"aws_launch_template.gpu": ("aws_autoscaling_group.gpu",),
                                "google_compute_instance_template.t":
                                    ("google_compute_region_instance_group_manager.web",)}
    eks = by["aws_eks_node_group.workers"]
    assert (eks.min_nodes, eks.node_count, eks.max_nodes, eks.hourly_nano) == (2, 3, 6, 3 * 192_000_000)
    assert by["azurerm_linux_virtual_machine.vm"].hourly_nano == 73_000_000
    aks = by["azurerm_kubernetes_cluster.aks"]
    assert (aks.region, aks.hourly_nano) == ("westeurope", 3 * _hourly("azure/Standard_D4s_v5", "westeurope"))
    assert by["azurerm_linux_virtual_machine_scale_set.ss"].gpu_count == 2
    pool = by["google_container_node_pool.h100"]  # node_count and autoscaling are per zone
    a3 = _hourly("gcp/a3-highgpu-8g", "us-central1")
    assert (pool.min_nodes, pool.node_count, pool.max_nodes) == (0, 4, 8)
    assert (pool.hourly_nano, pool.max_hourly_nano, pool.gpu_count) == (4 * a3, 8 * a3, 32)
    mig = by["google_compute_region_instance_group_manager.web"]
    assert (mig.instance_type, mig.region, mig.node_count) == ("n2-standard-4", "europe-west4", 5)
    assert mig.hourly_nano == 5 * _hourly("gcp/n2-standard-4", "europe-west4")
    assert report.total_monthly_nano == sum(p.hourly_nano for p in by.values()) * 730


def test_aks_node_pool_takes_its_cluster_region_and_spot_is_priced_from_spot_data(tmp_path: Path) -> None:
    config = {"root_module": {"resources": [
        {"address": "azurerm_kubernetes_cluster_node_pool.gpu", "type": "azurerm_kubernetes_cluster_node_pool",
         "expressions": {"kubernetes_cluster_id": {"references": ["azurerm_kubernetes_cluster.aks.id",
                                                                  "azurerm_kubernetes_cluster.aks"]}}}]}}
    plan = _write(tmp_path, [
        _change("azurerm_kubernetes_cluster.aks", "azurerm_kubernetes_cluster",
                {"location": "swedencentral", "default_node_pool": [{"vm_size": "Standard_D2s_v5", "node_count": 1}]}),
        _change("azurerm_kubernetes_cluster_node_pool.gpu", "azurerm_kubernetes_cluster_node_pool",
                {"vm_size": "Standard_NC24ads_A100_v4", "min_count": 0, "max_count": 3, "node_count": 1}),
        _change("google_compute_instance.spot", "google_compute_instance",
                {"machine_type": "g2-standard-4", "zone": "us-central1-a",
                 "scheduling": [{"provisioning_model": "SPOT", "preemptible": True}]}),
    ], config)
    _, by = _check(plan)
    gpu = by["azurerm_kubernetes_cluster_node_pool.gpu"]
    assert gpu.region == "swedencentral" and (gpu.min_nodes, gpu.node_count, gpu.max_nodes) == (0, 1, 3)
    assert gpu.hourly_nano == _hourly("azure/Standard_NC24ads_A100_v4", "swedencentral")
    spot = by["google_compute_instance.spot"]
    assert spot.spot and spot.hourly_nano == SkuCatalog.load().lookup("gcp/g2-standard-4", spot=True).hourly_nano()
    assert spot.hourly_nano < _hourly("gcp/g2-standard-4")


def test_autoscaled_instance_group_and_default_eks_type(tmp_path: Path) -> None:
    plan = _write(tmp_path, [
        _change("google_compute_instance_template.t", "google_compute_instance_template",
                {"machine_type": "g2-standard-8", "region": "us-central1"}),
        _change("google_compute_instance_group_manager.mig", "google_compute_instance_group_manager",
                {"zone": "us-central1-a", "name": "infer", "target_size": None,
                 "version": [{"instance_template": None}]}),
        _change("google_compute_autoscaler.as", "google_compute_autoscaler",
                {"zone": "us-central1-a", "target": None,
                 "autoscaling_policy": [{"min_replicas": 2, "max_replicas": 10}]}),
        _change("aws_eks_node_group.ng", "aws_eks_node_group",
                {"instance_types": None, "scaling_config": [{"desired_size": 2, "min_size": 1, "max_size": 3}]},
                {"instance_types": True}),
    ], {"root_module": {"resources": [
        {"address": "google_compute_autoscaler.as", "type": "google_compute_autoscaler",
         "expressions": {"target": {"references": ["google_compute_instance_group_manager.mig.id",
                                                   "google_compute_instance_group_manager.mig"]}}}]}})
    report, by = _check(plan)
    mig = by["google_compute_instance_group_manager.mig"]
    assert (mig.min_nodes, mig.node_count, mig.max_nodes, mig.instance_type) == (2, 2, 10, "g2-standard-8")
    assert mig.max_hourly_nano == 10 * _hourly("gcp/g2-standard-8") and "sized by" in mig.notes[0]
    eks = by["aws_eks_node_group.ng"]
    assert (eks.instance_type, eks.hourly_nano) == ("t3.medium", 2 * _hourly("aws/t3.medium"))
    assert "google_compute_autoscaler.as" in report.skipped


def test_unpriced_region_names_the_region_and_the_nearest_priced_one(tmp_path: Path) -> None:
    plan = _write(tmp_path, [_change("aws_instance.eu", "aws_instance", {"instance_type": "m5.4xlarge"})],
                  _aws("eu-west-1"))
    result = runner.invoke(app, ["iac", "check", str(plan)], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "unpriced: aws_instance.eu (no price for SKU 'aws/m5.4xlarge' in region 'eu-west-1'" in result.output
    assert "nearest priced region: us-east-1" in result.output
    estimated = check_plan(load_plan(plan), SkuCatalog.load(PricingConfig.parse({"sku_region_fallback": "nearest"})))
    [verdict] = estimated.verdicts
    assert verdict.effect == "allow" and verdict.priced.estimated and verdict.priced.hourly_nano == 768_000_000
    declared = PricingConfig.parse({"skus": [{"sku": "aws/m5.4xlarge@eu-west-1", "hourly_usd": "0.856"}]})
    [own] = check_plan(load_plan(plan), SkuCatalog.load(declared)).verdicts
    assert (own.priced.hourly_nano, own.priced.region, own.priced.estimated) == (856_000_000, "eu-west-1", False)


def test_compute_that_cannot_be_priced_is_reported_not_zero(tmp_path: Path) -> None:
    plan = _write(tmp_path, [
        _change("aws_spot_instance_request.s", "aws_spot_instance_request", {"instance_type": "m5.large"}),
        _change("azurerm_windows_virtual_machine.w", "azurerm_windows_virtual_machine",
                {"size": "Standard_D2s_v5", "location": "eastus"}),
        _change("aws_autoscaling_group.orphan", "aws_autoscaling_group",
                {"min_size": 1, "max_size": 2, "launch_template": [{"id": None, "name": None}]}),
        _change("google_container_cluster.auto", "google_container_cluster",
                {"location": "us-central1", "enable_autopilot": True}),
        _change("aws_instance.later", "aws_instance", {"instance_type": None}, {"instance_type": True}),
        _change("google_container_cluster.bare", "google_container_cluster",
                {"location": "us-central1", "remove_default_node_pool": True, "initial_node_count": 1}),
    ], _aws("us-east-1"))
    result = runner.invoke(app, ["iac", "check", str(plan), "--format", "json"])
    assert result.exit_code == 1, result.output
    body = json.loads(result.output)
    reasons = {u["address"]: u["reason"] for u in body["unpriced"]}
    assert set(reasons) == {"aws_spot_instance_request.s", "azurerm_windows_virtual_machine.w",
                            "aws_autoscaling_group.orphan", "google_container_cluster.auto", "aws_instance.later"}
    assert "does not price" in reasons["aws_spot_instance_request.s"]
    assert "azure/windows/Standard_D2s_v5" in reasons["azurerm_windows_virtual_machine.w"]
    assert "cannot tell which aws_launch_template" in reasons["aws_autoscaling_group.orphan"]
    assert "Autopilot" in reasons["google_container_cluster.auto"]
    assert "known only after apply" in reasons["aws_instance.later"]
    assert all(r["monthly_usd"] is None and r["effect"] == "deny" for r in body["resources"])
    assert body["not_priced"] == ["google_container_cluster.bare"]  # its default pool is removed: no compute
    windows = PricingConfig.parse({"skus": [{"sku": "azure/windows/Standard_D2s_v5", "hourly_usd": "0.188"}]})
    _, by = _check(plan, windows)
    assert by["azurerm_windows_virtual_machine.w"].hourly_nano == 188_000_000


def test_region_option_and_default_region_are_said(tmp_path: Path) -> None:
    plan = _write(tmp_path, [_change("aws_instance.x", "aws_instance", {"instance_type": "t3.small"})])
    [guessed] = check_plan(load_plan(plan), SkuCatalog.load()).verdicts
    assert guessed.priced.estimated and "does not say the region" in guessed.priced.notes[0]
    result = runner.invoke(app, ["iac", "check", str(plan), "--region", "aws=ap-south-1", "--format", "json"])
    assert result.exit_code == 1 and "'ap-south-1'" in json.loads(result.output)["unpriced"][0]["reason"]

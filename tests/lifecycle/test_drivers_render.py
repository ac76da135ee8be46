"""Drivers without infrastructure: the kubernetes manifest (no cluster) and terraform (`terraform_data`)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from costplane.attribution.context import Context
from costplane.lifecycle.drivers import DriverError, KubernetesDriver, LaunchSpec, TerraformDriver
from costplane.lifecycle.drivers.kubernetes import render

EXPIRES = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _spec(driver: dict[str, object], **more: object) -> LaunchSpec:
    return LaunchSpec("env_abc123", "gpu-finetune", driver, {"gpus": 2},
                      Context(team="ml", owner="alice", tier="experiment", tags={"cost_center": "cc-42"}),
                      EXPIRES, 7200,
                      ({"kind": "gpu", "sku": "aws/gpu/L4", "count": 2}, {"kind": "storage", "count": 1}),
                      **more)  # type: ignore[arg-type]


def test_job_manifest_has_cost_labels_ttl_and_gpu_limits() -> None:
    job = render(_spec({"type": "kubernetes", "image": "pytorch/pytorch:2.4", "command": ["python", "train.py"],
                        "namespace": "ml"}))
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    meta = job["metadata"]
    assert meta["namespace"] == "ml" and meta["name"] == "cp-abc123"
    assert meta["labels"] == {"costplane.io/environment": "env_abc123", "costplane.io/blueprint": "gpu-finetune",
                              "costplane.io/team": "ml", "costplane.io/owner": "alice",
                              "costplane.io/tier": "experiment", "costplane.io/cost-center": "cc-42"}
    assert meta["annotations"] == {"costplane.io/expires-at": EXPIRES.isoformat(), "costplane.io/ttl-seconds": "7200"}
    assert job["spec"]["activeDeadlineSeconds"] == 7200
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"] == meta["labels"] and pod["spec"]["restartPolicy"] == "Never"
    [container] = pod["spec"]["containers"]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": 2}, "requests": {"nvidia.com/gpu": 2}}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["COSTPLANE_ENVIRONMENT_ID"] == "env_abc123" and env["COSTPLANE_TEAM"] == "ml"
    assert env["COSTPLANE_TAG_COST_CENTER"] == "cc-42" and container["command"] == ["python", "train.py"]


def test_deployment_manifest_and_no_gpu() -> None:
    spec = _spec({"type": "kubernetes", "image": "vllm/vllm-openai", "workload": "Deployment"})
    spec = LaunchSpec(spec.environment_id, spec.blueprint, spec.driver, spec.inputs, spec.context, EXPIRES, 60, ())
    dep = render(spec)
    assert dep["kind"] == "Deployment" and dep["spec"]["replicas"] == 1
    assert dep["spec"]["selector"]["matchLabels"] == {"costplane.io/environment": "env_abc123"}
    assert "resources" not in dep["spec"]["template"]["spec"]["containers"][0]
    assert dep["metadata"]["annotations"]["costplane.io/ttl-seconds"] == "60"


def test_kubernetes_apply_without_a_cluster_is_a_clear_error() -> None:
    with pytest.raises(DriverError, match="kubernetes"):
        KubernetesDriver().apply(_spec({"type": "kubernetes", "image": "busybox"}))


MODULE = """
variable "costplane_environment_id" { type = string }
variable "costplane_labels" { type = map(string) }
variable "size" { type = string }
resource "terraform_data" "box" {
  input = { id = var.costplane_environment_id, size = var.size, team = var.costplane_labels["team"] }
}
output "box" { value = terraform_data.box.output }
"""


@pytest.mark.skipif(shutil.which("terraform") is None,
                    reason="the `terraform` binary is not on PATH (not installed here, and it cannot be downloaded)")
def test_terraform_driver_applies_and_destroys_terraform_data(tmp_path: Path) -> None:
    module = tmp_path / "module"
    module.mkdir()
    (module / "main.tf").write_text(MODULE)
    driver = TerraformDriver(tmp_path / "workspaces")
    spec = _spec({"type": "terraform", "module": str(module), "variables": {"size": "small"}})
    handle = driver.apply(spec)
    workspace = Path(str(handle["workspace"]))
    assert driver.alive(handle) and "env_abc123" in (workspace / "terraform.tfstate").read_text()
    driver.teardown(handle, 5.0)
    assert '"resources": []' in (workspace / "terraform.tfstate").read_text()


def test_terraform_driver_without_binary_or_module_says_why(tmp_path: Path) -> None:
    spec = _spec({"type": "terraform", "module": str(tmp_path / "missing")})
    with pytest.raises(DriverError, match="does not exist"):
        TerraformDriver(tmp_path / "ws").apply(spec)
    (tmp_path / "m").mkdir()
    spec = _spec({"type": "terraform", "module": str(tmp_path / "m")})
    with pytest.raises(DriverError, match="terraform"):
        TerraformDriver(tmp_path / "ws", binary=str(tmp_path / "no-terraform")).apply(spec)


"""The `terraform` driver: one workspace (a directory with local state) per environment.

apply = copy the blueprint's module into the workspace, write the inputs and the context
as `terraform.tfvars.json`, `terraform init` + `terraform apply`; teardown = `terraform
destroy`. Variables: the blueprint's `driver.variables` (rendered with the inputs) plus
`costplane_environment_id`, `costplane_expires_at` and `costplane_labels` (a map of the
context) when the module declares them. Needs the `terraform` binary on PATH.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from costplane.lifecycle.drivers.base import DriverError, LaunchSpec

__all__ = ["TerraformDriver"]

_CONTEXT_VARIABLES = ("costplane_environment_id", "costplane_expires_at", "costplane_labels")


class TerraformDriver:
    name = "terraform"

    def __init__(self, workspaces: Path, binary: str | None = None, timeout: float = 1800.0) -> None:
        self.workspaces = workspaces
        self.binary = binary
        self.timeout = timeout

    def _terraform(self) -> str:
        found = self.binary or shutil.which("terraform")
        if not found:
            raise DriverError("the terraform driver needs the `terraform` binary on PATH (none found)")
        return found

    def _run(self, workspace: Path, *args: str) -> None:
        command = [self._terraform(), *args]
        try:
            done = subprocess.run(command, cwd=workspace, capture_output=True, text=True, timeout=self.timeout,
                                  env={"TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
                                       "PATH": "/usr/local/bin:/usr/bin:/bin",
                                       "HOME": str(workspace)}, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DriverError(f"terraform {args[0]} failed in {workspace}: {exc}") from exc
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise DriverError(f"terraform {args[0]} failed in {workspace} (exit {done.returncode}): "
                              + " | ".join(tail))

    def apply(self, spec: LaunchSpec) -> dict[str, Any]:
        module = Path(str(spec.driver.get("module", "")))
        if not module.is_absolute() and spec.bundle_root is not None:
            module = spec.bundle_root / module
        if not module.is_dir():
            raise DriverError(f"terraform module directory {module} does not exist")
        workspace = self.workspaces / spec.environment_id
        if workspace.exists():
            shutil.rmtree(workspace)
        shutil.copytree(module, workspace, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
        declared = " ".join(p.read_text(errors="replace") for p in workspace.glob("*.tf"))
        variables: dict[str, Any] = {str(k): v for k, v in dict(spec.driver.get("variables") or {}).items()}
        context = {"costplane_environment_id": spec.environment_id,
                   "costplane_expires_at": spec.expires_at.isoformat(),
                   "costplane_labels": {**spec.context.dimensions(), **dict(spec.context.tags),
                                        "blueprint": spec.blueprint}}
        for name in _CONTEXT_VARIABLES:
            if f'variable "{name}"' in declared:
                variables[name] = context[name]
        (workspace / "terraform.tfvars.json").write_text(json.dumps(variables, indent=2, default=str))
        self._run(workspace, "init", "-input=false", "-no-color")
        self._run(workspace, "apply", "-auto-approve", "-input=false", "-no-color")
        return {"driver": "terraform", "workspace": str(workspace)}

    def teardown(self, handle: Mapping[str, Any], grace: float) -> None:
        workspace = Path(str(handle["workspace"]))
        if not workspace.is_dir():
            return
        self._run(workspace, "destroy", "-auto-approve", "-input=false", "-no-color")

    def alive(self, handle: Mapping[str, Any]) -> bool:
        return Path(str(handle["workspace"]), "terraform.tfstate").exists()

    def metrics(self, handle: Mapping[str, Any]) -> dict[str, float]:
        return {}

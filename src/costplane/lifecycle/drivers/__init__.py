"""Environment drivers behind one interface: process, terraform, kubernetes, noop."""

from __future__ import annotations

from pathlib import Path

from costplane.lifecycle.drivers.base import Driver, DriverError, LaunchSpec, context_env
from costplane.lifecycle.drivers.kubernetes import KubernetesDriver
from costplane.lifecycle.drivers.noop import NoopDriver
from costplane.lifecycle.drivers.process import ProcessDriver
from costplane.lifecycle.drivers.terraform import TerraformDriver

__all__ = [
    "Driver",
    "DriverError",
    "DriverSet",
    "KubernetesDriver",
    "LaunchSpec",
    "NoopDriver",
    "ProcessDriver",
    "TerraformDriver",
    "context_env",
]


class DriverSet:
    """The drivers of one server, by blueprint `driver.type`; state (logs, workspaces) under `state_dir`."""

    def __init__(self, state_dir: Path, kubeconfig: str | None = None) -> None:
        self.state_dir = state_dir
        self._drivers: dict[str, Driver] = {
            "process": ProcessDriver(state_dir / "logs"),
            "terraform": TerraformDriver(state_dir / "terraform"),
            "kubernetes": KubernetesDriver(kubeconfig),
            "noop": NoopDriver(),
        }

    def get(self, name: str) -> Driver:
        driver = self._drivers.get(name)
        if driver is None:
            raise DriverError(f"unknown driver {name!r}; expected one of {', '.join(self._drivers)}")
        return driver

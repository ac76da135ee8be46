"""The one interface every environment driver implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from costplane.attribution.context import DIMENSIONS, Context

__all__ = ["Driver", "DriverError", "LaunchSpec", "context_env"]


class DriverError(RuntimeError):
    """A driver could not start, measure or stop an environment; the message says why."""


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """Everything a driver gets to start one environment."""

    environment_id: str
    blueprint: str
    driver: Mapping[str, Any]  # the blueprint's driver section, `{input}` references already rendered
    inputs: Mapping[str, Any]
    context: Context
    expires_at: datetime
    ttl_seconds: int
    resources: tuple[Mapping[str, Any], ...] = ()
    bundle_root: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class Driver(Protocol):
    name: str

    def apply(self, spec: LaunchSpec) -> dict[str, Any]:
        """Start the environment; returns the handle (JSON-able) that finds it again after a restart."""

    def teardown(self, handle: Mapping[str, Any], grace: float) -> None:
        """Stop it for good (idempotent: an environment already gone is fine)."""

    def alive(self, handle: Mapping[str, Any]) -> bool:
        """Whether it still runs (False once its work ended by itself)."""

    def metrics(self, handle: Mapping[str, Any]) -> dict[str, float]:
        """Utilisation measured by the driver itself (e.g. cpu_util, gpu_util in percent); may be empty."""


def context_env(spec: LaunchSpec) -> dict[str, str]:
    """The environment's context as COSTPLANE_* variables (dimensions, tags, inputs, expiry)."""
    env = {
        "COSTPLANE_ENVIRONMENT_ID": spec.environment_id,
        "COSTPLANE_BLUEPRINT": spec.blueprint,
        "COSTPLANE_EXPIRES_AT": spec.expires_at.isoformat(),
        "COSTPLANE_TTL_SECONDS": str(spec.ttl_seconds),
    }
    for name in DIMENSIONS:
        value = spec.context.get(name)
        if value:
            env[f"COSTPLANE_{name.upper()}"] = value
    for tag, value in spec.context.tags.items():
        env[f"COSTPLANE_TAG_{tag.upper().replace('.', '_').replace('-', '_')}"] = value
    for key, value in spec.inputs.items():
        env[f"COSTPLANE_INPUT_{key.upper()}"] = str(value)
    return env

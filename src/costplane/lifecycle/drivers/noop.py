"""The `noop` driver: nothing is started. For dry runs, benchmarks and resources governed elsewhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costplane.lifecycle.drivers.base import LaunchSpec

__all__ = ["NoopDriver"]


class NoopDriver:
    name = "noop"

    def apply(self, spec: LaunchSpec) -> dict[str, Any]:
        return {"driver": "noop"}

    def teardown(self, handle: Mapping[str, Any], grace: float) -> None:
        return None

    def alive(self, handle: Mapping[str, Any]) -> bool:
        return True

    def metrics(self, handle: Mapping[str, Any]) -> dict[str, float]:
        return {}

"""What the environment adapter decides, as its decisions log keeps it: a launch and an extension as
asked for (rebuilt from a logged decision's input for replay), and a scheduler pass's runtime verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from costplane.core.decider import Evaluation

__all__ = ["ExtendRequest", "LaunchRequest", "RuntimeVerdict"]


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """A launch as asked for (hook environment.launch): what its decision's input keeps to rebuild it."""

    blueprint: str
    inputs: Mapping[str, Any]
    ttl: int | None = None

    def decision_input(self) -> dict[str, Any]:
        return {"blueprint": self.blueprint, "inputs": dict(self.inputs), "ttl_seconds": self.ttl}

    @classmethod
    def from_decision_input(cls, recorded: Mapping[str, Any]) -> LaunchRequest:
        inputs = recorded.get("inputs")
        ttl = recorded.get("ttl_seconds")
        return cls(str(recorded.get("blueprint", "")), dict(inputs) if isinstance(inputs, Mapping) else {},
                   ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else None)


@dataclass(frozen=True, slots=True)
class ExtendRequest:
    """An extension as asked for (hook environment.extend)."""

    environment_id: str
    by: int | None = None

    def decision_input(self) -> dict[str, Any]:
        return {"environment_id": self.environment_id, "extend_seconds": self.by}

    @classmethod
    def from_decision_input(cls, recorded: Mapping[str, Any]) -> ExtendRequest:
        by = recorded.get("extend_seconds")
        return cls(str(recorded.get("environment_id", "")),
                   by if isinstance(by, int) and not isinstance(by, bool) else None)


@dataclass(frozen=True, slots=True)
class RuntimeVerdict:
    """What a scheduler pass decided for a running environment (hook environment.runtime)."""

    action: str  # teardown | suspend
    reason: str
    evaluation: Evaluation

    @property
    def policies(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.evaluation.policy.actions)

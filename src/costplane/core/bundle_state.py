"""The bundle the core decides under: its engine, budgets and revision, swapped whole on reload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from costplane.policy.engine import PolicyEngine
from costplane.policy.types import BudgetSpec

__all__ = ["ActiveBundle"]


@dataclass(frozen=True, slots=True)
class ActiveBundle:
    revision: str
    engine: PolicyEngine
    budgets: Mapping[str, BudgetSpec]

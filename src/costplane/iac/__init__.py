"""The IaC plan gate: price a terraform plan's VMs from the SKU table and evaluate `iac.plan` policies."""

from __future__ import annotations

from costplane.iac.check import PlanReport, ResourceVerdict, check_plan
from costplane.iac.plan import PlanError, PlannedResource, load_plan, parse_plan
from costplane.iac.price import HOURS_PER_MONTH, PricedResource, price_resource

__all__ = [
    "HOURS_PER_MONTH",
    "PlanError",
    "PlanReport",
    "PlannedResource",
    "PricedResource",
    "ResourceVerdict",
    "check_plan",
    "load_plan",
    "parse_plan",
    "price_resource",
]

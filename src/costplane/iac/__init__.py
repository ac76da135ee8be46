"""The IaC plan gate: price the compute a terraform plan creates from the SKU table; evaluate `iac.plan` policies."""

from __future__ import annotations

from costplane.iac.check import PlanReport, ResourceVerdict, check_plan
from costplane.iac.plan import PlanError, PlannedResource, load_plan, parse_plan
from costplane.iac.price import HOURS_PER_MONTH, PlanPricing, PricedResource, price_plan, price_resource

__all__ = [
    "HOURS_PER_MONTH",
    "PlanError",
    "PlanPricing",
    "PlanReport",
    "PlannedResource",
    "PricedResource",
    "ResourceVerdict",
    "check_plan",
    "load_plan",
    "parse_plan",
    "price_plan",
    "price_resource",
]

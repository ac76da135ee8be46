"""The IaC plan gate: price every planned VM and ask the `iac.plan` policies about each one.

Request facts of one resource: address, resource_type, provider, action, instance_type,
sku, gpu_type, gpu_count, hourly_usd, monthly_usd (hourly × 730), tags (tags or labels),
plan_monthly_usd (the whole plan's priced total). The context is built from the
resource's tags whose names are attribution dimensions (team, tier, owner, …), with
`context` given by the caller taking precedence. A resource with no known price is a
denial (`unknown_price`), never $0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from costplane.attribution.context import DIMENSIONS, Context, InvalidAttribute
from costplane.iac.plan import PlannedResource
from costplane.iac.price import PricedResource, price_resource
from costplane.money import format_usd
from costplane.policy.engine import PolicyEngine
from costplane.pricing.skus import SkuCatalog

__all__ = ["PlanReport", "ResourceVerdict", "check_plan"]


@dataclass(frozen=True, slots=True)
class ResourceVerdict:
    priced: PricedResource
    effect: str  # allow | deny | notify
    policies: tuple[str, ...]
    reasons: tuple[str, ...]
    context: Context

    @property
    def denied(self) -> bool:
        return self.effect == "deny"

    def as_dict(self) -> dict[str, Any]:
        p = self.priced
        return {"address": p.resource.address, "type": p.resource.type, "action": p.resource.action,
                "provider": p.provider, "instance_type": p.instance_type, "skus": list(p.skus),
                "gpu_type": p.gpu_type or None, "gpu_count": p.gpu_count,
                "hourly_usd": None if p.unknown else format_usd(p.hourly_nano),
                "monthly_usd": None if p.unknown else format_usd(p.monthly_nano),
                "tags": dict(p.tags), "unknown_price": p.unknown, "effect": self.effect,
                "policies": list(self.policies), "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class PlanReport:
    verdicts: tuple[ResourceVerdict, ...]
    skipped: tuple[str, ...]  # addresses of planned resources of types that are not priced
    total_monthly_nano: int
    bundle_revision: str | None

    @property
    def denied(self) -> bool:
        return any(v.denied for v in self.verdicts)

    def as_dict(self) -> dict[str, Any]:
        return {"resources": [v.as_dict() for v in self.verdicts], "not_priced": list(self.skipped),
                "total_monthly_usd": format_usd(self.total_monthly_nano),
                "unknown_prices": sum(1 for v in self.verdicts if v.priced.unknown),
                "denied": self.denied, "bundle_revision": self.bundle_revision}


def _context(tags: Mapping[str, str], given: Mapping[str, str]) -> Context:
    values: dict[str, str] = {}
    for name, value in tags.items():
        if name.lower() in DIMENSIONS:
            values[name.lower()] = value
    values.update(given)
    try:
        return Context.from_mapping(values, source="tags")
    except InvalidAttribute:  # a tag value that is not a valid dimension value: use the caller's context only
        return Context.from_mapping(dict(given), source="context")


def _facts(p: PricedResource, plan_total: int) -> dict[str, Any]:
    return {"address": p.resource.address, "resource_type": p.resource.type, "provider": p.provider,
            "action": p.resource.action, "instance_type": p.instance_type, "sku": p.skus[0] if p.skus else "",
            "gpu_type": p.gpu_type, "gpu_count": p.gpu_count, "hourly_usd": p.hourly_nano / 1e9,
            "monthly_usd": p.monthly_nano / 1e9, "tags": dict(p.tags), "plan_monthly_usd": plan_total / 1e9}


def check_plan(resources: Sequence[PlannedResource], catalog: SkuCatalog, engine: PolicyEngine | None = None,
               context: Mapping[str, str] | None = None, at: datetime | None = None) -> PlanReport:
    """Price the plan's VMs and evaluate hook `iac.plan` for each (no engine: prices only)."""
    priced: list[PricedResource] = []
    skipped: list[str] = []
    for resource in resources:
        result = price_resource(resource, catalog, at)
        if result is None:
            skipped.append(resource.address)
        else:
            priced.append(result)
    total = sum(p.monthly_nano for p in priced)
    verdicts: list[ResourceVerdict] = []
    for p in priced:
        ctx = _context(p.tags, context or {})
        if p.unknown is not None:
            verdicts.append(ResourceVerdict(p, "deny", ("unknown_price",), (f"{p.unknown}; unknown prices are "
                                                                              "denied",), ctx))
            continue
        if engine is None:
            verdicts.append(ResourceVerdict(p, "allow", (), (), ctx))
            continue
        decision, _ = engine.decide("iac.plan", ctx, _facts(p, total))
        if decision.effect == "deny" and decision.deny is not None:
            denials = [m for m in decision.matched if m.effect == "deny"]
            verdicts.append(ResourceVerdict(p, "deny", tuple(m.name for m in denials),
                                            tuple(m.reason for m in denials), ctx))
            continue
        effect = "notify" if decision.notify else "allow"
        verdicts.append(ResourceVerdict(p, effect, decision.policy_names,
                                        tuple(m.reason for m in decision.notify), ctx))
    return PlanReport(tuple(verdicts), tuple(skipped), total, engine.revision if engine is not None else None)

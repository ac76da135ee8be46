"""The IaC plan gate: price everything in a plan that creates compute and ask the `iac.plan` policies about each.

Request facts of one resource: address, resource_type, provider, action, instance_type,
sku, region, gpu_type, gpu_count (across the desired nodes), node_count, min_nodes,
max_nodes, hourly_usd, monthly_usd (hourly × 730, desired nodes), max_monthly_usd (at
max_nodes), estimated, spot, tags (tags or labels), plan_monthly_usd (the whole plan's
priced total). The context is built from the
resource's tags whose names are attribution dimensions (team, tier, owner, …), with
`context` given by the caller taking precedence. A resource with no known price is a
denial (`unknown_price`), never $0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from costplane.attribution.context import DIMENSIONS, Context, InvalidAttribute
from costplane.iac.plan import PlannedResource
from costplane.iac.price import PricedResource, price_plan
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
                "region": p.region or None, "gpu_type": p.gpu_type or None, "gpu_count": p.gpu_count,
                "nodes": {"min": p.min_nodes, "desired": p.node_count, "max": p.max_nodes},
                "hourly_usd": None if p.unknown else format_usd(p.hourly_nano),
                "monthly_usd": None if p.unknown else format_usd(p.monthly_nano),
                "max_monthly_usd": None if p.unknown else format_usd(p.max_monthly_nano),
                "estimated": p.estimated, "spot": p.spot, "notes": list(p.notes),
                "tags": dict(p.tags), "unknown_price": p.unknown, "effect": self.effect,
                "policies": list(self.policies), "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class PlanReport:
    verdicts: tuple[ResourceVerdict, ...]
    skipped: tuple[str, ...]  # addresses of planned resources that create no compute
    total_monthly_nano: int
    bundle_revision: str | None
    templates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # template -> groups priced with it

    @property
    def unpriced(self) -> tuple[ResourceVerdict, ...]:
        return tuple(v for v in self.verdicts if v.priced.unknown is not None)

    @property
    def max_monthly_nano(self) -> int:
        return sum(v.priced.max_monthly_nano for v in self.verdicts)

    @property
    def denied(self) -> bool:
        return any(v.denied for v in self.verdicts)

    def as_dict(self) -> dict[str, Any]:
        return {"resources": [v.as_dict() for v in self.verdicts], "not_priced": list(self.skipped),
                "templates": {k: list(v) for k, v in self.templates.items()},
                "total_monthly_usd": format_usd(self.total_monthly_nano),
                "max_monthly_usd": format_usd(self.max_monthly_nano),
                "unknown_prices": len(self.unpriced),
                "unpriced": [{"address": v.priced.resource.address, "reason": v.priced.unknown}
                             for v in self.unpriced],
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
            "region": p.region, "gpu_type": p.gpu_type, "gpu_count": p.gpu_count, "node_count": p.node_count,
            "min_nodes": p.min_nodes, "max_nodes": p.max_nodes, "hourly_usd": p.hourly_nano / 1e9,
            "monthly_usd": p.monthly_nano / 1e9, "max_monthly_usd": p.max_monthly_nano / 1e9,
            "estimated": p.estimated, "spot": p.spot, "tags": dict(p.tags), "plan_monthly_usd": plan_total / 1e9}


def check_plan(resources: Sequence[PlannedResource], catalog: SkuCatalog, engine: PolicyEngine | None = None,
               context: Mapping[str, str] | None = None, at: datetime | None = None,
               default_regions: Mapping[str, str] | None = None) -> PlanReport:
    """Price the plan's compute and evaluate hook `iac.plan` for each resource (no engine: prices only)."""
    pricing = price_plan(resources, catalog, at, default_regions)
    priced: list[PricedResource] = list(pricing.priced)
    skipped = list(pricing.skipped)
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
    return PlanReport(tuple(verdicts), tuple(skipped), total, engine.revision if engine is not None else None,
                      pricing.templates)

"""The IaC plan gate: price everything in a plan that creates compute and ask the `iac.plan` policies about each.

Request facts of one resource: address, resource_type, provider, action, instance_type,
sku, region, gpu_type, gpu_count (across the desired nodes), node_count, min_nodes,
max_nodes, hourly_usd, monthly_usd (hourly × 730, desired nodes), max_monthly_usd (at
max_nodes), estimated, spot, tags (tags or labels), plan_monthly_usd (the whole plan's
priced total). The context is built from the
resource's tags whose names are attribution dimensions (team, tier, owner, …), with
`context` given by the caller taking precedence. A resource with no known price is a
denial (`unknown_price`), never $0.

The gate is an adapter of the one decider (`core/decider.py`): each resource is decided at hook
`iac.plan` as a DRY RUN against the budgets whose scope matches it — the budgets' windows are
read, nothing is reserved — holding its worst case, a month at its maximum node count
(`max_monthly_nano`), on top of what the plan's earlier resources hold in the same windows. A
resource that would take a hard budget past its limit is denied (`budget_exceeded`), and the
report names every budget the plan would exceed. Every resource's decision is logged with its
exact facts. With a decider over the server's ledger the plan is checked against what the budgets
have already spent and hold; without one (`engine` only) against `NothingSpent`: the plan alone
against each budget's limit, nothing stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from costplane.attribution.context import DIMENSIONS, Context, InvalidAttribute
from costplane.core.bundle_state import ActiveBundle
from costplane.core.decider import Decider, DryRun, Evaluation, Hold
from costplane.core.requests import Denial
from costplane.iac.plan import PlannedResource
from costplane.iac.price import PricedResource, price_plan
from costplane.ledger.types import BudgetClaim, ClaimState, CostEvent, DecisionRecord, Reservation, ReserveResult
from costplane.money import format_usd
from costplane.policy.engine import PolicyEngine
from costplane.pricing.skus import SkuCatalog

__all__ = ["HOOK", "NothingSpent", "PlanReport", "ResourceVerdict", "check_plan", "plan_decider"]

HOOK = "iac.plan"


@dataclass(frozen=True, slots=True)
class ResourceVerdict:
    priced: PricedResource
    effect: str  # allow | deny | notify
    policies: tuple[str, ...]
    reasons: tuple[str, ...]
    context: Context
    decision_id: str | None = None  # its logged iac.plan decision (None: no policies evaluated)
    would_exceed: tuple[str, ...] = ()  # hard budgets this resource would take past their limit

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
                "policies": list(self.policies), "reasons": list(self.reasons), "decision_id": self.decision_id,
                "would_exceed": list(self.would_exceed)}


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

    @property
    def budgets_exceeded(self) -> tuple[str, ...]:
        """Every hard budget the plan would take past its limit."""
        return tuple(dict.fromkeys(b for v in self.verdicts for b in v.would_exceed))

    def as_dict(self) -> dict[str, Any]:
        return {"resources": [v.as_dict() for v in self.verdicts], "not_priced": list(self.skipped),
                "templates": {k: list(v) for k, v in self.templates.items()},
                "total_monthly_usd": format_usd(self.total_monthly_nano),
                "max_monthly_usd": format_usd(self.max_monthly_nano),
                "unknown_prices": len(self.unpriced),
                "unpriced": [{"address": v.priced.resource.address, "reason": v.priced.unknown}
                             for v in self.unpriced],
                "denied": self.denied, "budgets_exceeded": list(self.budgets_exceeded),
                "bundle_revision": self.bundle_revision}


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


class NothingSpent:
    """The budget ledger of a plan checked with no store: every window empty, nothing written. Only
    what a dry run reads and logs is answered; anything that would hold or record money refuses."""

    def claim_states(self, claims: Sequence[BudgetClaim]) -> tuple[ClaimState, ...]:
        return tuple(ClaimState(c.budget, c.partition, 0, 0, 0, 0, c.limit_nano, c.limit_calls, c.limit_concurrent,
                                c.hard) for c in claims)

    def record_decision(self, decision: DecisionRecord) -> None:
        """Dry-run decisions of an offline check are reported, not stored."""

    def count_recent_requests(self, run: str, request_hash: str, since: datetime) -> int:
        return 0

    def expire_reservations(self, now: datetime) -> int:
        return 0

    def reserve(self, reservation: Reservation, decision: DecisionRecord) -> ReserveResult:
        raise _read_only()

    def settle(self, reservation_id: str, event: CostEvent) -> tuple[ClaimState, ...]:
        raise _read_only()

    def release(self, reservation_id: str, status: str = "released") -> bool:
        raise _read_only()

    def grow_reservation(self, reservation_id: str, extra_nano: int, expires_at: datetime,
                         decision: DecisionRecord | None = None) -> ReserveResult:
        raise _read_only()

    def accrue(self, reservation_id: str, event: CostEvent, *, close: bool = False,
               environment_id: str | None = None, accrued_until: datetime | None = None,
               decision: DecisionRecord | None = None) -> tuple[ClaimState, ...]:
        raise _read_only()

    def record_event(self, event: CostEvent, claims: Sequence[BudgetClaim] = ()) -> bool:
        raise _read_only()

    def record_spend(self, events: Sequence[CostEvent], claims: Sequence[Sequence[BudgetClaim]],
                     decisions: Sequence[DecisionRecord | None]) -> tuple[tuple[bool, ...], tuple[ClaimState, ...]]:
        raise _read_only()


def _read_only() -> RuntimeError:
    return RuntimeError("an offline plan check holds and records no money")


def plan_decider(engine: PolicyEngine) -> Decider:
    """A decider for checking plans with no ledger at hand: the bundle's budgets with nothing spent
    (each plan alone against their limits; nothing is stored anywhere)."""
    bundle = ActiveBundle(engine.revision, engine, {b.name: b for b in engine.bundle.budgets})
    return Decider(NothingSpent(), lambda: bundle)


def check_plan(resources: Sequence[PlannedResource], catalog: SkuCatalog, engine: PolicyEngine | None = None,
               context: Mapping[str, str] | None = None, at: datetime | None = None,
               default_regions: Mapping[str, str] | None = None, *, decider: Decider | None = None) -> PlanReport:
    """Price the plan's compute and decide hook `iac.plan` for each resource as a dry run against the
    budgets (`decider`; else `plan_decider(engine)`; neither: prices only)."""
    pricing = price_plan(resources, catalog, at, default_regions)
    priced: list[PricedResource] = list(pricing.priced)
    skipped = list(pricing.skipped)
    total = sum(p.monthly_nano for p in priced)
    if decider is None and engine is not None:
        decider = plan_decider(engine)
    already: dict[tuple[str, str, int], int] = {}  # what the plan's earlier resources hold, per window
    verdicts: list[ResourceVerdict] = []
    for p in priced:
        ctx = _context(p.tags, context or {})
        if decider is None:
            verdicts.append(_unpriced(p, ctx, None) if p.unknown is not None else ResourceVerdict(p, "allow", (), (),
                                                                                                   ctx))
            continue
        facts = _facts(p, total)
        adapter = {"address": p.resource.address, "max_monthly_nano": p.max_monthly_nano}
        if p.unknown is not None:
            refused = decider.refuse(HOOK, ctx, "unknown_price", f"{p.unknown}; unknown prices are denied",
                                     facts=facts, adapter=adapter)
            verdicts.append(_unpriced(p, ctx, refused.decision_id))
            continue
        verdicts.append(_decide(decider, p, ctx, facts, adapter, already))
    revision = decider.bundle().revision if decider is not None else None
    return PlanReport(tuple(verdicts), tuple(skipped), total, revision, pricing.templates)


def _unpriced(p: PricedResource, ctx: Context, decision_id: str | None) -> ResourceVerdict:
    return ResourceVerdict(p, "deny", ("unknown_price",), (f"{p.unknown}; unknown prices are denied",), ctx,
                           decision_id)


def _decide(decider: Decider, p: PricedResource, ctx: Context, facts: Mapping[str, Any],
            adapter: Mapping[str, Any], already: dict[tuple[str, str, int], int]) -> ResourceVerdict:
    """One resource through the decider: its policies, then a dry run of its worst case on its budgets."""
    evaluation = decider.evaluate(HOOK, ctx, facts, adapter=adapter, refuse_denied=False)
    if isinstance(evaluation, Denial):  # no SLO applies to a plan; kept total
        return ResourceVerdict(p, "deny", (), (evaluation.message,), ctx, evaluation.decision_id)
    decision = evaluation.policy
    if decision.effect == "deny" and decision.deny is not None:
        denial = decider.deny_by_policy(evaluation)
        denials = [m for m in decision.matched if m.effect == "deny"]
        return ResourceVerdict(p, "deny", tuple(m.name for m in denials), tuple(m.reason for m in denials), ctx,
                               denial.decision_id)
    hold = _hold(evaluation, p)
    run: DryRun = decider.dry_run(evaluation, hold, already)
    exceeded = tuple(s.budget for s in run.exceeded)
    if run.denial is not None:
        return ResourceVerdict(p, "deny", decision.policy_names, (run.denial.message,), ctx,
                               run.denial.decision_id, exceeded)
    effect = "notify" if decision.notify else "allow"
    return ResourceVerdict(p, effect, decision.policy_names, tuple(m.reason for m in decision.notify), ctx,
                           evaluation.decision_id)


def _hold(evaluation: Evaluation, p: PricedResource) -> Hold:
    """A planned resource's worst case: a month at its maximum node count."""
    amount = p.max_monthly_nano
    return Hold(amount, evaluation.now, "allow", evaluation.reason,
                {"address": p.resource.address, "max_monthly_nano": amount, "monthly_nano": p.monthly_nano},
                claim_model=p.instance_type, what=f"this plan's {format_usd(amount)} USD a month for "
                f"{p.resource.address}")

"""Hook `spend.record`: spend observed after the fact, recorded through the decision core.

Every path that learns of money already spent — the SDK's direct mode, `POST /v1/runs/ingest`,
OTLP spans, GPU-job and resource costs — hands its cost events to `DecisionCore.record_spend`,
which calls `record_spend` here:

1. each event's `spend.record` facts are evaluated by the policy engine (notify policies ride
   along; nothing can refuse money that is spent) and every budget whose scope matches becomes a
   claim (`core.claims.budget_claims`, the same rule as admission, at the event's time);
2. the events, their `observed` decisions (the exact evaluated facts, with
   `DECISION_INPUT_VERSION`) and the counters of those budgets move in ONE store transaction, even
   past a hard limit, so the next admission against any of those budgets sees the spend;
3. budget alert thresholds crossed by the batch are raised once (`core.notify.crossed_alerts`).

Environment accrual (`EnvironmentCore.accrue`) moves the environment's own reservation instead
(`Store.accrue`), logging the same `observed` decision (`observe`) in that transaction and raising
the same alerts.

An event id already in the ledger is skipped (with its decision): recording is idempotent. The
event's `decision_id` stays that of its admission (None: never admitted); its `observed` decision
names it in `result.event_id`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from costplane.attribution.context import Context
from costplane.core.bundle_state import ActiveBundle
from costplane.core.claims import budget_claims
from costplane.core.notify import Notification, Notifier, crossed_alerts
from costplane.ledger.store import Store
from costplane.ledger.types import BudgetClaim, ClaimState, CostEvent, DecisionRecord
from costplane.policy.hookschema import DECISION_INPUT_VERSION
from costplane.policy.types import PolicyDecision

__all__ = ["HOOK", "SOURCES", "SpendRecord", "observe", "policy_notices", "record_spend", "spend_facts"]

HOOK = "spend.record"
#: where observed spend comes from (the `source` fact)
SOURCES = ("gateway", "sdk", "ingest", "otlp", "environment", "resource")


@dataclass(frozen=True, slots=True)
class SpendRecord:
    """What one `record_spend` call stored: the ids of the events that were new, their decisions,
    the budget windows they moved (afterwards) and the alerts raised."""

    recorded: tuple[str, ...]
    decisions: tuple[str, ...]
    states: tuple[ClaimState, ...]
    alerts: tuple[Notification, ...]

    @property
    def remaining_nano(self) -> int | None:
        """The least money left in any hard budget moved (negative: over its limit); None: none."""
        left = [s.limit_nano - s.spent_nano - s.reserved_nano for s in self.states
                if s.hard and s.limit_nano is not None]
        return min(left) if left else None


def spend_facts(event: CostEvent, source: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `request` of hook spend.record for one event (fields as policy/hookschema.py declares)."""
    llm = event.kind == "llm"
    facts: dict[str, Any] = {
        "kind": event.kind, "source": source, "model": event.model if llm else "",
        "provider": event.provider or "", "endpoint": event.endpoint or "",
        "cost_nano": int(event.cost_nano), "cost_usd": int(event.cost_nano) / 1e9,  # CEL comparisons only
        "input_tokens": int(event.usage.input_tokens), "output_tokens": int(event.usage.output_tokens),
        "environment_id": "", "sku": "" if llm else event.model,
    }
    if extra:
        facts.update(extra)
    return facts


def record_spend(store: Store, bundle: ActiveBundle, notifier: Notifier, events: Sequence[CostEvent], source: str,
                 *, new_id: Callable[[str], str], now: datetime,
                 facts: Callable[[CostEvent], Mapping[str, Any]] | None = None) -> SpendRecord:
    """See the module docstring. `facts(event)`: extra spend.record facts (e.g. environment_id)."""
    claims: list[tuple[BudgetClaim, ...]] = []
    decisions: list[DecisionRecord] = []
    stored: list[CostEvent] = []
    policies: list[PolicyDecision] = []
    for event in events:
        decision, policy, mine = observe(bundle, event, source, facts(event) if facts is not None else None,
                                         new_id=new_id, now=now)
        claims.append(mine)
        policies.append(policy)
        decisions.append(decision)
        stored.append(event)  # its decision_id stays that of an admission (None: never admitted)
    inserted, states = store.record_spend(stored, claims, decisions)
    raised: list[Notification] = []
    added: dict[tuple[str, str, int], int] = {}  # cost added to each window by the new events
    first: dict[tuple[str, str, int], str] = {}
    for new, event, mine, decision, policy in zip(inserted, stored, claims, decisions, policies, strict=True):
        if not new:
            continue
        raised += policy_notices(policy, decision.id)
        for claim in mine:
            key = (claim.budget, claim.partition, claim.window_start)
            added[key] = added.get(key, 0) + int(event.cost_nano)
            first.setdefault(key, decision.id)
    for state, key in zip(states, _keys(claims), strict=True):
        raised += crossed_alerts((state,), bundle.budgets, added.get(key, 0), first.get(key, ""))
    for notification in raised:
        notifier.notify(notification)
    kept = [(e.id, d.id) for new, e, d in zip(inserted, stored, decisions, strict=True) if new]
    return SpendRecord(tuple(e for e, _ in kept), tuple(d for _, d in kept), states, tuple(raised))


def observe(bundle: ActiveBundle, event: CostEvent, source: str, extra: Mapping[str, Any] | None, *,
            new_id: Callable[[str], str], now: datetime) -> tuple[DecisionRecord, PolicyDecision,
                                                                  tuple[BudgetClaim, ...]]:
    """One event's spend.record evaluation: its `observed` decision, the policy decision (notify
    policies) and the claims of the budgets whose scope matches. Nothing is stored."""
    request = spend_facts(event, source, extra)
    policy, specs = bundle.engine.decide(HOOK, event.context, request)
    claims = budget_claims(specs, event.context, request["model"], 0, event.ts)
    return _decision(new_id("dec"), now, bundle, event, request, policy, claims), policy, claims


def policy_notices(policy: PolicyDecision, decision_id: str) -> list[Notification]:
    """The notifications of a spend.record decision's notify policies."""
    return [Notification("policy", m.name, m.reason, decision_id) for m in policy.notify]


def _keys(claims: Sequence[Sequence[BudgetClaim]]) -> list[tuple[str, str, int]]:
    """The distinct windows claimed, in order of first claim (the order `Store.record_spend` returns)."""
    seen: dict[tuple[str, str, int], None] = {}
    for group in claims:
        for claim in group:
            seen.setdefault((claim.budget, claim.partition, claim.window_start), None)
    return list(seen)


def _decision(decision_id: str, now: datetime, bundle: ActiveBundle, event: CostEvent, request: Mapping[str, Any],
              policy: PolicyDecision, claims: Sequence[BudgetClaim]) -> DecisionRecord:
    ctx: Context = event.context
    reason = "; ".join(m.reason for m in policy.notify if m.reason)
    return DecisionRecord(
        id=decision_id, ts=now, hook=HOOK, effect="observed", bundle_revision=bundle.revision, context=ctx,
        input={"version": DECISION_INPUT_VERSION, "request": dict(request)},
        result={"event_id": event.id, "cost_nano": int(event.cost_nano), "source": request["source"]},
        policies=policy.policy_names, budgets=tuple(dict.fromkeys(c.budget for c in claims)), reason=reason,
        key_id=ctx.key_id, status_code=200,
    )

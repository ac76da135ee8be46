"""Hook `spend.record`: spend observed after the fact, recorded through the decision core.

Every path that learns of money already spent — the SDK's direct mode, `POST /v1/runs/ingest`,
OTLP spans, GPU-job and resource costs — hands its cost events to `DecisionCore.record_spend`,
which calls `record_spend` here:

1. each event's `spend.record` facts are evaluated by the policy engine (notify policies ride
   along; nothing can refuse money that is spent) and every budget whose scope matches becomes a
   claim (`core.claims.budget_claims`, the same rule as admission, at the event's time);
2. the events, the counters of those budgets and ONE `observed` decision per context of the call
   (`input.requests`: each event's facts exactly as evaluated, with `DECISION_INPUT_VERSION`;
   `result.event_ids`: the events it covers) move in ONE ledger transaction, even past a hard
   limit, so the next admission against any of those budgets sees the spend. One decision row per
   call, not per event, keeps OTLP and SDK batches as cheap to record as their events;
3. budget alert thresholds crossed by the batch are raised once (`Decider.alert`).

Environment accrual (`EnvironmentCore.accrue`) moves the environment's own reservation instead
(`Decider.accrue`), logging the same kind of `observed` decision (`observe`) in that transaction
and raising the same alerts.

An event id already in the ledger is skipped: recording is idempotent. The event's `decision_id`
stays that of its admission (None: never admitted); the `observed` decision that counted it names
it in `result.event_ids`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from costplane.attribution.context import Context
from costplane.core.bundle_state import ActiveBundle
from costplane.core.claims import budget_claims
from costplane.core.decider import Decider, new_id
from costplane.core.notify import Notification
from costplane.core.requests import OK
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


def record_spend(decider: Decider, events: Sequence[CostEvent], source: str, *,
                 facts: Callable[[CostEvent], Mapping[str, Any]] | None = None) -> SpendRecord:
    """See the module docstring. `facts(event)`: extra spend.record facts (e.g. environment_id)."""
    bundle = decider.bundle()
    now = decider.clock()
    claims: list[tuple[BudgetClaim, ...]] = []
    policies: list[PolicyDecision] = []
    requests: list[dict[str, Any]] = []
    groups: dict[tuple[Any, ...], list[int]] = {}  # one observed decision per context of the batch
    for index, event in enumerate(events):
        request = spend_facts(event, source, facts(event) if facts is not None else None)
        policy, specs = bundle.engine.decide(HOOK, event.context, request)
        claims.append(budget_claims(specs, event.context, request["model"], 0, event.ts))
        policies.append(policy)
        requests.append(request)
        groups.setdefault(_context_key(event.context), []).append(index)
    decisions: list[DecisionRecord | None] = [None] * len(events)
    owner: list[str] = [""] * len(events)
    for members in groups.values():
        record = _batch_decision(new_id("dec"), now, bundle, [events[i] for i in members],
                                 [requests[i] for i in members], [policies[i] for i in members],
                                 [claims[i] for i in members], source)
        decisions[members[0]] = record  # written with its first event, in the same transaction
        for i in members:
            owner[i] = record.id
    inserted, states = decider.ledger.record_spend(list(events), claims, decisions)
    for members in groups.values():  # the first event was already stored: log the decision on its own
        first = decisions[members[0]]
        if first is not None and not inserted[members[0]] and any(inserted[i] for i in members):
            decider.log(first)
    raised: list[Notification] = []
    added: dict[tuple[str, str, int], int] = {}  # cost added to each window by the new events
    crossing: dict[tuple[str, str, int], str] = {}
    noticed: set[tuple[str, str]] = set()
    for new, event, mine, policy, decision_id in zip(inserted, events, claims, policies, owner, strict=True):
        if not new:
            continue
        for match in policy.notify:
            if (match.name, decision_id) not in noticed:  # a notify policy once per decision
                noticed.add((match.name, decision_id))
                raised.append(Notification("policy", match.name, match.reason, decision_id))
        for claim in mine:
            key = (claim.budget, claim.partition, claim.window_start)
            added[key] = added.get(key, 0) + int(event.cost_nano)
            crossing.setdefault(key, decision_id)
    for notification in raised:
        decider.notifier.notify(notification)
    for state, key in zip(states, _keys(claims), strict=True):
        raised += decider.alert((state,), added.get(key, 0), crossing.get(key, ""))
    kept = [(e.id, d) for new, e, d in zip(inserted, events, owner, strict=True) if new]
    return SpendRecord(tuple(e for e, _ in kept), tuple(dict.fromkeys(d for _, d in kept)), states, tuple(raised))


def observe(bundle: ActiveBundle, event: CostEvent, source: str, extra: Mapping[str, Any] | None, *,
            decision_id: str, now: datetime) -> tuple[DecisionRecord, PolicyDecision, tuple[BudgetClaim, ...]]:
    """One event's spend.record evaluation (environment accrual): its `observed` decision, the policy
    decision (notify policies) and the claims of the budgets whose scope matches. Nothing is stored."""
    request = spend_facts(event, source, extra)
    policy, specs = bundle.engine.decide(HOOK, event.context, request)
    claims = budget_claims(specs, event.context, request["model"], 0, event.ts)
    record = _batch_decision(decision_id, now, bundle, [event], [request], [policy], [claims], source)
    return record, policy, claims


def policy_notices(policy: PolicyDecision, decision_id: str) -> list[Notification]:
    """The notifications of a spend.record decision's notify policies."""
    return [Notification("policy", m.name, m.reason, decision_id) for m in policy.notify]


def _context_key(ctx: Context) -> tuple[Any, ...]:
    return (ctx.key_id, tuple(sorted(ctx.dimensions().items())), tuple(sorted((str(k), str(v)) for k, v in
                                                                              ctx.tags.items())))


def _keys(claims: Sequence[Sequence[BudgetClaim]]) -> list[tuple[str, str, int]]:
    """The distinct windows claimed, in order of first claim (the order `record_spend` returns)."""
    seen: dict[tuple[str, str, int], None] = {}
    for group in claims:
        for claim in group:
            seen.setdefault((claim.budget, claim.partition, claim.window_start), None)
    return list(seen)


def _batch_decision(decision_id: str, now: datetime, bundle: ActiveBundle, events: Sequence[CostEvent],
                    requests: Sequence[Mapping[str, Any]], policies: Sequence[PolicyDecision],
                    claims: Sequence[Sequence[BudgetClaim]], source: str) -> DecisionRecord:
    """The `observed` decision of the events of one call that share a context: `input.requests` holds
    each event's facts exactly as evaluated, in order, `result.event_ids` their ids."""
    ctx: Context = events[0].context
    names = tuple(dict.fromkeys(n for p in policies for n in p.policy_names))
    reason = "; ".join(dict.fromkeys(m.reason for p in policies for m in p.notify if m.reason))
    return DecisionRecord(
        id=decision_id, ts=now, hook=HOOK, effect="observed", bundle_revision=bundle.revision, context=ctx,
        input={"version": DECISION_INPUT_VERSION, "source": source, "requests": [dict(r) for r in requests]},
        result={"event_ids": [e.id for e in events], "cost_nano": sum(int(e.cost_nano) for e in events),
                "source": source},
        policies=names, budgets=tuple(dict.fromkeys(c.budget for group in claims for c in group)), reason=reason,
        key_id=ctx.key_id, status_code=OK,
    )

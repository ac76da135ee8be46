"""Economic SLOs at run time: evaluate them, act on a breach, and let the decision core obey.

* `SloMonitor.evaluate()` (a background job of the server) measures every `kind: SLO` of the
  bundle over its rolling window — cost per outcome from the ledger, `runs.report` — and
  stores the result (`slo_state`). On a breach it asks the policy engine at hook
  `slo.breach` (ctx = the SLO's scope; request = the SLO and its numbers) and stores the
  actions of the matching policies: `route` (set.model) and `throttle`
  (set.max_calls_per_minute); `notify` policies and the breach itself are notified once,
  when the SLO turns breached, and that evaluation is logged as a decision (hook `slo.breach`,
  the exact request evaluated). The evaluation, the record and the notify policies go through
  the one decider (`core/decider.py`). Back within its objective, the actions are lifted.
* `SloGate.apply()` is the decision core's hook (`DecisionCore.admit`): for a request inside
  a breached SLO's scope it routes to the cheaper model, or refuses it (429) while the
  scope's calls in the last minute are at the throttle limit. It reads the state from the
  store (cached for `ttl` seconds), so every gateway replica on one store obeys.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from costplane.attribution.context import Context
from costplane.core.bundle_state import ActiveBundle
from costplane.core.decider import Decider, Evaluation
from costplane.core.notify import Notification, Notifier
from costplane.core.requests import OK
from costplane.ledger.runtypes import SloState
from costplane.ledger.store import Store
from costplane.ledger.types import DecisionRecord
from costplane.money import format_usd
from costplane.policy.engine import PolicyEngine
from costplane.policy.sloschema import SloSpec
from costplane.policy.types import MatchedPolicy, PolicyDecision

__all__ = ["SloGate", "SloMonitor", "measure"]

HOOK = "slo.breach"
log = logging.getLogger("costplane.slo")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def measure(store: Store, spec: SloSpec, now: datetime) -> dict[str, Any]:
    """Cost, outcomes and cost per outcome of one SLO's scope over its window."""
    from costplane.runs.report import cost_per_outcome

    rows = cost_per_outcome(store, spec.outcome, since=now - timedelta(seconds=spec.window_seconds), until=None,
                            group_by=(), where=dict(spec.scope) or None)
    cost = sum(r.cost_nano for r in rows)
    outcomes = sum((r.outcomes for r in rows), Decimal(0))
    limit_count = max(outcomes, Decimal(spec.min_outcomes))
    breached = Decimal(cost) > Decimal(spec.objective_nano) * limit_count
    per = int(Decimal(cost) / outcomes) if outcomes else None
    return {"cost_nano": cost, "outcomes": str(outcomes), "cost_per_outcome_nano": per,
            "objective_nano": spec.objective_nano, "window_seconds": spec.window_seconds, "breached": breached}


class SloMonitor:
    """Evaluates the bundle's SLOs and stores their state (run it every few seconds)."""

    def __init__(self, store: Store, engine: Callable[[], PolicyEngine], notifier: Notifier,
                 clock: Callable[[], datetime] = _utcnow, *, decider: Decider | None = None) -> None:
        """`decider`: the server's one decider (hook slo.breach is decided and logged through it);
        None: one over `store` deciding under `engine`'s bundle."""
        self.store = store
        self._engine = engine
        self.notifier = notifier
        self._clock = clock
        self.decider = decider if decider is not None else Decider(store, self._active, clock=clock,
                                                                   notifier=notifier)

    def _active(self) -> ActiveBundle:
        engine = self._engine()
        return ActiveBundle(engine.revision, engine, {b.name: b for b in engine.bundle.budgets})

    def evaluate(self) -> list[SloState]:
        now = self._clock()
        engine = self._engine()
        if not engine.bundle.slos:  # nothing declared: nothing to measure, no read
            return []
        previous = {s.name: s for s in self.store.slo_states()}
        out: list[SloState] = []
        for spec in engine.bundle.slos:
            numbers = measure(self.store, spec, now)
            before = previous.get(spec.name)
            actions: tuple[Mapping[str, Any], ...] = ()
            since = None
            if numbers["breached"]:
                since = before.since if before is not None and before.breached and before.since else now
                actions = self._actions(engine, spec, numbers, newly=before is None or not before.breached,
                                        since=since)
            state = SloState(spec.name, bool(numbers["breached"]), now, since, dict(spec.scope), numbers, actions)
            self.store.put_slo_state(state)
            out.append(state)
        return out

    def _actions(self, engine: PolicyEngine, spec: SloSpec, numbers: Mapping[str, Any],
                 newly: bool, since: datetime | None = None) -> tuple[Mapping[str, Any], ...]:
        """Hook slo.breach through the decider: the actions of the matching policies; when the SLO
        turns breached the evaluation is logged (`_record`) and notified."""
        scope = {k: v for k, v in spec.scope.items() if k != "model"}
        ctx = Context.from_mapping(scope, source=f"SLO {spec.name} scope")
        per = numbers["cost_per_outcome_nano"]
        request = {"slo": spec.name, "outcome": spec.outcome, "model": spec.scope.get("model", ""),
                   "cost_nano": numbers["cost_nano"], "outcomes": int(Decimal(numbers["outcomes"])),
                   "cost_per_outcome_nano": per if per is not None else numbers["cost_nano"],
                   "objective_nano": spec.objective_nano}
        evaluation = self.decider.evaluate(HOOK, ctx, request)
        if not isinstance(evaluation, Evaluation):  # slo.breach has no deny effect: nothing to act on
            return ()
        decision = evaluation.policy
        actions: list[Mapping[str, Any]] = []
        if decision.route is not None:
            actions.append({"effect": "route", "model": decision.model, "policy": decision.route.name,
                            "reason": decision.route.reason})
        for match in decision.actions:
            policy = engine.bundle.policy(match.name)
            if match.effect == "throttle" and policy is not None:
                actions.append({"effect": "throttle", "policy": match.name, "reason": match.reason,
                                **{k: v for k, v in policy.set.items()}})
        if newly:
            decision_id = evaluation.decision_id
            self.decider.log(self._record(evaluation, actions, since))
            shown = "none" if per is None else format_usd(per)
            message = (f"SLO {spec.name!r} breached: cost per {spec.outcome} {shown} USD > objective "
                       f"{format_usd(spec.objective_nano)} USD ({format_usd(numbers['cost_nano'])} USD for "
                       f"{numbers['outcomes']} outcomes over {spec.window_seconds}s); actions: "
                       f"{', '.join(str(a['effect']) for a in actions) or 'none'}")
            self.notifier.notify(Notification("slo_breach", spec.name, message, decision_id, {
                "measured": dict(numbers), "outcome": spec.outcome, "scope": dict(spec.scope),
                "objective_nano": spec.objective_nano, "cost_per_outcome_nano": per,
                "cost_nano": numbers["cost_nano"], "outcomes": numbers["outcomes"],
                "window_seconds": spec.window_seconds,
                "breached_since": since.isoformat() if since is not None else None,
            }))
            self.decider.notify_policies(evaluation, {"slo": spec.name})
        return tuple(actions)

    def _record(self, evaluation: Evaluation, actions: Sequence[Mapping[str, Any]],
                since: datetime | None) -> DecisionRecord:
        """The decisions log's record of an SLO turning breached: hook slo.breach, the exact request
        evaluated (with the decision-input format version) and the actions it took (`result.actions`).
        Its effect is `breached`, so counts of routed or refused requests stay counts of requests."""
        decision = evaluation.policy
        reason = "; ".join(dict.fromkeys(m.reason for m in (*decision.matched, *decision.notify) if m.reason))
        return self.decider.record(evaluation, "breached", reason, OK,
                                   {"slo": evaluation.facts["slo"], "actions": [dict(a) for a in actions],
                                    "breached_since": since.isoformat() if since is not None else None})


class SloGate:
    """The decision core's view of breached SLOs (read from the store, cached `ttl` seconds)."""

    def __init__(self, store: Store, ttl: float = 1.0) -> None:
        self.store = store
        self.ttl = ttl
        self._cached: tuple[float, list[SloState]] = (-1e18, [])

    def _active(self, declared: Sequence[SloSpec]) -> list[SloState]:
        """The breached states with actions of the SLOs the bundle declares (a state the store still
        holds for an SLO the bundle no longer has acts on nothing); no read when it declares none."""
        if not declared:
            return []
        stamp, states = self._cached
        if time.monotonic() - stamp > self.ttl:
            states = [s for s in self.store.slo_states() if s.breached and s.actions]
            self._cached = (time.monotonic(), states)
        names = {spec.name for spec in declared}
        return [s for s in states if s.name in names]

    def refresh(self) -> None:
        self._cached = (-1e18, [])

    def apply(self, ctx: Context, model: str, policy: PolicyDecision, now: datetime,
              declared: Sequence[SloSpec]) -> tuple[PolicyDecision, str | None]:
        """The policy decision with the breached actions of the `declared` SLOs applied (the bundle's
        own); or a throttle message."""
        if policy.effect == "deny":
            return policy, None
        for state in self._active(declared):
            scope = state.scope
            if any(ctx.get(k) != v for k, v in scope.items() if k != "model"):
                continue
            if scope.get("model") and scope["model"] != model:
                continue
            for action in state.actions:
                if action.get("effect") == "route" and action.get("model") and action["model"] != policy.model:
                    match = MatchedPolicy(str(action.get("policy", state.name)), "route",
                                          f"SLO {state.name!r} is breached: {action.get('reason') or 'route'}")
                    effect = policy.effect if policy.actions else "route"
                    policy = replace(policy, effect=effect, model=str(action["model"]), route=match,
                                     matched=(*policy.matched, match))
                elif action.get("effect") == "throttle" and action.get("max_calls_per_minute"):
                    limit = int(action["max_calls_per_minute"])
                    where = {k: v for k, v in scope.items() if k != "model"}
                    rows = self.store.spend(where=where or None, since=now - timedelta(minutes=1))
                    calls = sum(r.events for r in rows)
                    if calls >= limit:
                        return policy, (f"throttled by policy {action.get('policy')!r} while SLO {state.name!r} is "
                                        f"breached: {calls} calls in the last minute, limit {limit} per minute")
        return policy, None

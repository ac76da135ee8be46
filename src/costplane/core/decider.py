"""The one decider every hook goes through: facts -> policy -> SLO effects -> budget claims -> one
atomic reservation (or a dry run) -> the decision record -> notifications.

An enforcement point is an adapter: it turns what it knows into the hook's `request` facts
(`policy/hookschema.py`), calls `Decider.decide(hook, context, facts, worst_case, adapter=…)` and
acts on the answer. `worst_case(evaluation)` is the adapter's only hook-specific step: given the
policy decision it prices the worst case (`Hold`) or refuses (`Decider.deny`). Everything else —
the policy engine, breached SLOs, which budgets a request claims (`core.claims`), the reservation
through the injected `BudgetLedger`, the budget refusal and its message, the decision record with
the exact evaluated input, notify policies, soft-budget and threshold alerts — is here, once.

The decisions log's `input` of every hook is `{**adapter, "version": DECISION_INPUT_VERSION,
"request": facts}`: the facts exactly as the policy engine saw them, plus what the adapter needs to
rebuild its request (`adapter`), so replay can decide a logged request again through this class.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from costplane.attribution.context import Context
from costplane.core.bundle_state import ActiveBundle
from costplane.core.claims import budget_claims
from costplane.core.notify import LoggingNotifier, Notification, Notifier, crossed_alerts
from costplane.core.requests import OK, Denial
from costplane.ledger.contracts import BudgetLedger
from costplane.ledger.store import StoreError, StoreUnavailable
from costplane.ledger.types import ClaimState, CostEvent, DecisionRecord, Reservation, ReserveResult
from costplane.ledger.windows import PeriodMemo
from costplane.money import format_usd
from costplane.policy.hookschema import DECISION_INPUT_VERSION
from costplane.policy.types import BudgetSpec, PolicyDecision

if TYPE_CHECKING:  # core.slo imports the policy engine; only its type is needed here
    from costplane.core.slo import SloGate

__all__ = ["Decider", "DryRun", "Evaluation", "Hold", "Refused", "Reserved", "decision_input", "new_id"]

log = logging.getLogger("costplane.core")

_LIMIT_CODE = {"amount": "budget_exceeded", "calls": "call_limit_exceeded", "concurrent": "concurrency_limit"}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Entropy:
    """The operating system's randomness (`os.urandom`), read 4 KiB at a time: an id takes 10 bytes
    of it without a system call of its own (which would also hand the GIL to another thread on
    every id). A child process starts with none of its parent's bytes."""

    __slots__ = ("_at", "_buffer", "_lock")

    SIZE = 4096

    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> int:
        with self._lock:
            at = self._at
            if at + size > len(self._buffer):
                self._buffer, at = os.urandom(self.SIZE), 0
            self._at = at + size
            return int.from_bytes(self._buffer[at:at + size], "big")

    def forget(self) -> None:
        """After a fork, in the child: never reuse the parent's bytes (nor a lock it held)."""
        self._buffer, self._at, self._lock = b"", 0, threading.Lock()


_ENTROPY = _Entropy()
os.register_at_fork(after_in_child=_ENTROPY.forget)


def new_id(prefix: str) -> str:
    """`prefix` + "_" + 32 hex digits laid out as a UUIDv7 (RFC 9562): the Unix time in milliseconds,
    then 74 random bits (from `os.urandom`). Ids made later sort later, so the ledger's primary keys
    and its indexes on decision ids grow at their right edge instead of writing a random page of each
    B-tree per row (docs/performance.md, "Time-ordered ids")."""
    ms = (time.time_ns() // 1_000_000) & _MS_MASK
    rand = _ENTROPY.take(10)  # 12 bits of rand_a, 62 of rand_b (6 unused)
    value = ms << 80 | 0x7 << 76 | (rand >> 68) << 64 | 0b10 << 62 | rand & _RAND_B_MASK
    return f"{prefix}_{value:032x}"


_MS_MASK = (1 << 48) - 1
_RAND_B_MASK = (1 << 62) - 1


def decision_input(facts: Mapping[str, Any], adapter: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The decisions log's `input`: the adapter's fields, the format version and the exact facts."""
    return {**(adapter or {}), "version": DECISION_INPUT_VERSION, "request": dict(facts)}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One request evaluated at a hook: its decision id, time, bundle, facts and the policies' answer."""

    hook: str
    decision_id: str
    now: datetime
    bundle: ActiveBundle
    context: Context
    facts: Mapping[str, Any]
    adapter: Mapping[str, Any]
    policy: PolicyDecision
    budgets: tuple[BudgetSpec, ...]

    @property
    def input(self) -> dict[str, Any]:
        return decision_input(self.facts, self.adapter)

    @property
    def reason(self) -> str:
        return "; ".join(m.reason for m in self.policy.matched if m.reason)


@dataclass(frozen=True, slots=True)
class Hold:
    """What an adapter asks the budgets to hold: its worst case, until when, and how it is logged."""

    amount_nano: int
    expires_at: datetime
    effect: str  # allow | route | mutate (the decision's effect when admitted)
    reason: str
    result: Mapping[str, Any]
    claim_model: str = ""  # the `model` dimension of budgets partitioned per model
    budgets: tuple[BudgetSpec, ...] | None = None  # None: the budgets whose scope matched the facts
    status: int = OK  # the decision record's status code when admitted
    what: str = "this request"  # how a budget refusal names it ("up to this request", …)


@dataclass(frozen=True, slots=True)
class Reserved:
    """Admitted: the reservation holds the worst case on every claim (None: store down, budgets fail open)."""

    evaluation: Evaluation
    hold: Hold
    reservation: Reservation | None
    states: tuple[ClaimState, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """No room: the first hard claim that would break a limit (state None: the ledger is unreachable)."""

    state: ClaimState | None
    limit: str
    spec: BudgetSpec | None
    hold: Hold


@dataclass(frozen=True, slots=True)
class DryRun:
    """A dry run (`iac.plan`): the claims' windows as they would be with the hold, nothing reserved."""

    evaluation: Evaluation
    hold: Hold
    states: tuple[ClaimState, ...]
    exceeded: tuple[ClaimState, ...]  # hard budgets the hold would take past their dollar limit
    denial: Denial | None


WorstCase = Callable[[Evaluation], "Hold | Denial"]
Fallback = Callable[[Evaluation, Refused], "Hold | None"]


class Decider:
    """`ledger`: the budget counters (a store today, a lease-based or in-memory ledger later);
    `bundle`: the active bundle, read once per decision; `slo_gate`: breached SLOs (None: none)."""

    def __init__(self, ledger: BudgetLedger, bundle: Callable[[], ActiveBundle], *,
                 clock: Callable[[], datetime] = _utcnow, notifier: Notifier | None = None,
                 slo_gate: SloGate | None = None) -> None:
        self.ledger = ledger
        self._bundle = bundle
        self.clock = clock
        self.notifier: Notifier = notifier or LoggingNotifier()
        self.slo_gate = slo_gate
        self._periods = PeriodMemo()  # calendar windows' periods, computed once per period

    def bundle(self) -> ActiveBundle:
        return self._bundle()

    # -- the decision --------------------------------------------------------------------------
    def decide(self, hook: str, ctx: Context, facts: Mapping[str, Any], worst_case: WorstCase, *,
               adapter: Mapping[str, Any] | None = None, fallback: Fallback | None = None,
               dry_run: bool = False, slo_model: str | None = None,
               already: dict[tuple[str, str, int], int] | None = None) -> Reserved | DryRun | Denial:
        """Policy, SLO effects, the adapter's worst case, then one atomic reservation (`dry_run`: the
        claims' states read, nothing reserved; `already`: see `dry_run`). `fallback`: another hold to
        try when a budget has no room (route on exceed); `slo_model`: apply breached SLOs'
        route/throttle for this model."""
        evaluation = self.evaluate(hook, ctx, facts, adapter=adapter, slo_model=slo_model)
        if isinstance(evaluation, Denial):
            return evaluation
        hold = worst_case(evaluation)
        if isinstance(hold, Denial):
            return hold
        if dry_run:
            return self.dry_run(evaluation, hold, already)
        got = self.reserve(evaluation, hold)
        if isinstance(got, Refused) and got.state is not None and fallback is not None:
            other = fallback(evaluation, got)
            if other is not None:
                got = self.reserve(evaluation, other)
        if isinstance(got, Refused):
            return self.budget_denial(evaluation, got)
        self.notify_policies(evaluation)
        return got

    def evaluate(self, hook: str, ctx: Context, facts: Mapping[str, Any], *,
                 adapter: Mapping[str, Any] | None = None, slo_model: str | None = None,
                 refuse_denied: bool = True) -> Evaluation | Denial:
        """The policies' answer (with breached SLOs' effects); a deny (unless `refuse_denied` is False:
        the caller refuses, `deny_by_policy`) or an SLO throttle is a logged Denial."""
        now = self.clock()
        bundle = self._bundle()
        policy, budgets = bundle.engine.decide(hook, ctx, facts)
        evaluation = Evaluation(hook, new_id("dec"), now, bundle, ctx, dict(facts), dict(adapter or {}), policy,
                                tuple(budgets))
        if self.slo_gate is not None and slo_model is not None:
            policy, throttled = self.slo_gate.apply(ctx, slo_model, policy, now, bundle.engine.bundle.slos)
            evaluation = replace(evaluation, policy=policy)
            if throttled is not None:
                return self.deny(evaluation, "slo_throttled", throttled, retryable=True)
        if refuse_denied and policy.effect == "deny" and policy.deny is not None:
            return self.deny_by_policy(evaluation)
        return evaluation

    def deny_by_policy(self, evaluation: Evaluation) -> Denial:
        """The refusal of an evaluation a policy denies (names the first denying policy)."""
        match = evaluation.policy.deny
        name, reason = (match.name, match.reason) if match is not None else ("?", "")
        return self.deny(evaluation, "policy_denied", f"denied by policy {name!r}: {reason}")

    # -- reservations ----------------------------------------------------------------------------
    def reserve(self, evaluation: Evaluation, hold: Hold) -> Reserved | Refused:
        """The one atomic reservation of `hold` on every claim, written with its decision record."""
        specs = evaluation.budgets if hold.budgets is None else hold.budgets
        claims = budget_claims(specs, evaluation.context, hold.claim_model, hold.amount_nano, evaluation.now,
                               bounds=self._periods.bounds)
        reservation = Reservation(id=new_id("res"), claims=claims, created_at=evaluation.now,
                                  expires_at=hold.expires_at, decision_id=evaluation.decision_id,
                                  key_id=evaluation.context.key_id)
        record = self.record(evaluation, hold.effect, hold.reason, hold.status,
                             {**hold.result, "reservation_id": reservation.id}, tuple(c.budget for c in claims))
        try:
            outcome = self.ledger.reserve(reservation, record)
        except StoreUnavailable:
            if specs and all(b.fail_open for b in specs):
                note = "; ".join(x for x in (hold.reason, "store unavailable, budgets fail open") if x)
                return Reserved(evaluation, replace(hold, reason=note), None, ())
            return Refused(None, "amount", None, hold)
        if outcome.ok:
            self._soft_notices(evaluation.decision_id, outcome.states)
            return Reserved(evaluation, hold, reservation, outcome.states)
        refused = outcome.refused
        spec = evaluation.bundle.budgets.get(refused.budget) if refused is not None else None
        return Refused(refused, outcome.refused_limit or "amount", spec, hold)

    def dry_run(self, evaluation: Evaluation, hold: Hold,
                already: dict[tuple[str, str, int], int] | None = None) -> DryRun:
        """The claims' windows read (never written) as they would be with `hold` on top (and with
        `already`: amounts earlier holds of the same dry run put on the same windows, updated here).
        The decision is logged: effect `deny` (with the budgets exceeded) or the hold's effect."""
        specs = evaluation.budgets if hold.budgets is None else hold.budgets
        claims = budget_claims(specs, evaluation.context, hold.claim_model, hold.amount_nano, evaluation.now,
                               bounds=self._periods.bounds)
        pending = already if already is not None else {}
        try:
            current = self.ledger.claim_states(claims)
        except StoreUnavailable:
            denial = self.deny(evaluation, "spend_unverifiable",
                               "spend cannot be verified right now (store unavailable); failing closed",
                               retryable=True)
            return DryRun(evaluation, hold, (), (), denial)
        states: list[ClaimState] = []
        for claim, state in zip(claims, current, strict=True):
            key = (claim.budget, claim.partition, claim.window_start)
            pending[key] = pending.get(key, 0) + claim.amount_nano
            states.append(replace(state, reserved_nano=state.reserved_nano + pending[key]))
        exceeded = tuple(s for s in states if s.hard and s.limit_nano is not None
                         and s.spent_nano + s.reserved_nano > s.limit_nano)
        names = tuple(c.budget for c in claims)
        result = {**hold.result, "dry_run": True, "would_exceed": [s.budget for s in exceeded]}
        if exceeded:
            worst = exceeded[0]
            denial = self.budget_denial(evaluation, Refused(worst, "amount",
                                                            evaluation.bundle.budgets.get(worst.budget), hold),
                                        extra={"dry_run": True, "would_exceed": [s.budget for s in exceeded]},
                                        budgets_used=names)
            return DryRun(evaluation, hold, tuple(states), exceeded, denial)
        self.log(self.record(evaluation, hold.effect, hold.reason, hold.status, result, names))
        self.notify_policies(evaluation)
        return DryRun(evaluation, hold, tuple(states), (), None)

    def grow(self, evaluation: Evaluation, reservation_id: str, extra_nano: int, expires_at: datetime, *,
             what: str, decision: DecisionRecord | None = None) -> Refused | ReserveResult:
        """Hold `extra_nano` more on a reservation's claims (limit-checked like `reserve`); soft
        budgets it takes over a limit are notified."""
        grown = self.ledger.grow_reservation(reservation_id, extra_nano, expires_at, decision)
        if grown.ok:
            self._soft_notices(evaluation.decision_id, grown.states)
            return grown
        refused = grown.refused
        spec = evaluation.bundle.budgets.get(refused.budget) if refused is not None else None
        hold = Hold(extra_nano, expires_at, "allow", "", {}, what=what)
        return Refused(refused, grown.refused_limit or "amount", spec, hold)

    def settle(self, reservation_id: str, event: CostEvent) -> tuple[ClaimState, ...]:
        """Turn a reservation into spend; the alert thresholds its cost crossed are raised."""
        states = self.ledger.settle(reservation_id, event)
        self.alert(states, int(event.cost_nano), event.decision_id or "")
        return states

    def accrue(self, reservation_id: str, event: CostEvent, *, close: bool = False,
               environment_id: str | None = None, accrued_until: datetime | None = None,
               decision: DecisionRecord | None = None) -> tuple[ClaimState, ...]:
        """Running cost moved from reserved to spent (environments); alerts as for a settlement."""
        states = self.ledger.accrue(reservation_id, event, close=close, environment_id=environment_id,
                                    accrued_until=accrued_until, decision=decision)
        self.alert(states, int(event.cost_nano), decision.id if decision is not None else event.decision_id or "")
        return states

    def release(self, reservation_id: str, status: str = "released") -> bool:
        """Give a reservation back (nothing was spent, so no threshold can be crossed)."""
        return self.ledger.release(reservation_id, status)

    def record_event(self, event: CostEvent) -> bool:
        """An event that holds nothing (a cache hit, an unbudgeted call)."""
        return self.ledger.record_event(event, ())

    # -- refusals, records, notifications ----------------------------------------------------------
    def deny(self, evaluation: Evaluation, code: str, message: str, *, budgets_used: tuple[str, ...] = (),
             retryable: bool = False, extra: Mapping[str, Any] | None = None) -> Denial:
        """A logged refusal: the message names the decision and the bundle revision."""
        text = f"{message} (decision {evaluation.decision_id}, bundle {evaluation.bundle.revision})"
        denial = Denial(code, text, evaluation.decision_id, retryable)
        self.log(self.record(evaluation, "deny", text, denial.status, {"code": code, **(extra or {})},
                             budgets_used))
        return denial

    def refuse(self, hook: str, ctx: Context, code: str, message: str, *, facts: Mapping[str, Any],
               adapter: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> Denial:
        """A logged refusal before any policy is evaluated (the adapter could not build the facts)."""
        return self.deny(self.unevaluated(hook, ctx, facts, adapter=adapter), code, message, extra=extra)

    def unevaluated(self, hook: str, ctx: Context, facts: Mapping[str, Any], *,
                    adapter: Mapping[str, Any] | None = None, budgets: Sequence[BudgetSpec] = ()) -> Evaluation:
        """An evaluation no policy took part in (an approval, a rejection, a refusal of malformed
        input), with the budgets it claims."""
        return Evaluation(hook, new_id("dec"), self.clock(), self._bundle(), ctx, dict(facts), dict(adapter or {}),
                          PolicyDecision("allow", "", {}, ()), tuple(budgets))

    def budget_denial(self, evaluation: Evaluation, refused: Refused, *, extra: Mapping[str, Any] | None = None,
                      budgets_used: tuple[str, ...] | None = None) -> Denial:
        """The refusal of a hold a budget has no room for, naming the budget and the amounts."""
        state, limit, spec = refused.state, refused.limit, refused.spec
        if state is None:  # the ledger could not be reached and a budget fails closed
            return self.deny(evaluation, "spend_unverifiable",
                             "spend cannot be verified right now (store unavailable); failing closed",
                             retryable=True)
        window = spec.window.describe() if spec else "?"
        scope = f" [{state.partition}]" if state.partition else ""
        if limit == "calls":
            message = (f"budget {state.budget!r}{scope}: {state.calls} calls > limit {state.limit_calls}, "
                       f"window {window}")
        elif limit == "concurrent":
            message = (f"budget {state.budget!r}{scope}: {state.concurrent} concurrent requests > limit "
                       f"{state.limit_concurrent}")
        else:
            message = (f"budget {state.budget!r}{scope} exceeded: spent {format_usd(state.spent_nano)} USD + "
                       f"reserved {format_usd(state.reserved_nano)} USD (including {refused.hold.what}) > limit "
                       f"{format_usd(state.limit_nano or 0)} USD, window {window}")
        return self.deny(evaluation, _LIMIT_CODE.get(limit, "budget_exceeded"), message,
                         budgets_used=budgets_used if budgets_used is not None else (state.budget,),
                         retryable=(limit == "concurrent"),
                         extra={"budget": state.budget, "partition": state.partition, "limit": limit,
                                "spent_nano": state.spent_nano, "reserved_nano": state.reserved_nano,
                                **(extra or {})})

    def record(self, evaluation: Evaluation, effect: str, reason: str, status: int, result: Mapping[str, Any],
               budgets: tuple[str, ...] = (), context: Context | None = None) -> DecisionRecord:
        """The decision record of an evaluation (`context`: who acted, when not the request's own)."""
        ctx = context if context is not None else evaluation.context
        return DecisionRecord(
            id=evaluation.decision_id, ts=evaluation.now, hook=evaluation.hook, effect=effect,
            bundle_revision=evaluation.bundle.revision, context=ctx, input=evaluation.input, result=dict(result),
            policies=evaluation.policy.policy_names, budgets=tuple(dict.fromkeys(budgets)), reason=reason,
            key_id=ctx.key_id, status_code=status)

    def log(self, record: DecisionRecord) -> None:
        """A decision that holds nothing; a ledger failure is logged, the decision stands."""
        try:
            self.ledger.record_decision(record)
        except StoreError as exc:
            log.error("decision %s could not be logged: %s", record.id, exc)

    def notify_policies(self, evaluation: Evaluation, data: Mapping[str, Any] | None = None) -> None:
        for match in evaluation.policy.notify:
            self.notifier.notify(Notification("policy", match.name, match.reason, evaluation.decision_id,
                                              dict(data or {})))

    def alert(self, states: Sequence[ClaimState], cost_nano: int, decision_id: str) -> list[Notification]:
        """Raise the alert thresholds that `cost_nano`, just added to these windows, crossed."""
        raised = crossed_alerts(states, self._bundle().budgets, cost_nano, decision_id)
        for notice in raised:
            self.notifier.notify(notice)
        return raised

    def _soft_notices(self, decision_id: str, states: tuple[ClaimState, ...]) -> None:
        for state in states:
            broken = state.exceeded
            if broken is not None and not state.hard:
                self.notifier.notify(Notification(
                    "soft_budget_exceeded", state.budget,
                    f"soft budget {state.budget!r} is over its {broken} limit (spent {format_usd(state.spent_nano)}"
                    f" + reserved {format_usd(state.reserved_nano)} USD); the request was allowed", decision_id,
                    {"partition": state.partition, "limit": broken}))

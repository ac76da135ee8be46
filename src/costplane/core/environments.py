"""Governed environments through the one decision core: launch, approve, reject, extend, teardown, accrue.

The same pieces as `DecisionCore`: the active bundle's policy engine (hooks
`environment.launch` / `environment.extend`), `budget_claims` over the same budgets, one
atomic `store.reserve` of the projected cost (hourly price from the SKU table × TTL),
cost events of kind "environment" settled against that reservation as the environment
runs, and a DecisionRecord (with the bundle revision) for every transition. Runtime
enforcement (TTL, idle, budget exhaustion) is `lifecycle.scheduler`, which calls in here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from costplane.attribution.context import Context
from costplane.core.bundle_state import ActiveBundle
from costplane.core.claims import budget_claims
from costplane.core.decision import new_id
from costplane.core.envpricing import Estimate, cost_for, estimate
from costplane.core.notify import LoggingNotifier, Notification, Notifier, crossed_alerts
from costplane.core.requests import Denial
from costplane.core.spend import observe, policy_notices
from costplane.ledger import codec
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.ledger.store import Store
from costplane.ledger.types import ClaimState, CostEvent, DecisionRecord, Reservation
from costplane.ledger.windows import MAX_DURATION_SECONDS
from costplane.lifecycle.drivers import DriverError, DriverSet, LaunchSpec
from costplane.money import format_usd
from costplane.policy.blueprintschema import BlueprintSpec, InputError, render, resolve_inputs
from costplane.pricing.skus import SkuCatalog, UnknownSku

__all__ = ["RESERVATION_MARGIN", "EnvironmentCore", "render_driver"]

log = logging.getLogger("costplane.environments")

#: an environment's reservation expires this long after the environment would end
RESERVATION_MARGIN = 3600
#: a launch waiting for approval longer than this is rejected
APPROVAL_TIMEOUT = 86_400
RUNNING = (EnvState.ACTIVE, EnvState.EXPIRING)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def render_driver(value: Any, inputs: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return render(value, inputs)
    if isinstance(value, list):
        return [render_driver(v, inputs) for v in value]
    if isinstance(value, dict):
        return {k: render_driver(v, inputs) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class _Launch:
    blueprint: BlueprintSpec
    inputs: dict[str, Any]
    estimate: Estimate
    ttl: int
    facts: dict[str, Any]


class EnvironmentCore:
    def __init__(self, store: Store, skus: SkuCatalog, bundle: Callable[[], ActiveBundle], drivers: DriverSet,
                 clock: Callable[[], datetime] = _utcnow, notifier: Notifier | None = None) -> None:
        self.store = store
        self.skus = skus
        self._bundle = bundle
        self.drivers = drivers
        self.clock = clock
        self.notifier: Notifier = notifier or LoggingNotifier()

    # -- helpers -----------------------------------------------------------------------------
    def bundle(self) -> ActiveBundle:
        return self._bundle()

    def blueprints(self) -> tuple[BlueprintSpec, ...]:
        return self._bundle().engine.bundle.blueprints

    def _record(self, hook: str, decision_id: str, now: datetime, ctx: Context, effect: str, reason: str,
                status: int, facts: Mapping[str, Any], result: Mapping[str, Any], policies: tuple[str, ...] = (),
                budgets: tuple[str, ...] = ()) -> DecisionRecord:
        return DecisionRecord(id=decision_id, ts=now, hook=hook, effect=effect,
                              bundle_revision=self._bundle().revision, context=ctx, input=dict(facts),
                              result=dict(result), policies=policies, budgets=budgets, reason=reason,
                              key_id=ctx.key_id, status_code=status)

    def _deny(self, hook: str, now: datetime, ctx: Context, status: int, code: str, message: str,
              facts: Mapping[str, Any], policies: tuple[str, ...] = (), extra: Mapping[str, Any] | None = None,
              log_it: bool = True) -> Denial:
        decision_id = new_id("dec")
        text = f"{message} (decision {decision_id}, bundle {self._bundle().revision})"
        if log_it:
            self.store.record_decision(self._record(hook, decision_id, now, ctx, "deny", text, status, facts,
                                                    {"code": code, **(extra or {})}, policies))
        return Denial(status, code, text, decision_id if log_it else None)

    def _prepare(self, name: str, given: Mapping[str, Any], ttl: int | None, ctx: Context,
                 now: datetime) -> _Launch | Denial:
        hook = "environment.launch"
        blueprint = next((b for b in self.blueprints() if b.name == name), None)
        if blueprint is None:
            known = ", ".join(b.name for b in self.blueprints()) or "none"
            return self._deny(hook, now, ctx, 404, "unknown_blueprint",
                              f"no blueprint named {name!r} in the bundle (blueprints: {known})", {"blueprint": name})
        try:
            inputs = resolve_inputs(blueprint, given)
        except InputError as exc:
            return self._deny(hook, now, ctx, 400, "invalid_input", str(exc), {"blueprint": name},
                              extra={"fields": [i.field for i in exc.issues]})
        missing = [dim for dim in blueprint.require if not ctx.get(dim)]
        if missing:
            return self._deny(hook, now, ctx, 400, "missing_tags",
                              f"blueprint {name!r} ({blueprint.location}) requires {', '.join(missing)} in the "
                              "context (key attributes or the request's context)", {"blueprint": name},
                              extra={"fields": [f"context.{m}" for m in missing]})
        life = blueprint.lifecycle
        ttl = life.ttl if ttl is None else ttl
        if ttl <= 0 or ttl > life.max_ttl:
            return self._deny(hook, now, ctx, 403, "ttl_exceeds_max",
                              f"ttl {ttl}s is outside 1s..max_ttl {life.max_ttl}s of blueprint {name!r}",
                              {"blueprint": name, "ttl_seconds": ttl}, extra={"fields": ["ttl"]})
        try:
            priced = estimate(blueprint, inputs, self.skus, now)
        except UnknownSku as exc:
            return self._deny(hook, now, ctx, 403, "unknown_price", f"{exc}; unknown prices are denied",
                              {"blueprint": name})
        except ValueError as exc:
            return self._deny(hook, now, ctx, 400, "invalid_input", str(exc), {"blueprint": name})
        return _Launch(blueprint, inputs, priced, ttl, self._facts(blueprint, inputs, priced, ttl))

    @staticmethod
    def _facts(blueprint: BlueprintSpec, inputs: Mapping[str, Any], priced: Estimate, ttl: int) -> dict[str, Any]:
        projected = priced.projected_nano(ttl)
        return {"blueprint": blueprint.name, "inputs": {k: str(v) for k, v in inputs.items()},
                "driver": str(blueprint.driver.get("type")), "gpu_type": priced.gpu_type,
                "gpu_count": priced.gpu_count, "skus": [str(r["sku"]) for r in priced.resources],
                "hourly_usd": float(priced.hourly_nano) / 1e9, "hourly_nano": priced.hourly_nano,
                "ttl_seconds": ttl, "ttl_hours": ttl / 3600, "projected_usd": float(projected) / 1e9,
                "projected_nano": projected, "max_ttl_seconds": blueprint.lifecycle.max_ttl}

    # -- launch --------------------------------------------------------------------------------
    def launch(self, ctx: Context, blueprint: str, inputs: Mapping[str, Any],
               ttl: int | None = None) -> EnvironmentRecord | Denial:
        now = self.clock()
        prepared = self._prepare(blueprint, inputs, ttl, ctx, now)
        if isinstance(prepared, Denial):
            return prepared
        bundle = self._bundle()
        policy, budgets = bundle.engine.decide("environment.launch", ctx, prepared.facts)
        names = policy.policy_names
        if policy.effect == "deny" and policy.deny is not None:
            return self._deny("environment.launch", now, ctx, 403, "policy_denied",
                              f"denied by policy {policy.deny.name!r}: {policy.deny.reason}", prepared.facts, names)
        ttl_cap = policy.mutations.get("ttl")
        reason = "; ".join(m.reason for m in policy.matched if m.reason)
        if isinstance(ttl_cap, int) and ttl_cap < prepared.ttl:
            prepared = _Launch(prepared.blueprint, prepared.inputs, prepared.estimate, ttl_cap,
                               self._facts(prepared.blueprint, prepared.inputs, prepared.estimate, ttl_cap))
        env_id = new_id("env")
        for match in policy.notify:
            self.notifier.notify(Notification("policy", match.name, match.reason, env_id))
        if policy.effect == "require_approval":
            decision_id = new_id("dec")
            record = self._record("environment.launch", decision_id, now, ctx, "require_approval", reason, 202,
                                  prepared.facts, {"environment_id": env_id}, names)
            env = self._new_record(env_id, prepared, ctx, now, decision_id, EnvState.PENDING,
                                   next_action=now + timedelta(seconds=APPROVAL_TIMEOUT))
            self.store.create_environment(env, record)
            return env
        return self._start(env_id, prepared, ctx, now, [b.name for b in budgets], names, reason,
                           "mutate" if ttl_cap is not None else "allow")

    def _new_record(self, env_id: str, p: _Launch, ctx: Context, now: datetime, decision_id: str, state: str,
                    next_action: datetime, **more: Any) -> EnvironmentRecord:
        life = p.blueprint.lifecycle
        idle = life.idle
        lifecycle = {"ttl": p.ttl, "max_ttl": life.max_ttl, "extend_by": life.extend_by,
                     "max_extensions": life.max_extensions, "notice": life.notice, "accrue_every": life.accrue_every,
                     "idle": None if idle is None else {"metric": idle.metric, "below": str(idle.below),
                                                        "for": idle.for_seconds, "action": idle.action},
                     "grace": p.blueprint.driver.get("grace") or 10}
        return EnvironmentRecord(
            id=env_id, blueprint=p.blueprint.name, state=state, context=ctx, inputs=p.inputs,
            resources=p.estimate.resources, driver=render_driver(dict(p.blueprint.driver), p.inputs), handle={},
            lifecycle=lifecycle, hourly_nano=p.estimate.hourly_nano, projected_nano=p.estimate.projected_nano(p.ttl),
            decision_id=decision_id, bundle_revision=self._bundle().revision, created_at=now,
            expires_at=now + timedelta(seconds=p.ttl), max_expires_at=now + timedelta(seconds=life.max_ttl),
            next_action_at=next_action, **more)

    def _start(self, env_id: str, p: _Launch, ctx: Context, now: datetime, budget_names: list[str],
               policies: tuple[str, ...], reason: str, effect: str, pending: EnvironmentRecord | None = None,
               hook: str = "environment.launch") -> EnvironmentRecord | Denial:
        bundle = self._bundle()
        specs = [bundle.budgets[n] for n in dict.fromkeys([*budget_names, *p.blueprint.budgets]) if n in bundle.budgets]
        projected = p.estimate.projected_nano(p.ttl)
        claims = budget_claims(specs, ctx, f"blueprint:{p.blueprint.name}", projected, now)
        decision_id = new_id("dec")
        expires = now + timedelta(seconds=p.ttl)
        reservation = Reservation(id=new_id("res"), claims=claims, created_at=now,
                                  expires_at=expires + timedelta(seconds=RESERVATION_MARGIN), decision_id=decision_id,
                                  key_id=ctx.key_id)
        result = {"environment_id": env_id, "reservation_id": reservation.id, "projected_nano": projected,
                  "hourly_nano": p.estimate.hourly_nano, "ttl_seconds": p.ttl}
        record = self._record(hook, decision_id, now, ctx, effect, reason, 201, p.facts, result, policies,
                              tuple(c.budget for c in claims))
        outcome = self.store.reserve(reservation, record)
        if not outcome.ok and outcome.refused is not None:
            return self._budget_denial(hook, now, ctx, outcome.refused, p.facts, policies)
        spec = LaunchSpec(env_id, p.blueprint.name, render_driver(dict(p.blueprint.driver), p.inputs), p.inputs, ctx,
                          expires, p.ttl, p.estimate.resources, bundle.engine.bundle.root)
        try:
            handle = self.drivers.get(str(p.blueprint.driver.get("type"))).apply(spec)
        except DriverError as exc:
            self.store.release(reservation.id)
            return self._deny(hook, now, ctx, 502, "driver_failed", f"driver failed to start the environment: {exc}",
                              p.facts, policies)
        started = self.clock()
        expires = started + timedelta(seconds=p.ttl)
        changes = {"handle": handle, "reservation_id": reservation.id, "started_at": started, "expires_at": expires,
                   "max_expires_at": started + timedelta(seconds=p.blueprint.lifecycle.max_ttl),
                   "accrued_until": started, "next_action_at": started, "projected_nano": projected}
        if pending is not None:
            env = self.store.transition_environment(env_id, (EnvState.PENDING,), EnvState.ACTIVE, ts=started,
                                                    reason="approved", changes=changes)
            if env is None:  # rejected meanwhile: undo
                self.drivers.get(str(p.blueprint.driver.get("type"))).teardown(handle, 5.0)
                self.store.release(reservation.id)
                return Denial(409, "not_pending", f"environment {env_id} is no longer pending", None)
            return env
        env = self._new_record(env_id, p, ctx, now, decision_id, EnvState.ACTIVE, next_action=started)
        env = _replace(env, **changes)
        self.store.create_environment(env)
        return env

    def _budget_denial(self, hook: str, now: datetime, ctx: Context, state: ClaimState, facts: Mapping[str, Any],
                       policies: tuple[str, ...]) -> Denial:
        scope = f" [{state.partition}]" if state.partition else ""
        spec = self._bundle().budgets.get(state.budget)
        window = spec.window.describe() if spec else "?"
        message = (f"budget {state.budget!r}{scope} cannot hold this environment: spent {format_usd(state.spent_nano)}"
                   f" USD + reserved {format_usd(state.reserved_nano)} USD (including its projected "
                   f"{format_usd(int(facts.get('projected_nano') or facts.get('extra_nano') or 0))} USD) > limit "
                   f"{format_usd(state.limit_nano or 0)} USD, window {window}")
        return self._deny(hook, now, ctx, 402, "budget_exceeded", message, facts, policies,
                          extra={"budget": state.budget, "spent_nano": state.spent_nano,
                                 "reserved_nano": state.reserved_nano})

    # -- approvals --------------------------------------------------------------------------------
    def approve(self, env_id: str, approver: Context) -> EnvironmentRecord | Denial:
        now = self.clock()
        env = self.store.get_environment(env_id)
        if env is None or env.state != EnvState.PENDING:
            return Denial(404 if env is None else 409, "not_pending",
                          f"environment {env_id} is {'unknown' if env is None else env.state}, not pending "
                          "approval", None)
        prepared = self._prepare(env.blueprint, env.inputs, int(env.lifecycle["ttl"]), env.context, now)
        if isinstance(prepared, Denial):
            return prepared
        budgets = self._bundle().engine.budgets_for("environment.launch", env.context, prepared.facts)
        who = approver.owner or approver.user or approver.key_id or "?"
        return self._start(env_id, prepared, env.context, now, [b.name for b in budgets], (), f"approved by {who}",
                           "allow", pending=env, hook="environment.approve")

    def reject(self, env_id: str, approver: Context, reason: str = "") -> EnvironmentRecord | Denial:
        now = self.clock()
        who = approver.owner or approver.user or approver.key_id or "?"
        text = f"rejected by {who}" + (f": {reason}" if reason else "")
        record = self._record("environment.reject", new_id("dec"), now, approver, "deny", text, 200,
                              {"environment_id": env_id}, {"environment_id": env_id})
        env = self.store.transition_environment(env_id, (EnvState.PENDING,), EnvState.REJECTED, ts=now, reason=text,
                                                decision=record, changes={"ended_at": now, "end_reason": text})
        if env is None:
            return Denial(409, "not_pending", f"environment {env_id} is not pending approval", None)
        return env

    # -- extend -------------------------------------------------------------------------------------
    def extend(self, env_id: str, ctx: Context, by: int | None = None) -> EnvironmentRecord | Denial:
        now = self.clock()
        hook = "environment.extend"
        env = self.store.get_environment(env_id)
        if env is None or env.state not in RUNNING:
            return Denial(404 if env is None else 409, "not_running",
                          f"environment {env_id} is {'unknown' if env is None else env.state}; only a running "
                          "environment can be extended", None)
        life = env.lifecycle
        step = int(by or life["extend_by"])
        if not 0 < step <= MAX_DURATION_SECONDS:  # checked before any date arithmetic (which would overflow)
            return Denial(400, "max_ttl_exceeded", f"by: an extension must be 1s..{MAX_DURATION_SECONDS // 86400}d "
                          f"({MAX_DURATION_SECONDS} seconds), got {step}s", None)
        facts = {"blueprint": env.blueprint, "environment_id": env.id, "extend_seconds": step,
                 "extensions": env.extensions, "hourly_usd": env.hourly_nano / 1e9,
                 "accrued_usd": env.accrued_nano / 1e9, "ttl_seconds": int((env.expires_at - env.created_at)
                                                                             .total_seconds()) + step}
        max_ext = life.get("max_extensions")
        if max_ext is not None and env.extensions >= int(max_ext):
            return self._deny(hook, now, env.context, 403, "max_extensions",
                              f"environment {env_id} was already extended {env.extensions} times (max_extensions "
                              f"{max_ext} of blueprint {env.blueprint!r})", facts)
        policy, _ = self._bundle().engine.decide(hook, env.context, facts)
        if policy.effect == "deny" and policy.deny is not None:
            return self._deny(hook, now, env.context, 403, "policy_denied",
                              f"denied by policy {policy.deny.name!r}: {policy.deny.reason}", facts,
                              policy.policy_names)
        if policy.effect == "require_approval":
            return self._deny(hook, now, env.context, 403, "approval_required",
                              f"extending needs approval (policy {policy.actions[0].name!r}); ask an approver to "
                              "launch a new environment or raise the policy", facts, policy.policy_names)
        cap = policy.mutations.get("ttl")
        if isinstance(cap, int):
            step = min(step, cap)
        new_expiry = env.expires_at + timedelta(seconds=step)
        if new_expiry > env.max_expires_at:
            return self._deny(hook, now, env.context, 403, "max_ttl_exceeded",
                              f"extending by {step}s would end at {new_expiry.isoformat()}, past max_ttl "
                              f"{life['max_ttl']}s of blueprint {env.blueprint!r} (ends at latest "
                              f"{env.max_expires_at.isoformat()})", facts, policy.policy_names)
        extra = cost_for(env.hourly_nano, step * 1_000_000)
        facts["extra_nano"] = extra
        decision_id = new_id("dec")
        record = self._record(hook, decision_id, now, ctx, "mutate" if isinstance(cap, int) else "allow",
                              f"extended by {step}s", 200, facts, {"environment_id": env.id, "extra_nano": extra,
                                                                  "expires_at": new_expiry.isoformat()},
                              policy.policy_names)
        if env.reservation_id is not None:
            grown = self.store.grow_reservation(env.reservation_id, extra,
                                                new_expiry + timedelta(seconds=RESERVATION_MARGIN))
            if not grown.ok and grown.refused is not None:
                return self._budget_denial(hook, now, env.context, grown.refused, facts, policy.policy_names)
        updated = self.store.transition_environment(
            env.id, RUNNING, EnvState.ACTIVE, ts=now, reason=f"extended by {step}s", decision=record,
            changes={"expires_at": new_expiry, "projected_nano": env.projected_nano + extra,
                     "extensions": env.extensions + 1, "notice_sent": False, "next_action_at": now})
        return updated or Denial(409, "not_running", f"environment {env_id} ended meanwhile", None)

    # -- accrual and teardown ------------------------------------------------------------------------
    def accrue(self, env: EnvironmentRecord, until: datetime, *, close: bool = False) -> int:
        """Cost of running from started_at to `until` not yet in the ledger, recorded now; returns it."""
        if env.started_at is None or env.reservation_id is None:
            return 0
        end = min(until, env.ended_at or until)
        due = cost_for(env.hourly_nano, codec.to_us(end) - codec.to_us(env.started_at)) - env.accrued_nano
        if due <= 0 and not close:
            return 0
        primary = env.resources[0] if env.resources else {}
        event = CostEvent(
            id=f"evt_{env.id}_{codec.to_us(end)}", ts=end, context=env.context,
            provider=str(primary.get("sku", "environment")).split("/", 1)[0],
            model=str(primary.get("sku", env.blueprint)),
            cost_nano=max(0, due), kind="environment", endpoint=f"environment/{env.blueprint}",
            unit_prices={str(r["sku"]): str(r["hourly_usd"]) for r in env.resources},
            decision_id=env.decision_id, reservation_id=env.reservation_id, status="ok")
        bundle = self._bundle()
        decision, policy, _ = observe(bundle, event, "environment", {"environment_id": env.id}, new_id=new_id,
                                      now=self.clock())  # hook spend.record: the running cost is observed spend
        logged = decision if due > 0 else None
        states = self.store.accrue(env.reservation_id, event, close=close, environment_id=env.id, accrued_until=end,
                                   decision=logged)
        notices = policy_notices(policy, decision.id) if logged is not None else []
        notices += crossed_alerts(states, bundle.budgets, max(0, due), env.decision_id)  # like a settlement's
        for notice in notices:
            self.notifier.notify(notice)
        return max(0, due)

    def teardown(self, env_id: str, reason: str, ctx: Context | None = None, *, hook: str = "environment.teardown",
                 policies: tuple[str, ...] = ()) -> EnvironmentRecord | Denial:
        """Stop the environment (driver), record its last cost and close its reservation. Idempotent."""
        env = self.store.get_environment(env_id)
        if env is None:
            return Denial(404, "unknown_environment", f"no environment {env_id}", None)
        if not env.is_open:
            return Denial(409, "not_running", f"environment {env_id} is already {env.state}", None)
        if env.state == EnvState.PENDING:
            return self.reject(env_id, ctx or env.context, reason)
        grace = float(env.lifecycle.get("grace") or 10)
        if env.handle:
            try:
                self.drivers.get(str(env.driver.get("type"))).teardown(env.handle, grace)
            except DriverError as exc:
                log.error("teardown of %s failed: %s", env_id, exc)
                return Denial(502, "driver_failed", f"driver failed to tear down {env_id}: {exc}", None)
        now = self.clock()
        end = min(now, env.expires_at) if reason.startswith("ttl") else now
        record = self._record(hook, new_id("dec"), now, ctx or env.context, "teardown", reason, 200,
                              {"environment_id": env.id, "blueprint": env.blueprint},
                              {"environment_id": env.id, "ended_at": end.isoformat()}, policies)
        done = self.store.transition_environment(env.id, (EnvState.ACTIVE, EnvState.EXPIRING, EnvState.SUSPENDED),
                                                 EnvState.TORN_DOWN, ts=now, reason=reason, decision=record,
                                                 changes={"ended_at": end, "end_reason": reason})
        if done is None:
            return Denial(409, "not_running", f"environment {env_id} already ended", None)
        self.accrue(done, end, close=True)
        return self.store.get_environment(env.id) or done


def _replace(env: EnvironmentRecord, **changes: Any) -> EnvironmentRecord:
    return dataclasses.replace(env, **changes)



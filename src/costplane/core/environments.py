"""Governed environments: the `environment.*` adapter over the one decider (`core/decider.py`).

What is environment-specific lives here: blueprints and their inputs, the SKU prices of their
resources (hourly x TTL), drivers that start and stop them, TTLs, extensions and approvals. The
policies (hooks `environment.launch`, `environment.extend`, `environment.runtime`), the budget
claims, the one atomic reservation of the projected cost, refusals, decision records (with the
exact evaluated input) and notifications are the decider's. The environment's running cost is
accrued against that reservation as observed spend (hook `spend.record`) with threshold alerts.
Runtime enforcement (TTL, idle, budget exhaustion) is `lifecycle.scheduler`, which asks
`runtime()` here on every pass.
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
from costplane.core.decider import Decider, Evaluation, Hold, Refused, new_id
from costplane.core.envpricing import Estimate, cost_for, estimate
from costplane.core.envrequests import ExtendRequest, LaunchRequest, RuntimeVerdict
from costplane.core.notify import Notifier
from costplane.core.requests import ACCEPTED, CREATED, OK, Denial
from costplane.core.spend import observe, policy_notices
from costplane.ledger import codec
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.ledger.windows import MAX_DURATION_SECONDS
from costplane.lifecycle.drivers import DriverError, DriverSet, LaunchSpec
from costplane.money import format_usd
from costplane.policy.blueprintschema import BlueprintSpec, InputError, render, resolve_inputs
from costplane.pricing.skus import SkuCatalog, UnknownSku

__all__ = ["RESERVATION_MARGIN", "EnvironmentCore", "ExtendRequest", "LaunchRequest", "RuntimeVerdict",
           "render_driver"]

log = logging.getLogger("costplane.environments")

#: an environment's reservation expires this long after the environment would end
RESERVATION_MARGIN = 3600
#: a launch waiting for approval longer than this is rejected
APPROVAL_TIMEOUT = 86_400
RUNNING = (EnvState.ACTIVE, EnvState.EXPIRING)
#: facts of hook environment.runtime computed by the scheduler (a reported metric never replaces one)
RUNTIME_FACTS = ("blueprint", "environment_id", "accrued_usd", "projected_usd", "hourly_usd", "time_left_seconds",
                 "budget_remaining_usd", "idle_seconds")


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
    """`decider`: the server's one decider (its ledger, notifier and SLO gate); None: one is built over
    `store` with `clock` and `notifier` (tests, benchmarks, the CLI)."""

    def __init__(self, store: Store, skus: SkuCatalog, bundle: Callable[[], ActiveBundle], drivers: DriverSet,
                 clock: Callable[[], datetime] = _utcnow, notifier: Notifier | None = None, *,
                 decider: Decider | None = None) -> None:
        self.store = store
        self.skus = skus
        self._bundle = bundle
        self.drivers = drivers
        self.clock = clock
        self.decider = decider if decider is not None else Decider(store, bundle, clock=clock, notifier=notifier)
        self.notifier: Notifier = self.decider.notifier

    # -- helpers -----------------------------------------------------------------------------
    def bundle(self) -> ActiveBundle:
        return self._bundle()

    def blueprints(self) -> tuple[BlueprintSpec, ...]:
        return self._bundle().engine.bundle.blueprints

    def _prepare(self, asked: LaunchRequest, ctx: Context) -> _Launch | Denial:
        hook, name, given, ttl = "environment.launch", asked.blueprint, asked.inputs, asked.ttl
        adapter = asked.decision_input()

        def refuse(code: str, message: str, facts: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Denial:
            return self.decider.refuse(hook, ctx, code, message, facts=facts, adapter=adapter, extra=extra)

        blueprint = next((b for b in self.blueprints() if b.name == name), None)
        if blueprint is None:
            known = ", ".join(b.name for b in self.blueprints()) or "none"
            return refuse("unknown_blueprint", f"no blueprint named {name!r} in the bundle (blueprints: {known})",
                          {"blueprint": name})
        try:
            inputs = resolve_inputs(blueprint, given)
        except InputError as exc:
            return refuse("invalid_input", str(exc), {"blueprint": name}, {"fields": [i.field for i in exc.issues]})
        missing = [dim for dim in blueprint.require if not ctx.get(dim)]
        if missing:
            return refuse("missing_tags", f"blueprint {name!r} ({blueprint.location}) requires {', '.join(missing)} "
                          "in the context (key attributes or the request's context)", {"blueprint": name},
                          {"fields": [f"context.{m}" for m in missing]})
        life = blueprint.lifecycle
        ttl = life.ttl if ttl is None else ttl
        if ttl <= 0 or ttl > life.max_ttl:
            return refuse("ttl_exceeds_max", f"ttl {ttl}s is outside 1s..max_ttl {life.max_ttl}s of blueprint "
                          f"{name!r}", {"blueprint": name, "ttl_seconds": ttl}, {"fields": ["ttl"]})
        try:
            priced = estimate(blueprint, inputs, self.skus, self.clock())
        except UnknownSku as exc:
            return refuse("unknown_price", f"{exc}; unknown prices are denied", {"blueprint": name})
        except ValueError as exc:
            return refuse("invalid_input", str(exc), {"blueprint": name})
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
        return self.launch_request(ctx, LaunchRequest(blueprint, dict(inputs), ttl))

    def launch_request(self, ctx: Context, asked: LaunchRequest) -> EnvironmentRecord | Denial:
        """Hook environment.launch: policies, then the projected cost reserved on every budget (or a
        pending launch when a policy requires approval), then the driver starts it."""
        prepared = self._prepare(asked, ctx)
        if isinstance(prepared, Denial):
            return prepared
        evaluation = self.decider.evaluate("environment.launch", ctx, prepared.facts, adapter=asked.decision_input())
        if isinstance(evaluation, Denial):
            return evaluation
        policy = evaluation.policy
        ttl_cap = policy.mutations.get("ttl")
        if isinstance(ttl_cap, int) and ttl_cap < prepared.ttl:
            prepared = _Launch(prepared.blueprint, prepared.inputs, prepared.estimate, ttl_cap,
                               self._facts(prepared.blueprint, prepared.inputs, prepared.estimate, ttl_cap))
        env_id = new_id("env")
        if policy.effect == "require_approval":
            self.decider.notify_policies(evaluation, {"environment_id": env_id})
            record = self.decider.record(evaluation, "require_approval", evaluation.reason, ACCEPTED,
                                         {"environment_id": env_id})
            env = self._new_record(env_id, prepared, ctx, evaluation.now, evaluation.decision_id, EnvState.PENDING,
                                   next_action=evaluation.now + timedelta(seconds=APPROVAL_TIMEOUT))
            self.store.create_environment(env, record)
            return env
        return self._start(env_id, prepared, evaluation, "mutate" if ttl_cap is not None else "allow")

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

    def _start(self, env_id: str, p: _Launch, evaluation: Evaluation, effect: str, reason: str | None = None,
               pending: EnvironmentRecord | None = None) -> EnvironmentRecord | Denial:
        bundle, ctx, now = evaluation.bundle, evaluation.context, evaluation.now
        names = dict.fromkeys([*(b.name for b in evaluation.budgets), *p.blueprint.budgets])
        specs = tuple(bundle.budgets[n] for n in names if n in bundle.budgets)
        projected = p.estimate.projected_nano(p.ttl)
        expires = now + timedelta(seconds=p.ttl)
        reason = evaluation.reason if reason is None else reason
        hold = Hold(projected, expires + timedelta(seconds=RESERVATION_MARGIN), effect, reason,
                    {"environment_id": env_id, "projected_nano": projected, "hourly_nano": p.estimate.hourly_nano,
                     "ttl_seconds": p.ttl},
                    claim_model=f"blueprint:{p.blueprint.name}", budgets=specs, status=CREATED,
                    what=f"its projected {format_usd(projected)} USD")
        got = self.decider.reserve(evaluation, hold)
        if isinstance(got, Refused):
            return self.decider.budget_denial(evaluation, got)
        self.decider.notify_policies(evaluation, {"environment_id": env_id})
        reservation_id = got.reservation.id if got.reservation is not None else None
        spec = LaunchSpec(env_id, p.blueprint.name, render_driver(dict(p.blueprint.driver), p.inputs), p.inputs, ctx,
                          expires, p.ttl, p.estimate.resources, bundle.engine.bundle.root)
        try:
            handle = self.drivers.get(str(p.blueprint.driver.get("type"))).apply(spec)
        except DriverError as exc:
            if reservation_id is not None:
                self.decider.release(reservation_id)
            return self.decider.deny(dataclasses.replace(evaluation, decision_id=new_id("dec")), "driver_failed",
                                     f"driver failed to start the environment: {exc}")
        started = self.clock()
        expires = started + timedelta(seconds=p.ttl)
        changes = {"handle": handle, "reservation_id": reservation_id, "started_at": started, "expires_at": expires,
                   "max_expires_at": started + timedelta(seconds=p.blueprint.lifecycle.max_ttl),
                   "accrued_until": started, "next_action_at": started, "projected_nano": projected}
        if pending is not None:
            env = self.store.transition_environment(env_id, (EnvState.PENDING,), EnvState.ACTIVE, ts=started,
                                                    reason="approved", changes=changes)
            if env is None:  # rejected meanwhile: undo
                self.drivers.get(str(p.blueprint.driver.get("type"))).teardown(handle, 5.0)
                if reservation_id is not None:
                    self.decider.release(reservation_id)
                return Denial("not_pending", f"environment {env_id} is no longer pending", None)
            return env
        env = self._new_record(env_id, p, ctx, now, evaluation.decision_id, EnvState.ACTIVE, next_action=started)
        env = _replace(env, **changes)
        self.store.create_environment(env)
        return env

    # -- approvals --------------------------------------------------------------------------------
    def approve(self, env_id: str, approver: Context) -> EnvironmentRecord | Denial:
        env = self.store.get_environment(env_id)
        if env is None or env.state != EnvState.PENDING:
            return Denial("unknown_environment" if env is None else "not_pending",
                          f"environment {env_id} is {'unknown' if env is None else env.state}, not pending "
                          "approval", None)
        asked = LaunchRequest(env.blueprint, env.inputs, int(env.lifecycle["ttl"]))
        prepared = self._prepare(asked, env.context)
        if isinstance(prepared, Denial):
            return prepared
        budgets = self._bundle().engine.budgets_for("environment.launch", env.context, prepared.facts)
        who = approver.owner or approver.user or approver.key_id or "?"
        evaluation = self.decider.unevaluated("environment.approve", env.context, prepared.facts,
                                              adapter={**asked.decision_input(), "environment_id": env_id},
                                              budgets=budgets)
        return self._start(env_id, prepared, evaluation, "allow", f"approved by {who}", pending=env)

    def reject(self, env_id: str, approver: Context, reason: str = "") -> EnvironmentRecord | Denial:
        who = approver.owner or approver.user or approver.key_id or "?"
        text = f"rejected by {who}" + (f": {reason}" if reason else "")
        evaluation = self.decider.unevaluated("environment.reject", approver, {"environment_id": env_id},
                                              adapter={"environment_id": env_id})
        record = self.decider.record(evaluation, "deny", text, OK, {"environment_id": env_id})
        env = self.store.transition_environment(env_id, (EnvState.PENDING,), EnvState.REJECTED, ts=evaluation.now,
                                                reason=text, decision=record,
                                                changes={"ended_at": evaluation.now, "end_reason": text})
        if env is None:
            return Denial("not_pending", f"environment {env_id} is not pending approval", None)
        return env

    # -- extend -------------------------------------------------------------------------------------
    def extend(self, env_id: str, ctx: Context, by: int | None = None) -> EnvironmentRecord | Denial:
        """Hook environment.extend: policies, then the extension's cost held on the launch's reservation."""
        hook = "environment.extend"
        asked = ExtendRequest(env_id, by)
        env = self.store.get_environment(env_id)
        if env is None or env.state not in RUNNING:
            return Denial("unknown_environment" if env is None else "not_running",
                          f"environment {env_id} is {'unknown' if env is None else env.state}; only a running "
                          "environment can be extended", None)
        life = env.lifecycle
        step = int(by or life["extend_by"])
        if not 0 < step <= MAX_DURATION_SECONDS:  # checked before any date arithmetic (which would overflow)
            return Denial("invalid_extension", f"by: an extension must be 1s..{MAX_DURATION_SECONDS // 86400}d "
                          f"({MAX_DURATION_SECONDS} seconds), got {step}s", None)
        facts = {"blueprint": env.blueprint, "environment_id": env.id, "extend_seconds": step,
                 "extensions": env.extensions, "hourly_usd": env.hourly_nano / 1e9,
                 "accrued_usd": env.accrued_nano / 1e9, "ttl_seconds": int((env.expires_at - env.created_at)
                                                                             .total_seconds()) + step}
        max_ext = life.get("max_extensions")
        if max_ext is not None and env.extensions >= int(max_ext):
            return self.decider.refuse(hook, env.context, "max_extensions",
                                       f"environment {env_id} was already extended {env.extensions} times "
                                       f"(max_extensions {max_ext} of blueprint {env.blueprint!r})",
                                       facts=facts, adapter=asked.decision_input())
        evaluation = self.decider.evaluate(hook, env.context, facts, adapter=asked.decision_input())
        if isinstance(evaluation, Denial):
            return evaluation
        policy = evaluation.policy
        if policy.effect == "require_approval":
            return self.decider.deny(evaluation, "approval_required",
                                     f"extending needs approval (policy {policy.actions[0].name!r}); ask an approver "
                                     "to launch a new environment or raise the policy")
        cap = policy.mutations.get("ttl")
        if isinstance(cap, int):
            step = min(step, cap)
        new_expiry = env.expires_at + timedelta(seconds=step)
        if new_expiry > env.max_expires_at:
            return self.decider.deny(evaluation, "max_ttl_exceeded",
                                     f"extending by {step}s would end at {new_expiry.isoformat()}, past max_ttl "
                                     f"{life['max_ttl']}s of blueprint {env.blueprint!r} (ends at latest "
                                     f"{env.max_expires_at.isoformat()})")
        extra = cost_for(env.hourly_nano, step * 1_000_000)
        record = self.decider.record(evaluation, "mutate" if isinstance(cap, int) else "allow",
                                     f"extended by {step}s", OK, {"environment_id": env.id, "extra_nano": extra,
                                                                  "extend_seconds": step,
                                                                  "expires_at": new_expiry.isoformat()},
                                     context=ctx)
        if env.reservation_id is not None:
            grown = self.decider.grow(evaluation, env.reservation_id, extra,
                                      new_expiry + timedelta(seconds=RESERVATION_MARGIN),
                                      what=f"this extension's {format_usd(extra)} USD")
            if isinstance(grown, Refused):
                return self.decider.budget_denial(evaluation, grown)
        self.decider.notify_policies(evaluation, {"environment_id": env.id})
        updated = self.store.transition_environment(
            env.id, RUNNING, EnvState.ACTIVE, ts=evaluation.now, reason=f"extended by {step}s", decision=record,
            changes={"expires_at": new_expiry, "projected_nano": env.projected_nano + extra,
                     "extensions": env.extensions + 1, "notice_sent": False, "next_action_at": evaluation.now})
        return updated or Denial("not_running", f"environment {env_id} ended meanwhile", None)

    # -- runtime --------------------------------------------------------------------------------------
    def runtime(self, env: EnvironmentRecord, now: datetime) -> RuntimeVerdict | None:
        """Hook environment.runtime (a scheduler pass): its runtime policies and its hard budgets, read
        from the ledger. A teardown or suspend is returned (the scheduler acts, and the transition logs
        this evaluation as its decision); notify policies are raised here."""
        remaining: list[int] = []
        if env.reservation_id is not None:
            reservation = self.store.get_reservation(env.reservation_id)
            if reservation is not None:
                remaining = [s.limit_nano - s.spent_nano for s in self.decider.ledger.claim_states(reservation.claims)
                             if s.limit_nano is not None and s.hard]
        fresh = self.store.get_environment(env.id) or env
        facts: dict[str, Any] = {
            "blueprint": env.blueprint, "environment_id": env.id, "accrued_usd": fresh.accrued_nano / 1e9,
            "projected_usd": fresh.projected_nano / 1e9, "hourly_usd": env.hourly_nano / 1e9,
            "time_left_seconds": int((env.expires_at - now).total_seconds()),
            "budget_remaining_usd": min(remaining) / 1e9 if remaining else -1.0,
            "idle_seconds": int((now - env.idle_since).total_seconds()) if env.idle_since else 0}
        for name, reading in fresh.metrics.items():
            if isinstance(reading, Mapping) and name not in facts:  # a metric never replaces a computed fact
                facts[name] = float(reading["value"])
        evaluation = self.decider.evaluate("environment.runtime", env.context, facts,
                                           adapter={"environment_id": env.id})
        if isinstance(evaluation, Denial):  # no deny effect at this hook; kept total
            return None
        if remaining and min(remaining) <= 0:
            return RuntimeVerdict("teardown", "budget exhausted: a hard budget of this environment has no money left",
                                  evaluation)
        self.decider.notify_policies(evaluation, {"environment_id": env.id})
        policy = evaluation.policy
        if policy.effect in ("teardown", "suspend"):
            first = policy.actions[0]
            return RuntimeVerdict(policy.effect, f"runtime policy {first.name!r}: {first.reason}", evaluation)
        return None

    def runtime_record(self, verdict: RuntimeVerdict, env: EnvironmentRecord, ended: datetime | None = None
                       ) -> DecisionRecord:
        """The decision record of a runtime verdict (written with the environment's transition)."""
        result: dict[str, Any] = {"environment_id": env.id, "action": verdict.action}
        if ended is not None:
            result["ended_at"] = ended.isoformat()
        return self.decider.record(verdict.evaluation, verdict.action, verdict.reason, OK, result)

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
        # hook spend.record: the running cost is observed spend
        decision, policy, _ = observe(self._bundle(), event, "environment", {"environment_id": env.id},
                                      decision_id=new_id("dec"), now=self.clock())
        logged = decision if due > 0 else None
        self.decider.accrue(env.reservation_id, event, close=close, environment_id=env.id, accrued_until=end,
                            decision=logged)  # alerts the thresholds crossed
        for notice in policy_notices(policy, decision.id) if logged is not None else []:
            self.notifier.notify(notice)
        return max(0, due)

    def teardown(self, env_id: str, reason: str, ctx: Context | None = None, *, hook: str = "environment.teardown",
                 verdict: RuntimeVerdict | None = None) -> EnvironmentRecord | Denial:
        """Stop the environment (driver), record its last cost and close its reservation. Idempotent.
        `verdict`: the runtime decision that tore it down (logged as the transition's decision)."""
        env = self.store.get_environment(env_id)
        if env is None:
            return Denial("unknown_environment", f"no environment {env_id}", None)
        if not env.is_open:
            return Denial("not_running", f"environment {env_id} is already {env.state}", None)
        if env.state == EnvState.PENDING:
            return self.reject(env_id, ctx or env.context, reason)
        grace = float(env.lifecycle.get("grace") or 10)
        if env.handle:
            try:
                self.drivers.get(str(env.driver.get("type"))).teardown(env.handle, grace)
            except DriverError as exc:
                log.error("teardown of %s failed: %s", env_id, exc)
                return Denial("driver_failed", f"driver failed to tear down {env_id}: {exc}", None)
        now = self.clock()
        end = min(now, env.expires_at) if reason.startswith("ttl") else now
        if verdict is not None:
            record = self.runtime_record(verdict, env, end)
        else:
            evaluation = self.decider.unevaluated(hook, ctx or env.context,
                                                  {"environment_id": env.id, "blueprint": env.blueprint},
                                                  adapter={"environment_id": env.id})
            record = self.decider.record(evaluation, "teardown", reason, OK,
                                         {"environment_id": env.id, "ended_at": end.isoformat()})
        done = self.store.transition_environment(env.id, (EnvState.ACTIVE, EnvState.EXPIRING, EnvState.SUSPENDED),
                                                 EnvState.TORN_DOWN, ts=now, reason=reason, decision=record,
                                                 changes={"ended_at": end, "end_reason": reason})
        if done is None:
            return Denial("not_running", f"environment {env_id} already ended", None)
        self.accrue(done, end, close=True)
        return self.store.get_environment(env.id) or done


def _replace(env: EnvironmentRecord, **changes: Any) -> EnvironmentRecord:
    return dataclasses.replace(env, **changes)



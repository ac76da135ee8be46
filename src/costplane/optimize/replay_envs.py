"""Policy replay of governed environments: re-decide recorded launches (and their extensions and
runtime) under a candidate bundle, as `core.environments` and `lifecycle.scheduler` would have.

For every environment launch recorded in the window — its `environment.launch` decision, or, for an
environment record with no decision in the log, the record itself — the candidate's blueprint is
looked up, the recorded inputs resolved, required tags, TTL against `max_ttl` and the SKU prices
checked (`core.envpricing.estimate`), then the candidate's `environment.launch` policies and budgets
decide. What a launch that ran actually cost is the sum of its accrued `environment` cost events.

* **denied** — blueprint removed, inputs no longer accepted, a tag now required, TTL past the new
  `max_ttl`, an unknown price, or a deny policy: saved = what it actually cost;
* **needs_approval** — a `require_approval` policy now matches a launch that ran without one:
  nothing is counted as saved (an approver may say yes), its cost is shown as at stake;
* **budget_refused** — the candidate's budgets (the in-memory ledger the requests are decided against,
  in time order, with the projected cost hourly × TTL as the claim, settled with the replayed cost)
  have no room: saved = what it cost;
* **changed** — it would run, differently: on other SKUs (a blueprint's resources or input default
  changed; saved = the price difference × the hours it ran), for less time (a `mutate` TTL cap, a
  lower `max_ttl`, an extension the candidate refuses or caps, or an `environment.runtime` teardown
  or suspend policy that matches during the run; saved = the hours cut × the hourly price), or both.

Runtime policies are evaluated every `RUNTIME_STEP` of the run and at every metric reading, on the
facts the scheduler builds; only the latest reading of each metric is stored, so a metric is known
from its reading's time on. `budget_remaining_usd` is not simulated (it reads -1, "no budget").
Launches recorded as denied that the candidate would admit are counted as `newly_admitted`.

The environment adapter of the decision core (`core.environments.EnvironmentCore`) needs the whole
store (it creates environment records), so launches are not yet decided through it: this module
reads the candidate's blueprints and `environment.*` policies itself, and claims its budgets on the
same `MemoryLedger` as the requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from costplane.attribution.context import Context
from costplane.core.claims import budget_claims
from costplane.core.environments import EnvironmentCore
from costplane.core.envpricing import Estimate, cost_for, estimate
from costplane.ledger import codec
from costplane.ledger.envtypes import EnvironmentRecord
from costplane.ledger.memory import MemoryLedger
from costplane.ledger.store import Store
from costplane.ledger.types import BudgetClaim, CostEvent, DecisionRecord, Reservation
from costplane.money import format_usd
from costplane.optimize.replay_envreport import LaunchChange, LaunchReport
from costplane.optimize.stream import DEFAULT_BATCH, iter_decisions
from costplane.policy.blueprintschema import BlueprintSpec, InputError, resolve_inputs
from costplane.policy.bundle import Bundle
from costplane.policy.engine import PolicyEngine
from costplane.pricing.skus import SkuCatalog, UnknownSku

__all__ = ["LAUNCH_KINDS", "RUNTIME_STEP", "LaunchChange", "LaunchReplayer", "LaunchReport", "RecordedLaunch",
           "load_launches"]

LAUNCH, EXTEND, RUNTIME = "environment.launch", "environment.extend", "environment.runtime"
LAUNCH_KINDS = ("denied", "needs_approval", "budget_refused", "changed")
RUNTIME_STEP = 300  # seconds between runtime evaluations (the scheduler checks at least this often)
_ALL_ENVIRONMENTS = 1_000_000
_ADMITTED = ("allow", "mutate")


@dataclass(frozen=True, slots=True)
class RecordedLaunch:
    """One launch: its decision (None for a record with no decision in the log), the environment it
    started (None if it was denied), what it actually cost and its recorded extensions."""

    ts: datetime
    decision: DecisionRecord | None
    env: EnvironmentRecord | None
    cost_nano: int = 0
    extends: tuple[DecisionRecord, ...] = ()

    @property
    def context(self) -> Context:
        if self.decision is not None:
            return self.decision.context
        return self.env.context if self.env is not None else Context()

    @property
    def blueprint(self) -> str:
        if self.env is not None:
            return self.env.blueprint
        return str(self.decision.input.get("blueprint", "")) if self.decision is not None else ""

    @property
    def ran(self) -> bool:
        return self.env is not None and self.env.started_at is not None

    @property
    def approved(self) -> bool:
        """It ran after an approver said yes."""
        return self.decision is not None and self.decision.effect == "require_approval"

    @property
    def inputs(self) -> Mapping[str, Any]:
        recorded = self.decision.input.get("inputs") if self.decision is not None else None
        if isinstance(recorded, Mapping):
            return recorded
        return self.env.inputs if self.env is not None else {}

    @property
    def ttl(self) -> int | None:
        if self.env is not None:
            return int(self.env.lifecycle.get("ttl") or 0) or None
        value = self.decision.input.get("ttl_seconds") if self.decision is not None else None
        return int(value) if isinstance(value, int) else None


def load_launches(store: Store, since: datetime, until: datetime, *,
                  batch: int = DEFAULT_BATCH) -> list[RecordedLaunch]:
    """Every launch of the window, oldest first (read-only). Launches are few next to requests: they
    are held in memory; the decisions are paged like the requests."""
    launches: list[tuple[DecisionRecord, str | None]] = []
    extends: dict[str, list[DecisionRecord]] = {}
    for decision in iter_decisions(store, (LAUNCH, EXTEND), since, until, batch=batch):
        env_id = decision.result.get("environment_id") or decision.input.get("environment_id")
        env_id = env_id if isinstance(env_id, str) else None
        if decision.hook == LAUNCH:
            launches.append((decision, env_id))
        elif env_id is not None:
            extends.setdefault(env_id, []).append(decision)
    envs = {e.id: e for e in store.list_environments(limit=_ALL_ENVIRONMENTS)}
    linked = {env_id for _, env_id in launches if env_id is not None}
    orphans = [e for e in envs.values() if e.id not in linked and since <= e.created_at < until]
    runs = [envs[i] for i in linked if i in envs] + orphans
    costs = store.environment_costs([e.decision_id for e in runs])

    def cost(env: EnvironmentRecord | None) -> int:
        return 0 if env is None else costs.get(env.decision_id, env.accrued_nano)

    out = [RecordedLaunch(d.ts, d, envs.get(i) if i else None, cost(envs.get(i) if i else None),
                          tuple(extends.get(i, ())) if i else ()) for d, i in launches]
    out += [RecordedLaunch(e.created_at, None, e, cost(e), tuple(extends.get(e.id, ()))) for e in orphans]
    out.sort(key=lambda launch: (launch.ts, launch.decision.id if launch.decision else launch.env.id
                                 if launch.env else ""))
    return out


@dataclass(frozen=True, slots=True)
class _Plan:
    blueprint: BlueprintSpec
    estimate: Estimate
    ttl: int
    facts: dict[str, Any]


class LaunchReplayer:
    """Re-decides launches one at a time, in time order, on the requests' in-memory ledger."""

    def __init__(self, bundle: Bundle, engine: PolicyEngine, skus: SkuCatalog, ledger: MemoryLedger,
                 report: LaunchReport) -> None:
        self.bundle, self.engine, self.skus, self.ledger, self.report = bundle, engine, skus, ledger, report
        self.runtime = any(p.hook == RUNTIME for p in bundle.policies)
        self._serial = 0

    def _reserve(self, launch: RecordedLaunch, claims: tuple[BudgetClaim, ...], ttl: int) -> str | BudgetClaim:
        """Hold the projected cost on the ledger: the reservation id, or the claim refused."""
        self._serial += 1
        decision = DecisionRecord(f"replay_launch_{self._serial}", launch.ts, LAUNCH, "allow", self.bundle.revision,
                                  launch.context, {}, {})
        reservation = Reservation(f"replay_launch_{self._serial}", claims, launch.ts,
                                  launch.ts + timedelta(seconds=ttl), decision.id, launch.context.key_id)
        outcome = self.ledger.reserve(reservation, decision)
        if outcome.ok:
            return reservation.id
        refused = outcome.refused
        return next((c for c in claims if refused is not None and c.budget == refused.budget), claims[0])

    def _plan(self, launch: RecordedLaunch) -> _Plan | tuple[str, str]:
        """What `EnvironmentCore._prepare` would make of the launch, or (cause, detail) of its denial."""
        name = launch.blueprint
        blueprint = self.bundle.blueprint(name)
        if blueprint is None:
            return f"blueprint {name}", f"no blueprint named {name!r} in the candidate bundle"
        try:
            inputs = resolve_inputs(blueprint, launch.inputs)
        except InputError as exc:
            issue = exc.issues[0]
            return f"blueprint {name}", f"{issue.field}: {issue.message}"
        missing = [dim for dim in blueprint.require if not launch.context.get(dim)]
        if missing:
            return f"blueprint {name}", f"requires {', '.join(missing)} in the context"
        ttl = launch.ttl or blueprint.lifecycle.ttl
        if ttl > blueprint.lifecycle.max_ttl:
            return f"blueprint {name}", f"ttl {ttl}s is past max_ttl {blueprint.lifecycle.max_ttl}s"
        try:
            priced = estimate(blueprint, inputs, self.skus, launch.ts)
        except (UnknownSku, ValueError) as exc:
            return f"blueprint {name}", str(exc)
        return _Plan(blueprint, priced, ttl, EnvironmentCore._facts(blueprint, inputs, priced, ttl))

    def _change(self, launch: RecordedLaunch, kind: str, cause: str, detail: str, replayed: int) -> None:
        env = launch.env
        self.report.record(LaunchChange(env.id if env else None, launch.decision.id if launch.decision else None,
                                        launch.ts, launch.blueprint, kind, cause, detail, launch.cost_nano,
                                        replayed, launch.context.team))

    def run(self, launch: RecordedLaunch) -> None:
        report = self.report
        report.launches += 1
        report.recorded_nano += launch.cost_nano
        report.replayed_nano += launch.cost_nano  # corrected below when the launch changes
        plan = self._plan(launch)
        policy = None
        if not isinstance(plan, tuple):
            policy, budgets = self.engine.decide(LAUNCH, launch.context, plan.facts)
            if policy.effect == "deny" and policy.deny is not None:
                plan = (policy.deny.name, policy.deny.reason or "denied by policy")
        if not launch.ran or launch.env is None or launch.env.started_at is None:
            if not isinstance(plan, tuple) and (policy is None or policy.effect != "require_approval"):
                report.newly_admitted += 1
            return
        report.ran += 1
        if isinstance(plan, tuple):
            self._refuse(launch, "denied", *plan)
            return
        assert policy is not None
        if policy.effect == "require_approval" and not launch.approved:
            report.at_stake_nano += launch.cost_nano
            self._change(launch, "needs_approval", policy.actions[0].name,
                         policy.actions[0].reason or "would wait for an approver", launch.cost_nano)
            return
        specs = [self.bundle.budget(n) for n in dict.fromkeys([*(b.name for b in budgets), *plan.blueprint.budgets])]
        ttl, causes = plan.ttl, []
        cap = policy.mutations.get("ttl")
        if isinstance(cap, int) and cap < ttl:
            ttl = cap
            causes.append((next((m.name for m in policy.matched if m.effect == "mutate"), "ttl"),
                           f"ttl capped to {cap}s"))
        claims = budget_claims([s for s in specs if s is not None], launch.context,
                               f"blueprint:{plan.blueprint.name}", plan.estimate.projected_nano(ttl), launch.ts)
        held = self._reserve(launch, claims, ttl)
        if isinstance(held, BudgetClaim):
            self._refuse(launch, "budget_refused", held.budget,
                         f"budget {held.budget} cannot hold the projected {format_usd(held.amount_nano)} USD")
            return
        replayed, detail = self._run_cost(launch, plan, ttl, causes)
        self.ledger.settle(held, CostEvent(f"{held}_cost", launch.ts, launch.context, "environment",
                                           f"blueprint:{plan.blueprint.name}", replayed, kind="environment",
                                           decision_id=held, reservation_id=held))
        if causes or replayed != launch.cost_nano:
            report.replayed_nano += replayed - launch.cost_nano
            self._change(launch, "changed", ", ".join(dict.fromkeys(c for c, _ in causes)) or f"blueprint "
                         f"{plan.blueprint.name}", detail, replayed)

    def _refuse(self, launch: RecordedLaunch, kind: str, cause: str, detail: str) -> None:
        self.report.replayed_nano -= launch.cost_nano
        self._change(launch, kind, cause, detail, 0)

    def _run_cost(self, launch: RecordedLaunch, plan: _Plan, ttl: int,
                  causes: list[tuple[str, str]]) -> tuple[int, str]:
        """What the run would cost under the candidate, and how it differs (appends to `causes`)."""
        env = launch.env
        assert env is not None and env.started_at is not None
        start = env.started_at
        actual_end = env.accrued_until or env.ended_at or start  # what its accrued cost covers
        end = actual_end
        max_end = start + timedelta(seconds=plan.blueprint.lifecycle.max_ttl)
        expiry = self._extended(launch, plan, start + timedelta(seconds=ttl), max_end, causes)
        if expiry < end:
            end = expiry
            if not causes:
                causes.append((f"blueprint {plan.blueprint.name}", "ends earlier"))
        if max_end < end:
            end = max_end
            causes.append((f"blueprint {plan.blueprint.name}", f"max_ttl {plan.blueprint.lifecycle.max_ttl}s"))
        stop = self._runtime_stop(launch, plan, start, end, expiry)
        if stop is not None:
            end = stop[0]
            causes.append((stop[1], f"{stop[2]} at {stop[0].isoformat()}"))
        hourly = plan.estimate.hourly_nano
        resized = hourly != env.hourly_nano
        if resized:
            before = ", ".join(f"{r.get('count')}x {r.get('sku')}" for r in env.resources)
            after = ", ".join(f"{r.get('count')}x {r.get('sku')}" for r in plan.estimate.resources)
            causes.append((f"blueprint {plan.blueprint.name}", f"{before} -> {after}"))
        if not resized and end >= actual_end:
            return launch.cost_nano, ""
        seconds = max(0, codec.to_us(end) - codec.to_us(start))
        hours = seconds / 3.6e9
        detail = "; ".join(d for _, d in causes) + f" (runs {hours:.2f} h at {format_usd(hourly)} USD/h)"
        return cost_for(hourly, seconds), detail

    def _extended(self, launch: RecordedLaunch, plan: _Plan, expiry: datetime, max_end: datetime,
                  causes: list[tuple[str, str]]) -> datetime:
        """The expiry after the recorded extensions the candidate still grants, in order."""
        env = launch.env
        assert env is not None
        life = plan.blueprint.lifecycle
        for n, decision in enumerate(d for d in launch.extends if d.effect in _ADMITTED and d.status_code < 300):
            if decision.ts >= expiry:  # under the candidate it had ended before this extension was asked
                return expiry
            step = int(decision.input.get("extend_seconds") or life.extend_by)
            if life.max_extensions is not None and n >= life.max_extensions:
                causes.append((f"blueprint {plan.blueprint.name}", f"max_extensions {life.max_extensions}"))
                return expiry
            facts = dict(decision.input)
            facts["ttl_seconds"] = int((expiry - (env.started_at or expiry)).total_seconds()) + step
            policy, _ = self.engine.decide(EXTEND, env.context, facts)
            if policy.effect in ("deny", "require_approval"):
                refused = policy.deny or policy.actions[0]
                causes.append((refused.name, f"extension {n + 1} refused"))
                return expiry
            cap = policy.mutations.get("ttl")
            if isinstance(cap, int) and cap < step:
                step = cap
                causes.append((next((m.name for m in policy.matched if m.effect == "mutate"), "ttl"),
                               f"extension {n + 1} capped to {cap}s"))
            if expiry + timedelta(seconds=step) > max_end:
                causes.append((f"blueprint {plan.blueprint.name}", f"extension {n + 1} past max_ttl"))
                return expiry
            expiry += timedelta(seconds=step)
        return expiry

    def _runtime_stop(self, launch: RecordedLaunch, plan: _Plan, start: datetime, end: datetime,
                      expiry: datetime) -> tuple[datetime, str, str] | None:
        """The first instant a runtime policy tears the environment down or suspends it, if any."""
        if not self.runtime or end <= start:
            return None
        env = launch.env
        assert env is not None
        readings: list[tuple[datetime, str, float]] = []
        for name, reading in env.metrics.items():
            if isinstance(reading, Mapping):
                try:
                    readings.append((datetime.fromisoformat(str(reading["at"])), name, float(reading["value"])))
                except (KeyError, TypeError, ValueError):
                    continue
        instants = {start + timedelta(seconds=s) for s in range(0, int((end - start).total_seconds()), RUNTIME_STEP)}
        instants.update(at for at, _, _ in readings if start <= at < end)
        hourly = plan.estimate.hourly_nano
        for at in sorted(instants):
            facts: dict[str, Any] = {
                "blueprint": env.blueprint, "environment_id": env.id,
                "accrued_usd": cost_for(hourly, codec.to_us(at) - codec.to_us(start)) / 1e9,
                "projected_usd": plan.estimate.projected_nano(int((expiry - start).total_seconds())) / 1e9,
                "hourly_usd": hourly / 1e9, "time_left_seconds": int((expiry - at).total_seconds()),
                "budget_remaining_usd": -1.0,
                "idle_seconds": int((at - env.idle_since).total_seconds()) if env.idle_since and
                env.idle_since <= at else 0}
            facts.update({name: value for when, name, value in readings if when <= at})
            policy, _ = self.engine.decide(RUNTIME, env.context, facts)
            if policy.effect in ("teardown", "suspend"):
                return at, policy.actions[0].name, policy.effect
        return None

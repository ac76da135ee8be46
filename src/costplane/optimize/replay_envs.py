"""Policy replay of governed environments: re-decide recorded launches (and their extensions and
runtime) under a candidate bundle, through the decision core's environment adapter.

Every environment launch recorded in the window — its `environment.launch` decision, or, for an
environment record with no decision in the log, the record itself — is rebuilt as it was asked for
(`LaunchRequest.from_decision_input`: blueprint, inputs, TTL) and handed to `EnvironmentCore` itself,
the adapter the live server launches with. The replay gives it:

* the replay's one decider (`DecisionCore.decider`) over the same in-memory `MemoryLedger` the LLM
  requests are decided against, so requests and launches share the candidate's budgets, in time order;
* the candidate bundle, the SKU catalog and the recorded clock (the launch at its decision's time,
  started when the recorded environment started);
* a scratch store for its environment records (a temporary SQLite file, removed when the replay
  ends; the replayed store is only read) and drivers that start nothing (`noop`).

So the blueprint lookup, the inputs, required tags, TTL against `max_ttl`, SKU prices, the
`environment.launch` policies and budget claims, approvals (`approve`), extensions (`extend`, with
each recorded extension's `ExtendRequest`) and runtime passes (`runtime`) are the adapter's own
decisions — one code path with the live server. What the replay adds is the comparison: what a
launch that ran actually cost is the sum of its accrued `environment` cost events, and

* **denied** — the adapter refuses it (blueprint removed, inputs no longer accepted, a tag now
  required, TTL past the new `max_ttl`, an unknown price, or a deny policy): saved = what it cost;
* **needs_approval** — a `require_approval` policy now matches a launch that ran without one:
  nothing is counted as saved (an approver may say yes), its cost is shown as at stake (a launch
  that ran after an approver said yes is approved again through the adapter);
* **budget_refused** — the candidate's budgets cannot hold its projected cost (hourly × TTL): saved =
  what it cost;
* **changed** — it would run, differently: on other SKUs (saved = the price difference × the hours
  it ran), for less time (a `mutate` TTL cap, an extension the adapter refuses or caps, or an
  `environment.runtime` teardown or suspend verdict during the run; saved = the hours cut × the
  hourly price), or both.

An admitted launch's reservation is settled with its replayed cost at the launch's time. Runtime
passes run every `RUNTIME_STEP` of the run and at every metric reading (only when the candidate has
`environment.runtime` policies); only the latest reading of each metric is stored, so a metric is
known from its reading's time on. The hard-budget teardown of a runtime pass is not simulated
(`budget_remaining_usd` reads -1, "no budget"). Launches recorded as denied that the candidate
would admit are counted as `newly_admitted` (their reservation is given back: nothing was spent).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from costplane.attribution.context import Context
from costplane.core.decider import Decider
from costplane.core.environments import EnvironmentCore
from costplane.core.envpricing import cost_for
from costplane.core.envrequests import ExtendRequest, LaunchRequest
from costplane.core.requests import Denial
from costplane.ledger import codec
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.ledger.memory import MemoryLedger
from costplane.ledger.open import open_store
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.ledger.usertypes import DecisionQuery
from costplane.lifecycle.drivers import Driver, DriverSet, NoopDriver
from costplane.money import format_usd
from costplane.optimize.replay_envreport import LaunchChange, LaunchReport
from costplane.optimize.stream import DEFAULT_BATCH, iter_decisions
from costplane.pricing.skus import SkuCatalog

__all__ = ["LAUNCH_KINDS", "RUNTIME_STEP", "LaunchChange", "LaunchReplayer", "LaunchReport", "Moment",
           "RecordedLaunch", "load_launches"]

LAUNCH, EXTEND, RUNTIME = "environment.launch", "environment.extend", "environment.runtime"
LAUNCH_KINDS = ("denied", "needs_approval", "budget_refused", "changed")
RUNTIME_STEP = 300  # seconds between runtime evaluations (the scheduler checks at least this often)
_ALL_ENVIRONMENTS = 1_000_000
_ADMITTED = ("allow", "mutate")
_BUDGET_CODES = ("budget_exceeded", "call_limit_exceeded", "concurrency_limit", "spend_unverifiable")


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
    def ttl(self) -> int | None:
        if self.env is not None:
            return int(self.env.lifecycle.get("ttl") or 0) or None
        value = self.decision.input.get("ttl_seconds") if self.decision is not None else None
        return int(value) if isinstance(value, int) else None

    def request(self) -> LaunchRequest:
        """The launch as it was asked for: from its logged decision input, else (no decision, or one
        logged without the launch's fields) from its record."""
        if self.decision is not None and "blueprint" in self.decision.input:
            return LaunchRequest.from_decision_input(self.decision.input)
        env = self.env
        return LaunchRequest(self.blueprint, dict(env.inputs) if env is not None else {}, self.ttl)


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


class Moment:
    """The time a launch's own later decisions (its extensions, its runtime passes) are taken at,
    ahead of the time the requests are replayed at; None between launches. The replay's clock reads it."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at: datetime | None = None


class _DryDrivers(DriverSet):
    """Every blueprint's driver is the `noop` one: a replay starts and stops nothing."""

    def __init__(self) -> None:  # no state directory: nothing runs
        self._noop = NoopDriver()

    def get(self, name: str) -> Driver:
        return self._noop


def _message(denial: Denial) -> str:
    """A refusal's message without the decision id and revision (they name the replayed decision)."""
    return denial.message.rsplit(" (decision ", 1)[0]


class LaunchReplayer:
    """Re-decides launches one at a time, in time order, through `EnvironmentCore` over the requests'
    decider (and so their in-memory ledger). `close()` removes the scratch store."""

    def __init__(self, decider: Decider, ledger: MemoryLedger, skus: SkuCatalog, moment: Moment,
                 report: LaunchReport) -> None:
        self.decider, self.ledger, self.moment, self.report = decider, ledger, moment, report
        active = decider.bundle()
        bundle = active.engine.bundle
        self.effects = {p.name: p.effect for p in bundle.policies}
        self.runtime = any(p.hook == RUNTIME for p in bundle.policies)
        self._dir = tempfile.TemporaryDirectory(prefix="costplane-replay-")
        self.store = open_store(f"sqlite:///{Path(self._dir.name) / 'environments.db'}")
        self.store.migrate()
        self._now: datetime | None = None
        self.core = EnvironmentCore(self.store, skus, lambda: active, _DryDrivers(), clock=self._clock,
                                    decider=decider)

    def close(self) -> None:
        self.store.close()
        self._dir.cleanup()

    def _clock(self) -> datetime:
        return self._now if self._now is not None else self.decider.clock()

    def _at(self, ts: datetime) -> None:
        self.moment.at = self._now = ts

    def _pop(self, decision_id: str | None) -> DecisionRecord | None:
        """The replayed decision logged on the in-memory ledger (no longer kept there)."""
        return self.ledger.pop_decision(decision_id) if decision_id is not None else None

    def _scratch_decision(self, decision_id: str | None, ts: datetime) -> DecisionRecord | None:
        """A decision the adapter wrote with an environment's record (a pending launch, an extension)."""
        if decision_id is None:
            return None
        found = self.store.query_decisions(DecisionQuery(since=ts, until=ts + timedelta(seconds=1), limit=1000))
        return next((d for d in found if d.id == decision_id), None)

    def _first(self, record: DecisionRecord | None, *effects: str) -> str | None:
        names = record.policies if record is not None else ()
        return next((n for n in names if self.effects.get(n) in effects), None)

    def _change(self, launch: RecordedLaunch, kind: str, cause: str, detail: str, replayed: int) -> None:
        env = launch.env
        self.report.record(LaunchChange(env.id if env else None, launch.decision.id if launch.decision else None,
                                        launch.ts, launch.blueprint, kind, cause, detail, launch.cost_nano,
                                        replayed, launch.context.team))

    def _refuse(self, launch: RecordedLaunch, denial: Denial, record: DecisionRecord | None) -> None:
        """A launch that ran, refused by the candidate: denied or budget refused, all of its cost saved."""
        if denial.code in _BUDGET_CODES:
            budget = record.result.get("budget") if record is not None else None
            kind, cause = "budget_refused", str(budget or denial.code)
        else:
            kind = "denied"
            cause = self._first(record, "deny", "require_approval") or f"blueprint {launch.request().blueprint}"
        self.report.replayed_nano -= launch.cost_nano
        self._change(launch, kind, cause, _message(denial), 0)

    def run(self, launch: RecordedLaunch) -> DecisionRecord | None:
        """Decide `launch` again (at its recorded time) and count what changed; returns the replayed
        launch decision (None when nothing was logged)."""
        report = self.report
        report.launches += 1
        report.recorded_nano += launch.cost_nano
        report.replayed_nano += launch.cost_nano  # corrected below when the launch changes
        recorded = launch.env
        self.moment.at = launch.ts
        self._now = recorded.started_at if recorded is not None and recorded.started_at is not None else launch.ts
        try:
            got = self.core.launch_request(launch.context, launch.request())
            decision_id = got.decision_id
            record = self._pop(decision_id)
            if not launch.ran or recorded is None:
                if isinstance(got, EnvironmentRecord) and got.state != EnvState.PENDING:
                    report.newly_admitted += 1
                    if got.reservation_id is not None:  # nothing was spent: it was refused when recorded
                        self.decider.release(got.reservation_id)
                return record
            report.ran += 1
            if isinstance(got, Denial):
                self._refuse(launch, got, record)
                return record
            if got.state == EnvState.PENDING:  # its decision went to the scratch store with its record
                record = self._scratch_decision(got.decision_id, launch.ts)
                if not launch.approved:
                    pending = record
                    report.at_stake_nano += launch.cost_nano
                    self._change(launch, "needs_approval", self._first(pending, "require_approval") or "approval",
                                 (pending.reason if pending is not None else "") or "would wait for an approver",
                                 launch.cost_nano)
                    return pending
                approved = self.core.approve(got.id, launch.context)
                if isinstance(approved, Denial):
                    self._refuse(launch, approved, self._pop(approved.decision_id))
                    return record
                got = approved
            self._ran(launch, recorded, got, record)
            return record
        finally:
            self.moment.at = self._now = None

    def _ran(self, launch: RecordedLaunch, recorded: EnvironmentRecord, env: EnvironmentRecord,
             record: DecisionRecord | None) -> None:
        """An admitted launch that ran: its extensions and runtime passes through the adapter, its
        replayed cost settled on its reservation."""
        causes: list[tuple[str, str]] = []
        ttl = int(env.lifecycle.get("ttl") or 0)
        if record is not None and record.effect == "mutate" and launch.ttl is not None and ttl < launch.ttl:
            causes.append((self._first(record, "mutate") or "ttl", f"ttl capped to {ttl}s"))
        if recorded.started_at is None or env.started_at is None:  # both ran: kept total
            return
        start = env.started_at
        actual_end = recorded.accrued_until or recorded.ended_at or start  # what its accrued cost covers
        env = self._extend(launch, env, causes)
        end = actual_end
        if env.expires_at < end:
            end = env.expires_at
            if not causes:
                causes.append((f"blueprint {env.blueprint}", "ends earlier"))
        stop = self._runtime_stop(recorded, env, start, end)
        if stop is not None:
            end = stop[0]
            causes.append((stop[1], f"{stop[2]} at {stop[0].isoformat()}"))
        hourly = env.hourly_nano
        resized = hourly != recorded.hourly_nano
        if resized:
            before = ", ".join(f"{r.get('count')}x {r.get('sku')}" for r in recorded.resources)
            after = ", ".join(f"{r.get('count')}x {r.get('sku')}" for r in env.resources)
            causes.append((f"blueprint {env.blueprint}", f"{before} -> {after}"))
        replayed, detail = launch.cost_nano, ""
        if resized or end < actual_end:
            seconds = max(0, codec.to_us(end) - codec.to_us(start))
            replayed = cost_for(hourly, seconds)
            detail = "; ".join(d for _, d in causes) + f" (runs {seconds / 3.6e9:.2f} h at {format_usd(hourly)} USD/h)"
        if env.reservation_id is not None:
            self.decider.settle(env.reservation_id, CostEvent(
                f"{env.reservation_id}_cost", launch.ts, env.context, "environment", f"blueprint:{env.blueprint}",
                replayed, kind="environment", decision_id=env.decision_id, reservation_id=env.reservation_id))
        if causes or replayed != launch.cost_nano:
            self.report.replayed_nano += replayed - launch.cost_nano
            self._change(launch, "changed", ", ".join(dict.fromkeys(c for c, _ in causes)) or
                         f"blueprint {env.blueprint}", detail, replayed)

    def _extend(self, launch: RecordedLaunch, env: EnvironmentRecord,
                causes: list[tuple[str, str]]) -> EnvironmentRecord:
        """The recorded extensions asked again of the adapter, in order, while the candidate grants them."""
        for n, decision in enumerate(d for d in launch.extends if d.effect in _ADMITTED and d.status_code < 300):
            if decision.ts >= env.expires_at:  # under the candidate it had ended before this extension was asked
                return env
            self._at(decision.ts)
            self._accrued(env, decision.ts)
            asked = ExtendRequest.from_decision_input(decision.input)
            step = asked.by or int(env.lifecycle.get("extend_by") or 0)
            got = self.core.extend(env.id, decision.context, asked.by)
            if isinstance(got, Denial):
                record = self._pop(got.decision_id)
                if got.code in ("max_extensions", "max_ttl_exceeded"):
                    what = "max_extensions" if got.code == "max_extensions" else "past max_ttl"
                    causes.append((f"blueprint {env.blueprint}", f"extension {n + 1} {what}"))
                elif got.code in _BUDGET_CODES:
                    budget = record.result.get("budget") if record is not None else None
                    causes.append((str(budget or got.code), f"extension {n + 1} refused by budget"))
                else:
                    causes.append((self._first(record, "deny", "require_approval") or got.code,
                                   f"extension {n + 1} refused"))
                return env
            granted = int((got.expires_at - env.expires_at).total_seconds())
            if granted < step:
                transitions = self.store.environment_transitions(env.id)
                record = self._scratch_decision(transitions[-1].decision_id if transitions else None, decision.ts)
                causes.append((self._first(record, "mutate") or "ttl", f"extension {n + 1} capped to {granted}s"))
            env = got
        return env

    def _accrued(self, env: EnvironmentRecord, at: datetime, **more: Any) -> None:
        """The scratch record as the scheduler would have kept it at `at`: accrued up to then (and
        the metric readings known by then)."""
        elapsed = codec.to_us(at) - codec.to_us(env.started_at or at)
        self.store.update_environment(env.id, {"accrued_nano": cost_for(env.hourly_nano, max(0, elapsed)), **more})

    def _runtime_stop(self, recorded: EnvironmentRecord, env: EnvironmentRecord, start: datetime,
                      end: datetime) -> tuple[datetime, str, str] | None:
        """The first instant a runtime pass of the adapter tears the environment down or suspends it."""
        if not self.runtime or end <= start:
            return None
        readings: list[tuple[datetime, str, Mapping[str, Any]]] = []
        for name, reading in recorded.metrics.items():
            if isinstance(reading, Mapping):
                try:
                    when = datetime.fromisoformat(str(reading["at"]))
                    float(reading["value"])
                except (KeyError, TypeError, ValueError):
                    continue
                readings.append((when, name, reading))
        instants = {start + timedelta(seconds=s) for s in range(0, int((end - start).total_seconds()), RUNTIME_STEP)}
        instants.update(at for at, _, _ in readings if start <= at < end)
        idle = recorded.idle_since
        for at in sorted(instants):
            self._at(at)
            known = {name: reading for when, name, reading in readings if when <= at}
            self._accrued(env, at, metrics=known)
            probe = dataclasses.replace(env, idle_since=idle if idle is not None and idle <= at else None)
            verdict = self.core.runtime(probe, at)
            if verdict is not None:
                return at, verdict.policies[0] if verdict.policies else "budget", verdict.action
        return None

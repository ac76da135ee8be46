"""Policy replay: decide recorded `llm.request` decisions again, through the decision core, under a
candidate bundle.

A replay builds the gateway's own `DecisionCore` over a fresh in-memory budget ledger
(`ledger.memory.MemoryLedger`) whose clock is the recorded one, with the candidate bundle, the
configuration and the price catalog. Every recorded decision, in (ts, id) order, is rebuilt from its
logged input (`DecisionCore.redecide`: the request exactly as it was evaluated) and decided again at
its recorded time: policies, provider routing, `max_tokens`, the worst-case bound, the loop guard,
budget claims and windows, route on exceed — one code path with the live gateway. What it admits is
settled with what the request really spent, at the time its cost event was recorded (requests still
in flight then hold their reservations, as they did live), so the budgets evolve as they did. The
outcome is compared with what was recorded:

* **denied** — the candidate denies an admitted request (a deny policy, a route to a model no provider
  serves or with no price when unknown prices are denied, the loop guard): its whole cost is saved;
* **rerouted** — the candidate sends it to another model (a route policy, or a budget's
  `on_exceed: route`): the recorded usage is re-priced on that model at the request's time; the
  difference is saved (negative = costs more);
* **cached** — a candidate `mutate` sets `cache: true` on a cacheable request that a simulated
  response cache (the gateway's TTL) already holds: its cost is saved;
* **budget refused** — a budget of the candidate has no room (amount, calls or concurrency): its
  cost is saved.

Requests the candidate would admit but that were denied when recorded are counted as
`newly_admitted` (their cost is unknown: nothing was spent). Breached economic SLOs are not replayed
(no SLO effects). Nothing is written to the store: a replay only reads it.

Environment launches are re-decided too (`optimize.replay_envs`), merged with the requests in time
order, by the core's environment adapter over this decider and the same in-memory ledger.
`replay_store` streams the requests from the store in (ts, id) pages (`optimize.stream`) and keeps
only the `keep_changes` biggest changes, so memory stays bounded however long the history; `replay`
takes an in-memory `History`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from costplane.config import Config
from costplane.core.bundle_state import ActiveBundle
from costplane.core.decision import DecisionCore
from costplane.core.notify import Notification
from costplane.core.requests import Admission, Denial
from costplane.ledger.memory import MemoryLedger
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.money import format_usd
from costplane.optimize.cache import CacheSimulation
from costplane.optimize.history import HOOK, History
from costplane.optimize.pricing import reprice
from costplane.optimize.replay_envs import LaunchReplayer, LaunchReport, Moment, RecordedLaunch, load_launches
from costplane.optimize.replay_request import ReplayRequest, from_recorded
from costplane.optimize.replay_totals import ScopeTotals, table_json, table_lines
from costplane.optimize.stream import DEFAULT_BATCH, event_lag, iter_requests
from costplane.policy.bundle import Bundle
from costplane.policy.memo import MemoEngine
from costplane.pricing.catalog import Catalog
from costplane.pricing.skus import SkuCatalog
from costplane.pricing.types import TokenUsage

__all__ = ["CHANGE_KINDS", "Change", "ReplayReport", "Replayer", "ScopeTotals", "render_text", "replay", "replay_store"]

CHANGE_KINDS = ("denied", "rerouted", "cached", "budget_refused")


@dataclass(frozen=True, slots=True)
class Change:
    decision_id: str
    ts: datetime
    kind: str  # denied | rerouted | cached | budget_refused
    cause: str  # the policy or budget that made the change
    recorded_model: str
    model: str | None  # the model the candidate would call (None when refused)
    recorded_nano: int
    replayed_nano: int
    team: str | None
    agent: str | None

    @property
    def saved_nano(self) -> int:
        return self.recorded_nano - self.replayed_nano


@dataclass(slots=True)
class ReplayReport:
    candidate_revision: str
    since: datetime
    until: datetime
    requests: int = 0
    recorded_nano: int = 0
    replayed_nano: int = 0
    newly_admitted: int = 0
    changed: int = 0  # every changed request (`changes` may keep only the biggest)
    changes: list[Change] = field(default_factory=list)
    by_kind: dict[str, ScopeTotals] = field(default_factory=dict)
    by_cause: dict[str, ScopeTotals] = field(default_factory=dict)
    by_team: dict[str, ScopeTotals] = field(default_factory=dict)
    by_agent: dict[str, ScopeTotals] = field(default_factory=dict)
    reroutes: dict[str, ScopeTotals] = field(default_factory=dict)  # "from -> to"
    launches: LaunchReport = field(default_factory=LaunchReport)
    keep_changes: int | None = None  # None: every change; else only the N that save most
    _top: list[tuple[int, int, Change]] = field(default_factory=list, repr=False)

    @property
    def saved_nano(self) -> int:
        """Saved on LLM requests (launches: `launches.saved_nano`, both: `total_saved_nano`)."""
        return self.recorded_nano - self.replayed_nano

    @property
    def total_saved_nano(self) -> int:
        return self.saved_nano + self.launches.saved_nano

    def record(self, change: Change) -> None:
        self.changed += 1
        if self.keep_changes is None:
            self.changes.append(change)
        else:  # a bounded min-heap on the saving: memory stays flat however many requests change
            item = (change.saved_nano, self.changed, change)
            if len(self._top) < self.keep_changes:
                heapq.heappush(self._top, item)
            elif self.keep_changes:
                heapq.heappushpop(self._top, item)
        saved = change.saved_nano
        for table, key in ((self.by_kind, change.kind), (self.by_cause, change.cause),
                           (self.by_team, change.team or "(none)"), (self.by_agent, change.agent or "(none)")):
            table.setdefault(key, ScopeTotals()).add(change.kind, saved)
        if change.kind == "rerouted":
            self.reroutes.setdefault(f"{change.recorded_model} -> {change.model}", ScopeTotals()).add("rerouted", saved)

    def finish(self) -> None:
        """Move the kept changes (bounded mode) into `changes`, biggest saving first."""
        if self.keep_changes is not None:
            self.changes = [c for _, _, c in sorted(self._top, key=lambda t: (-t[0], t[1]))]

    def to_json(self, *, changes: int = 50) -> dict[str, Any]:
        return {
            "candidate_revision": self.candidate_revision,
            "since": self.since.isoformat(), "until": self.until.isoformat(),
            "requests": self.requests, "changed": self.changed, "newly_admitted": self.newly_admitted,
            "recorded_nano": self.recorded_nano, "replayed_nano": self.replayed_nano,
            "saved_nano": self.saved_nano, "saved_usd": format_usd(self.saved_nano),
            "total_saved_nano": self.total_saved_nano, "total_saved_usd": format_usd(self.total_saved_nano),
            "by_kind": table_json(self.by_kind), "by_policy_or_budget": table_json(self.by_cause),
            "reroutes": table_json(self.reroutes), "by_team": table_json(self.by_team),
            "by_agent": table_json(self.by_agent),
            "changes": [{"decision_id": c.decision_id, "ts": c.ts.isoformat(), "kind": c.kind, "cause": c.cause,
                         "recorded_model": c.recorded_model, "model": c.model, "recorded_nano": c.recorded_nano,
                         "replayed_nano": c.replayed_nano, "team": c.team, "agent": c.agent}
                        for c in sorted(self.changes, key=lambda c: -c.saved_nano)[:changes]],
            "launches": self.launches.to_json(changes=changes),
        }


_NO_USAGE = TokenUsage()  # the replayed events' (the ledger reads only their cost)
_REFUSED = ("budget_exceeded", "call_limit_exceeded", "concurrency_limit")


class _Quiet:
    """A replay raises no notifications."""

    def notify(self, notification: Notification) -> None:
        return None


class Replayer:
    """The decision core over an in-memory ledger at the recorded clock, and what a replay keeps
    beside it: the settlements still in flight and the simulated response cache."""

    def __init__(self, bundle: Bundle, config: Config, catalog: Catalog, report: ReplayReport) -> None:
        self.bundle = bundle
        self.report = report
        self.ledger = MemoryLedger(forget_settled=True)  # each request settles once: memory stays flat
        self._at = report.since
        self.moment = Moment()  # a launch's extensions and runtime passes are decided ahead of the requests
        active = ActiveBundle(bundle.revision, MemoEngine(bundle), {b.name: b for b in bundle.budgets})
        self.engine = active.engine
        self.core = DecisionCore(config, self.ledger, catalog, lambda: active, clock=self.clock, notifier=_Quiet())
        self.cache = CacheSimulation(config.gateway.cache_ttl)
        self.effects = {p.name: p.effect for p in bundle.policies if p.hook == HOOK}
        self.cachers = {p.name for p in bundle.policies if p.effect == "mutate" and p.set.get("cache") is True}
        # settlements not yet due: (when, order, admission, request, cost, cached)
        self._pending: list[tuple[datetime, int, Admission, ReplayRequest, int, bool]] = []
        self._order = 0
        self._serial = 0

    def launches(self, skus: SkuCatalog) -> LaunchReplayer:
        """The environment launches' replayer: the core's environment adapter over this decider and
        ledger (`close()` it when done)."""
        return LaunchReplayer(self.core.decider, self.ledger, skus, self.moment, self.report.launches)

    def clock(self) -> datetime:
        """The recorded time of what is being replayed."""
        return self.moment.at or self._at

    def advance(self, ts: datetime) -> None:
        """Move the clock to `ts`, first settling every request whose cost event was recorded by then."""
        pending = self._pending
        while pending and pending[0][0] <= ts:
            at, _, admission, request, cost, cached = heapq.heappop(pending)
            self._at = at
            self._spend(admission, request, cost, cached)
        self._at = ts

    def finish(self) -> None:
        while self._pending:
            self.advance(self._pending[0][0])

    def _event_id(self) -> str:
        self._serial += 1
        return f"replay_{self._serial}"

    def _spend(self, admission: Admission, request: ReplayRequest, cost: int, cached: bool) -> None:
        """What the live gateway did with the response: settle the reservation with its cost, or give it
        back and record a cache hit; every recorded event is seen by the loop guard."""
        reservation = admission.reservation
        for n, (at, kind, request_hash) in enumerate(request.spent):
            settles = n == 0 and not cached and reservation is not None
            event = CostEvent(self._event_id(), at, request.context, admission.provider.name, admission.model,
                              cost if settles else 0, "cache_hit" if cached else kind, usage=_NO_USAGE,
                              decision_id=admission.decision_id, request_hash=request_hash,
                              reservation_id=reservation.id if settles and reservation is not None else None)
            if settles and reservation is not None:
                self.ledger.settle(reservation.id, event)
            else:
                self.ledger.record_event(event, ())
        if reservation is not None and (cached or not request.spent):
            self.ledger.release(reservation.id)

    def _hold(self, admission: Admission, request: ReplayRequest, cost: int, cached: bool) -> None:
        """Settle when the request's first cost event was recorded (now, when it has none)."""
        due = request.spent[0][0] if request.spent else self._at
        if due <= self._at:
            self._spend(admission, request, cost, cached)
            return
        self._order += 1
        heapq.heappush(self._pending, (due, self._order, admission, request, cost, cached))

    def change(self, request: ReplayRequest, kind: str, cause: str, model: str | None, replayed: int) -> None:
        ctx = request.context
        self.report.replayed_nano += replayed
        self.report.record(Change(request.id, request.ts, kind, cause, request.served_model, model,
                                  request.cost_nano, replayed, ctx.team, ctx.agent))

    def _first(self, names: tuple[str, ...], effect: str) -> str | None:
        return next((n for n in names if self.effects.get(n) == effect), None)

    def _refusal(self, denial: Denial, record: DecisionRecord | None, request: ReplayRequest) -> tuple[str, str]:
        """(kind, cause) of a candidate's refusal of a request admitted when recorded."""
        result = record.result if record is not None else {}
        names = record.policies if record is not None else ()
        if denial.code in _REFUSED:
            return "budget_refused", str(result.get("budget") or denial.code)
        if denial.code == "policy_denied":
            return "denied", self._first(names, "deny") or denial.code
        if denial.code in ("route_unavailable", "unknown_price"):
            return "denied", self._first(names, "route") or request.model
        if denial.code == "loop_detected":
            return "denied", "loop guard"
        return "denied", denial.code

    def _route_cause(self, admission: Admission, record: DecisionRecord | None) -> str:
        """The budget that degraded the request (route on exceed), else the route policy."""
        if record is not None:
            for name in record.budgets:
                if admission.reason.startswith(f"budget {name!r} has no room"):
                    return name
            policy = self._first(record.policies, "route")
            if policy is not None:
                return policy
        return admission.model

    def run(self, request: ReplayRequest) -> DecisionRecord | None:
        """Decide `request` again at its recorded time and count what changed; returns the replayed
        decision's record (None when nothing was logged: a request no provider serves)."""
        self.advance(request.ts)
        got = self.core.redecide(request.context, request.recorded)
        record = self.ledger.pop_decision(got.decision_id) if got.decision_id else None
        self._judge(request, got, record)
        return record

    def _judge(self, request: ReplayRequest, got: Admission | Denial, record: DecisionRecord | None) -> None:
        report = self.report
        report.requests += 1
        recorded = request.cost_nano
        report.recorded_nano += recorded
        if not request.admitted:
            report.replayed_nano += recorded
            if isinstance(got, Admission):
                report.newly_admitted += 1
                self.core.release(got)  # nothing was spent: it was refused when recorded
            return
        if isinstance(got, Denial):
            kind, cause = self._refusal(got, record, request)
            self.change(request, kind, cause, None, 0)
            return
        model, cost, kind, cause = got.model, recorded, "", ""
        if model != request.served_model:
            cost = reprice(request.usage(), got.price)
            kind, cause = "rerouted", self._route_cause(got, record)
        key = request.cache_key
        wants_cache = got.params.get("cache") is True and not request.cache_param
        if wants_cache and key is not None and not request.cached and self.cache.hit(key, request.ts):
            self._hold(got, request, 0, True)
            names = record.policies if record is not None else ()
            self.change(request, "cached", next((n for n in names if n in self.cachers), "cache"), model, 0)
            return
        self._hold(got, request, cost, request.cached)
        if kind:
            self.change(request, kind, cause, model, cost)
        else:
            report.replayed_nano += cost


def _key(item: ReplayRequest | RecordedLaunch) -> tuple[datetime, str]:
    if isinstance(item, RecordedLaunch):
        return item.ts, item.decision.id if item.decision else item.env.id if item.env else ""
    return item.ts, item.id


def _run(report: ReplayReport, requests: Iterable[ReplayRequest], launches: Sequence[RecordedLaunch],
         bundle: Bundle, config: Config, catalog: Catalog, skus: SkuCatalog | None) -> ReplayReport:
    replayer = Replayer(bundle, config, catalog, report)
    if not launches:
        for request in requests:
            replayer.run(request)
    else:  # launches and requests in one time order: they share the in-memory ledger
        envs = replayer.launches(skus or SkuCatalog.load(config.pricing))
        merged: Iterator[ReplayRequest | RecordedLaunch] = heapq.merge(requests, launches, key=_key)
        try:
            for item in merged:
                if isinstance(item, RecordedLaunch):
                    replayer.advance(item.ts)
                    envs.run(item)
                else:
                    replayer.run(item)
        finally:
            envs.close()
    replayer.finish()
    report.finish()
    return report


def replay(history: History, bundle: Bundle, config: Config, catalog: Catalog, *,
           launches: Sequence[RecordedLaunch] = (), skus: SkuCatalog | None = None) -> ReplayReport:
    """Re-decide every recorded request of `history` (and `launches`) under `bundle`; writes nothing."""
    report = ReplayReport(bundle.revision, history.since, history.until)
    requests = (from_recorded(r) for r in history.requests)
    return _run(report, requests, sorted(launches, key=_key), bundle, config, catalog, skus)


def replay_store(store: Store, since: datetime, until: datetime, bundle: Bundle, config: Config, catalog: Catalog,
                 skus: SkuCatalog | None = None, *, batch: int = DEFAULT_BATCH,
                 keep_changes: int | None = 1000) -> ReplayReport:
    """Re-decide the requests and environment launches recorded in [since, until), streamed from the
    store in pages of `batch` rows; keeps the `keep_changes` biggest changes. Read-only."""
    report = ReplayReport(bundle.revision, since, until, keep_changes=keep_changes)
    requests = iter_requests(store, since, until, lag=event_lag(config), batch=batch)
    launches = load_launches(store, since, until, batch=batch)
    return _run(report, requests, launches, bundle, config, catalog, skus)


def render_text(report: ReplayReport) -> str:
    """A human summary: totals, then the changes by kind, policy/budget, reroute, team and agent, then
    the environment launches."""
    lines = [
        f"replayed {report.requests} llm.request decisions from {report.since:%Y-%m-%d %H:%M} to "
        f"{report.until:%Y-%m-%d %H:%M} UTC under {report.candidate_revision}",
        f"recorded cost {format_usd(report.recorded_nano)} USD -> replayed {format_usd(report.replayed_nano)} USD: "
        f"saved {format_usd(report.saved_nano)} USD",
        f"changed {report.changed} requests; {report.newly_admitted} recorded denials would be admitted",
    ]
    sections = (("by change", report.by_kind), ("by policy / budget", report.by_cause),
                ("reroutes", report.reroutes), ("by team", report.by_team), ("by agent", report.by_agent))
    for title, table in sections:
        lines += table_lines(title, table)
    lines += report.launches.text_lines()
    top = sorted(report.launches.changes, key=lambda c: (-c.saved_nano, c.ts))[:10]
    if top:
        lines.append("biggest launch changes:")
        lines += [f"  {c.ts:%Y-%m-%d %H:%M} {c.blueprint} {c.environment_id or c.decision_id}: {c.kind} by {c.cause}"
                  f" ({c.detail}), saved {format_usd(c.saved_nano)} USD" for c in top]
    lines.append(f"total saved (requests + launches): {format_usd(report.total_saved_nano)} USD")
    return "\n".join(lines)

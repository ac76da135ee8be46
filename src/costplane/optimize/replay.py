"""Policy replay: re-decide recorded `llm.request` decisions under a candidate bundle.

For every recorded request (time order) the candidate's `PolicyEngine.decide` runs on the recorded
context and request; the outcome is compared with what was recorded:

* **denied** — the candidate denies an admitted request (policy deny, a route to a model no provider
  serves, or to a model with no price when unknown prices are denied): its whole recorded cost is saved;
* **rerouted** — the candidate sends it to another model: the recorded usage is re-priced on that
  model with the Catalog (at the request's time); the difference is saved (negative = costs more);
* **cached** — a candidate `mutate` sets `cache: true` on a cacheable request that a simulated
  response cache (the gateway's TTL) already holds: its cost is saved;
* **budget refused** — the candidate's budgets, simulated in memory in time order with the decision
  core's own claims and windows, have no room: its (re-priced) cost is saved. A budget with
  `on_exceed: route` degrades the request instead, as the core does.

Requests the candidate would admit but that were denied when recorded are counted as
`newly_admitted` (their cost is unknown: nothing was spent). Nothing is written: a replay only reads.

Environment launches are re-decided too (`optimize.replay_envs`), merged with the requests in time
order so both draw on the same simulated budgets. `replay_store` streams the requests from the store
in (ts, id) pages (`optimize.stream`) and keeps only the `keep_changes` biggest changes, so memory
stays bounded however long the history; `replay` takes an in-memory `History`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from costplane.config import Config
from costplane.core.claims import budget_claims
from costplane.ledger.store import Store
from costplane.ledger.types import BudgetClaim
from costplane.money import format_usd
from costplane.optimize.budgetsim import BudgetSimulation
from costplane.optimize.cache import CacheSimulation
from costplane.optimize.history import HOOK, History
from costplane.optimize.pricing import price_sheet, reprice, route_target
from costplane.optimize.replay_envs import LaunchReplayer, LaunchReport, RecordedLaunch, load_launches
from costplane.optimize.replay_request import ReplayRequest, from_recorded
from costplane.optimize.replay_totals import ScopeTotals, table_json, table_lines
from costplane.optimize.stream import DEFAULT_BATCH, event_lag, iter_requests
from costplane.policy.bundle import Bundle
from costplane.policy.memo import MemoEngine
from costplane.policy.types import BudgetSpec, PolicyDecision
from costplane.pricing.catalog import Catalog
from costplane.pricing.skus import SkuCatalog
from costplane.pricing.types import PriceSheet

__all__ = ["CHANGE_KINDS", "Change", "ReplayReport", "ScopeTotals", "render_text", "replay", "replay_store"]

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


class _Replayer:
    def __init__(self, bundle: Bundle, config: Config, catalog: Catalog, report: ReplayReport) -> None:
        self.engine = MemoEngine(bundle)
        self.bundle = bundle
        self.config = config
        self.catalog = catalog
        self.report = report
        self.budgets = BudgetSimulation()
        self.cache = CacheSimulation(config.gateway.cache_ttl)
        self.cachers = {p.name for p in bundle.policies if p.effect == "mutate" and p.set.get("cache") is True}
        self._routes: dict[tuple[str, str], tuple[str, str | None] | None] = {}

    def route(self, model: str, protocol: str) -> tuple[str, str | None] | None:
        """`route_target`, memoised: the configuration does not change during a replay."""
        key = (model, protocol)
        if key not in self._routes:
            self._routes[key] = route_target(self.config, model, protocol)
        return self._routes[key]

    def change(self, request: ReplayRequest, kind: str, cause: str, model: str | None, replayed: int) -> None:
        ctx = request.context
        self.report.replayed_nano += replayed
        self.report.record(Change(request.id, request.ts, kind, cause, request.served_model, model,
                                  request.cost_nano, replayed, ctx.team, ctx.agent))

    def max_tokens(self, request: ReplayRequest, policy: PolicyDecision) -> int:
        """The decision core's rule (`DecisionCore._max_tokens`)."""
        if request.embeddings:
            return 0
        asked = request.max_tokens  # a positive int or None
        cap = policy.mutations.get("max_tokens")
        if not (isinstance(cap, int) and cap > 0):
            return asked if asked is not None else self.config.gateway.default_max_tokens
        return cap if asked is None else min(asked, cap)

    def claims(self, request: ReplayRequest, budgets: list[BudgetSpec], model: str, sheet: PriceSheet,
               max_tokens: int) -> tuple[BudgetClaim, ...]:
        worst = sheet.max_cost_nano(request.input_tokens_bound, max_tokens)
        return budget_claims(budgets, request.context, model, worst, request.ts, bounds=self.budgets.bounds)

    def run(self, request: ReplayRequest) -> None:
        report = self.report
        protocol = request.protocol
        asked = self.route(request.model, protocol)
        facts = request.facts  # a record is replayed once: its provider is set in place
        facts["provider"] = (asked[1] if asked else None) or ""
        policy, budgets = self.engine.decide(HOOK, request.context, facts)
        report.requests += 1
        recorded = request.cost_nano
        report.recorded_nano += recorded
        if not request.admitted:
            report.replayed_nano += recorded
            if policy.effect != "deny":
                report.newly_admitted += 1
            return
        if policy.effect == "deny" and policy.deny is not None:
            self.change(request, "denied", policy.deny.name, None, 0)
            return
        target = self.route(policy.model, protocol)
        if target is None:
            self.change(request, "denied", policy.route.name if policy.route else policy.model, None, 0)
            return
        model, provider = target
        kind, cause = "", ""
        sheet = price_sheet(self.catalog, model, provider, request.ts)
        if sheet is None:
            self.change(request, "denied", policy.route.name if policy.route else model, None, 0)
            return
        cost = recorded
        if model != request.served_model:
            cost = reprice(request.usage(), sheet)
            kind, cause = "rerouted", policy.route.name if policy.route else model
        max_tokens = self.max_tokens(request, policy)
        claims = self.claims(request, budgets, model, sheet, max_tokens)
        refusal = self.budgets.check(claims)
        if refusal is not None:
            spec = self.bundle.budget(refusal.budget)
            degraded = None
            if refusal.limit == "amount" and spec is not None and spec.on_exceed == "route" and spec.route_to:
                degraded = self.route(spec.route_to, protocol)
            cheaper = price_sheet(self.catalog, degraded[0], degraded[1], request.ts) if degraded else None
            if degraded is not None and cheaper is not None and degraded[0] != model:
                model, sheet = degraded[0], cheaper
                claims = self.claims(request, budgets, model, sheet, max_tokens)
                refusal = self.budgets.check(claims)
                cost = reprice(request.usage(), sheet) if model != request.served_model else recorded
                kind, cause = "rerouted", refusal.budget if refusal else spec.name if spec else model
            if refusal is not None:
                self.change(request, "budget_refused", refusal.budget, None, 0)
                return
        key = request.cache_key
        wants_cache = policy.mutations.get("cache") is True and not request.cache_param
        if wants_cache and key is not None and not request.cached and self.cache.hit(key, request.ts):
            self.budgets.settle(claims, 0, count_call=False)  # a hit gives its reservation back
            matched = [m.name for m in policy.matched if m.effect == "mutate" and m.name in self.cachers]
            self.change(request, "cached", matched[0] if matched else "cache", model, 0)
            return
        self.budgets.settle(claims, cost)
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
    replayer = _Replayer(bundle, config, catalog, report)
    if not launches:
        for request in requests:
            replayer.run(request)
    else:  # launches and requests in one time order: they share the simulated budgets
        envs = LaunchReplayer(bundle, replayer.engine, skus or SkuCatalog.load(config.pricing), replayer.budgets,
                              report.launches)
        merged: Iterator[ReplayRequest | RecordedLaunch] = heapq.merge(requests, launches, key=_key)
        for item in merged:
            if isinstance(item, RecordedLaunch):
                envs.run(item)
            else:
                replayer.run(item)
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

"""The store-backed metric families: every number is read from the shared store at scrape time,
so all replicas in front of one PostgreSQL report the same values.

Bounded labels: each spend family keeps its TOP_N largest label values (by cost) and folds
the rest into one `(other)` series, so a new team or model per request can never grow the
series count without bound; an unset dimension is `(none)`. Counters are totals since the
store began (Prometheus `rate()` works on them). Money is exact: decimal USD strings of
integer nano-USD.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from costplane.attribution.context import Context
from costplane.core.claims import budget_claims
from costplane.ledger.store import SpendRow, Store
from costplane.ledger.types import BudgetClaim
from costplane.metrics.exposition import Family
from costplane.money import format_usd
from costplane.policy.types import BudgetSpec

__all__ = ["OTHER", "TOP_N", "UNSET", "spend_families", "store_metrics"]

TOP_N = 20
OTHER = "(other)"
UNSET = "(none)"
# (family suffix, dimensions): one spend family per group-by
_SPEND = (("team", ("team",)), ("model", ("provider", "model")), ("kind", ("kind",)), ("agent", ("agent",)))


def _bounded(rows: Sequence[SpendRow], names: Sequence[str], top_n: int) -> list[tuple[dict[str, str], SpendRow]]:
    ranked = sorted(rows, key=lambda r: -r.cost_nano)
    out = [({n: r.group.get(n) or UNSET for n in names}, r) for r in ranked[:top_n]]
    rest = ranked[top_n:]
    if rest:
        out.append(({n: OTHER for n in names}, SpendRow({}, None, sum(r.cost_nano for r in rest),
                                                        sum(r.saved_nano for r in rest), sum(r.events for r in rest),
                                                        sum(r.input_tokens for r in rest),
                                                        sum(r.output_tokens for r in rest))))
    return out


def spend_families(store: Store, top_n: int = TOP_N) -> list[Family]:
    families: list[Family] = []
    for label, names in _SPEND:
        cost = Family(f"costplane_spend_by_{label}_usd_total", "counter",
                      f"Spend in USD by {'/'.join(names)} (top {top_n} + {OTHER})")
        saved = Family(f"costplane_saved_by_{label}_usd_total", "counter",
                       f"Money not spent thanks to costplane (cache hits, reroutes) by {'/'.join(names)}")
        events = Family(f"costplane_cost_events_by_{label}_total", "counter", f"Cost events by {'/'.join(names)}")
        for labels, row in _bounded(store.spend(group_by=list(names)), names, top_n):
            cost.add(format_usd(row.cost_nano), **labels)
            saved.add(format_usd(row.saved_nano), **labels)
            events.add(row.events, **labels)
        families += [cost, saved, events]
    return families


def _budget_claims(store: Store, budgets: Sequence[BudgetSpec], now: datetime, top_n: int) -> list[BudgetClaim]:
    claims = list(budget_claims([b for b in budgets if not b.per], Context(), "", 0, now))
    for spec in budgets:
        if spec.per:
            window_start, bucket = spec.window.bounds(now)
            claims += [BudgetClaim(spec.name, part, bucket, window_start, 0, spec.amount_nano, spec.max_calls,
                                   spec.max_concurrent, spec.hard)
                       for part in store.budget_partitions(spec.name, window_start, top_n)]
    return claims


def budget_families(store: Store, budgets: Sequence[BudgetSpec], now: datetime, top_n: int = TOP_N) -> list[Family]:
    spent = Family("costplane_budget_spent_usd", "gauge", "Spent in the budget's current window")
    reserved = Family("costplane_budget_reserved_usd", "gauge", "Held by open reservations in the current window")
    limit = Family("costplane_budget_limit_usd", "gauge", "Dollar limit of the budget window")
    used = Family("costplane_budget_utilisation_ratio", "gauge", "(spent + reserved) / limit of the current window")
    calls = Family("costplane_budget_calls", "gauge", "Calls counted in the budget's current window")
    windows = {b.name: b.window.describe() for b in budgets}
    hard = {b.name: "true" if b.hard else "false" for b in budgets}
    for state in store.claim_states(_budget_claims(store, budgets, now, top_n)):
        labels = {"budget": state.budget, "partition": state.partition, "window": windows.get(state.budget, ""),
                  "hard": hard.get(state.budget, "true")}
        spent.add(format_usd(state.spent_nano), **labels)
        reserved.add(format_usd(state.reserved_nano), **labels)
        calls.add(state.calls, **labels)
        if state.limit_nano:
            limit.add(format_usd(state.limit_nano), **labels)
            used.add(repr((state.spent_nano + state.reserved_nano) / state.limit_nano), **labels)  # a ratio
    return [spent, reserved, limit, used, calls]


def store_metrics(store: Store, budgets: Sequence[BudgetSpec], revision: str, *, top_n: int = TOP_N,
                  now: datetime | None = None) -> list[Family]:
    """Every store-backed family (blocking: run it off the event loop)."""
    now = now or datetime.now(UTC)
    decisions = Family("costplane_decisions_total", "counter", "Logged decisions by hook and effect")
    for (hook, effect), count in sorted(store.decision_counts().items()):
        decisions.add(count, hook=hook, effect=effect)
    reservations = Family("costplane_open_reservations", "gauge", "Reservations holding budget right now")
    reservations.add(store.open_reservations())
    bundle = Family("costplane_bundle_info", "gauge", "The active policy bundle revision (always 1)")
    bundle.add(1, revision=revision)
    return [*spend_families(store, top_n), *budget_families(store, budgets, now, top_n), decisions, reservations,
            bundle]

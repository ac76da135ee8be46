"""`GET /api/v1/budgets`: every declared budget with the live state of its current window.

The state is read from the same counters the core reserves on: claims are built with
`budget_claims` (a partitioned budget's partitions are turned back into the context that
produced them) and read with `Store.claim_states`; there is no second notion of budget.

Forecast of exhaustion, linear on the window's spend so far (integer arithmetic):
* calendar window — spent over the elapsed part of the period; the budget runs out at
  period_start + limit × elapsed / spent (null when that is after the period ends; compared as
  integers before any date is built, so a tiny spend early in a period cannot overflow a date);
* rolling window — the window's spend taken as the rate per window length; runs out at
  now + remaining × length / spent (an early warning: spend ageing out is not credited; null
  when that is more than a year ahead);
* lifetime window — no forecast.

Scoping (developer, viewer): a budget partitioned by `team` or `project` shows only the
partitions the caller may read (`Principal.may_read` on the partition's team/project); any
other budget is shown only when its scope selects one of the caller's teams or projects and
does not select a context outside the caller's scope (another team and another project).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool

from costplane.api.principal import Principal
from costplane.api.table import Call
from costplane.app import Application
from costplane.attribution.context import Context, InvalidAttribute
from costplane.core.claims import budget_claims
from costplane.ledger.types import BudgetClaim, ClaimState
from costplane.money import format_usd
from costplane.policy.types import BudgetSpec

__all__ = ["BUDGETS_SCHEMA", "budget_states", "budgets_handler"]

_OTHER = "(costplane: any other)"  # stands for a team / project the caller is not in
_PARTITIONS = 200
_HORIZON_US = 366 * 86_400 * 1_000_000  # a rolling forecast further ahead than this is not shown
_MONEY = {"type": ["string", "null"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
BUDGETS_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["budgets", "bundle_revision"],
    "properties": {"bundle_revision": {"type": "string"}, "budgets": {"type": "array", "items": {
        "type": "object", "properties": {
            "name": {"type": "string"}, "window": {"type": "string"}, "hard": {"type": "boolean"},
            "per": {"type": "array", "items": {"type": "string"}}, "partition": {"type": "string"},
            "limit_usd": _MONEY, "spent_usd": _MONEY, "reserved_usd": _MONEY, "remaining_usd": _MONEY,
            "utilisation": {"type": ["string", "null"]}, "calls": {"type": "integer"},
            "max_calls": {"type": ["integer", "null"]}, "concurrent": {"type": "integer"},
            "exhausted": {"type": "boolean"},
            "forecast_exhaustion_at": {"type": ["string", "null"], "format": "date-time"}}}}},
}


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _partition_claim(spec: BudgetSpec, partition: str, now: datetime) -> BudgetClaim | None:
    """The claim `budget_claims` makes for a context that lands in `partition`."""
    values = dict(part.split("=", 1) for part in partition.split(",") if "=" in part)
    model = values.pop("model", "")
    try:
        ctx = Context.from_mapping(values, source="partition")
    except InvalidAttribute:
        return None
    claims = budget_claims([spec], ctx, model, 0, now)
    return claims[0] if claims and claims[0].partition == partition else None


def _part_of(partition: str, name: str) -> str | None:
    for part in partition.split(","):
        if part.startswith(f"{name}="):
            return part[len(name) + 1:]
    return None


def _scope_selects(application: Application, spec: BudgetSpec, ctx: Context) -> bool:
    budgets = application.bundle.engine.budgets_for("llm.request", ctx, {})
    return any(b.name == spec.name for b in budgets)


def _visible_claims(application: Application, spec: BudgetSpec, principal: Principal,
                    now: datetime) -> list[BudgetClaim]:
    store = application.store
    scope = principal.scope
    by_owner = bool({"team", "project"} & set(spec.per))
    if scope is not None and not by_owner:
        mine = [Context(team=t) for t in scope.teams] + [Context(project=p) for p in scope.projects]
        own = any(_scope_selects(application, spec, ctx) for ctx in mine)
        if not own or _scope_selects(application, spec, Context(team=_OTHER, project=_OTHER)):
            return []
    if not spec.per:
        return list(budget_claims([spec], Context(), "", 0, now))
    window_start, _ = spec.window.bounds(now)
    claims = [c for part in store.budget_partitions(spec.name, window_start, _PARTITIONS)
              if (c := _partition_claim(spec, part, now)) is not None]
    if scope is not None and by_owner:
        claims = [c for c in claims
                  if principal.may_read(_part_of(c.partition, "team"), _part_of(c.partition, "project"))]
    return claims


def _forecast(spec: BudgetSpec, state: ClaimState, now: datetime) -> datetime | None:
    limit, spent = state.limit_nano, state.spent_nano
    if limit is None or spent <= 0:
        return None
    remaining = limit - spent - state.reserved_nano
    if remaining <= 0:
        return now
    if spec.window.kind == "calendar":
        start, end = spec.window.period_start(now), spec.window.period_end(now)
        elapsed = _us(now - start)
        if end is None or elapsed <= 0:
            return None
        offset = limit * elapsed // spent  # microseconds after the period start
        return start + timedelta(microseconds=offset) if offset < _us(end - start) else None
    if spec.window.kind == "rolling":
        ahead = remaining * spec.window.seconds * 1_000_000 // spent
        return now + timedelta(microseconds=ahead) if ahead <= _HORIZON_US else None
    return None


def _view(spec: BudgetSpec, state: ClaimState, now: datetime) -> dict[str, Any]:
    limit = state.limit_nano
    used = state.spent_nano + state.reserved_nano
    forecast = _forecast(spec, state, now)
    return {
        "name": spec.name, "window": spec.window.describe(), "hard": spec.hard, "per": list(spec.per),
        "partition": state.partition, "limit_usd": format_usd(limit) if limit is not None else None,
        "spent_usd": format_usd(state.spent_nano), "reserved_usd": format_usd(state.reserved_nano),
        "remaining_usd": format_usd(state.remaining_nano) if state.remaining_nano is not None else None,
        "utilisation": format_usd(used * 1_000_000_000 // limit) if limit else None,
        "calls": state.calls, "max_calls": state.limit_calls, "concurrent": state.concurrent,
        "exhausted": state.exceeded is not None or (limit is not None and used >= limit),
        "forecast_exhaustion_at": forecast.isoformat() if forecast else None,
    }


def budget_states(application: Application, principal: Principal, now: datetime) -> list[dict[str, Any]]:
    """The visible budgets' live states (blocking)."""
    specs = list(application.bundle.budgets.values())
    pairs = [(spec, claim) for spec in specs for claim in _visible_claims(application, spec, principal, now)]
    states = application.store.claim_states([c for _, c in pairs])
    return [_view(spec, state, now) for (spec, _), state in zip(pairs, states, strict=True)]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def budgets_handler(application: Application, clock: Callable[[], datetime] = _utc_now) -> Any:
    async def handler(call: Call) -> dict[str, Any]:
        now = clock()
        rows = await run_in_threadpool(budget_states, application, call.principal, now)
        return {"bundle_revision": application.bundle.revision, "budgets": rows}

    return handler

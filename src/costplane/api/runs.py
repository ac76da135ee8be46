"""Runs and cost per outcome in the users' API: `GET /api/v1/runs`, `/runs/{run_id}`, `/outcomes`.

Scoping (developer, viewer), with the one predicate `Principal.may_read(team, project)`:

* a run is attributed to its root node's (team, project) when the root carries either; a run
  known only from cost events (calls that carried `x-costplane-run`) to the (team, project) of
  each of its events. It is visible when it has an attribution and the caller may read all of
  it; otherwise `/runs` leaves it out and `/runs/{run_id}` answers 404, exactly like an unknown run;
* outcomes: the report is computed grouped by team and project as well, rows the caller may not
  read are dropped, and the rows are summed back to the grouping asked for (as `/spend` does).

For a scoped caller or a filter, `/runs` looks at the newest `SCAN` runs of the window and
returns the first `limit` that pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from starlette.concurrency import run_in_threadpool

from costplane.api.errors import ApiError
from costplane.api.principal import Principal
from costplane.api.table import Call, Param
from costplane.ledger.store import Store
from costplane.runs.report import OutcomeRow, cost_per_outcome
from costplane.runs.tree import ROOT_KINDS, build_tree, list_runs

__all__ = ["OUTCOMES_PARAMS", "OUTCOMES_SCHEMA", "RUNS_PARAMS", "RUNS_SCHEMA", "RUN_PARAM", "RUN_SCHEMA", "SCAN",
           "STOPPED_BY_SCHEMA",
           "outcomes_handler", "run_handler", "run_visible", "runs_handler"]

SCAN = 1000
Owners = set[tuple[str | None, str | None]]

RUNS_PARAMS: tuple[Param, ...] = (
    Param("since", "date-time", "runs started (or with cost) at or after this instant"),
    Param("limit", "integer", "at most this many, newest first", minimum=1, maximum=500, default=50),
    Param("team", "string", "only runs attributed to this team"),
    Param("agent", "string", "only runs of this agent"),
    Param("pipeline", "string", "only runs of this pipeline"),
)
RUN_PARAM = Param("run_id", "string", "the run's id", location="path")
_USD = {"type": ["string", "null"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
#: what stopped a run (runs.ending): the decision that refused it, or the SDK's own run guard
STOPPED_BY_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"], "required": ["kind", "name", "decision_id", "code", "at", "reason"],
    "description": "what stopped the run (status stopped): kind budget | call_limit | concurrency | loop_guard | "
                   "policy | slo | pricing | store | denied (a decision) or run_guard (the SDK's guard)",
    "properties": {"kind": {"type": "string"}, "name": {"type": ["string", "null"]},
                   "decision_id": {"type": ["string", "null"]}, "code": {"type": "string"},
                   "at": {"type": ["string", "null"], "format": "date-time"}, "reason": {"type": "string"}}}
_STATUS = {"type": "string", "description": "ok | running | stopped | error (runs.ending)"}
RUNS_SCHEMA: dict[str, Any] = {"type": "object", "required": ["runs"], "properties": {"runs": {
    "type": "array", "items": {"type": "object", "properties": {
        "run": {"type": "string"}, "name": {"type": "string"}, "kind": {"type": "string"},
        "status": _STATUS, "started_at": {"type": ["string", "null"], "format": "date-time"},
        "ended_at": {"type": ["string", "null"], "format": "date-time"}, "cost_usd": _USD,
        "cost_nano": {"type": "integer"}, "events": {"type": "integer"}, "input_tokens": {"type": "integer"},
        "output_tokens": {"type": "integer"}, "agent": {"type": ["string", "null"]},
        "pipeline": {"type": ["string", "null"]}, "experiment": {"type": ["string", "null"]},
        "stopped_by": STOPPED_BY_SCHEMA, "teams": {"type": "array", "items": {"type": ["string", "null"]}}}}}}}
RUN_SCHEMA: dict[str, Any] = {"type": "object", "required": ["id", "kind", "children", "cost_usd"], "properties": {
    "id": {"type": "string"}, "kind": {"type": "string"}, "name": {"type": "string"}, "status": _STATUS,
    "started_at": {"type": ["string", "null"], "format": "date-time"},
    "ended_at": {"type": ["string", "null"], "format": "date-time"}, "stopped_by": STOPPED_BY_SCHEMA,
    "cost_usd": _USD, "cost_nano": {"type": "integer"}, "own_cost_nano": {"type": "integer"},
    "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"}, "calls": {"type": "integer"},
    "duration_s": {"type": ["number", "null"]}, "attributes": {"type": "object"},
    "children": {"type": "array", "items": {"type": "object", "description": "nodes of the same shape"}}}}

GROUPS: tuple[str, ...] = ("team", "project", "agent", "model", "tier")
OUTCOMES_PARAMS: tuple[Param, ...] = (
    Param("outcome", "string", "the outcome type (e.g. ticket_resolved); default: every type recorded in range"),
    Param("group_by", "list", "group each outcome type's cost by these, comma-separated", enum=GROUPS),
    Param("since", "date-time", "cost and outcomes at or after this instant"),
    Param("until", "date-time", "cost and outcomes before this instant"),
    Param("bucket", "string", "also by day", enum=("day",)),
)
OUTCOMES_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["outcomes", "group_by", "rows"],
    "properties": {"outcomes": {"type": "array", "items": {"type": "string"}},
                   "group_by": {"type": "array", "items": {"type": "string"}},
                   "rows": {"type": "array", "items": {"type": "object", "properties": {
                       "outcome": {"type": "string"}, "group": {"type": "object"},
                       "bucket": {"type": ["string", "null"], "format": "date-time"}, "cost_usd": _USD,
                       "cost_nano": {"type": "integer"}, "outcomes": {"type": "string"},
                       "cost_per_outcome_usd": _USD, "runs": {"type": "integer"},
                       "runs_without_outcome": {"type": "integer"}, "waste_usd": _USD,
                       "waste_nano": {"type": "integer"}}}}},
}


def _allowed(principal: Principal, owners: Owners) -> bool:
    return bool(owners) and all(principal.may_read(team, project) for team, project in owners)


def run_owners(store: Store, run_id: str) -> Owners:
    """The (team, project) attribution of one run (see the module's rule)."""
    nodes = store.run_nodes(run_id)
    root = next((n for n in nodes if n.id == run_id), None)
    if root is not None and (root.context.team or root.context.project):
        return {(root.context.team, root.context.project)}
    members = [run_id] + [n.id for n in nodes if n.kind in ROOT_KINDS and n.id != run_id]
    found = {(e.context.team, e.context.project) for m in members for e in store.run_events(m)}
    if not found and root is None:  # a run only refused: the decision that refused it says whose it is
        found = {(d.context.team, d.context.project) for d in store.latest_decisions([run_id]).values()}
    return found


def run_visible(store: Store, principal: Principal, run_id: str) -> bool:
    return principal.scope is None or _allowed(principal, run_owners(store, run_id))


def _scan(store: Store, principal: Principal, since: datetime | None, limit: int, team: str | None,
          agent: str | None, pipeline: str | None) -> list[dict[str, Any]]:
    if principal.scope is None and not (team or agent or pipeline):
        return [r.to_json() for r in list_runs(store, since=since, limit=limit)]
    owners: dict[str, Owners] = {}
    agents: dict[str, set[str | None]] = {}
    pipelines: dict[str, set[str | None]] = {}
    for row in store.spend(group_by=["run", "team", "project", "agent", "pipeline"], since=since):
        run = row.group.get("run")
        if run:
            owners.setdefault(run, set()).add((row.group.get("team"), row.group.get("project")))
            agents.setdefault(run, set()).add(row.group.get("agent"))
            pipelines.setdefault(run, set()).add(row.group.get("pipeline"))
    for node in store.run_roots(since=since, limit=SCAN):
        if node.context.team or node.context.project:
            owners[node.id] = {(node.context.team, node.context.project)}
    summaries = list_runs(store, since=since, limit=SCAN)
    refused = [r.run for r in summaries if r.events == 0 and r.run not in owners]  # runs with decisions only
    for run, decision in (store.latest_decisions(refused) if refused else {}).items():
        owners[run] = {(decision.context.team, decision.context.project)}
    out: list[dict[str, Any]] = []
    for summary in summaries:
        mine = owners.get(summary.run, set())
        if principal.scope is not None and not _allowed(principal, mine):
            continue
        if team and team not in {t for t, _ in mine}:
            continue
        if agent and agent != summary.agent and agent not in agents.get(summary.run, set()):
            continue
        if pipeline and pipeline != summary.pipeline and pipeline not in pipelines.get(summary.run, set()):
            continue
        out.append({**summary.to_json(), "teams": sorted({t or "" for t, _ in mine})})
        if len(out) >= limit:
            break
    return out


def runs_handler(store: Store) -> Any:
    async def handler(call: Call) -> dict[str, Any]:
        p = call.params
        rows = await run_in_threadpool(_scan, store, call.principal, p["since"], p["limit"], p["team"], p["agent"],
                                       p["pipeline"])
        return {"runs": rows}

    return handler


def run_handler(store: Store) -> Any:
    async def handler(call: Call) -> dict[str, Any]:
        run_id = call.params["run_id"]

        def load() -> dict[str, Any] | None:
            if not run_visible(store, call.principal, run_id):
                return None  # another team's run answers exactly like an unknown one
            tree = build_tree(store, run_id)
            return None if tree is None else tree.to_json()

        found = await run_in_threadpool(load)
        if found is None:
            raise ApiError(404, "run_not_found", f"run_id: no run {run_id!r} in the ledger", "run_id")
        return found

    return handler


def _merge(rows: Sequence[OutcomeRow], dims: Sequence[str]) -> list[OutcomeRow]:
    sums: dict[tuple[str, tuple[str | None, ...], datetime | None], list[Any]] = {}
    for row in rows:
        key = (row.outcome, tuple(row.group.get(d) for d in dims), row.bucket)
        acc = sums.setdefault(key, [0, Decimal(0), 0, 0, 0])
        for i, value in enumerate((row.cost_nano, row.outcomes, row.runs, row.runs_without_outcome, row.waste_nano)):
            acc[i] += value
    return [OutcomeRow(outcome, dict(zip(dims, group, strict=True)), bucket, *acc)
            for (outcome, group, bucket), acc in sums.items()]


def scoped_outcomes(store: Store, principal: Principal, outcome: str | None, group_by: Sequence[str],
                    since: datetime | None, until: datetime | None, bucket: str | None) -> tuple[list[str],
                                                                                              list[OutcomeRow]]:
    """Cost per outcome restricted to what the caller may read (blocking)."""
    types = [outcome] if outcome else sorted({o.outcome for o in store.list_outcomes(since=since, until=until)})
    dims = list(group_by)
    inner = dims if principal.scope is None else list(dict.fromkeys([*dims, "team", "project"]))
    rows: list[OutcomeRow] = []
    for kind in types:
        found = cost_per_outcome(store, kind, since=since, until=until, group_by=inner, bucket=bucket)
        if principal.scope is not None:
            visible = [r for r in found if principal.may_read(r.group.get("team"), r.group.get("project"))]
            found = _merge(visible, dims)
        rows += found
    return types, rows


def outcomes_handler(store: Store) -> Any:
    async def handler(call: Call) -> dict[str, Any]:
        p = call.params
        group_by: tuple[str, ...] = p["group_by"] or ()
        types, rows = await run_in_threadpool(scoped_outcomes, store, call.principal, p["outcome"], group_by,
                                              p["since"], p["until"], p["bucket"])
        return {"outcomes": types, "group_by": list(group_by), "rows": [r.to_json() for r in rows]}

    return handler

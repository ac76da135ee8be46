"""The machine API of run trees and outcomes, declared in the one route table (`api.table`).

* `GET  /v1/runs?since=ISO&limit=N` — top-level runs the key covers, newest first (rule `rows`)
* `GET  /v1/runs/{run}` — the run's tree; another scope's run is 404 like an unknown one (`resource`)
* `POST /v1/runs/ingest` — nodes, events and outcomes from the SDK (`ApiRecorder`) (`attribution`)
* `POST /v1/outcomes` — one outcome `{outcome, value, run, context}` or `{"outcomes": [...]}` (`attribution`)
* `GET  /v1/outcomes/report?outcome=T&since=ISO&until=ISO&by=agent,model,tier&bucket=day` (`rows`)
* `GET  /v1/slos` — the last evaluation of the economic SLOs whose scope the key covers (`rows`)

Every route needs a costplane key. A key's bound attributes override what a payload says, and
a payload may not touch a run of another scope (a node, event or outcome naming such a run is
403 naming the field): nothing outside the key's scope can be written.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from costplane.api.errors import ApiError
from costplane.api.principal import KEY_ROLES, Principal
from costplane.api.runs import RUNS_SCHEMA, runs_handler
from costplane.api.table import Call, Endpoint, Param, Scoping, WithStatus, check_attribution
from costplane.app import Application
from costplane.attribution.context import DIMENSIONS, InvalidAttribute
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent
from costplane.pricing.catalog import Catalog
from costplane.pricing.types import UnknownPrice
from costplane.runs.report import cost_per_outcome
from costplane.runs.tree import ROOT_KINDS, build_tree
from costplane.runs.wire import WireError, batch_from_json, outcome_from_json

__all__ = ["parse_time", "run_attribution", "run_endpoints"]


def _repriced(catalog: Catalog, event: CostEvent) -> CostEvent:
    """An LLM event is priced by the server, from its tokens, with the same catalog as the gateway:
    the cost an SDK reports is not trusted. A model the server cannot price keeps the reported
    cost and is flagged, so it is never silently $0 nor silently trusted."""
    if event.kind != "llm":
        return event
    try:
        sheet = catalog.resolve(event.model, event.provider or None, event.ts)
    except UnknownPrice:
        return replace(event, price_flagged=True)
    rates = sheet.rates(event.usage.input_tokens)
    return replace(event, cost_nano=sheet.cost_nano(event.usage), price_flagged=sheet.flagged_default,
                   unit_prices={name: str(rate) for name, rate in rates.items()})


def parse_time(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise WireError(f"{name}: expected an ISO 8601 time such as 2026-11-22T00:00:00+00:00, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _new_id() -> str:
    return f"out-{uuid.uuid4().hex[:20]}"


def _invalid(exc: ValueError) -> ApiError:
    """A payload error as a 400 naming the field (the text before the first colon)."""
    text = str(exc)
    field = text.split(":", 1)[0] if ":" in text and " " not in text.split(":", 1)[0] else "(body)"
    return ApiError(400, "invalid_request", text, field)


def run_attribution(store: Store, run: str) -> list[dict[str, str | None]] | None:
    """Who a run belongs to: its root node's dimensions when the root names a team or project,
    otherwise those of every cost event of it (and of its nested runs), or of its latest decision
    for a run only refused; None for an unknown run."""
    nodes = store.run_nodes(run)
    root = next((n for n in nodes if n.id == run), None)
    if root is not None and (root.context.team or root.context.project):
        return [dict(root.context.dimensions())]
    members = [run] + [n.id for n in nodes if n.kind in ROOT_KINDS and n.id != run]
    found: list[dict[str, str | None]] = [dict(e.context.dimensions()) for m in members for e in store.run_events(m)]
    if not found and root is not None:
        found = [dict(root.context.dimensions())]
    if not found and not nodes:  # a run refused on its first call: the decision that refused it says whose
        found = [dict(d.context.dimensions()) for d in store.latest_decisions([run]).values()]
    return found or (None if not nodes else [{}])


def _guard_runs(store: Store, principal: Principal, runs: Mapping[str, str]) -> None:
    """403 (naming the field) when a payload names a run that exists in another scope."""
    for run, field in runs.items():
        owners = run_attribution(store, run)
        if owners is not None and not all(principal.covers(o) for o in owners):
            raise ApiError(403, "forbidden_scope", f"{field}: run {run!r} belongs to another scope", field)


def _body(call: Call) -> Any:
    if call.body is None:
        raise ApiError(400, "invalid_json", "a JSON body is required", "(body)")
    return call.body


def _bound(principal: Principal) -> dict[str, str]:
    return dict(principal.key.attributes) if principal.key is not None else {}


class _Handlers:
    def __init__(self, application: Application) -> None:
        self.app = application
        self.store = application.store
        self._runs = runs_handler(application.store)

    def owner(self, call: Call) -> Sequence[Mapping[str, str | None]] | None:
        return run_attribution(self.store, str(call.params["run"]))

    async def runs(self, call: Call) -> dict[str, Any]:
        bound = call.principal.bound
        params = {**call.params, "team": None, "agent": bound.get("agent"), "pipeline": None}
        found: dict[str, Any] = await self._runs(Call(call.principal, params))
        if set(bound) - {"team", "project", "agent"}:  # e.g. an org-bound key: check each run's attribution

            def covered(run: str) -> bool:
                owners = run_attribution(self.store, run)
                return bool(owners) and all(call.principal.covers(o) for o in owners or ())

            kept = await run_in_threadpool(lambda: [r for r in found["runs"] if covered(str(r["run"]))])
            found = {**found, "runs": kept}
        return found

    async def run(self, call: Call) -> dict[str, Any]:
        run_id = str(call.params["run"])
        tree = await run_in_threadpool(build_tree, self.store, run_id)
        if tree is None:
            raise ApiError(404, "run_not_found", f"run: no run {run_id!r} in the ledger", "run")
        return tree.to_json()

    async def ingest(self, call: Call) -> dict[str, Any]:
        principal = call.principal
        try:
            nodes, events, outcomes = batch_from_json(_body(call), _bound(principal), principal.token_id,
                                                      datetime.now(UTC), _new_id)
        except (WireError, InvalidAttribute) as exc:
            raise _invalid(exc) from None
        events = [_repriced(self.app.catalog, event) for event in events]
        contexts = [(f"nodes[{i}]", n.context) for i, n in enumerate(nodes)]
        contexts += [(f"events[{i}]", e.context) for i, e in enumerate(events)]
        contexts += [(f"outcomes[{i}]", o.context) for i, o in enumerate(outcomes)]
        for where, ctx in contexts:
            check_attribution(principal, ctx.dimensions(), f"{where}.context.")
        runs: dict[str, str] = {}
        for i, node in enumerate(nodes):
            runs.setdefault(node.run, f"nodes[{i}].run")
        for i, event in enumerate(events):
            if event.context.run:
                runs.setdefault(event.context.run, f"events[{i}].context.run")
        for i, outcome in enumerate(outcomes):
            if outcome.context.run:
                runs.setdefault(outcome.context.run, f"outcomes[{i}].run")

        def write() -> None:
            _guard_runs(self.store, principal, runs)
            if nodes:
                self.store.record_nodes(nodes, ())
            if events:  # spend observed after the fact: through the decision core (budgets, alerts, log)
                self.app.core.record_spend(events, "ingest")
            for outcome in outcomes:
                self.store.record_outcome(outcome)

        await run_in_threadpool(write)
        return {"nodes": len(nodes), "events": len(events), "outcomes": len(outcomes)}

    async def outcomes(self, call: Call) -> dict[str, Any]:
        payload = _body(call)
        principal = call.principal
        items = payload.get("outcomes") if isinstance(payload, dict) and "outcomes" in payload else [payload]
        if not isinstance(items, list):
            raise ApiError(400, "invalid_request", "outcomes: expected an array", "outcomes")
        now = datetime.now(UTC)
        try:
            records = [outcome_from_json(item, f"outcomes[{i}]", _bound(principal), principal.token_id, now,
                                         _new_id()) for i, item in enumerate(items)]
        except (WireError, InvalidAttribute) as exc:
            raise _invalid(exc) from None
        for i, record in enumerate(records):
            check_attribution(principal, record.context.dimensions(), f"outcomes[{i}].context.")
        runs = {r.context.run: f"outcomes[{i}].run" for i, r in enumerate(records) if r.context.run}

        def write() -> list[bool]:
            _guard_runs(self.store, principal, runs)
            return [self.store.record_outcome(r) for r in records]

        stored = await run_in_threadpool(write)
        return WithStatus(201, {"recorded": sum(stored), "ids": [r.id for r in records]})

    async def report(self, call: Call) -> dict[str, Any]:
        p = call.params
        by = list(p["by"] or ("agent", "model", "tier"))
        principal = call.principal
        if principal.key is None:
            raise ApiError(403, "forbidden_role", "a costplane key is required", "authorization")
        where = principal.bound or None
        try:
            rows = await run_in_threadpool(lambda: cost_per_outcome(
                self.store, p["outcome"], since=p["since"], until=p["until"], group_by=by, where=where,
                bucket=p["bucket"]))
        except ValueError as exc:
            raise ApiError(400, "invalid_parameter", str(exc), "by") from None
        return {"outcome": p["outcome"], "rows": [r.to_json() for r in rows]}

    async def slos(self, call: Call) -> dict[str, Any]:
        states = await run_in_threadpool(self.store.slo_states)
        principal = call.principal
        return {"slos": [{"name": s.name, "breached": s.breached, "updated_at": s.updated_at.isoformat(),
                          "since": s.since.isoformat() if s.since else None, "scope": dict(s.scope),
                          "measured": dict(s.measured), "actions": [dict(a) for a in s.actions]}
                         for s in states if principal.covers({k: str(v) for k, v in dict(s.scope).items()})]}


_OBJECT = {"type": "object"}
_TREE = {"type": "object", "required": ["id", "kind", "children"], "properties": {
    "id": {"type": "string"}, "kind": {"type": "string"}, "children": {"type": "array", "items": _OBJECT}}}
_INGEST = {"type": "object", "properties": {"nodes": {"type": "array", "items": _OBJECT},
                                            "events": {"type": "array", "items": _OBJECT},
                                            "outcomes": {"type": "array", "items": _OBJECT}}}
_INGESTED = {"type": "object", "required": ["nodes", "events", "outcomes"], "properties": {
    "nodes": {"type": "integer"}, "events": {"type": "integer"}, "outcomes": {"type": "integer"}}}
_OUTCOME_BODY = {"type": "object", "description": "{outcome, value, run, context, id, ts} or {\"outcomes\": [...]}"}
_RECORDED = {"type": "object", "required": ["recorded", "ids"], "properties": {
    "recorded": {"type": "integer"}, "ids": {"type": "array", "items": {"type": "string"}}}}
_REPORT = {"type": "object", "required": ["outcome", "rows"], "properties": {
    "outcome": {"type": "string"}, "rows": {"type": "array", "items": _OBJECT}}}
_SLOS = {"type": "object", "required": ["slos"], "properties": {"slos": {"type": "array", "items": _OBJECT}}}
_BY = ("model", *(d for d in DIMENSIONS if d != "run"))


def run_endpoints(application: Application) -> tuple[Endpoint, ...]:
    """/v1/runs…, /v1/outcomes…, /v1/slos for costplane keys, declared in the route table."""
    h = _Handlers(application)
    tags = ("machine: runs",)
    rows = Scoping("rows", "only what the key's bound attributes cover")
    writes = Scoping("attribution", "the key's bound attributes override the payload; runs of another scope "
                     "are 403")
    since = Param("since", "date-time", "runs started (or with cost) at or after this instant")
    return (
        Endpoint("GET", "/v1/runs", "machine_runs", "Top-level runs the key covers, newest first", KEY_ROLES,
                 RUNS_SCHEMA, h.runs, (since, Param("limit", "integer", "at most this many", minimum=1,
                                                    maximum=500, default=50)), tags=tags, scoping=rows),
        Endpoint("POST", "/v1/runs/ingest", "machine_ingest_runs", "Nodes, events and outcomes from the SDK",
                 KEY_ROLES, _INGESTED, h.ingest, body=_INGEST, tags=tags, scoping=writes,
                 description="LLM events are repriced by the server from their tokens."),
        Endpoint("GET", "/v1/runs/{run}", "machine_run", "A run's cost tree", KEY_ROLES, _TREE, h.run,
                 (Param("run", "string", "the run's id", location="path"),), tags=tags,
                 scoping=Scoping("resource", "another scope's run is 404, like an unknown one", h.owner, "run",
                                 "run_not_found")),
        Endpoint("POST", "/v1/outcomes", "machine_record_outcomes", "Record one outcome or a batch", KEY_ROLES,
                 _RECORDED, h.outcomes, body=_OUTCOME_BODY, status=201, tags=tags, scoping=writes),
        Endpoint("GET", "/v1/outcomes/report", "machine_outcome_report", "Cost per outcome, grouped", KEY_ROLES,
                 _REPORT, h.report, (
                     Param("outcome", "string", "the outcome type to report on", required=True),
                     Param("since", "date-time", "cost and outcomes at or after this instant"),
                     Param("until", "date-time", "cost and outcomes before this instant"),
                     Param("by", "list", "group by these (default agent,model,tier)", enum=_BY),
                     Param("bucket", "string", "also by day", enum=("day",))), tags=tags, scoping=rows),
        Endpoint("GET", "/v1/slos", "machine_slos", "The last evaluation of the SLOs the key covers", KEY_ROLES,
                 _SLOS, h.slos, tags=tags, scoping=rows),
    )

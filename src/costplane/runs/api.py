"""The machine API of run trees and outcomes, declared in the one route table (`api.table`).

* `GET  /v1/runs?since=ISO&limit=N` — top-level runs the key covers, newest first (rule `rows`)
* `GET  /v1/runs/{run}` — the run's tree; another scope's run is 404 like an unknown one (`resource`)
* `POST /v1/runs/ingest` — nodes, events and outcomes from the SDK (`ApiRecorder`) (`attribution`)
* `POST /v1/outcomes` — one outcome `{outcome, value, run, context}` or `{"outcomes": [...]}` (`attribution`)
* `GET  /v1/outcomes/report?outcome=T&since=ISO&until=ISO&by=agent,model,tier&bucket=day` (`rows`)
* `GET  /v1/slos` — the last evaluation of the economic SLOs whose scope the key covers (`rows`)
* `POST /v1/runs/admit` — admit a direct-mode LLM call of the SDK through the server's decision core
  (policies, bundle budgets, `gateway.default_max_tokens`, the configured pricing provider)
  before it is sent; `POST /v1/runs/settle` / `POST /v1/runs/release` end it (`attribution`)

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
from costplane.attribution.context import DIMENSIONS, Context, InvalidAttribute
from costplane.core.requests import Denial, LlmRequest
from costplane.httpstatus import denial_status
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent
from costplane.pricing.catalog import Catalog
from costplane.pricing.types import UnknownPrice
from costplane.pricing.usagecodec import usage_from_json
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


def _object_body(call: Call) -> Mapping[str, Any]:
    body = _body(call)
    if not isinstance(body, Mapping):
        raise ApiError(400, "invalid_json", "the body must be a JSON object", "(body)")
    return body


def _bound(principal: Principal) -> dict[str, str]:
    return dict(principal.key.attributes) if principal.key is not None else {}


def _field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str, *,
           required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ApiError(400, "invalid_field", f"{where}{name}: missing or of the wrong type", f"{where}{name}")
    return value


def _count(body: Mapping[str, Any], name: str, where: str, *, required: bool = True, least: int = 0) -> int | None:
    value = _field(body, name, int, where, required=required)
    if value is not None and value < least:
        raise ApiError(400, "invalid_field", f"{where}{name}: must be at least {least}, got {value}", f"{where}{name}")
    return value  # type: ignore[no-any-return]


def llm_request(raw: Any, where: str = "request.") -> LlmRequest:
    """The `request` of POST /v1/runs/admit and /settle: what the client knows of its call."""
    if not isinstance(raw, Mapping):
        raise ApiError(400, "invalid_field", f"{where.rstrip('.')}: expected an object", where.rstrip("."))
    protocol = _field(raw, "protocol", str, where)
    if protocol not in ("openai", "anthropic"):
        raise ApiError(400, "invalid_field", f"{where}protocol: expected openai or anthropic, got {protocol!r}",
                       f"{where}protocol")
    model = _field(raw, "model", str, where)
    if not model.strip():
        raise ApiError(400, "invalid_field", f"{where}model: must not be empty", f"{where}model")
    bound = _count(raw, "input_tokens_bound", where) or 0
    estimate = _count(raw, "input_tokens_estimate", where, required=False)
    return LlmRequest(protocol, _field(raw, "endpoint", str, where, required=False) or (
        "messages" if protocol == "anthropic" else "chat.completions"), model, bound,
        bound if estimate is None else estimate, _count(raw, "max_tokens", where, required=False, least=1),
        bool(_field(raw, "stream", bool, where, required=False)))


def _tool_uses(raw: Any) -> dict[str, int]:
    """`tool_uses` of POST /v1/runs/admit: the most uses of each per-use-billed unit the call can make."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ApiError(400, "invalid_field", "tool_uses: expected an object of billed unit -> most uses", "tool_uses")
    out: dict[str, int] = {}
    for unit, uses in raw.items():
        if not isinstance(uses, int) or isinstance(uses, bool) or not 0 <= uses <= 10_000:
            raise ApiError(400, "invalid_field", f"tool_uses.{unit}: expected an integer from 0 to 10000",
                           f"tool_uses.{unit}")
        out[str(unit)] = uses
    return out


def _call_context(principal: Principal, body: Mapping[str, Any]) -> Context:
    raw = body.get("context") or {}
    if not isinstance(raw, Mapping):
        raise ApiError(400, "invalid_field", "context: expected an object of dimension -> value", "context")
    try:
        ctx = Context.from_mapping({**raw, **_bound(principal)}, source="context")  # the key's values win
    except (InvalidAttribute, TypeError, ValueError) as exc:
        raise ApiError(400, "invalid_field", f"context: {exc}", "context") from None
    check_attribution(principal, ctx.dimensions(), "context.")
    return ctx.with_values(key_id=principal.token_id)


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

    async def admit(self, call: Call) -> dict[str, Any]:
        """A direct-mode call of the SDK admitted before it is sent (hook llm.request, `admit_direct`)."""
        body = _object_body(call)
        request = llm_request(body.get("request"))
        uses = _tool_uses(body.get("tool_uses"))
        ctx = _call_context(call.principal, body)
        runs = {ctx.run: "context.run"} if ctx.run else {}

        def decide() -> Any:
            _guard_runs(self.store, call.principal, runs)
            return self.app.core.admit_direct(ctx, request, tool_uses=uses)

        got = await run_in_threadpool(decide)
        if isinstance(got, Denial):
            raise ApiError(denial_status(got), got.code, got.message,
                           "request.model" if got.code == "model_not_found" else None,
                           {"decision_id": got.decision_id, "retryable": got.retryable})
        return {"decision_id": got.decision_id, "effect": got.effect, "model": got.model,
                "max_tokens": got.max_tokens, "reservation_id": got.reservation.id if got.reservation else None,
                "reserved_nano": got.worst_nano, "provider": got.provider.name,
                "pricing_provider": got.provider.pricing_provider or got.provider.name, "reason": got.reason}

    def _reservation(self, call: Call, body: Mapping[str, Any]) -> Any:
        """The open reservation the body names, admitted for this key (another key's is 404, like an unknown one)."""
        reservation_id = _field(body, "reservation_id", str, "")
        found = self.store.get_reservation(reservation_id)
        if found is None or found.key_id != call.principal.token_id:
            raise ApiError(404, "unknown_reservation", f"reservation_id: no reservation {reservation_id!r} of this "
                           "key", "reservation_id")
        if found.status != "open":
            raise ApiError(409, "not_open", f"reservation_id: reservation {reservation_id!r} is {found.status}",
                           "reservation_id")
        return found

    async def settle(self, call: Call) -> dict[str, Any]:
        """The admitted call's usage: its cost event, priced by the server, settled against its reservation."""
        body = _object_body(call)
        request = llm_request(body.get("request"))
        model = _field(body, "model", str, "")
        raw_usage = _field(body, "usage", Mapping, "")
        try:
            usage = usage_from_json(raw_usage)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "invalid_field", f"usage: {exc}", "usage") from None
        status = _field(body, "status", str, "", required=False) or "ok"
        if status not in ("ok", "estimated", "cut", "error"):
            raise ApiError(400, "invalid_field", f"status: expected ok, estimated, cut or error, got {status!r}",
                           "status")
        latency = _count(body, "latency_ms", "", required=False) or 0

        def write() -> Any:
            reservation = self._reservation(call, body)  # first: another key's call is 404 whatever the body
            ctx = _call_context(call.principal, body)
            try:
                return self.app.core.settle_admitted(reservation, ctx, request, model, usage, status=status,
                                                     latency_ms=latency)
            except UnknownPrice as exc:
                raise ApiError(400, "unknown_price", f"model: {exc}", "model") from None

        settled = await run_in_threadpool(write)
        return {"event_id": settled.event_id, "cost_nano": settled.cost_nano}

    async def release(self, call: Call) -> dict[str, Any]:
        """The admitted call failed before anything was spent: its reservation is given back."""
        body = _object_body(call)

        def write() -> bool:
            reservation = self._reservation(call, body)
            return self.app.core.decider.release(reservation.id)

        return {"released": await run_in_threadpool(write)}

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
_CALL = {"type": "object", "required": ["protocol", "model", "input_tokens_bound"], "properties": {
    "protocol": {"type": "string", "enum": ["openai", "anthropic"]}, "endpoint": {"type": "string"},
    "model": {"type": "string"}, "input_tokens_bound": {"type": "integer", "minimum": 0},
    "input_tokens_estimate": {"type": "integer", "minimum": 0}, "max_tokens": {"type": "integer", "minimum": 1},
    "stream": {"type": "boolean"}}}
_ADMIT = {"type": "object", "required": ["request"], "properties": {
    "request": _CALL, "context": _OBJECT,
    "tool_uses": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 10000}}}}
_ADMITTED = {"type": "object", "required": ["decision_id", "effect", "model", "max_tokens", "reservation_id"],
             "properties": {"decision_id": {"type": "string"}, "effect": {"type": "string"},
                            "model": {"type": "string"}, "max_tokens": {"type": "integer"},
                            "reservation_id": {"type": ["string", "null"]}, "reserved_nano": {"type": "integer"},
                            "provider": {"type": "string"}, "pricing_provider": {"type": "string"},
                            "reason": {"type": "string"}}}
_SETTLE = {"type": "object", "required": ["reservation_id", "request", "model", "usage"], "properties": {
    "reservation_id": {"type": "string"}, "request": _CALL, "model": {"type": "string"}, "usage": _OBJECT,
    "status": {"type": "string", "enum": ["ok", "estimated", "cut", "error"]},
    "latency_ms": {"type": "integer", "minimum": 0}, "context": _OBJECT}}
_SETTLED = {"type": "object", "required": ["event_id", "cost_nano"], "properties": {
    "event_id": {"type": "string"}, "cost_nano": {"type": "integer"}}}
_RELEASE = {"type": "object", "required": ["reservation_id"], "properties": {"reservation_id": {"type": "string"}}}
_RELEASED = {"type": "object", "required": ["released"], "properties": {"released": {"type": "boolean"}}}
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
        Endpoint("POST", "/v1/runs/admit", "machine_admit_call", "Admit a direct-mode LLM call before it is sent",
                 KEY_ROLES, _ADMITTED, h.admit, body=_ADMIT, tags=tags, scoping=writes,
                 description="The server's decision core: policies, bundle budgets (one reservation of the "
                             "worst case), gateway.default_max_tokens, the configured pricing provider."),
        Endpoint("POST", "/v1/runs/settle", "machine_settle_call", "Settle an admitted call with its usage",
                 KEY_ROLES, _SETTLED, h.settle, body=_SETTLE, tags=tags, scoping=writes,
                 description="Priced by the server; only the key that was admitted may settle."),
        Endpoint("POST", "/v1/runs/release", "machine_release_call", "Give an admitted call's reservation back",
                 KEY_ROLES, _RELEASED, h.release, body=_RELEASE, tags=tags, scoping=writes),
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

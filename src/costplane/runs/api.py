"""HTTP API of run trees and outcomes (served by `costplane serve`, see server.py).

* `GET  /v1/runs?since=ISO&limit=N` — top-level runs, newest first, with cost and tokens
* `GET  /v1/runs/{run}` — the run's tree (cost, tokens, duration per node)
* `POST /v1/runs/ingest` — nodes, events and outcomes from the SDK (`ApiRecorder`)
* `POST /v1/outcomes` — one outcome `{outcome, value, run, context}` or `{"outcomes": [...]}`
* `GET  /v1/outcomes/report?outcome=T&since=ISO&until=ISO&by=agent,model,tier&bucket=day`
* `GET  /v1/slos` — the last evaluation of every economic SLO

Every route needs a costplane key; a key's bound attributes override what a payload says.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from costplane.app import Application
from costplane.attribution.context import InvalidAttribute
from costplane.gateway.keys import KeyVerifier
from costplane.ledger.types import CostEvent, KeyRecord
from costplane.pricing.catalog import Catalog
from costplane.pricing.types import UnknownPrice
from costplane.runs.auth import api_error, authenticate
from costplane.runs.report import cost_per_outcome
from costplane.runs.tree import build_tree, list_runs
from costplane.runs.wire import WireError, batch_from_json, outcome_from_json

__all__ = ["parse_time", "run_routes"]


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


def run_routes(application: Application) -> list[BaseRoute]:
    keys = KeyVerifier(application.store, application.config.gateway.key_cache_seconds)
    store = application.store

    def guarded(handler: Callable[[Request, KeyRecord], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            key = authenticate(keys, request)
            if key is None:
                return api_error(401, "invalid_api_key", "missing, unknown, expired or revoked costplane key")
            try:
                result: Response = await handler(request, key)
                return result
            except (WireError, InvalidAttribute, ValueError) as exc:
                return api_error(400, "invalid_request", str(exc))
        return endpoint

    async def runs(request: Request, key: KeyRecord) -> Response:
        since = parse_time(request.query_params.get("since"), "since")
        limit = int(request.query_params.get("limit", "50"))
        rows = await run_in_threadpool(list_runs, store, since=since, limit=limit)
        return JSONResponse({"runs": [r.to_json() for r in rows]})

    async def run(request: Request, key: KeyRecord) -> Response:
        run_id = request.path_params["run"]
        tree = await run_in_threadpool(build_tree, store, run_id)
        if tree is None:
            return api_error(404, "run_not_found", f"no run {run_id!r} in the ledger")
        return JSONResponse(tree.to_json())

    async def ingest(request: Request, key: KeyRecord) -> Response:
        payload = _json(await request.body())
        nodes, events, outcomes = batch_from_json(payload, key.attributes, key.id, datetime.now(UTC), _new_id)
        events = [_repriced(application.catalog, event) for event in events]

        def write() -> None:
            store.record_nodes(nodes, events)
            for outcome in outcomes:
                store.record_outcome(outcome)

        await run_in_threadpool(write)
        return JSONResponse({"nodes": len(nodes), "events": len(events), "outcomes": len(outcomes)})

    async def outcomes(request: Request, key: KeyRecord) -> Response:
        payload = _json(await request.body())
        items = payload.get("outcomes") if isinstance(payload, dict) and "outcomes" in payload else [payload]
        if not isinstance(items, list):
            raise WireError("outcomes: expected an array")
        now = datetime.now(UTC)
        records = [outcome_from_json(item, f"outcomes[{i}]", key.attributes, key.id, now, _new_id())
                   for i, item in enumerate(items)]
        stored = await run_in_threadpool(lambda: [store.record_outcome(r) for r in records])
        return JSONResponse({"recorded": sum(stored), "ids": [r.id for r in records]}, status_code=201)

    async def report(request: Request, key: KeyRecord) -> Response:
        params = request.query_params
        outcome = params.get("outcome")
        if not outcome:
            raise WireError("outcome: the outcome type to report on is required, e.g. ?outcome=ticket_resolved")
        by = [b for b in params.get("by", "agent,model,tier").split(",") if b]
        rows = await run_in_threadpool(lambda: cost_per_outcome(
            store, outcome, since=parse_time(params.get("since"), "since"),
            until=parse_time(params.get("until"), "until"), group_by=by, bucket=params.get("bucket") or None))
        return JSONResponse({"outcome": outcome, "rows": [r.to_json() for r in rows]})

    async def slos(request: Request, key: KeyRecord) -> Response:
        states = await run_in_threadpool(store.slo_states)
        return JSONResponse({"slos": [{"name": s.name, "breached": s.breached, "updated_at": s.updated_at.isoformat(),
                                       "since": s.since.isoformat() if s.since else None, "scope": dict(s.scope),
                                       "measured": dict(s.measured), "actions": [dict(a) for a in s.actions]}
                                      for s in states]})

    return [
        Route("/v1/runs", guarded(runs), methods=["GET"]),
        Route("/v1/runs/ingest", guarded(ingest), methods=["POST"]),
        Route("/v1/runs/{run}", guarded(run), methods=["GET"]),
        Route("/v1/outcomes", guarded(outcomes), methods=["POST"]),
        Route("/v1/outcomes/report", guarded(report), methods=["GET"]),
        Route("/v1/slos", guarded(slos), methods=["GET"]),
    ]


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"the request body is not valid JSON: {exc}") from None

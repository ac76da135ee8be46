"""JSON forms of run nodes, cost events and outcomes: the API's wire format (SDK → server)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from costplane.attribution.context import Context
from costplane.ledger.runtypes import OutcomeRecord, RunNode
from costplane.ledger.types import CostEvent
from costplane.pricing.usagecodec import usage_from_json, usage_to_json

__all__ = ["WireError", "batch_from_json", "batch_to_json", "context_json", "outcome_from_json"]


class WireError(ValueError):
    """A malformed API payload; the message names the field."""


def context_json(ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = dict(ctx.dimensions())
    if ctx.tags:
        out["tags"] = dict(ctx.tags)
    return out


def _ts(value: datetime) -> str:
    return value.isoformat()


def batch_to_json(nodes: Sequence[RunNode], events: Sequence[CostEvent],
                  outcomes: Sequence[OutcomeRecord]) -> dict[str, Any]:
    return {
        "nodes": [{"id": n.id, "run": n.run, "kind": n.kind, "name": n.name, "started_at": _ts(n.started_at),
                   "parent_id": n.parent_id, "ended_at": n.ended_at and _ts(n.ended_at), "status": n.status,
                   "event_id": n.event_id, "context": context_json(n.context), "attributes": dict(n.attributes)}
                  for n in nodes],
        "events": [{"id": e.id, "ts": _ts(e.ts), "context": context_json(e.context), "provider": e.provider,
                    "model": e.model, "cost_nano": e.cost_nano, "kind": e.kind, "endpoint": e.endpoint,
                    "status": e.status, "latency_ms": e.latency_ms, "unit_prices": dict(e.unit_prices),
                    "requested_model": e.requested_model, "price_flagged": e.price_flagged,
                    "usage": usage_to_json(e.usage)}
                   for e in events],
        "outcomes": [{"id": o.id, "ts": _ts(o.ts), "outcome": o.outcome, "value": str(o.value),
                      "context": context_json(o.context)} for o in outcomes],
    }


def _get(item: Mapping[str, Any], name: str, where: str, kind: type | tuple[type, ...] = str,
         required: bool = True) -> Any:
    value = item.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise WireError(f"{where}.{name}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _time(item: Mapping[str, Any], name: str, where: str, required: bool = True) -> datetime | None:
    text = _get(item, name, where, str, required)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise WireError(f"{where}.{name}: expected an ISO 8601 time, got {text!r}") from None
    if value.tzinfo is None:
        raise WireError(f"{where}.{name}: the time must name its zone (e.g. +00:00), got {text!r}")
    return value


def _ctx(item: Mapping[str, Any], where: str, bound: Mapping[str, str], key_id: str | None) -> Context:
    raw = item.get("context") or {}
    if not isinstance(raw, Mapping):
        raise WireError(f"{where}.context: expected an object of dimension -> value")
    ctx = Context.from_mapping({**raw, **bound}, source=f"{where}.context")  # the key's values win
    return ctx.with_values(key_id=key_id)


def _list(payload: Mapping[str, Any], name: str) -> list[Any]:
    items = payload.get(name) or []
    if not isinstance(items, list):
        raise WireError(f"{name}: expected an array")
    return items


def outcome_from_json(item: Mapping[str, Any], where: str, bound: Mapping[str, str], key_id: str | None,
                      now: datetime, new_id: str) -> OutcomeRecord:
    if not isinstance(item, Mapping):
        raise WireError(f"{where}: expected an object")
    name = _get(item, "outcome", where)
    raw_value = item.get("value", 1)
    try:
        value = Decimal(str(raw_value))
    except InvalidOperation:
        raise WireError(f"{where}.value: expected a number, got {raw_value!r}") from None
    if not value.is_finite() or value < 0:
        raise WireError(f"{where}.value: expected a finite number >= 0, got {raw_value!r}")
    values = dict(item.get("context") or {})
    if item.get("run"):
        values["run"] = item["run"]
    ctx = _ctx({"context": values}, where, bound, key_id).with_values(outcome=name)
    return OutcomeRecord(_get(item, "id", where, required=False) or new_id,
                         _time(item, "ts", where, required=False) or now, name, value, ctx)


def batch_from_json(payload: Any, bound: Mapping[str, str], key_id: str | None, now: datetime,
                    new_id: Any) -> tuple[list[RunNode], list[CostEvent], list[OutcomeRecord]]:
    """Decode a batch; `bound` (the key's attributes) overrides every context it carries."""
    if not isinstance(payload, Mapping):
        raise WireError("(body): expected an object with nodes, events, outcomes")
    nodes = []
    for i, item in enumerate(_list(payload, "nodes")):
        where = f"nodes[{i}]"
        nodes.append(RunNode(
            id=_get(item, "id", where), run=_get(item, "run", where), kind=_get(item, "kind", where),
            name=_get(item, "name", where), started_at=_time(item, "started_at", where) or now,
            parent_id=_get(item, "parent_id", where, required=False), ended_at=_time(item, "ended_at", where, False),
            status=_get(item, "status", where, required=False) or "running",
            event_id=_get(item, "event_id", where, required=False), context=_ctx(item, where, bound, key_id),
            attributes=dict(_get(item, "attributes", where, Mapping, required=False) or {})))
    events = []
    for i, item in enumerate(_list(payload, "events")):
        where = f"events[{i}]"
        usage = _get(item, "usage", where, Mapping, required=False) or {}
        try:
            tokens = usage_from_json(usage)
        except (TypeError, ValueError) as exc:
            raise WireError(f"{where}.usage: {exc}") from None
        cost = _get(item, "cost_nano", where, int)
        if cost < 0:
            raise WireError(f"{where}.cost_nano: must be >= 0")
        events.append(CostEvent(
            id=_get(item, "id", where), ts=_time(item, "ts", where) or now, context=_ctx(item, where, bound, key_id),
            provider=_get(item, "provider", where), model=_get(item, "model", where), cost_nano=cost,
            kind=_get(item, "kind", where, required=False) or "llm",
            endpoint=_get(item, "endpoint", where, required=False) or "", usage=tokens,
            unit_prices={str(k): str(v) for k, v in (item.get("unit_prices") or {}).items()},
            latency_ms=int(item.get("latency_ms") or 0), status=_get(item, "status", where, required=False) or "ok",
            price_flagged=bool(item.get("price_flagged")),
            requested_model=_get(item, "requested_model", where, required=False)))
    outcomes = [outcome_from_json(item, f"outcomes[{i}]", bound, key_id, now, new_id())
                for i, item in enumerate(_list(payload, "outcomes"))]
    return nodes, events, outcomes

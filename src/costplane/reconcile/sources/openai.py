"""OpenAI organization Costs and Usage API responses (an admin key's `GET /v1/organization/…`).

Costs (`GET /v1/organization/costs?group_by=line_item&group_by=project_id`): pages of
`{"object": "page", "data": [bucket], "has_more", "next_page"}`, each bucket
`{"object": "bucket", "start_time", "end_time", "results": [...]}` (Unix seconds, 1-day buckets), each
result `{"object": "organization.costs.result", "amount": {"value": 0.06, "currency": "usd"},
"line_item": "gpt-4o-2024-08-06, input" | null, "project_id": "proj_…" | null}`. The model of a cost
line is the line item's text before its first comma; a line item without a comma (a tool or storage
charge) keeps its whole text as the model label, so it stays a line of its own.

Usage (`GET /v1/organization/usage/completions?group_by=model&group_by=project_id`): the same pages,
results `{"object": "organization.usage.completions.result", "input_tokens", "output_tokens",
"input_cached_tokens", "input_audio_tokens", "output_audio_tokens", "num_model_requests", "model",
"project_id", "batch", "service_tier", …}`. `input_tokens` already includes the cached tokens, like the
ledger's input count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costplane.reconcile.sources.common import Field, iter_buckets
from costplane.reconcile.sources.context import ReadContext
from costplane.reconcile.types import MONEY, BilledLine, BillSource, ReconcileError

__all__ = ["COSTS_OBJECT", "USAGE_OBJECT", "read_openai"]

COSTS_OBJECT = "organization.costs.result"
USAGE_OBJECT = "organization.usage.completions.result"
PROVIDER = "openai"


def read_openai(pages: list[Mapping[str, Any]], path: str, ctx: ReadContext, kind: str) -> BillSource:
    """Costs (kind MONEY) or completions usage (kind TOKENS) pages as billed lines."""
    source = BillSource(kind, "openai-costs" if kind == MONEY else "openai-usage", path)
    for bucket, results in iter_buckets(pages, path):
        start, end = bucket.unix("start_time"), bucket.unix("end_time")
        day = ctx.clock.day_of(start, end, bucket.where)
        source.cover(PROVIDER, day, start, end)
        for result in results:
            line = _cost(result, ctx, source) if kind == MONEY else _usage(result, ctx, source)
            source.lines.append(BilledLine(day=day, provider=PROVIDER, **line))
    return source


def _project(result: Field, ctx: ReadContext, source: BillSource) -> str | None:
    if "project_id" not in result.obj:
        return None
    project_id = result.text("project_id")
    source.has_project = source.has_project or project_id is not None
    return ctx.project(project_id)


def _cost(result: Field, ctx: ReadContext, source: BillSource) -> dict[str, Any]:
    _expect(result, COSTS_OBJECT)
    amount = result.obj_of("amount")
    if amount is None:
        raise ReconcileError(f"{result.where}.amount: expected {{\"value\": …, \"currency\": \"usd\"}}")
    currency = (amount.text("currency") or "").lower()
    if currency != "usd":
        raise ReconcileError(f"{amount.where}.currency: only USD bills are reconciled, got {currency!r}")
    item = result.text("line_item")
    raw = item.split(",", 1)[0].strip() if item else None
    source.has_model = source.has_model or bool(raw)
    return {"model": ctx.model(raw) if raw else None, "project": _project(result, ctx, source),
            "cost": amount.decimal("value"), "source": result.where, "raw_model": item}


def _usage(result: Field, ctx: ReadContext, source: BillSource) -> dict[str, Any]:
    _expect(result, USAGE_OBJECT)
    raw = result.text("model")
    source.has_model = source.has_model or bool(raw)
    return {"model": ctx.model(raw) if raw else None, "project": _project(result, ctx, source),
            "input_tokens": result.count("input_tokens"), "output_tokens": result.count("output_tokens"),
            "requests": result.count("num_model_requests"), "source": result.where, "raw_model": raw}


def _expect(result: Field, obj: str) -> None:
    found = result.obj.get("object")
    if found is not None and found != obj:
        raise ReconcileError(f"{result.where}.object: expected {obj!r} in this report, got {found!r}")

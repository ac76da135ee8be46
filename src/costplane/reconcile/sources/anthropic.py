"""Anthropic Admin API usage and cost reports (`GET /v1/organizations/usage_report/messages`,
`GET /v1/organizations/cost_report`).

Both are pages `{"data": [bucket], "has_more", "next_page"}`; a bucket is
`{"starting_at": RFC 3339, "ending_at": RFC 3339 (exclusive), "results": [...]}`.

Cost report (`group_by[]=workspace_id&group_by[]=description`, daily buckets): each result
`{"amount": "123.45", "currency": "USD", "workspace_id": "wrkspc_…" | null, "description", "model",
"cost_type": "tokens" | "web_search" | "code_execution", "token_type", "service_tier", "context_window",
"inference_geo"}`. **`amount` is a decimal string in the lowest currency unit — cents: "123.45" is
$1.2345.** A non-token cost (web search, code execution) has no model: it is a line labelled by its
`cost_type`. A null `workspace_id` is the default workspace.

Usage report (`group_by[]=model&group_by[]=workspace_id`): each result `{"model", "workspace_id",
"api_key_id", "service_tier", "context_window", "uncached_input_tokens", "cache_read_input_tokens",
"cache_creation": {"ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"}, "output_tokens",
"server_tool_use": {"web_search_requests"}}`. The billed input is uncached + cache reads + both cache
writes (the ledger counts every prompt token as input the same way).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from costplane.reconcile.sources.common import Field, iter_buckets
from costplane.reconcile.sources.context import ReadContext
from costplane.reconcile.types import MONEY, BilledLine, BillSource, ReconcileError

__all__ = ["read_anthropic"]

PROVIDER = "anthropic"
_CENTS = Decimal(100)


def read_anthropic(pages: list[Mapping[str, Any]], path: str, ctx: ReadContext, kind: str) -> BillSource:
    """Cost report (kind MONEY) or messages usage report (kind TOKENS) pages as billed lines."""
    source = BillSource(kind, "anthropic-cost" if kind == MONEY else "anthropic-usage", path)
    for bucket, results in iter_buckets(pages, path):
        start, end = bucket.rfc3339("starting_at"), bucket.rfc3339("ending_at")
        day = ctx.clock.day_of(start, end, bucket.where)
        source.cover(PROVIDER, day, start, end)
        for result in results:
            line = _cost(result, ctx, source) if kind == MONEY else _usage(result, ctx, source)
            source.lines.append(BilledLine(day=day, provider=PROVIDER, **line))
    return source


def _workspace(result: Field, ctx: ReadContext, source: BillSource) -> str | None:
    if "workspace_id" not in result.obj:
        return None
    workspace = result.text("workspace_id")
    source.has_project = source.has_project or workspace is not None
    return ctx.project(workspace)


def _cost(result: Field, ctx: ReadContext, source: BillSource) -> dict[str, Any]:
    currency = (result.text("currency") or "").upper()
    if currency != "USD":
        raise ReconcileError(f"{result.where}.currency: only USD bills are reconciled, got {currency!r}")
    amount = result.obj.get("amount")
    if not isinstance(amount, str):  # documented as a decimal string of cents; a number is a wrong file
        raise ReconcileError(f"{result.where}.amount: expected a decimal string of cents such as \"123.45\", "
                             f"got {amount!r}")
    cents = result.decimal("amount")
    model = result.text("model")
    label = model or result.text("cost_type") or result.text("description")
    source.has_model = source.has_model or bool(label)
    return {"model": (ctx.model(model) if model else label), "project": _workspace(result, ctx, source),
            "cost": cents / _CENTS, "source": result.where, "raw_model": model or label}


def _usage(result: Field, ctx: ReadContext, source: BillSource) -> dict[str, Any]:
    model = result.text("model")
    source.has_model = source.has_model or bool(model)
    writes = result.obj_of("cache_creation")
    written = 0 if writes is None else (writes.count("ephemeral_5m_input_tokens")
                                        + writes.count("ephemeral_1h_input_tokens"))
    prompt = result.count("uncached_input_tokens") + result.count("cache_read_input_tokens") + written
    return {"model": ctx.model(model) if model else None, "project": _workspace(result, ctx, source),
            "input_tokens": prompt, "output_tokens": result.count("output_tokens"), "source": result.where,
            "raw_model": model}

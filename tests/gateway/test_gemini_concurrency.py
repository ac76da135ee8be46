"""500 concurrent Gemini requests (with a thinking budget) against a hard budget that fits 100 worst
cases: spend never exceeds the limit and nearly all of what fits is served (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import httpx
import pytest

from costplane.gateway.validate_gemini import measure_generate
from costplane.money import format_usd
from costplane.pricing.catalog import Catalog

from .processes import pg_schema
from .test_gemini import Gateway, make_gateway, simulator  # noqa: F401 - the fixtures of the Gemini gateway tests

REQUESTS = 500
MAX_OUTPUT = 40
THINKING = 24
BODY = {"contents": [{"role": "user", "parts": [{"text": "Classify this ticket: my invoice shows the wrong VAT."}]}],
        "generationConfig": {"maxOutputTokens": MAX_OUTPUT, "thinkingConfig": {"thinkingBudget": THINKING}}}


async def _fire(url: str, key: str) -> list[int]:
    limits = httpx.Limits(max_connections=600, max_keepalive_connections=600)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def one() -> int:
            response = await client.post(f"{url}/v1beta/models/gemini-2.5-flash:generateContent",
                                         headers={"x-goog-api-key": key}, json=BODY)
            return response.status_code
        return await asyncio.gather(*(one() for _ in range(REQUESTS)))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_500_concurrent_gemini_requests_never_overspend(make_gateway, backend: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with pg_schema() if backend == "postgres" else contextlib.nullcontext(None) as store_url:
        _overspend_check(make_gateway, store_url)


def _overspend_check(make: Callable[..., Gateway], store_url: str | None) -> None:
    sheet = Catalog.load().resolve("gemini-2.5-flash", "google")
    worst = sheet.max_cost_nano(measure_generate(BODY).bound, MAX_OUTPUT + THINKING)  # thinking counted
    limit = worst * 100
    gw = make(f"""
        kind: Budget
        name: burst
        scope: ctx.team == "burst"
        amount: {format_usd(limit)} USD
        enforcement: hard
    """, store_url=store_url)
    statuses = asyncio.run(_fire(gw.url, gw.key(team="burst")))
    served = statuses.count(200)
    assert set(statuses) <= {200, 402}, sorted(set(statuses))
    events = gw.events()
    assert sum(e.cost_nano for e in events) <= limit
    assert served >= 95, (served, statuses.count(402))
    assert len(events) == served and all(e.usage.output_tokens <= MAX_OUTPUT + THINKING for e in events)
    assert gw.app.store.open_reservations() == 0

"""500 concurrent Bedrock Converse requests against a hard budget that fits about 100 worst cases:
spend never exceeds the limit and nearly all of what fits is served (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import httpx
import pytest

from costplane.gateway.protocols.bedrock import measure_converse
from costplane.money import format_usd
from costplane.pricing.catalog import Catalog

from .processes import pg_schema
from .test_bedrock import NOVA, Gateway, make_gateway, simulator, tls  # noqa: F401 - the fixtures

REQUESTS = 500
MAX_TOKENS = 40


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_500_concurrent_bedrock_requests_never_overspend(request: pytest.FixtureRequest, backend: str) -> None:
    make: Callable[..., Gateway] = request.getfixturevalue("make_gateway")
    with pg_schema() if backend == "postgres" else contextlib.nullcontext(None) as store_url:
        burst(make, store_url)


def burst(make: Callable[..., Gateway], store_url: str | None) -> None:
    body = {"messages": [{"role": "user", "content": [{"text": "Classify: my invoice shows the wrong VAT."}]}],
            "inferenceConfig": {"maxTokens": MAX_TOKENS}}
    worst = Catalog.load().resolve(NOVA, "aws").max_cost_nano(measure_converse(body).bound, MAX_TOKENS)
    limit = worst * 100
    gw = make(f"kind: Budget\nname: burst\nscope: ctx.team == \"burst\"\namount: {format_usd(limit)} USD\n"
              "enforcement: hard\n", store_url=store_url)
    key = gw.key(team="burst")

    async def fire() -> list[int]:
        limits = httpx.Limits(max_connections=600, max_keepalive_connections=600)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            async def one() -> int:
                response = await http.post(f"{gw.plain_url}/model/{NOVA}/converse", json=body,
                                           headers={"authorization": f"Bearer {key}"})
                return response.status_code
            return list(await asyncio.gather(*(one() for _ in range(REQUESTS))))

    statuses = asyncio.run(fire())
    assert set(statuses) <= {200, 402}, sorted(set(statuses))
    served = statuses.count(200)
    spent = sum(e.cost_nano for e in gw.app.store.list_events(limit=10_000))
    assert spent <= limit
    assert served >= 95, (served, statuses.count(402))
    assert gw.app.store.count_events() == served
    assert gw.app.store.open_reservations() == 0

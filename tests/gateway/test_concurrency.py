"""500 concurrent requests against a hard budget that fits about 100 worst cases:
spend never exceeds the limit, and nearly all of what fits is served — with one gateway
(SQLite and PostgreSQL) and with three gateway processes sharing one PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest

from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.keys import create_key
from costplane.gateway.tokens import measure_openai_chat
from costplane.money import format_usd
from costplane.pricing.catalog import Catalog

from .conftest import gateway_config, write_bundle
from .processes import pg_schema, start_gateway, stop, write_config

REQUESTS = 500
MAX_TOKENS = 40
MESSAGES = [{"role": "user", "content": "Classify this ticket: my invoice shows the wrong VAT number."}]


def budget_for(n: int) -> tuple[int, str]:
    sheet = Catalog.load().resolve("gpt-4o-mini", "openai")
    worst = sheet.max_cost_nano(measure_openai_chat({"messages": MESSAGES}).bound, MAX_TOKENS)
    limit = worst * n
    return limit, f"""
kind: Budget
name: burst
scope: ctx.team == "burst"
amount: {format_usd(limit)} USD
enforcement: hard
"""


async def fire(urls: list[str], key: str, n: int) -> list[int]:
    limits = httpx.Limits(max_connections=600, max_keepalive_connections=600)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def one(i: int) -> int:
            response = await client.post(urls[i % len(urls)] + "/v1/chat/completions",
                                         headers={"authorization": f"Bearer {key}"},
                                         json={"model": "gpt-4o-mini", "messages": MESSAGES,
                                               "max_tokens": MAX_TOKENS})
            return response.status_code
        return await asyncio.gather(*(one(i) for i in range(n)))


def check(application: Application, statuses: list[int], limit: int) -> None:
    served = statuses.count(200)
    assert set(statuses) <= {200, 402}, sorted(set(statuses))
    spent = sum(e.cost_nano for e in application.store.list_events(limit=10_000))
    assert spent <= limit
    assert served >= 95, (served, statuses.count(402))
    assert application.store.count_events() == served
    assert application.store.open_reservations() == 0


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_one_gateway_never_overspends(make_gateway, backend: str) -> None:  # type: ignore[no-untyped-def]
    limit, bundle = budget_for(100)
    with pg_schema() if backend == "postgres" else contextlib.nullcontext(None) as store_url:
        gw = make_gateway(bundle, store_url=store_url)
        statuses = asyncio.run(fire([gw.url], gw.key(team="burst"), REQUESTS))
        check(gw.app, statuses, limit)


@pytest.mark.postgres
@pytest.mark.slow
def test_three_gateway_processes_share_one_budget(tmp_path: Path, simulator) -> None:  # type: ignore[no-untyped-def]
    limit, bundle = budget_for(100)
    bundle_dir = write_bundle(tmp_path, bundle)
    with pg_schema() as store_url:
        data = gateway_config(simulator.url, store_url, bundle_dir)
        config = write_config(tmp_path / "costplane.yaml", data)
        application = Application(parse_config(data, base=tmp_path))
        key, _ = create_key(application.store, "burst", {"team": "burst"})
        processes = []
        try:
            for i in range(3):
                processes.append(start_gateway(config, tmp_path / f"gw{i}.log"))
            statuses = asyncio.run(fire([url for _, url in processes], key, REQUESTS))
        finally:
            for process, _ in processes:
                stop(process)
        check(application, statuses, limit)
        application.close()

"""Concurrency limits per key, and bundle reloads under load that drop no request."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from costplane.serving import BackgroundServer
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

CONCURRENCY = """
kind: Budget
name: per-key-concurrency
per: [key]
max_concurrent: 2
"""
BODY = {"model": "gpt-4o-mini", "max_tokens": 10, "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def slow_simulator() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(SimulatorConfig(latency_ms=300))) as server:
        yield server


def test_concurrency_limit_per_key(make_gateway, slow_simulator) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(CONCURRENCY, simulator_url=slow_simulator.url)
    key_a, key_b = gw.key(team="a"), gw.key(team="b")

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=10) as client:
            calls = [client.post(gw.url + "/v1/chat/completions", json=BODY,
                                 headers={"authorization": f"Bearer {key}"}) for key in [key_a] * 6 + [key_b] * 2]
            return await asyncio.gather(*calls)

    responses = asyncio.run(burst())
    a, b = responses[:6], responses[6:]
    assert [r.status_code for r in a].count(200) == 2
    refused = [r for r in a if r.status_code == 429]
    assert len(refused) == 4
    assert refused[0].headers["x-costplane-error-code"] == "concurrency_limit"
    assert refused[0].headers["x-should-retry"] == "true" and "retry-after" in refused[0].headers
    assert "per-key-concurrency" in refused[0].json()["error"]["message"]
    assert [r.status_code for r in b] == [200, 200]  # the other key has its own limit
    assert gw.app.store.open_reservations() == 0


def test_reloads_under_load_drop_no_request(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway("kind: Budget\nname: everything\namount: 1000 USD\n", reload_interval="1s")
    key = gw.key(team="ml")
    statuses: list[int] = []
    stop = time.monotonic() + 4
    lock = threading.Lock()

    def load() -> None:
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < stop:
                code = client.post(gw.url + "/v1/chat/completions", json=BODY,
                                   headers={"authorization": f"Bearer {key}"}).status_code
                with lock:
                    statuses.append(code)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    bundle_file = next(iter(gw.app.config.bundle.glob("*.yaml")))
    revisions = {gw.app.bundle.revision}
    for amount in (1001, 1002, 1003):
        time.sleep(1.0)
        bundle_file.write_text(f"kind: Budget\nname: everything\namount: {amount} USD\n")
        deadline = time.monotonic() + 5
        while gw.app.bundle.budgets["everything"].amount_nano != amount * 10**9 and time.monotonic() < deadline:
            time.sleep(0.05)
        revisions.add(gw.app.bundle.revision)
    for thread in threads:
        thread.join()
    assert len(revisions) == 4  # every edit was picked up
    assert statuses and set(statuses) == {200}
    revisions_logged = {d.bundle_revision for d in gw.app.store.list_decisions(limit=100_000)}
    assert len(revisions_logged) >= 2  # decisions record the revision they were made under

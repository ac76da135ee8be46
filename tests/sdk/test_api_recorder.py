"""The SDK recording through the server's API (Session(api_url=…, api_key=…)), with gateway mode:
nothing local, the server stores nodes, outcomes and (via the gateway) the cost events."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai

import costplane
from costplane.runs.tree import build_tree
from run_harness import Server


def test_gateway_mode_with_api_session(make_server: Callable[..., Server]) -> None:
    server = make_server()
    key = server.key(team="support")
    client = costplane.instrument(openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0),
                                  mode="gateway")
    with costplane.Session(api_url=server.url, api_key=key, catalog=server.app.catalog) as session:
        with session.agent_run("api-bot", run="run-api", budget_usd="1"), costplane.step("ask"):
            client.chat.completions.create(model="gpt-4o-mini", max_tokens=20,
                                           messages=[{"role": "user", "content": "hello"}])
            costplane.outcome("ticket_resolved", team="not-mine")  # the server applies the key
        assert session.errors == []
    tree = build_tree(server.app.store, "run-api")
    assert tree is not None and tree.status == "ok" and tree.kind == "agent"
    (step,) = tree.children
    assert step.name == "ask" and len(step.children) == 1 and step.total_cost_nano > 0
    (outcome,) = server.app.store.list_outcomes()
    assert outcome.context.run == "run-api" and outcome.context.team == "support"  # the key's team wins
    assert {n.context.team for n in server.app.store.run_nodes("run-api")} == {"support"}

    bad = httpx.post(f"{server.url}/v1/runs/ingest", headers={"authorization": f"Bearer {key}"},
                     json={"nodes": [{"id": "x", "run": "r", "kind": "step"}]}, timeout=10)
    assert bad.status_code == 400 and "nodes[0].name" in bad.text


def test_ingested_llm_events_are_priced_by_the_server(make_server: Callable[..., Server]) -> None:
    server = make_server()
    key = server.key(team="support")
    event = {"id": "evt-claimed-cheap", "ts": "2026-11-22T12:00:00+00:00", "provider": "openai",
             "model": "gpt-4o-mini", "cost_nano": 1,
             "usage": {"input_tokens": 1000, "output_tokens": 500}, "context": {"run": "run-claims"}}
    unknown = {**event, "id": "evt-unknown", "model": "gpt-acme-private", "cost_nano": 777}
    sent = httpx.post(f"{server.url}/v1/runs/ingest", headers={"authorization": f"Bearer {key}"},
                      json={"events": [event, unknown]}, timeout=10)
    assert sent.status_code == 200, sent.text
    priced = server.app.store.get_event("evt-claimed-cheap")
    assert priced is not None and priced.cost_nano == 1000 * 150 + 500 * 600  # the catalog's price, not the claim
    flagged = server.app.store.get_event("evt-unknown")
    assert flagged is not None and flagged.cost_nano == 777 and flagged.price_flagged

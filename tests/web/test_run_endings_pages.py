"""The dashboard's runs pages show how a gateway-only run ended: status, what stopped it, the stopping
decision, its agent and start time."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime, timedelta

from test_dashboard_pages import login
from web_harness import Dashboard

from costplane.attribution.context import Context
from costplane.ledger.types import CostEvent, DecisionRecord


def test_a_stopped_gateway_run_on_the_runs_pages(dashboard: Dashboard) -> None:
    store = dashboard.app.store
    start = datetime.now(UTC) - timedelta(minutes=2)
    ctx = Context(team="alpha", agent="alpha-crawler", run="r-crawl-9")
    store.record_nodes([], [CostEvent("ev-crawl", start, ctx, "openai", "gpt-4o-mini", 1_000)])
    store.record_decision(DecisionRecord(
        "dec-crawl-stop", start + timedelta(seconds=5), "llm.request", "deny", "r", ctx, {},
        {"code": "call_limit_exceeded", "budget": "crawler-calls"},
        reason="budget 'crawler-calls': 41 calls > limit 40", status_code=429))
    with closing(login(dashboard, "dev-a")) as client:
        listing = client.get("/ui/runs").text
        row = listing[listing.index('data-run="r-crawl-9"'):]
        row = row[:row.index("</tr>")]
        assert "alpha-crawler" in row and "stopped" in row and "call_limit crawler-calls" in row
        assert "<time" in row  # the start time, in the viewer's zone
        page = client.get("/ui/runs/r-crawl-9").text
        assert 'id="stopped-by"' in page and "dec-crawl-stop" in page and "41 calls &gt; limit 40" in page
        assert "agent alpha-crawler" in page and "started" in page

"""Cost events keep every billed unit and the served tier through both stores, and replay reads them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from costplane.attribution.context import Context
from costplane.ledger import CostEvent, open_store
from costplane.optimize.replay_request import _counts
from costplane.pricing import TokenUsage
from store_fixtures import pg_schema

AT = datetime(2026, 12, 1, 12, tzinfo=UTC)
SERVED = TokenUsage(1_000, 50, 100, 300, 5, units=(("cache_write_1h", 200), ("web_searches", 2)),
                    conditions=(("processing", "batch"),))


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/units.db"
    else:
        with pg_schema() as url:
            yield url


def test_events_round_trip_every_unit(store_url: str) -> None:
    store = open_store(store_url)
    store.migrate()
    try:
        for i, usage in enumerate((SERVED, TokenUsage(10, 2))):
            store.record_event(CostEvent(id=f"evt_{i}", ts=AT, context=Context(team="ml"), provider="anthropic",
                                         model="claude-sonnet-4-6", cost_nano=7, usage=usage,
                                         unit_prices={"input": "3", "web_searches": "10"}, decision_id=f"dec_{i}"),
                               ())
        events = {e.id: e for e in store.list_events()}
        assert events["evt_0"].usage == SERVED and events["evt_1"].usage == TokenUsage(10, 2)
        assert events["evt_0"].unit_prices == {"input": "3", "web_searches": "10"}
        rows, _ = store.replay_event_rows(since=AT, until=None)
        by_id = {row[0]: _counts(row) for row in rows}
        assert by_id["evt_0"] == SERVED and by_id["evt_1"] == (10, 2, 0, 0, 0)
    finally:
        store.close()

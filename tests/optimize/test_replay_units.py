"""Policy replay re-prices every billed unit a cost event recorded, on the store and in-memory paths."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from costplane.attribution.context import Context
from costplane.ledger import codec
from costplane.ledger.replayqueries import EVENT_FIELDS
from costplane.ledger.types import CostEvent
from costplane.optimize.replay_request import from_rows
from costplane.pricing import Catalog, TokenUsage

AT = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _event_row(usage: TokenUsage) -> tuple[object, ...]:
    event = CostEvent(id="evt_1", ts=AT, context=Context(team="ml"), provider="anthropic", model="claude-sonnet-4-6",
                      cost_nano=1, usage=usage, unit_prices={"input": "3"}, decision_id="dec_1")
    row = dict(zip(codec.EVENT_COLUMNS, codec.event_to_row(event), strict=True))
    return tuple(row[name] for name in EVENT_FIELDS)


def test_store_rows_keep_units_and_conditions_for_repricing() -> None:
    served = TokenUsage(1_000, 50, 0, 300, units=(("cache_write_1h", 200), ("web_searches", 2)),
                        conditions=(("processing", "batch"),))
    decision = ("dec_1", codec.to_us(AT), "allow", 200, None,
                orjson.dumps({"model": "claude-sonnet-4-6", "endpoint": "messages"}).decode(),
                orjson.dumps({"model": "claude-sonnet-4-6"}).decode())
    request = from_rows(decision, Context(team="ml"), [_event_row(served)])
    [usage] = request.usage()
    assert usage == served
    sheet = Catalog.load().resolve("claude-sonnet-4-6", "anthropic", AT)
    plain = TokenUsage(1_000, 50, 0, 300)
    assert sheet.cost_nano(usage) != sheet.cost_nano(plain)  # the units and the batch price count
    [old] = from_rows(decision, Context(team="ml"), [_event_row(plain)]).usage()
    assert old == plain

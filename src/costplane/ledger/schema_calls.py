"""Schema step: the ids that make one call one cost event (counted once).

A call the gateway served can reach the ledger a second time as an OTLP span of the client's own
instrumentation. Three nullable columns of `cost_events` let the two meet:

* `response_id` — the provider's response id (`chatcmpl-…`, `msg_…`), from the gateway's response
  body or stream, or the span's `gen_ai.response.id`;
* `trace_id`, `span_id` — W3C hex ids: for a gateway event the trace id and parent id of the
  client's `traceparent` (the span that made the HTTP call), for an OTLP event the span's own.

Two indexes look events up by (trace_id, span_id) and by response_id. Plain `ADD COLUMN`s of
nullable TEXT (the same statement on SQLite and PostgreSQL, instant on both: no table rewrite);
rows written before stay NULL. The ledger's writes insert the ids with the event (schema v13 on);
the receiver links its spans with `SqlQueries.link_calls` (see docs/otlp.md, "Counted once").

Schema step 14 (dialect-specific, `TRIGGER_STEP`): the spend rollups' UPDATE trigger (schema v8,
`rollups`) fires only when a column it can depend on changes — every column of `EVENT_COLUMNS` —
so writing a call's ids (an UPDATE of the three id columns only) no longer re-adds the row to
both rollup tables; superseding an event (cost, tokens, status) still does. A bulk loader that
re-creates the triggers from `rollups.create_triggers` gets the broad trigger back: correct, only
slower on id writes.

Schema step 15 (`CLAIMS_STEP`): `event_claims`, the counter rows an event observed after the fact
(an OTLP span or SDK record with call ids, `record_spend`) was added to. When the gateway's event
of the same call is inserted (`settle` / `record_event` write the ids with the event), the earlier
event is superseded in the same transaction and its cost taken back from exactly these rows — no
policy bundle needed, so the store does it alone (the gateway no longer writes ids afterwards).
Budget windows roll over on their own, so rows are only ever read by event id.
"""

from __future__ import annotations

from costplane.ledger import rollups
from costplane.ledger.codec import EVENT_COLUMNS

__all__ = ["CALL_STEP", "CLAIMS_STEP", "TRIGGER_STEP"]

CALL_STEP: tuple[str, ...] = (
    "ALTER TABLE cost_events ADD COLUMN response_id TEXT",
    "ALTER TABLE cost_events ADD COLUMN trace_id TEXT",
    "ALTER TABLE cost_events ADD COLUMN span_id TEXT",
    "CREATE INDEX cost_events_trace_span ON cost_events (trace_id, span_id)",
    "CREATE INDEX cost_events_response ON cost_events (response_id)",
)

_OF = ", ".join(f'"{name}"' for name in EVENT_COLUMNS)  # every column but the call ids
_BROAD = {"sqlite": ("CREATE TRIGGER cost_events_rollup_upd AFTER UPDATE ON cost_events",
                     "DROP TRIGGER IF EXISTS cost_events_rollup_upd", "AFTER UPDATE ON cost_events",
                     f"AFTER UPDATE OF {_OF} ON cost_events"),
          "postgres": ("CREATE TRIGGER cost_events_rollup AFTER INSERT OR UPDATE OR DELETE ON cost_events",
                       "DROP TRIGGER IF EXISTS cost_events_rollup ON cost_events",
                       "AFTER INSERT OR UPDATE OR DELETE ON cost_events",
                       f"AFTER INSERT OR DELETE OR UPDATE OF {_OF} ON cost_events")}


def _narrowed(dialect: str) -> tuple[str, ...]:
    prefix, drop, broad, narrow = _BROAD[dialect]
    found = [statement for statement in rollups.create_triggers(dialect) if statement.startswith(prefix)]
    if len(found) != 1:  # the rollups' trigger text changed: this step must follow it
        raise RuntimeError(f"schema_calls: no rollup UPDATE trigger of the expected form for {dialect}")
    return drop, found[0].replace(broad, narrow, 1)


TRIGGER_STEP: dict[str, tuple[str, ...]] = {dialect: _narrowed(dialect) for dialect in _BROAD}


CLAIMS_STEP: tuple[str, ...] = (
    """CREATE TABLE event_claims (
    event_id TEXT NOT NULL,
    budget TEXT NOT NULL,
    partition TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    PRIMARY KEY (event_id, budget, partition, bucket)
)""",
)

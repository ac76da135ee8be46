"""Schema step: the ids that make one call one cost event (counted once).

A call the gateway served can reach the ledger a second time as an OTLP span of the client's own
instrumentation. Three nullable columns of `cost_events` let the two meet:

* `response_id` — the provider's response id (`chatcmpl-…`, `msg_…`), from the gateway's response
  body or stream, or the span's `gen_ai.response.id`;
* `trace_id`, `span_id` — W3C hex ids: for a gateway event the trace id and parent id of the
  client's `traceparent` (the span that made the HTTP call), for an OTLP event the span's own.

Two indexes look events up by (trace_id, span_id) and by response_id. Plain `ADD COLUMN`s of
nullable TEXT (the same statement on SQLite and PostgreSQL, instant on both: no table rewrite);
rows written before stay NULL. The ids are written by `SqlQueries.link_call` right after an
event is recorded (see docs/otlp.md, "Counted once").
"""

from __future__ import annotations

__all__ = ["CALL_STEP"]

CALL_STEP: tuple[str, ...] = (
    "ALTER TABLE cost_events ADD COLUMN response_id TEXT",
    "ALTER TABLE cost_events ADD COLUMN trace_id TEXT",
    "ALTER TABLE cost_events ADD COLUMN span_id TEXT",
    "CREATE INDEX cost_events_trace_span ON cost_events (trace_id, span_id)",
    "CREATE INDEX cost_events_response ON cost_events (response_id)",
)

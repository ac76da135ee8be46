"""Schema version 5: run trees, outcomes and economic-SLO state.

* `run_nodes` — one row per node of a run tree: the run itself (a pipeline run, an
  agent run), its steps, tool calls and ingested OpenTelemetry spans. LLM calls are
  cost events (`cost_events.run`); a node links its own event with `event_id`.
  Upserted by id, so a node is written when it starts and again when it ends, and an
  ingested span is idempotent by its span id.
* `outcomes` — business results (`ticket_resolved`, value) with their context.
* `slo_state` — the last evaluation of every economic SLO and the actions of a breach
  (route / throttle), read by the decision core's SLO gate.

Same conventions as every version: times are BIGINT µs (UTC), money BIGINT nano-USD,
decimals TEXT, JSON `{json}`.
"""

from __future__ import annotations

__all__ = ["V5"]

V5: tuple[str, ...] = (
    """CREATE TABLE run_nodes (
    id TEXT PRIMARY KEY,
    run TEXT NOT NULL,
    parent_id TEXT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    status TEXT NOT NULL,
    event_id TEXT,
    agent TEXT,
    pipeline TEXT,
    experiment TEXT,
    context {json} NOT NULL,
    attributes {json} NOT NULL
)""",
    "CREATE INDEX run_nodes_run ON run_nodes (run, started_at)",
    "CREATE INDEX run_nodes_roots ON run_nodes (started_at) WHERE parent_id IS NULL",  # roots only: cheap
    """CREATE TABLE outcomes (
    id TEXT PRIMARY KEY,
    ts BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    value TEXT NOT NULL,
    run TEXT,
    agent TEXT,
    tier TEXT,
    context {json} NOT NULL
)""",
    "CREATE INDEX outcomes_ts ON outcomes (outcome, ts)",
    "CREATE INDEX outcomes_run ON outcomes (run)",
    """CREATE TABLE slo_state (
    name TEXT PRIMARY KEY,
    breached {bool} NOT NULL,
    since BIGINT,
    updated_at BIGINT NOT NULL,
    scope {json} NOT NULL,
    measured {json} NOT NULL,
    actions {json} NOT NULL
)""",
)

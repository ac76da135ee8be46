"""Schema version 4: governed environments and their transitions.

* `environments` — one row per environment launched from a blueprint: its state
  (pending_approval → active → expiring → torn_down | rejected | failed | suspended),
  context, inputs, priced resources (hourly nano-USD), the reservation that holds its
  projected cost, times (expires_at, max_expires_at) and `next_action_at`, the moment the
  scheduler must look at it next (notice, teardown, accrual, idle check). The scheduler's
  due query is one index range scan on (state_open, next_action_at).
* `environment_transitions` — every state change, with the decision that caused it.

Same conventions as every version: times BIGINT µs (UTC), money BIGINT nano-USD, JSON `{json}`.
"""

from __future__ import annotations

__all__ = ["V4"]

V4: tuple[str, ...] = (
    """CREATE TABLE environments (
    id TEXT PRIMARY KEY,
    blueprint TEXT NOT NULL,
    state TEXT NOT NULL,
    state_open INTEGER NOT NULL,
    owner TEXT,
    team TEXT,
    key_id TEXT,
    context {json} NOT NULL,
    inputs {json} NOT NULL,
    resources {json} NOT NULL,
    driver {json} NOT NULL,
    handle {json} NOT NULL,
    lifecycle {json} NOT NULL,
    hourly_nano BIGINT NOT NULL,
    projected_nano BIGINT NOT NULL,
    accrued_nano BIGINT NOT NULL DEFAULT 0,
    accrued_until BIGINT,
    reservation_id TEXT,
    decision_id TEXT NOT NULL,
    bundle_revision TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    expires_at BIGINT NOT NULL,
    max_expires_at BIGINT NOT NULL,
    notice_sent {bool} NOT NULL DEFAULT {false},
    extensions INTEGER NOT NULL DEFAULT 0,
    metrics {json} NOT NULL,
    idle_since BIGINT,
    next_action_at BIGINT NOT NULL,
    ended_at BIGINT,
    end_reason TEXT
)""",
    "CREATE INDEX environments_due ON environments (state_open, next_action_at)",
    "CREATE INDEX environments_state ON environments (state, created_at)",
    """CREATE TABLE environment_transitions (
    environment_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts BIGINT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    decision_id TEXT,
    reason TEXT NOT NULL,
    PRIMARY KEY (environment_id, seq)
)""",
)

"""Versioned schema of the ledger, one list of steps rendered for each dialect.

Every step is a list of DDL statements written once with type placeholders
(`{json}`, `{blob}`, `{bool}`) that each dialect fills in. `schema_version`
records every applied version; `migrate` applies the missing ones in order,
each in its own transaction, so running it again is a no-op. The stores call
`pending()` / `statements()` inside their own locked transaction (SQLite:
`BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock), so several
processes starting at once migrate exactly once.

A step may also be dialect-specific (`_DIALECT_STEPS`): version 3 installs
PostgreSQL's server-side functions (`pg_functions`) and is an empty step —
only recorded — on SQLite. Those statements are used verbatim (no
placeholder rendering: PL/pgSQL bodies are full of braces).

Conventions: times are BIGINT microseconds since the epoch (UTC), money is
BIGINT nano-USD, JSON is TEXT (SQLite) or JSONB (PostgreSQL).
"""

from __future__ import annotations

from costplane.attribution.context import DIMENSIONS
from costplane.ledger import (
    loopfeed,
    pg_functions,
    rollups,
    schema_alerts,
    schema_calls,
    schema_environments,
    schema_leases,
    schema_runs,
    schema_users,
)
from costplane.ledger.optimizequeries import CACHE_COLUMNS, OPTIMIZE_INDEXES

__all__ = ["DIALECTS", "LATEST", "MIGRATIONS", "VERSION_TABLE", "statements"]

DIALECTS: dict[str, dict[str, str]] = {
    "sqlite": {"json": "TEXT", "blob": "BLOB", "bool": "INTEGER", "false": "0"},
    "postgres": {"json": "JSONB", "blob": "BYTEA", "bool": "BOOLEAN", "false": "FALSE"},
}

VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at BIGINT NOT NULL
)"""

# quoted: `user` is a reserved word in PostgreSQL
_DIMENSION_COLUMNS = ",\n    ".join(f'"{name}" TEXT' for name in DIMENSIONS)

_V1 = [
    f"""CREATE TABLE cost_events (
    id TEXT PRIMARY KEY,
    ts BIGINT NOT NULL,
    {_DIMENSION_COLUMNS},
    key_id TEXT,
    tags {{json}} NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    requested_model TEXT,
    kind TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    status TEXT NOT NULL,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cache_read_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    unit_prices {{json}} NOT NULL,
    cost_nano BIGINT NOT NULL,
    saved_nano BIGINT NOT NULL DEFAULT 0,
    decision_id TEXT,
    reservation_id TEXT,
    latency_ms BIGINT NOT NULL DEFAULT 0,
    price_flagged {{bool}} NOT NULL DEFAULT {{false}},
    request_hash TEXT
)""",
    "CREATE INDEX cost_events_ts ON cost_events (ts)",
    "CREATE INDEX cost_events_loop ON cost_events (run, request_hash, ts)",
    """CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decision_id TEXT NOT NULL,
    key_id TEXT,
    claims {json} NOT NULL
)""",
    "CREATE INDEX reservations_open ON reservations (status, expires_at)",
    """CREATE TABLE budget_counters (
    budget TEXT NOT NULL,
    partition TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    spent_nano BIGINT NOT NULL DEFAULT 0,
    reserved_nano BIGINT NOT NULL DEFAULT 0,
    calls BIGINT NOT NULL DEFAULT 0,
    concurrent BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (budget, partition, bucket)
)""",
    """CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    ts BIGINT NOT NULL,
    hook TEXT NOT NULL,
    effect TEXT NOT NULL,
    bundle_revision TEXT NOT NULL,
    reason TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    key_id TEXT,
    context {json} NOT NULL,
    team TEXT,
    agent TEXT,
    run TEXT,
    input {json} NOT NULL,
    result {json} NOT NULL,
    policies {json} NOT NULL,
    budgets {json} NOT NULL
)""",
    "CREATE INDEX decisions_ts ON decisions (ts)",
    "CREATE INDEX decisions_effect_ts ON decisions (effect, ts)",
    """CREATE TABLE virtual_keys (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL,
    attributes {json} NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
)""",
    """CREATE TABLE response_cache (
    request_hash TEXT PRIMARY KEY,
    body {blob} NOT NULL,
    content_type TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    cost_nano BIGINT NOT NULL,
    usage_json TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
)""",
    "CREATE INDEX response_cache_expires ON response_cache (expires_at)",
]

# v2: the per-(budget, partition) lock rows PostgreSQL serialises reservations on,
# and indexes for the common spend group-bys (time-leading so range scans stay cheap).
_V2 = [
    """CREATE TABLE budget_locks (
    budget TEXT NOT NULL,
    partition TEXT NOT NULL,
    PRIMARY KEY (budget, partition)
)""",
    "CREATE INDEX cost_events_team_ts ON cost_events (team, ts)",
    "CREATE INDEX cost_events_model_ts ON cost_events (model, ts)",
    "CREATE INDEX cost_events_key_ts ON cost_events (key_id, ts)",
    "CREATE INDEX cost_events_run ON cost_events (run)",
    "CREATE INDEX decisions_run ON decisions (run)",
]

# v3: PostgreSQL only — reserve/settle/release/record_event as PL/pgSQL functions, one round
# trip each (see pg_functions). SQLite records the version and changes nothing.
_V3: list[str] = []

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((1, tuple(_V1)), (2, tuple(_V2)), (3, tuple(_V3)))
# v5: run trees, outcomes, SLO state (see schema_runs). Kept sorted by version.
MIGRATIONS = tuple(sorted((*MIGRATIONS, (5, schema_runs.V5)), key=lambda step: step[0]))
# v4: governed environments and their transitions (see schema_environments).
MIGRATIONS = tuple(sorted((*MIGRATIONS, (4, schema_environments.V4)), key=lambda step: step[0]))
# v6: alert de-duplication marks (see schema_alerts).
MIGRATIONS = tuple(sorted((*MIGRATIONS, (6, schema_alerts.V6)), key=lambda step: step[0]))
# v7: local users and API tokens (see schema_users).
MIGRATIONS = tuple(sorted((*MIGRATIONS, (7, schema_users.V7)), key=lambda step: step[0]))
# v9: users.projects, project scoping of the API (see schema_users).
MIGRATIONS = tuple(sorted((*MIGRATIONS, (9, schema_users.V9)), key=lambda step: step[0]))
# v8: spend rollups kept by triggers (see rollups); every statement is dialect-specific.
MIGRATIONS = tuple(sorted((*MIGRATIONS, (8, ())), key=lambda step: step[0]))
# v10: indexes of the waste detectors' grouped queries (see optimizequeries); dialect-specific.
MIGRATIONS = tuple(sorted((*MIGRATIONS, (10, ())), key=lambda step: step[0]))
# v11: decisions' generated cache columns and the cache detector's covering index; dialect-specific.
MIGRATIONS = tuple(sorted((*MIGRATIONS, (11, ())), key=lambda step: step[0]))
# v12: the credential generation, bumped by every revocation (see schema_users, auth).
MIGRATIONS = tuple(sorted((*MIGRATIONS, (12, schema_users.V12)), key=lambda step: step[0]))
# v13: the call ids of cost events (response id, trace id, span id), counted once (see schema_calls).
MIGRATIONS = tuple(sorted((*MIGRATIONS, (13, schema_calls.CALL_STEP)), key=lambda step: step[0]))
# v14: the rollups' UPDATE trigger fires only for the columns they read, not for call ids (schema_calls).
MIGRATIONS = tuple(sorted((*MIGRATIONS, (14, ())), key=lambda step: step[0]))
# v15: the counter rows of events observed after the fact, for superseding them in the gateway's
# settlement (schema_calls); PostgreSQL: settle/record_event functions that write the call ids.
MIGRATIONS = tuple(sorted((*MIGRATIONS, (15, schema_calls.CLAIMS_STEP)), key=lambda step: step[0]))
# v16: the lease table of lease-based budgets (ledger/leases.py, lease_store).
MIGRATIONS = tuple(sorted((*MIGRATIONS, (16, schema_leases.LEASE_STEP)), key=lambda step: step[0]))
# v17: batch writers add their events' sums to the rollups themselves (rollups, `rolled_up`).
MIGRATIONS = tuple(sorted((*MIGRATIONS, (rollups.BATCH_ROLLUP_VERSION, ())), key=lambda step: step[0]))
# v18: the loop guard's feed, a row trigger notifying every call of a run (PostgreSQL; see loopfeed).
MIGRATIONS = tuple(sorted((*MIGRATIONS, (loopfeed.LOOP_FEED_VERSION, ())), key=lambda step: step[0]))
LATEST = MIGRATIONS[-1][0]

# version -> dialect -> extra statements, used verbatim after the version's shared steps
_DIALECT_STEPS: dict[int, dict[str, tuple[str, ...]]] = {3: {"postgres": pg_functions.DDL}}
_DIALECT_STEPS[8] = rollups.V8_DIALECT  # v8: rollup tables, backfill, triggers
_DIALECT_STEPS[10] = OPTIMIZE_INDEXES  # v10: the detectors' covering and partial indexes
_DIALECT_STEPS[11] = CACHE_COLUMNS  # v11: generated cache_hash / cache_on, covering decisions_cacheable
_DIALECT_STEPS[14] = schema_calls.TRIGGER_STEP  # v14: the rollups' UPDATE trigger skips call-id writes
_DIALECT_STEPS[15] = {"postgres": pg_functions.CALL_DDL}  # v15: settle/record_event with the call ids
_DIALECT_STEPS[rollups.BATCH_ROLLUP_VERSION] = rollups.V17_DIALECT  # v17: the batch marker, the trigger skips it
_DIALECT_STEPS[loopfeed.LOOP_FEED_VERSION] = loopfeed.V18_DIALECT  # v18: NOTIFY of every call of a run


def statements(dialect: str, version: int) -> list[str]:
    """The DDL of one version rendered for `dialect` ('sqlite' or 'postgres')."""
    types = DIALECTS[dialect]
    for number, steps in MIGRATIONS:
        if number == version:
            shared = [step.format(**types) if "{" in step else step for step in steps]
            return shared + list(_DIALECT_STEPS.get(version, {}).get(dialect, ()))
    raise ValueError(f"no schema version {version}")

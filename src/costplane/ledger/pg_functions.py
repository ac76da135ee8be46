"""PostgreSQL server-side functions of schema version 3: one round trip per ledger write.

`reserve`, `settle`, `release` and `record_event` each become ONE statement,
`SELECT … FROM costplane_<op>(…)`, sent on an autocommit connection: the
statement is its own transaction (no BEGIN/COMMIT round trips) and PostgreSQL
runs the whole read-check-write inside the function. The algorithm is the one
of `base.SqlStore` (which SQLite and pre-v3 PostgreSQL schemas run), step for
step:

* `costplane_lock` creates the missing `budget_locks` rows (`INSERT … ON
  CONFLICT DO NOTHING`) and locks one row per (budget, partition) with
  `SELECT … ORDER BY budget COLLATE "C", partition COLLATE "C" FOR UPDATE` —
  the same global, bytewise order as the Python path, so old and new replicas
  can run side by side during an upgrade.
* Every function is VOLATILE (the default): under READ COMMITTED each statement
  inside it takes a fresh snapshot, so the window sums read *after* the lock is
  granted include everything the previous holder committed. (A STABLE function
  would reuse the snapshot of the calling statement, taken before the lock
  wait — that would be a correctness bug.)
* Counter deltas of one call are grouped by row before the upsert (two claims
  on one bucket would otherwise make `ON CONFLICT DO UPDATE` touch a row twice).

Schema version 15 adds `costplane_settle_call` / `costplane_record_call` (the same functions, the
event row with its call ids, and the call counted once: `costplane_supersede_spans`).

The text is frozen with migration 3: a later change to a function or to the
columns of `cost_events`/`decisions`/`reservations` needs a new migration that
replaces the functions. The SQL must contain neither `?` nor `%` (the driver
rewrites placeholders in every statement it runs).
"""

from __future__ import annotations

__all__ = [
    "CALL_DDL",
    "CALL_EVENT_PARAMS",
    "CALL_FUNCTIONS",
    "DDL",
    "DECISION_PARAMS",
    "EVENT_PARAMS",
    "FUNCTIONS",
    "RECORD_CALL_SQL",
    "RECORD_EVENT_SQL",
    "RELEASE_SQL",
    "RESERVE_SQL",
    "SETTLE_CALL_SQL",
    "SETTLE_SQL",
]

# (column, type) of the rows the functions insert, in `codec.*_COLUMNS` order (tested).
_DIMENSIONS = ("org", "team", "project", "user", "owner", "tier", "pipeline", "run", "experiment",
               "agent", "step", "tool", "trace", "outcome")  # fmt: skip
EVENT_PARAMS: tuple[tuple[str, str], ...] = (
    ("id", "text"), ("ts", "bigint"), *((d, "text") for d in _DIMENSIONS), ("key_id", "text"),
    ("tags", "jsonb"), ("provider", "text"), ("model", "text"), ("requested_model", "text"),
    ("kind", "text"), ("endpoint", "text"), ("status", "text"),
    ("input_tokens", "bigint"), ("output_tokens", "bigint"), ("cache_read_tokens", "bigint"),
    ("cache_write_tokens", "bigint"), ("reasoning_tokens", "bigint"),
    ("unit_prices", "jsonb"), ("cost_nano", "bigint"), ("saved_nano", "bigint"),
    ("decision_id", "text"), ("reservation_id", "text"), ("latency_ms", "bigint"),
    ("price_flagged", "boolean"), ("request_hash", "text"),
)  # fmt: skip
DECISION_PARAMS: tuple[tuple[str, str], ...] = (
    ("id", "text"), ("ts", "bigint"), ("hook", "text"), ("effect", "text"), ("bundle_revision", "text"),
    ("reason", "text"), ("status_code", "integer"), ("key_id", "text"), ("context", "jsonb"),
    ("team", "text"), ("agent", "text"), ("run", "text"), ("input", "jsonb"), ("result", "jsonb"),
    ("policies", "jsonb"), ("budgets", "jsonb"),
)  # fmt: skip
# the reservation row without `status` (always 'open' when inserted)
RESERVATION_PARAMS: tuple[tuple[str, str], ...] = (
    ("id", "text"), ("created_at", "bigint"), ("expires_at", "bigint"), ("decision_id", "text"),
    ("key_id", "text"), ("claims", "jsonb"),
)  # fmt: skip
# a reservation's claims as parallel arrays (BudgetClaim fields, in order)
CLAIM_PARAMS: tuple[tuple[str, str], ...] = (
    ("budget", "text[]"), ("partition", "text[]"), ("bucket", "bigint[]"), ("window_start", "bigint[]"),
    ("amount", "bigint[]"), ("limit_nano", "bigint[]"), ("limit_calls", "bigint[]"),
    ("limit_concurrent", "bigint[]"), ("hard", "boolean[]"),
)  # fmt: skip


def _args(prefix: str, params: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{prefix}{name} {kind}" for name, kind in params)


def _insert(table: str, prefix: str, params: tuple[tuple[str, str], ...], tail: str = "") -> str:
    columns = ", ".join(f'"{name}"' for name, _ in params)
    values = ", ".join(f"{prefix}{name}" for name, _ in params)
    return f"INSERT INTO {table} ({columns}) VALUES ({values}){tail}"


def _call(function: str, groups: tuple[tuple[tuple[str, str], ...], ...], select: str) -> str:
    """`SELECT <select> FROM function(?::type, …)` — every argument cast, so no overload guessing."""
    marks = ", ".join(f"?::{kind}" for params in groups for _, kind in params)
    return f"SELECT {select} FROM {function}({marks})"


_SUMS_OUT = "OUT o_spent numeric[], OUT o_reserved numeric[], OUT o_calls numeric[], OUT o_concurrent numeric[]"

_LOCK = """CREATE OR REPLACE FUNCTION costplane_lock(p_budget text[], p_partition text[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    wanted integer;
    have integer;
    locked integer;
BEGIN
    IF coalesce(cardinality(p_budget), 0) = 0 THEN
        RETURN;
    END IF;
    SELECT count(*) INTO wanted FROM (SELECT DISTINCT b, p FROM unnest(p_budget, p_partition) AS u(b, p)) AS k;
    -- lock rows are never deleted: once all are visible, none needs creating (the common case)
    SELECT count(*) INTO have FROM budget_locks
        WHERE (budget, "partition") IN (SELECT b, p FROM unnest(p_budget, p_partition) AS u(b, p));
    IF have < wanted THEN
        -- create the missing rows before holding any lock, in lock order (an INSERT waits only
        -- for a concurrent inserter of the same row, never for a row lock)
        INSERT INTO budget_locks (budget, "partition")
            SELECT k.b, k.p FROM (SELECT DISTINCT b, p FROM unnest(p_budget, p_partition) AS u(b, p)) AS k
            ORDER BY k.b COLLATE "C", k.p COLLATE "C"
            ON CONFLICT DO NOTHING;
    END IF;
    -- then lock them all, in the one global order
    PERFORM 1 FROM budget_locks
        WHERE (budget, "partition") IN (SELECT b, p FROM unnest(p_budget, p_partition) AS u(b, p))
        ORDER BY budget COLLATE "C", "partition" COLLATE "C" FOR UPDATE;
    GET DIAGNOSTICS locked = ROW_COUNT;
    IF locked <> wanted THEN
        RAISE EXCEPTION USING MESSAGE = 'budget lock rows missing: locked ' || locked || ' of ' || wanted;
    END IF;
END
$fn$"""

_WINDOW_SUMS = f"""CREATE OR REPLACE FUNCTION costplane_window_sums(
    p_budget text[], p_partition text[], p_window_start bigint[], {_SUMS_OUT})
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    SELECT coalesce(array_agg(s.spent ORDER BY s.i), ARRAY[]::numeric[]),
           coalesce(array_agg(s.reserved ORDER BY s.i), ARRAY[]::numeric[]),
           coalesce(array_agg(s.calls ORDER BY s.i), ARRAY[]::numeric[]),
           coalesce(array_agg(s.concurrent ORDER BY s.i), ARRAY[]::numeric[])
      INTO o_spent, o_reserved, o_calls, o_concurrent
      FROM (SELECT k.i, coalesce(sum(c.spent_nano), 0) AS spent, coalesce(sum(c.reserved_nano), 0) AS reserved,
                   coalesce(sum(c.calls), 0) AS calls, coalesce(sum(c.concurrent), 0) AS concurrent
              FROM unnest(p_budget, p_partition, p_window_start) WITH ORDINALITY AS k(b, p, ws, i)
              LEFT JOIN budget_counters AS c
                ON c.budget = k.b AND c."partition" = k.p AND c.bucket >= k.ws
             GROUP BY k.i) AS s;
END
$fn$"""

_ADD_COUNTERS = """CREATE OR REPLACE FUNCTION costplane_add_counters(
    p_budget text[], p_partition text[], p_bucket bigint[],
    p_spent bigint[], p_reserved bigint[], p_calls bigint[], p_concurrent bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    INSERT INTO budget_counters AS c (budget, "partition", bucket, spent_nano, reserved_nano, calls, concurrent)
        SELECT d.b, d.p, d.k, sum(d.s), sum(d.r), sum(d.n), sum(d.x)
          FROM unnest(p_budget, p_partition, p_bucket, p_spent, p_reserved, p_calls, p_concurrent)
               AS d(b, p, k, s, r, n, x)
         GROUP BY d.b, d.p, d.k
         ORDER BY d.b COLLATE "C", d.p COLLATE "C", d.k
        ON CONFLICT (budget, "partition", bucket) DO UPDATE SET
            spent_nano = c.spent_nano + excluded.spent_nano,
            reserved_nano = c.reserved_nano + excluded.reserved_nano,
            calls = c.calls + excluded.calls,
            concurrent = c.concurrent + excluded.concurrent;
END
$fn$"""

# A reservation's claims, decoded from the stored JSON (codec.claims_to_json: one array per claim,
# fields budget, partition, bucket, window_start, amount_nano, …).
_CLAIM_ARRAYS = """SELECT coalesce(array_agg(e.v ->> 0 ORDER BY e.i), ARRAY[]::text[]),
           coalesce(array_agg(e.v ->> 1 ORDER BY e.i), ARRAY[]::text[]),
           coalesce(array_agg((e.v ->> 2)::bigint ORDER BY e.i), ARRAY[]::bigint[]),
           coalesce(array_agg((e.v ->> 3)::bigint ORDER BY e.i), ARRAY[]::bigint[]),
           coalesce(array_agg((e.v ->> 4)::bigint ORDER BY e.i), ARRAY[]::bigint[])
      INTO c_budget, c_partition, c_bucket, c_window_start, c_amount
      FROM jsonb_array_elements(v_claims) WITH ORDINALITY AS e(v, i)"""

_RESERVE = f"""CREATE OR REPLACE FUNCTION costplane_reserve(
    {_args("r_", RESERVATION_PARAMS)},
    {_args("d_", DECISION_PARAMS)},
    {_args("c_", CLAIM_PARAMS)})
RETURNS TABLE (o_index integer, o_spent bigint, o_reserved bigint, o_calls bigint, o_concurrent bigint,
               o_broken text)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    n integer := coalesce(cardinality(c_budget), 0);
    s_spent numeric[];
    s_reserved numeric[];
    s_calls numeric[];
    s_concurrent numeric[];
    spent numeric;
    reserved numeric;
    calls numeric;
    conc numeric;
    broken text;
    ones bigint[];
BEGIN
    PERFORM costplane_lock(c_budget, c_partition);
    SELECT w.o_spent, w.o_reserved, w.o_calls, w.o_concurrent
      INTO s_spent, s_reserved, s_calls, s_concurrent
      FROM costplane_window_sums(c_budget, c_partition, c_window_start) AS w;
    FOR i IN 1 .. n LOOP
        spent := s_spent[i];
        reserved := s_reserved[i];
        calls := s_calls[i];
        conc := s_concurrent[i];
        FOR j IN 1 .. i - 1 LOOP  -- two claims on one window: the second sees the first
            IF c_budget[j] = c_budget[i] AND c_partition[j] = c_partition[i]
               AND c_bucket[j] >= c_window_start[i] THEN
                reserved := reserved + c_amount[j];
                calls := calls + 1;
                conc := conc + 1;
            END IF;
        END LOOP;
        reserved := reserved + c_amount[i];
        calls := calls + 1;
        conc := conc + 1;
        broken := NULL;
        IF c_hard[i] THEN
            IF c_limit_nano[i] IS NOT NULL AND spent + reserved > c_limit_nano[i] THEN
                broken := 'amount';
            ELSIF c_limit_calls[i] IS NOT NULL AND calls > c_limit_calls[i] THEN
                broken := 'calls';
            ELSIF c_limit_concurrent[i] IS NOT NULL AND conc > c_limit_concurrent[i] THEN
                broken := 'concurrent';
            END IF;
        END IF;
        o_index := i;
        o_spent := spent;
        o_reserved := reserved;
        o_calls := calls;
        o_concurrent := conc;
        o_broken := broken;
        RETURN NEXT;
        IF broken IS NOT NULL THEN
            RETURN;  -- refused: nothing written
        END IF;
    END LOOP;
    IF n > 0 THEN
        ones := array_fill(1::bigint, ARRAY[n]);
        PERFORM costplane_add_counters(c_budget, c_partition, c_bucket, array_fill(0::bigint, ARRAY[n]),
                                       c_amount, ones, ones);
    END IF;
    INSERT INTO reservations ("id", "status", {", ".join(f'"{c}"' for c, _ in RESERVATION_PARAMS[1:])})
        VALUES (r_id, 'open', {", ".join(f"r_{c}" for c, _ in RESERVATION_PARAMS[1:])});
    {_insert("decisions", "d_", DECISION_PARAMS, " ON CONFLICT (id) DO NOTHING")};
END
$fn$"""

_EVENT_AND_CLAIM_VARS = """    inserted integer;
    cost bigint;
    c_budget text[];
    c_partition text[];
    c_bucket bigint[];
    c_window_start bigint[];
    c_amount bigint[];
    n integer;"""

_SETTLE = f"""CREATE OR REPLACE FUNCTION costplane_settle(p_reservation text, {_args("e_", EVENT_PARAMS)},
    OUT o_prior text, OUT o_claims jsonb, {_SUMS_OUT})
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_claims jsonb;
{_EVENT_AND_CLAIM_VARS}
BEGIN
    UPDATE reservations SET status = 'settled' WHERE id = p_reservation AND status = 'open'
        RETURNING claims INTO v_claims;
    IF FOUND THEN
        o_prior := 'open';
    ELSE
        SELECT r.claims, r.status INTO v_claims, o_prior FROM reservations AS r WHERE r.id = p_reservation;
        IF NOT FOUND THEN
            RETURN;  -- unknown reservation: o_prior is NULL, nothing written
        END IF;
        IF o_prior <> 'settled' THEN
            UPDATE reservations SET status = 'settled' WHERE id = p_reservation;
        END IF;
    END IF;
    o_claims := v_claims;
    {_CLAIM_ARRAYS};
    n := cardinality(c_budget);
    PERFORM costplane_lock(c_budget, c_partition);
    {_insert("cost_events", "e_", EVENT_PARAMS, " ON CONFLICT (id) DO NOTHING")};
    GET DIAGNOSTICS inserted = ROW_COUNT;
    cost := CASE WHEN inserted = 1 THEN e_cost_nano ELSE 0 END;
    IF n > 0 AND o_prior = 'open' THEN
        PERFORM costplane_add_counters(c_budget, c_partition, c_bucket, array_fill(cost, ARRAY[n]),
            (SELECT array_agg(-a ORDER BY i) FROM unnest(c_amount) WITH ORDINALITY AS u(a, i)),
            array_fill(0::bigint, ARRAY[n]), array_fill(-1::bigint, ARRAY[n]));
    ELSIF n > 0 AND cost <> 0 THEN
        -- released/expired earlier: the call (given back then) and its money count again
        PERFORM costplane_add_counters(c_budget, c_partition, c_bucket, array_fill(cost, ARRAY[n]),
            array_fill(0::bigint, ARRAY[n]),
            array_fill(CASE WHEN o_prior IN ('released', 'expired') THEN 1::bigint ELSE 0::bigint END, ARRAY[n]),
            array_fill(0::bigint, ARRAY[n]));
    END IF;
    SELECT w.o_spent, w.o_reserved, w.o_calls, w.o_concurrent
      INTO o_spent, o_reserved, o_calls, o_concurrent
      FROM costplane_window_sums(c_budget, c_partition, c_window_start) AS w;
END
$fn$"""

_RELEASE = """CREATE OR REPLACE FUNCTION costplane_release(p_reservation text, p_status text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_claims jsonb;
    c_budget text[];
    c_partition text[];
    c_bucket bigint[];
    c_window_start bigint[];
    c_amount bigint[];
    n integer;
BEGIN
    UPDATE reservations SET status = p_status WHERE id = p_reservation AND status = 'open'
        RETURNING claims INTO v_claims;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    """ + _CLAIM_ARRAYS + """;
    n := cardinality(c_budget);
    IF n > 0 THEN
        PERFORM costplane_lock(c_budget, c_partition);
        PERFORM costplane_add_counters(c_budget, c_partition, c_bucket, array_fill(0::bigint, ARRAY[n]),
            (SELECT array_agg(-a ORDER BY i) FROM unnest(c_amount) WITH ORDINALITY AS u(a, i)),
            array_fill(-1::bigint, ARRAY[n]), array_fill(-1::bigint, ARRAY[n]));
    END IF;
    RETURN true;
END
$fn$"""

_RECORD_EVENT = f"""CREATE OR REPLACE FUNCTION costplane_record_event({_args("e_", EVENT_PARAMS)},
    p_budget text[], p_partition text[], p_bucket bigint[]) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    inserted integer;
    n integer := coalesce(cardinality(p_budget), 0);
BEGIN
    PERFORM costplane_lock(p_budget, p_partition);
    {_insert("cost_events", "e_", EVENT_PARAMS, " ON CONFLICT (id) DO NOTHING")};
    GET DIAGNOSTICS inserted = ROW_COUNT;
    IF inserted <> 1 THEN
        RETURN false;
    END IF;
    IF n > 0 THEN
        PERFORM costplane_add_counters(p_budget, p_partition, p_bucket, array_fill(e_cost_nano, ARRAY[n]),
            array_fill(0::bigint, ARRAY[n]), array_fill(0::bigint, ARRAY[n]), array_fill(0::bigint, ARRAY[n]));
    END IF;
    RETURN true;
END
$fn$"""

FUNCTIONS: tuple[str, ...] = (
    "costplane_lock", "costplane_window_sums", "costplane_add_counters",
    "costplane_reserve", "costplane_settle", "costplane_release", "costplane_record_event",
)  # fmt: skip
DDL: tuple[str, ...] = (_LOCK, _WINDOW_SUMS, _ADD_COUNTERS, _RESERVE, _SETTLE, _RELEASE, _RECORD_EVENT)

# The calls the store sends ('?' placeholders, like every other statement of the store).
RESERVE_SQL = _call("costplane_reserve", (RESERVATION_PARAMS, DECISION_PARAMS, CLAIM_PARAMS),
                    "o_index, o_spent, o_reserved, o_calls, o_concurrent, o_broken") + " ORDER BY o_index"
SETTLE_SQL = _call("costplane_settle", ((("reservation", "text"),), EVENT_PARAMS),
                   "o_prior, o_claims, o_spent, o_reserved, o_calls, o_concurrent")
RELEASE_SQL = "SELECT costplane_release(?::text, ?::text)"
RECORD_EVENT_SQL = _call("costplane_record_event",
                         (EVENT_PARAMS, (("budget", "text[]"), ("partition", "text[]"), ("bucket", "bigint[]"))),
                         "*")


# -- schema version 15: settle/record_event that write the call ids and count the call once -------
# New functions (the v3 ones stay: a replica not yet upgraded keeps calling them). The event row
# gains the call ids; a gateway event supersedes, in the same statement, the live OTLP/SDK events
# of its call and takes their cost back from the counter rows `event_claims` kept for them (the same
# steps as ledger/calls.py `reconcile`; a decrement needs no budget lock).
LINK_PARAMS: tuple[tuple[str, str], ...] = (("response_id", "text"), ("trace_id", "text"), ("span_id", "text"))
CALL_EVENT_PARAMS: tuple[tuple[str, str], ...] = (*EVENT_PARAMS, *LINK_PARAMS)

_SUPERSEDE_SPANS = """CREATE OR REPLACE FUNCTION costplane_supersede_spans(
    p_event text, p_response text, p_trace text, p_span text) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    s record;
    changed integer;
    done integer := 0;
BEGIN
    IF substr(p_event, 1, 5) = 'otel-' OR (p_response IS NULL AND (p_trace IS NULL OR p_span IS NULL)) THEN
        RETURN 0;
    END IF;
    FOR s IN SELECT e.id, e.cost_nano, e.status, e.unit_prices, e.input_tokens, e.output_tokens,
                    e.cache_read_tokens, e.cache_write_tokens, e.reasoning_tokens
               FROM cost_events AS e
              WHERE e.response_id = p_response AND substr(e.id, 1, 5) = 'otel-' AND e.status <> 'superseded'
             UNION
             SELECT e.id, e.cost_nano, e.status, e.unit_prices, e.input_tokens, e.output_tokens,
                    e.cache_read_tokens, e.cache_write_tokens, e.reasoning_tokens
               FROM cost_events AS e
              WHERE e.trace_id = p_trace AND e.span_id = p_span AND substr(e.id, 1, 5) = 'otel-'
                AND e.status <> 'superseded'
    LOOP
        UPDATE cost_events SET status = 'superseded', cost_nano = 0, input_tokens = 0, output_tokens = 0,
               cache_read_tokens = 0, cache_write_tokens = 0, reasoning_tokens = 0,
               unit_prices = jsonb_build_object('_superseded', jsonb_build_object(
                   'by', p_event, 'cost_nano', s.cost_nano, 'status', s.status,
                   'tokens', jsonb_build_array(s.input_tokens, s.output_tokens, s.cache_read_tokens,
                                               s.cache_write_tokens, s.reasoning_tokens),
                   'unit_prices', s.unit_prices - '_usage'))
         WHERE id = s.id AND status <> 'superseded';
        GET DIAGNOSTICS changed = ROW_COUNT;
        IF changed = 1 THEN
            done := done + 1;
            IF s.cost_nano <> 0 THEN
                UPDATE budget_counters AS c SET spent_nano = c.spent_nano - s.cost_nano
                  FROM event_claims AS k
                 WHERE k.event_id = s.id AND c.budget = k.budget AND c."partition" = k."partition"
                   AND c.bucket = k.bucket;
            END IF;
        END IF;
    END LOOP;
    RETURN done;
END
$fn$"""

_AFTER_INSERT = "GET DIAGNOSTICS inserted = ROW_COUNT;"
_RECONCILE = (_AFTER_INSERT + "\n    IF inserted = 1 THEN\n"
              "        PERFORM costplane_supersede_spans(e_id, e_response_id, e_trace_id, e_span_id);\n    END IF;")


# record_event of an OTLP event keeps the counter rows it was added to (a gateway event may supersede it)
_REMEMBER = """
    IF inserted = 1 AND n > 0 AND substr(e_id, 1, 5) = 'otel-'
       AND (e_response_id IS NOT NULL OR e_trace_id IS NOT NULL) THEN
        INSERT INTO event_claims (event_id, budget, "partition", bucket)
            SELECT DISTINCT e_id, u.b, u.p, u.k FROM unnest(p_budget, p_partition, p_bucket) AS u(b, p, k)
            ON CONFLICT DO NOTHING;
    END IF;"""


def _with_ids(ddl: str, name: str, extra: str = "") -> str:
    """A v3 function's text with the call ids as three more event arguments, written by its INSERT
    and reconciled right after it, under the name `name`."""
    old_insert = _insert("cost_events", "e_", EVENT_PARAMS, " ON CONFLICT (id) DO NOTHING")
    new_insert = _insert("cost_events", "e_", CALL_EVENT_PARAMS, " ON CONFLICT (id) DO NOTHING")
    out = ddl.replace(_args("e_", EVENT_PARAMS), _args("e_", CALL_EVENT_PARAMS), 1)
    out = out.replace(old_insert, new_insert, 1).replace(_AFTER_INSERT, _RECONCILE + extra, 1)
    head = out.split("(", 1)[0]
    out = head.rsplit(" ", 1)[0] + " " + name + "(" + out.split("(", 1)[1]
    if out.count("costplane_supersede_spans") != 1 or new_insert not in out:  # pragma: no cover - import-time guard
        raise RuntimeError(f"pg_functions: cannot derive {name}")
    return out


CALL_FUNCTIONS: tuple[str, ...] = ("costplane_supersede_spans", "costplane_settle_call", "costplane_record_call")
CALL_DDL: tuple[str, ...] = (_SUPERSEDE_SPANS, _with_ids(_SETTLE, "costplane_settle_call"),
                             _with_ids(_RECORD_EVENT, "costplane_record_call", _REMEMBER))
SETTLE_CALL_SQL = _call("costplane_settle_call", ((("reservation", "text"),), CALL_EVENT_PARAMS),
                        "o_prior, o_claims, o_spent, o_reserved, o_calls, o_concurrent")
RECORD_CALL_SQL = _call("costplane_record_call",
                        (CALL_EVENT_PARAMS, (("budget", "text[]"), ("partition", "text[]"), ("bucket", "bigint[]"))),
                        "*")

"""Spend rollups (schema v8): `spend_hourly` and `spend_daily`, kept exact by triggers.

Each table holds, per time bucket (UTC micros, like `ts`) and per combination of the
low-cardinality dimensions (`ROLLUP_DIMENSIONS`), the sums of cost, savings, events and
tokens. High-cardinality ids (run, step, tool, trace, outcome, experiment) are not rolled up:
queries naming them read `cost_events`. A NULL dimension is stored as '' (PostgreSQL unique
keys treat NULLs as distinct, so NULL could not be part of the upsert key) and read back as
None; '' is never a valid attribution value (`attribution.context.validate_value`).

Triggers on `cost_events` (INSERT, and for safety UPDATE and DELETE, which no code path issues
today) add the row's figures to its hourly and daily rows in the SAME transaction as the event,
so every writer — the PL/pgSQL settle functions, accrual, OTLP ingest, SDK batches — is covered
and the rollups are never stale. `ON CONFLICT (id) DO NOTHING` inserts fire no trigger.

Batches (schema v17, `V17_DIALECT`): a writer of many events in one transaction — the lease
ledger's batch writer, `record_spend` — inserts them with `rolled_up` set, which the INSERT
trigger skips, and adds the batch's sums itself in the same transaction: one upsert per bucket
and group (`batch_upserts`) instead of two per event. DELETE and UPDATE triggers treat every row
alike (a row's figures are in the rollups either way), and a writer that does not set the column
is covered by the trigger as before.

`plan()` splits a time range into whole days (daily table), whole hours (hourly table) and
partial-hour edges (raw events, by the ts index) so that a routed query equals the raw scan;
an edge bucket more than half inside the range is read whole and its outside subtracted
(integer sums, so still exact), which bounds the fine rows read per edge to half a bucket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from costplane.ledger.codec import EVENT_COLUMNS, QUERY_COLUMNS

__all__ = [
    "BATCH_ROLLUP_VERSION",
    "DAY_US",
    "DROP_TRIGGERS",
    "HOUR_US",
    "NULLABLE",
    "ROLLED_UP",
    "ROLLUP_DIMENSIONS",
    "V8_DIALECT",
    "V17_DIALECT",
    "Part",
    "batch_upserts",
    "create_triggers",
    "plan",
    "rebuild_statements",
    "routable",
    "union_sql",
]

HOUR_US = 3_600_000_000
DAY_US = 86_400_000_000
#: the schema version from which batch writers add their events' sums to the rollups themselves
BATCH_ROLLUP_VERSION = 17
#: the `cost_events` column that marks a row whose writer added its figures to the rollups
ROLLED_UP = "rolled_up"

#: spend() names that the rollups carry (everything in QUERY_COLUMNS but the per-run ids)
ROLLUP_DIMENSIONS: tuple[str, ...] = ("org", "team", "project", "user", "owner", "tier", "pipeline", "agent",
                                      "provider", "model", "kind", "status", "key")  # fmt: skip
#: the names whose cost_events column may be NULL (stored as '' in the rollups)
NULLABLE: frozenset[str] = frozenset(ROLLUP_DIMENSIONS) - {"provider", "model", "kind", "status"}

_COLS = [QUERY_COLUMNS[name] for name in ROLLUP_DIMENSIONS]  # quoted where needed; same names in all tables
_SUMS = ("cost_nano", "saved_nano", "events", "input_tokens", "output_tokens")
_TABLES = (("spend_hourly", HOUR_US), ("spend_daily", DAY_US))
_KEY = ", ".join(["bucket", *_COLS])


def _create_table(table: str, tail: str) -> str:
    dims = ",\n    ".join(f"{col} TEXT NOT NULL" for col in _COLS)
    sums = ",\n    ".join(f"{name} BIGINT NOT NULL" for name in _SUMS)
    return (f"CREATE TABLE {table} (\n    bucket BIGINT NOT NULL,\n    {dims},\n    {sums},\n"
            f"    PRIMARY KEY ({_KEY})\n){tail}")


def _keyed(expr: str, name: str) -> str:
    return f"COALESCE({expr}, '')" if name in NULLABLE else expr


def _upsert(table: str, width: int, row: str, sign: int) -> str:
    """Add one event row (NEW/OLD) × sign to its bucket's row of `table`."""
    values = [f"({row}.ts / {width}) * {width}", *(_keyed(f"{row}.{c}", n) for c, n in zip(_COLS, ROLLUP_DIMENSIONS,
                                                                                         strict=True))]
    neg = "" if sign > 0 else "-"
    values += [f"{neg}{row}.cost_nano", f"{neg}{row}.saved_nano", str(sign), f"{neg}{row}.input_tokens",
               f"{neg}{row}.output_tokens"]
    update = ", ".join(f"{s} = {table}.{s} + excluded.{s}" for s in _SUMS)
    return (f"INSERT INTO {table} ({_KEY}, {', '.join(_SUMS)}) VALUES ({', '.join(values)})"
            f" ON CONFLICT ({_KEY}) DO UPDATE SET {update}")  # fmt: skip


def _backfill() -> list[str]:
    """Hourly from the events, then daily from the hourly rows (20× fewer rows to read). In bucket
    order, so a PostgreSQL heap stores a time range together (as the triggers do, hour by hour)."""
    keyed = ", ".join(_keyed(c, n) for c, n in zip(_COLS, ROLLUP_DIMENSIONS, strict=True))
    groups = ", ".join(str(i) for i in range(1, len(_COLS) + 2))
    hourly = (f"INSERT INTO spend_hourly ({_KEY}, {', '.join(_SUMS)}) SELECT (ts / {HOUR_US}) * {HOUR_US}, {keyed},"
              " SUM(cost_nano), SUM(saved_nano), COUNT(*), SUM(input_tokens), SUM(output_tokens)"
              f" FROM cost_events GROUP BY {groups} ORDER BY 1")  # fmt: skip
    sums = ", ".join(f"SUM({s})" for s in _SUMS)
    daily = (f"INSERT INTO spend_daily ({_KEY}, {', '.join(_SUMS)}) SELECT (bucket / {DAY_US}) * {DAY_US},"
             f" {', '.join(_COLS)}, {sums} FROM spend_hourly GROUP BY {groups} ORDER BY 1")  # fmt: skip
    return [hourly, daily]


def _sqlite_body(*steps: tuple[str, int]) -> str:
    return " ".join(f"{_upsert(t, w, row, sign)};" for row, sign in steps for t, w in _TABLES)


def _sqlite_insert_trigger(batched: bool) -> str:
    when = f" WHEN NEW.{ROLLED_UP} = 0" if batched else ""
    body = _sqlite_body(("NEW", 1))
    return f"CREATE TRIGGER cost_events_rollup_ins AFTER INSERT ON cost_events{when} BEGIN {body} END"


def _sqlite_triggers(batched: bool = True) -> list[str]:
    return [
        _sqlite_insert_trigger(batched),
        f"CREATE TRIGGER cost_events_rollup_del AFTER DELETE ON cost_events BEGIN {_sqlite_body(('OLD', -1))} END",
        "CREATE TRIGGER cost_events_rollup_upd AFTER UPDATE ON cost_events"
        f" BEGIN {_sqlite_body(('OLD', -1), ('NEW', 1))} END",
    ]


def _pg_function(batched: bool) -> str:
    old = " ".join(f"{_upsert(t, w, 'OLD', -1)};" for t, w in _TABLES)
    new = " ".join(f"{_upsert(t, w, 'NEW', 1)};" for t, w in _TABLES)
    skip = f"""
    IF TG_OP = 'INSERT' AND NEW.{ROLLED_UP} THEN
        RETURN NULL;  -- its writer adds the batch's sums itself
    END IF;""" if batched else ""
    return f"""CREATE OR REPLACE FUNCTION costplane_rollup() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN{skip}
    IF TG_OP <> 'INSERT' THEN
        {old}
    END IF;
    IF TG_OP <> 'DELETE' THEN
        {new}
    END IF;
    RETURN NULL;
END
$fn$"""


def _pg_triggers(batched: bool = True) -> list[str]:
    return [_pg_function(batched), "CREATE TRIGGER cost_events_rollup AFTER INSERT OR UPDATE OR DELETE ON cost_events"
                                   " FOR EACH ROW EXECUTE FUNCTION costplane_rollup()"]


def create_triggers(dialect: str) -> list[str]:
    """The trigger DDL of the current schema (a bulk loader drops the triggers, loads, rebuilds and
    re-creates them)."""
    return _pg_triggers() if dialect == "postgres" else _sqlite_triggers()


DROP_TRIGGERS: Mapping[str, tuple[str, ...]] = {
    "sqlite": tuple(f"DROP TRIGGER IF EXISTS cost_events_rollup_{op}" for op in ("ins", "del", "upd")),
    "postgres": ("DROP TRIGGER IF EXISTS cost_events_rollup ON cost_events",),
}


def rebuild_statements(dialect: str) -> list[str]:
    """Recompute both tables from `cost_events` (run in one transaction; PostgreSQL first blocks
    writers of cost_events so no event can slip between the delete and the backfill)."""
    lock = ["LOCK TABLE cost_events IN SHARE MODE"] if dialect == "postgres" else []
    return [*lock, "DELETE FROM spend_hourly", "DELETE FROM spend_daily", *_backfill()]


# v8, verbatim per dialect (migrations._DIALECT_STEPS). PostgreSQL: lock out writers first, so
# every event is either in the backfill or seen by the trigger (never both, never neither).
V8_DIALECT: dict[str, tuple[str, ...]] = {
    "sqlite": (*(_create_table(t, " WITHOUT ROWID") for t, _ in _TABLES), *_backfill(), *_sqlite_triggers(False)),
    # fillfactor: room on each page for HOT updates of the current hour's rows (they change all hour)
    "postgres": ("LOCK TABLE cost_events IN SHARE ROW EXCLUSIVE MODE",
                 *(_create_table(t, " WITH (fillfactor = 80)") for t, _ in _TABLES), *_backfill(),
                 *_pg_triggers(False)),
}

# v17: the batch marker (instant on both: a constant default) and an INSERT trigger that skips
# marked rows. Rows written before read as unmarked, which they are.
V17_DIALECT: dict[str, tuple[str, ...]] = {
    "sqlite": (f"ALTER TABLE cost_events ADD COLUMN {ROLLED_UP} INTEGER NOT NULL DEFAULT 0",
               "DROP TRIGGER IF EXISTS cost_events_rollup_ins", _sqlite_insert_trigger(True)),
    "postgres": (f"ALTER TABLE cost_events ADD COLUMN {ROLLED_UP} BOOLEAN NOT NULL DEFAULT FALSE",
                 _pg_function(True)),
}


def _truncated(ts: int, width: int) -> int:
    """`(ts / width) * width` as SQL computes it on BIGINT: truncated toward zero."""
    return ts // width * width if ts >= 0 else -(-ts // width * width)


_AT = {name: i for i, name in enumerate(EVENT_COLUMNS)}
_DIM_AT = tuple(_AT[col.strip('"')] for col in _COLS)
_SUM_AT = tuple(_AT[name] for name in ("cost_nano", "saved_nano", "input_tokens", "output_tokens"))
_TS_AT = _AT["ts"]
_ADD_SUMS = {
    table: (f"INSERT INTO {table} ({_KEY}, {', '.join(_SUMS)}) VALUES ({', '.join('?' * (len(_COLS) + 6))})"
            f" ON CONFLICT ({_KEY}) DO UPDATE SET {', '.join(f'{s} = {table}.{s} + excluded.{s}' for s in _SUMS)}")
    for table, _ in _TABLES
}  # fmt: skip


def batch_upserts(rows: Iterable[Sequence[Any]]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """What the INSERT trigger would add for these inserted event rows (`EVENT_COLUMNS` first, as
    the stores write them), summed per table, bucket and group: (statement, parameter rows) per
    table, in key order. The caller runs them in the transaction that inserted the rows with
    `rolled_up` set."""
    buckets: dict[str, dict[tuple[Any, ...], list[int]]] = {table: {} for table, _ in _TABLES}
    for row in rows:
        ts = int(row[_TS_AT])
        dims = tuple("" if row[i] is None else row[i] for i in _DIM_AT)
        cost, saved, tin, tout = (int(row[i]) for i in _SUM_AT)
        for table, width in _TABLES:
            total = buckets[table].setdefault((_truncated(ts, width), *dims), [0, 0, 0, 0, 0])
            total[0] += cost
            total[1] += saved
            total[2] += 1
            total[3] += tin
            total[4] += tout
    return [(_ADD_SUMS[table], [(*key, *total) for key, total in sorted(found.items())])
            for table, found in buckets.items() if found]


# -- query routing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of a routed range: `source` ('daily' | 'hourly' | 'raw') over [lo, hi) (None: open),
    added (sign 1) or subtracted (sign -1: the part of a whole bucket outside the range)."""

    source: str
    lo: int | None
    hi: int | None
    sign: int = 1


def routable(names: Sequence[str], where: Mapping[str, str]) -> bool:
    """True when the rollups can answer: only rolled-up names, and no '' filter ('' stands for NULL there)."""
    dims = set(ROLLUP_DIMENSIONS)
    return all(n in dims for n in names) and all(n in dims and v != "" for n, v in where.items())


def _cover(lo: int | None, hi: int | None, width: int,
           fine: str) -> tuple[int | None, int | None, list[Part]]:
    """[lo, hi) as width-aligned [clo, chi) (None: open; clo == chi: empty) plus signed `fine` parts
    at the edges. An edge bucket is added from the fine source when at most half of it is inside
    the range, else taken whole and its outside subtracted — so at most half a bucket of fine rows
    per edge. (`until=now` subtracts the not-yet-written rest of the current bucket: nothing to read.)"""
    half = width // 2
    if lo is not None and hi is not None and lo // width == (hi - 1) // width and (lo % width or hi % width):
        start = lo // width * width  # both edges in one bucket
        if hi - lo <= half:
            return lo, lo, [Part(fine, lo, hi)]  # an empty coarse range
        cut = [Part(fine, start, lo, -1)] if lo > start else []
        return start, start + width, [*cut, *([Part(fine, hi, start + width, -1)] if hi < start + width else [])]
    parts: list[Part] = []
    clo, chi = lo, hi
    if lo is not None and lo % width:
        floor = lo // width * width
        if floor + width - lo <= half:
            clo = floor + width
            parts.append(Part(fine, lo, clo))
        else:
            clo = floor
            parts.append(Part(fine, floor, lo, -1))
    if hi is not None and hi % width:
        floor = hi // width * width
        if hi - floor <= half:
            chi = floor
            parts.append(Part(fine, floor, hi))
        else:
            chi = floor + width
            parts.append(Part(fine, hi, chi, -1))
    return clo, chi, parts


def plan(since: int | None, until: int | None, bucket: str | None) -> list[Part]:
    """Parts whose signed sum is exactly [since, until): whole days (daily table), whole hours
    (hourly), raw events at partial-hour edges. A subtracted part always lies in the same
    requested bucket as the whole bucket it corrects (no day-level subtraction for bucket=hour).
    Times before 1970 go raw (bucket arithmetic truncates toward zero there)."""
    if (since is not None and since < 0) or (until is not None and until < 0):
        return [Part("raw", since, until)]
    if since is not None and until is not None and since >= until:
        return [Part("raw", since, until)]  # empty
    hs, hu, parts = _cover(since, until, HOUR_US, "raw")
    if hs is not None and hu is not None and hs >= hu:
        return parts
    if bucket == "hour":
        return [*parts, Part("hourly", hs, hu)]
    ds, du, hourly = _cover(hs, hu, DAY_US, "hourly")
    parts += hourly
    if ds is None or du is None or ds < du:
        parts.append(Part("daily", ds, du))
    return parts


_BUCKET_SQL = {  # (source, requested bucket) -> bucket expression
    ("raw", "hour"): f"(ts / {HOUR_US}) * {HOUR_US}", ("raw", "day"): f"(ts / {DAY_US}) * {DAY_US}",
    ("hourly", "hour"): "bucket", ("hourly", "day"): f"(bucket / {DAY_US}) * {DAY_US}",
    ("daily", "day"): "bucket",
}  # fmt: skip


def union_sql(parts: Sequence[Part], names: Sequence[str], where: Mapping[str, str],
              bucket: str | None, windows: Sequence[int] | None = None) -> tuple[str, list[object]]:
    """One statement summing every part: key columns ('' = NULL for nullable names), bucket,
    cost, saved, events, input tokens, output tokens — the column order of the raw `spend` query.
    Each part is aggregated on its own (a bucket-only group streams in primary-key order), then
    the parts are summed; a single part is the whole statement. `windows[j]`: the window part j
    belongs to, returned as an extra first column `w` and grouped by (`Store.spend_windows`)."""
    params: list[object] = []
    selects: list[str] = []
    labels = ([] if windows is None else ["w"]) + [f"k{i}" for i in range(len(names))] + (["b"] if bucket else [])
    for j, part in enumerate(parts):
        raw = part.source == "raw"
        table = "cost_events" if raw else f"spend_{part.source}"
        time_col = "ts" if raw else "bucket"
        keys = [] if windows is None else [str(int(windows[j]))]
        keys += [_keyed(QUERY_COLUMNS[n], n) if raw else QUERY_COLUMNS[n] for n in names]
        keys.append(_BUCKET_SQL[(part.source, bucket)] if bucket else "NULL")
        sign = "-" if part.sign < 0 else ""
        sums = [f"{sign}CAST({'COUNT(*)' if raw and s == 'events' else f'SUM({s})'} AS BIGINT)" for s in _SUMS]
        # aliases on every branch: SQLite has no derived column lists (`AS u (a, b)`)
        columns = [f"{e} AS {a}" for e, a in zip([*keys, *sums], [*labels, *([] if bucket else ["b"]), "c", "s", "e",
                                                                 "i", "o"], strict=True)]
        conds: list[str] = []
        if part.lo is not None:
            conds.append(f"{time_col} >= ?")
            params.append(part.lo)
        if part.hi is not None:
            conds.append(f"{time_col} < ?")
            params.append(part.hi)
        for name, value in where.items():
            conds.append(f"{QUERY_COLUMNS[name]} = ?")
            params.append(value)
        cond = f" WHERE {' AND '.join(conds)}" if conds else ""
        group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(labels)))}" if labels else ""
        selects.append(f"SELECT {', '.join(columns)} FROM {table}{cond}{group}")
    if len(selects) == 1:
        return selects[0], params
    outer = [*labels] if bucket else [*labels, "NULL"]
    sql = (f"SELECT {', '.join(outer)}, CAST(SUM(c) AS BIGINT), CAST(SUM(s) AS BIGINT), CAST(SUM(e) AS BIGINT),"
           f" CAST(SUM(i) AS BIGINT), CAST(SUM(o) AS BIGINT) FROM ({' UNION ALL '.join(selects)}) AS u")
    if labels:
        sql += " GROUP BY " + ", ".join(labels)
    return sql, params

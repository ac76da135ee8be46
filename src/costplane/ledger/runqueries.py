"""The store methods of run trees, outcomes and SLO state, shared by SQLite and PostgreSQL.

Mixed into `SqlStore` next to `SqlQueries`; same rules: `?` placeholders, no `%`,
values always bound, one transaction per method.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from costplane.ledger import codec
from costplane.ledger.calls import SUPERSEDED
from costplane.ledger.queries import INSERT_EVENT, Row, Tx
from costplane.ledger.runtypes import OutcomeRecord, RunActivity, RunNode, SloState
from costplane.ledger.types import CostEvent, DecisionRecord

__all__ = ["RunQueries"]

T = TypeVar("T")

_NODE_COLUMNS = ("id", "run", "parent_id", "kind", "name", "started_at", "ended_at", "status", "event_id",
                 "agent", "pipeline", "experiment", "context", "attributes")
_NODE_SELECT = f"SELECT {codec.column_list(_NODE_COLUMNS)} FROM run_nodes"
# a node is written when it starts and again when it ends: the later write wins for what
# only the end knows (end, status, attributes); the start stays the first one seen
_UPSERT_NODE = (
    f"INSERT INTO run_nodes ({codec.column_list(_NODE_COLUMNS)}) VALUES ({', '.join('?' for _ in _NODE_COLUMNS)})"
    " ON CONFLICT (id) DO UPDATE SET ended_at = COALESCE(excluded.ended_at, run_nodes.ended_at),"
    " status = excluded.status, event_id = COALESCE(excluded.event_id, run_nodes.event_id),"
    " attributes = excluded.attributes"
)
# one row per run: its events and the decisions that carried it, pre-aggregated per table and summed.
# A superseded event (an OTLP span of a call the gateway counted, ledger/calls.py) is not a call of its own.
# With `since`, grouped by an expression and filtered with COALESCE so that the ts indexes find the rows
# (SQLite would otherwise walk the whole run index to save the sort); without it, read in run-index order.
# Integer sums are cast back to BIGINT (PostgreSQL sums BIGINT into NUMERIC).
_EVENTS_PART = (
    "SELECT {key} AS run, MIN(ts - latency_ms * 1000) AS first_us, MAX(ts) AS last_us, COUNT(*) AS n_events,"
    " SUM(cost_nano) AS cost, SUM(input_tokens) AS inp, SUM(output_tokens) AS outp, 0 AS n_decisions,"
    " MIN(agent) AS agent, MIN(pipeline) AS pipeline, MIN(experiment) AS experiment, MAX(ts) AS last_event,"
    " MAX(CASE WHEN status = 'error' THEN ts END) AS last_error,"
    " MAX(CASE WHEN reservation_id IS NULL THEN ts END) AS last_free FROM cost_events WHERE {where}"
    f" AND status <> '{SUPERSEDED}'"
    " GROUP BY {key}"
)
_DECISIONS_PART = (
    "SELECT {key}, MIN(ts), MAX(ts), 0, 0, 0, 0, COUNT(*), MIN(agent), NULL, NULL, NULL, NULL, NULL"
    " FROM decisions WHERE {where} AND effect <> 'observed' GROUP BY {key}"
)
_ACTIVITY = (
    "SELECT run, MIN(first_us), MAX(last_us), CAST(SUM(n_events) AS BIGINT), CAST(SUM(cost) AS BIGINT),"
    " CAST(SUM(inp) AS BIGINT), CAST(SUM(outp) AS BIGINT), CAST(SUM(n_decisions) AS BIGINT), MIN(agent),"
    " MIN(pipeline), MIN(experiment), MAX(last_event), MAX(last_error), MAX(last_free)"
    " FROM ({events} UNION ALL {decisions}) AS activity GROUP BY run ORDER BY MIN(first_us) DESC, run DESC"
)
_DECISION_COLUMNS = codec.column_list(codec.DECISION_COLUMNS)
# the latest admission decision (not `observed`) of each run of a list
_LATEST_DECISIONS = (
    f"SELECT {_DECISION_COLUMNS} FROM (SELECT {_DECISION_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY run"
    " ORDER BY ts DESC, id DESC) AS rn FROM decisions WHERE run IN ({marks}) AND effect <> 'observed')"
    " AS latest WHERE rn = 1"
)
_CHUNK = 500  # ids bound per statement
_OUTCOME_COLUMNS = ("id", "ts", "outcome", "value", "run", "agent", "tier", "context")
_INSERT_OUTCOME = (f"INSERT INTO outcomes ({codec.column_list(_OUTCOME_COLUMNS)}) VALUES "
                   f"({', '.join('?' for _ in _OUTCOME_COLUMNS)}) ON CONFLICT (id) DO NOTHING")
_SLO_COLUMNS = ("name", "breached", "since", "updated_at", "scope", "measured", "actions")
_PUT_SLO = (
    f"INSERT INTO slo_state ({codec.column_list(_SLO_COLUMNS)}) VALUES ({', '.join('?' for _ in _SLO_COLUMNS)})"
    " ON CONFLICT (name) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _SLO_COLUMNS[1:])
)


def _node_row(node: RunNode) -> Row:
    ctx = node.context
    return (node.id, node.run, node.parent_id, node.kind, node.name, codec.to_us(node.started_at),
            None if node.ended_at is None else codec.to_us(node.ended_at), node.status, node.event_id,
            ctx.agent, ctx.pipeline, ctx.experiment, codec.dump_json(_ctx_dict(ctx)),
            codec.dump_json(dict(node.attributes)))


def _ctx_dict(ctx: Any) -> dict[str, Any]:
    data: dict[str, Any] = dict(ctx.dimensions())
    if ctx.tags:
        data["tags"] = dict(ctx.tags)
    return data


def _context(value: Any) -> Any:
    from costplane.attribution.context import Context

    data = dict(codec.load_json(value) or {})
    return Context.from_mapping(data, source="stored context")


def _us(value: Any) -> datetime | None:
    return None if value is None else codec.from_us(int(value))


def _row_activity(row: Row) -> RunActivity:
    first, last = codec.from_us(int(row[1])), codec.from_us(int(row[2]))
    return RunActivity(run=row[0], first_at=first, last_at=last, events=int(row[3] or 0),
                       cost_nano=int(row[4] or 0), input_tokens=int(row[5] or 0), output_tokens=int(row[6] or 0),
                       decisions=int(row[7] or 0), agent=row[8], pipeline=row[9], experiment=row[10],
                       last_event_at=_us(row[11]), last_error_at=_us(row[12]), last_unadmitted_at=_us(row[13]))


def _fetch(tx: Tx, sql: str, params: Sequence[Any]) -> list[Row]:
    return tx.all(sql, params)


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    unique = list(dict.fromkeys(ids))
    return [unique[i:i + _CHUNK] for i in range(0, len(unique), _CHUNK)]


def _row_node(row: Row) -> RunNode:
    return RunNode(id=row[0], run=row[1], parent_id=row[2], kind=row[3], name=row[4],
                   started_at=codec.from_us(row[5]), ended_at=None if row[6] is None else codec.from_us(row[6]),
                   status=row[7], event_id=row[8], context=_context(row[12]),
                   attributes=dict(codec.load_json(row[13]) or {}))


class RunQueries(ABC):
    """Run trees, outcomes, SLO state; a subclass supplies the transactions."""

    @abstractmethod
    def _write(self, body: Callable[[Tx], T]) -> T: ...

    @abstractmethod
    def _read(self, body: Callable[[Tx], T]) -> T: ...

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return self._read(functools.partial(_fetch, sql=sql, params=params))

    # -- run trees ------------------------------------------------------------------------
    def record_nodes(self, nodes: Sequence[RunNode], events: Sequence[CostEvent] = ()) -> None:
        """Upsert run-tree nodes and insert cost events (an event id already stored is skipped) in
        ONE transaction. Events here claim no budget (they were not admitted)."""
        node_rows = [_node_row(n) for n in nodes]
        event_rows = [codec.event_to_row(e) for e in events]

        def body(tx: Tx) -> None:
            if node_rows:
                tx.many(_UPSERT_NODE, node_rows)
            if event_rows:
                tx.many(INSERT_EVENT, event_rows)

        self._write(body)

    def run_nodes(self, run: str) -> list[RunNode]:
        """Every node of one run, oldest first."""
        rows = self._read(lambda tx: tx.all(f"{_NODE_SELECT} WHERE run = ? ORDER BY started_at, id", (run,)))
        return [_row_node(r) for r in rows]

    def run_roots(self, *, since: datetime | None = None, limit: int = 100) -> list[RunNode]:
        """Root nodes (runs), newest first."""
        where, params = "parent_id IS NULL", []
        if since is not None:
            where += " AND started_at >= ?"
            params.append(codec.to_us(since))
        sql = f"{_NODE_SELECT} WHERE {where} ORDER BY started_at DESC, id DESC LIMIT ?"
        rows = self._read(lambda tx: tx.all(sql, (*params, int(limit))))
        return [_row_node(r) for r in rows]

    def run_events(self, run: str) -> list[CostEvent]:
        """Every cost event of one run, oldest first."""
        sql = f"SELECT {codec.column_list(codec.EVENT_COLUMNS)} FROM cost_events WHERE run = ? ORDER BY ts, id"
        return [codec.row_to_event(r) for r in self._read(lambda tx: tx.all(sql, (run,)))]

    def run_members(self, roots: Sequence[str]) -> dict[str, list[str]]:
        """The nested runs (nodes of kind run, agent or pipeline below the root) of each root, in one
        statement per 500 roots; roots without nested runs are absent."""
        out: dict[str, list[str]] = {}
        for chunk in _chunks(roots):
            sql = (f"SELECT run, id FROM run_nodes WHERE run IN ({', '.join('?' for _ in chunk)})"
                   " AND kind IN ('run', 'agent', 'pipeline') AND id <> run ORDER BY started_at, id")
            for run, node_id in self._rows(sql, chunk):
                out.setdefault(run, []).append(node_id)
        return out

    def run_activity(self, *, runs: Sequence[str] | None = None, since: datetime | None = None,
                     limit: int | None = None) -> list[RunActivity]:
        """Per run id: its cost events and decisions aggregated (`RunActivity`), newest start first, in
        one grouped statement; `runs` restricts to those ids, `since` to rows at or after it."""
        chunks: list[list[str] | None] = list(_chunks(runs)) if runs is not None else [None]
        out: list[RunActivity] = []
        for chunk in chunks:
            key = "run" if since is None else "COALESCE(run, '')"
            where, params = "run IS NOT NULL" if since is None else "COALESCE(run, '') <> ''", list[Any]()
            if chunk is not None:
                where += f" AND run IN ({', '.join('?' for _ in chunk)})"
                params += chunk
            if since is not None:
                where += " AND ts >= ?"
                params.append(codec.to_us(since))
            sql = _ACTIVITY.format(events=_EVENTS_PART.format(where=where, key=key),
                                   decisions=_DECISIONS_PART.format(where=where, key=key))
            bound = [*params, *params]
            if limit is not None and chunk is None:
                sql += " LIMIT ?"
                bound.append(int(limit))
            out += [_row_activity(r) for r in self._rows(sql, bound)]
        if runs is not None and len(chunks) > 1:
            out.sort(key=lambda a: (a.first_at, a.run), reverse=True)
        return out

    def latest_decisions(self, runs: Sequence[str]) -> dict[str, DecisionRecord]:
        """The latest decision (by time, then id) of each run that has one, effect `observed` excluded:
        one statement per 500 runs."""
        out: dict[str, DecisionRecord] = {}
        for chunk in _chunks(runs):
            sql = _LATEST_DECISIONS.format(marks=", ".join("?" for _ in chunk))
            for row in self._rows(sql, chunk):
                decision = codec.row_to_decision(row)
                if decision.context.run:
                    out[decision.context.run] = decision
        return out

    def reservation_statuses(self, ids: Sequence[str]) -> dict[str, str]:
        """The status (open, settled, released, expired) of each reservation id that exists."""
        out: dict[str, str] = {}
        for chunk in _chunks(ids):
            sql = f"SELECT id, status FROM reservations WHERE id IN ({', '.join('?' for _ in chunk)})"
            out.update({str(r[0]): str(r[1]) for r in self._rows(sql, chunk)})
        return out

    # -- outcomes ------------------------------------------------------------------------------
    def record_outcome(self, outcome: OutcomeRecord) -> bool:
        """Insert an outcome; False when its id was already recorded."""
        ctx = outcome.context
        row = (outcome.id, codec.to_us(outcome.ts), outcome.outcome, str(outcome.value), ctx.run, ctx.agent,
               ctx.tier, codec.dump_json(_ctx_dict(ctx)))
        return bool(self._write(lambda tx: tx.exec(_INSERT_OUTCOME, row)) == 1)

    def list_outcomes(self, *, outcome: str | None = None, since: datetime | None = None,
                      until: datetime | None = None) -> list[OutcomeRecord]:
        """Outcomes in [since, until), oldest first."""
        conditions: list[str] = []
        params: list[Any] = []
        for clause, value in (("outcome = ?", outcome), ("ts >= ?", since and codec.to_us(since)),
                              ("ts < ?", until and codec.to_us(until))):
            if value is not None:
                conditions.append(clause)
                params.append(value)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT id, ts, outcome, value, context FROM outcomes{where} ORDER BY ts, id"
        rows = self._read(lambda tx: tx.all(sql, params))
        return [OutcomeRecord(r[0], codec.from_us(r[1]), r[2], Decimal(r[3]), _context(r[4])) for r in rows]

    # -- economic SLOs ---------------------------------------------------------------------------
    def put_slo_state(self, state: SloState) -> None:
        row = (state.name, bool(state.breached), None if state.since is None else codec.to_us(state.since),
               codec.to_us(state.updated_at), codec.dump_json(dict(state.scope)),
               codec.dump_json(dict(state.measured)), codec.dump_json([dict(a) for a in state.actions]))
        self._write(lambda tx: tx.exec(_PUT_SLO, row))

    def slo_states(self) -> list[SloState]:
        rows = self._read(lambda tx: tx.all(f"SELECT {codec.column_list(_SLO_COLUMNS)} FROM slo_state ORDER BY name"))
        return [SloState(name=r[0], breached=bool(r[1]), since=None if r[2] is None else codec.from_us(r[2]),
                         updated_at=codec.from_us(r[3]), scope=dict(codec.load_json(r[4]) or {}),
                         measured=dict(codec.load_json(r[5]) or {}),
                         actions=tuple(dict(a) for a in codec.load_json(r[6]) or ()))
                for r in rows]

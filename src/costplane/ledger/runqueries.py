"""The store methods of run trees, outcomes and SLO state, shared by SQLite and PostgreSQL.

Mixed into `SqlStore` next to `SqlQueries`; same rules: `?` placeholders, no `%`,
values always bound, one transaction per method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from costplane.ledger import codec
from costplane.ledger.queries import INSERT_EVENT, Row, Tx
from costplane.ledger.runtypes import OutcomeRecord, RunNode, SloState
from costplane.ledger.types import CostEvent

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

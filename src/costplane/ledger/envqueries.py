"""Store methods of governed environments (schema v4) and the two reservation operations a
long-running environment needs, shared by SQLite and PostgreSQL.

Mixed into `SqlStore` next to `SqlQueries`; same rules: `?` placeholders, no `%`,
values always bound, one transaction per method. `accrue` and `grow_reservation`
change budget counters, so they take the same per-(budget, partition) locks, in the
same global order, through the same `_lock_partitions`/`_window_sums`/counter upsert
as `reserve`/`settle` in `base` (imported at call time: `base` imports this module).

* `accrue(reservation_id, event)` — records the event (idempotent by id) and moves
  its cost from reserved to spent on every claim, keeping the reservation open: a
  claim's reserved amount never goes below zero (spend past the projection is
  still spent). `close=True` also gives back what is still reserved and ends the
  reservation (settled) — the environment's teardown.
* `grow_reservation(reservation_id, extra_nano, expires_at, decision)` — the atomic
  limit check of `reserve` for `extra_nano` more on every hard claim; on success
  the claims hold more, the reservation's expiry moves and the decision is logged.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from costplane.ledger import codec
from costplane.ledger.envtypes import OPEN_STATES, EnvironmentRecord, EnvTransition
from costplane.ledger.queries import INSERT_DECISION, INSERT_EVENT, Row, Tx
from costplane.ledger.store import StoreError
from costplane.ledger.types import BudgetClaim, ClaimState, CostEvent, DecisionRecord, ReservationStatus, ReserveResult

__all__ = ["ENV_COLUMNS", "EnvQueries"]

T = TypeVar("T")

ENV_COLUMNS = (
    "id", "blueprint", "state", "state_open", "owner", "team", "key_id", "context", "inputs", "resources",
    "driver", "handle", "lifecycle", "hourly_nano", "projected_nano", "accrued_nano", "accrued_until",
    "reservation_id", "decision_id", "bundle_revision", "created_at", "started_at", "expires_at",
    "max_expires_at", "notice_sent", "extensions", "metrics", "idle_since", "next_action_at", "ended_at",
    "end_reason",
)  # fmt: skip
_TIMES = frozenset({"accrued_until", "created_at", "started_at", "expires_at", "max_expires_at", "idle_since",
                    "next_action_at", "ended_at"})
_JSONS = frozenset({"inputs", "resources", "driver", "handle", "lifecycle", "metrics"})
#: columns a caller may change after creation
_MUTABLE = frozenset(ENV_COLUMNS) - {"id", "blueprint", "created_at", "state", "state_open", "owner", "team",
                                      "key_id", "context"}
_SELECT = f"SELECT {codec.column_list(ENV_COLUMNS)} FROM environments"
_INSERT = (f"INSERT INTO environments ({codec.column_list(ENV_COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in ENV_COLUMNS)})")
_OPEN = 1


def _value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _TIMES:
        return codec.to_us(value)
    if name in _JSONS:
        return codec.dump_json(list(value) if isinstance(value, tuple) else dict(value)
                               if isinstance(value, Mapping) else value)
    if name == "notice_sent":
        return bool(value)
    return value


def env_to_row(env: EnvironmentRecord) -> Row:
    ctx = env.context
    values: dict[str, Any] = {f.name: getattr(env, f.name) for f in dataclasses.fields(env)}
    values.update(state_open=_OPEN if env.state in OPEN_STATES else 0, owner=ctx.owner, team=ctx.team,
                  key_id=ctx.key_id, context=codec._context_to_json(ctx))
    return tuple(values[c] if c in ("context", "state_open", "owner", "team", "key_id") else _value(c, values[c])
                 for c in ENV_COLUMNS)


def row_to_env(row: Sequence[Any]) -> EnvironmentRecord:
    raw = dict(zip(ENV_COLUMNS, row, strict=True))
    out: dict[str, Any] = {}
    for field in dataclasses.fields(EnvironmentRecord):
        value = raw[field.name] if field.name != "context" else raw["context"]
        if field.name == "context":
            value = codec._context_from_json(value)
        elif field.name in _TIMES:
            value = None if value is None else codec.from_us(int(value))
        elif field.name in _JSONS:
            value = codec.load_json(value)
            value = tuple(value or ()) if field.name == "resources" else dict(value or {})
        elif field.name == "notice_sent":
            value = bool(value)
        elif field.name in ("hourly_nano", "projected_nano", "accrued_nano", "extensions"):
            value = int(value)
        out[field.name] = value
    return EnvironmentRecord(**out)


class EnvQueries(ABC):
    """Environments, their transitions, and reservation accrual/growth."""

    @abstractmethod
    def _write(self, body: Callable[[Tx], T]) -> T: ...

    @abstractmethod
    def _read(self, body: Callable[[Tx], T]) -> T: ...

    @abstractmethod
    def _lock_partitions(self, tx: Tx, keys: Sequence[tuple[str, str]]) -> None: ...

    @abstractmethod
    def _window_sums(self, tx: Tx, claims: Sequence[BudgetClaim]) -> list[tuple[int, int, int, int]]: ...

    # -- environments ------------------------------------------------------------------------
    def create_environment(self, env: EnvironmentRecord, decision: DecisionRecord | None = None) -> None:
        """Insert a new environment (and the decision that created it) in one transaction."""
        row = env_to_row(env)

        def body(tx: Tx) -> None:
            tx.exec(_INSERT, row)
            tx.exec(_INSERT_TRANSITION, (env.id, 0, codec.to_us(env.created_at), "", env.state, env.decision_id,
                                         "created"))
            if decision is not None:
                tx.exec(INSERT_DECISION, codec.decision_to_row(decision))

        self._write(body)

    def get_environment(self, env_id: str) -> EnvironmentRecord | None:
        row = self._read(lambda tx: tx.one(f"{_SELECT} WHERE id = ?", (env_id,)))
        return None if row is None else row_to_env(row)

    def list_environments(self, *, states: Sequence[str] = (), limit: int = 1000) -> list[EnvironmentRecord]:
        """Newest first; `states` filters (empty: all)."""
        if states:
            marks = ", ".join("?" for _ in states)
            sql, params = f"{_SELECT} WHERE state IN ({marks}) ORDER BY created_at DESC LIMIT ?", (*states, limit)
        else:
            sql, params = f"{_SELECT} ORDER BY created_at DESC LIMIT ?", (limit,)
        return [row_to_env(r) for r in self._read(lambda tx: tx.all(sql, params))]

    def due_environments(self, now: datetime, limit: int = 1000) -> list[EnvironmentRecord]:
        """Open environments whose next_action_at <= now, most overdue first."""
        sql = f"{_SELECT} WHERE state_open = ? AND next_action_at <= ? ORDER BY next_action_at LIMIT ?"
        rows = self._read(lambda tx: tx.all(sql, (_OPEN, codec.to_us(now), limit)))
        return [row_to_env(r) for r in rows]

    def update_environment(self, env_id: str, changes: Mapping[str, Any], *,
                           states: Sequence[str] = ()) -> bool:
        """Change some columns (not the state); only while the state is one of `states` if given."""
        sets, params = _sets(changes)
        if not sets:
            return False
        guard = f" AND state IN ({', '.join('?' for _ in states)})" if states else ""
        sql = f"UPDATE environments SET {sets} WHERE id = ?{guard}"
        return bool(self._write(lambda tx: tx.exec(sql, (*params, env_id, *states))))

    def transition_environment(self, env_id: str, from_states: Sequence[str], to_state: str, *, ts: datetime,
                               reason: str, decision: DecisionRecord | None = None,
                               changes: Mapping[str, Any] | None = None) -> EnvironmentRecord | None:
        """Compare-and-set the state (only from one of `from_states`), apply `changes`, record the
        transition and the decision — one transaction. None when the state was not one of them."""
        sets, params = _sets(changes or {})
        open_flag = _OPEN if to_state in OPEN_STATES else 0
        marks = ", ".join("?" for _ in from_states)
        sql = (f"UPDATE environments SET state = ?, state_open = ?{', ' + sets if sets else ''} "
               f"WHERE id = ? AND state IN ({marks}) RETURNING state")

        def body(tx: Tx) -> EnvironmentRecord | None:
            before = tx.one("SELECT state FROM environments WHERE id = ?", (env_id,))
            if before is None or before[0] not in from_states:
                return None
            if tx.one(sql, (to_state, open_flag, *params, env_id, *from_states)) is None:
                return None
            seq = tx.one("SELECT COALESCE(MAX(seq), 0) + 1 FROM environment_transitions WHERE environment_id = ?",
                         (env_id,))
            tx.exec(_INSERT_TRANSITION, (env_id, int(seq[0]) if seq else 1, codec.to_us(ts), before[0], to_state,
                                         decision.id if decision else None, reason))
            if decision is not None:
                tx.exec(INSERT_DECISION, codec.decision_to_row(decision))
            row = tx.one(f"{_SELECT} WHERE id = ?", (env_id,))
            return None if row is None else row_to_env(row)

        return self._write(body)

    def environment_transitions(self, env_id: str) -> list[EnvTransition]:
        rows = self._read(lambda tx: tx.all(
            "SELECT environment_id, seq, ts, from_state, to_state, decision_id, reason FROM environment_transitions"
            " WHERE environment_id = ? ORDER BY seq", (env_id,)))  # fmt: skip
        return [EnvTransition(r[0], int(r[1]), codec.from_us(int(r[2])), r[3], r[4], r[5], r[6]) for r in rows]

    # -- reservations of long-running work ------------------------------------------------------
    def accrue(self, reservation_id: str, event: CostEvent, *, close: bool = False,
               environment_id: str | None = None, accrued_until: datetime | None = None,
               decision: DecisionRecord | None = None) -> tuple[ClaimState, ...]:
        """Record `event` and move its cost from reserved to spent, keeping the reservation open
        (close=True ends it and gives back the rest). With `environment_id`, that environment's
        accrued_nano/accrued_until move in the same transaction; `decision` (the spend's observed
        decision) is logged in it too when the event is new."""
        from costplane.ledger.base import _ADD_COUNTERS, _delta, _state, partition_keys

        event_row = codec.event_to_row(event)

        def body(tx: Tx) -> tuple[ClaimState, ...]:
            row = tx.one("SELECT claims, status FROM reservations WHERE id = ?", (reservation_id,))
            if row is None:
                raise StoreError(f"unknown reservation {reservation_id!r}")
            claims, status = codec.claims_from_json(row[0]), row[1]
            self._lock_partitions(tx, partition_keys(claims))
            inserted = tx.exec(INSERT_EVENT, event_row) == 1
            cost = int(event.cost_nano) if inserted else 0
            if inserted and decision is not None:
                tx.exec(INSERT_DECISION, codec.decision_to_row(decision))
            deltas: list[Row] = []
            kept: list[BudgetClaim] = []
            for claim in claims:
                if status != ReservationStatus.OPEN:
                    deltas.append(_delta(claim, spent=cost))
                    kept.append(claim)
                    continue
                moved = min(cost, claim.amount_nano)
                back = claim.amount_nano - moved if close else 0
                deltas.append(_delta(claim, spent=cost, reserved=-(moved + back), concurrent=-1 if close else 0))
                kept.append(dataclasses.replace(claim, amount_nano=claim.amount_nano - moved - back))
            if deltas and (cost or close):
                tx.many(_ADD_COUNTERS, [d for d in deltas if any(d[3:])])
            if status == ReservationStatus.OPEN:
                new_status = ReservationStatus.SETTLED if close else ReservationStatus.OPEN
                tx.exec("UPDATE reservations SET claims = ?, status = ? WHERE id = ?",
                        (codec.claims_to_json(kept), new_status, reservation_id))
            if environment_id is not None and inserted:
                tx.exec("UPDATE environments SET accrued_nano = accrued_nano + ?, accrued_until = ? WHERE id = ?",
                        (cost, codec.to_us(accrued_until or event.ts), environment_id))
            return tuple(_state(c, s) for c, s in zip(kept, self._window_sums(tx, kept), strict=True))

        return self._write(body)

    def grow_reservation(self, reservation_id: str, extra_nano: int, expires_at: datetime,
                         decision: DecisionRecord | None = None) -> ReserveResult:
        """Hold `extra_nano` more on every claim (refused, with nothing written, if a hard claim's
        window would go over its dollar limit) and move the reservation's expiry."""
        from costplane.ledger.base import _ADD_COUNTERS, _delta, _state, partition_keys

        if extra_nano < 0:
            raise ValueError(f"extra_nano must be >= 0, got {extra_nano}")

        def body(tx: Tx) -> ReserveResult:
            row = tx.one("SELECT claims, status FROM reservations WHERE id = ?", (reservation_id,))
            if row is None:
                raise StoreError(f"unknown reservation {reservation_id!r}")
            if row[1] != ReservationStatus.OPEN:
                raise StoreError(f"reservation {reservation_id!r} is {row[1]}, not open")
            claims = codec.claims_from_json(row[0])
            self._lock_partitions(tx, partition_keys(claims))
            states: list[ClaimState] = []
            for claim, (spent, reserved, calls, conc) in zip(claims, self._window_sums(tx, claims), strict=True):
                state = _state(claim, (spent, reserved + extra_nano, calls, conc))
                if (claim.hard and extra_nano and claim.limit_nano is not None
                        and spent + reserved + extra_nano > claim.limit_nano):
                    return ReserveResult(ok=False, refused=state, refused_limit="amount")
                states.append(state)
            if extra_nano:
                tx.many(_ADD_COUNTERS, [_delta(c, reserved=extra_nano) for c in claims])
            grown = [dataclasses.replace(c, amount_nano=c.amount_nano + extra_nano) for c in claims]
            tx.exec("UPDATE reservations SET claims = ?, expires_at = ? WHERE id = ?",
                    (codec.claims_to_json(grown), codec.to_us(expires_at), reservation_id))
            if decision is not None:
                tx.exec(INSERT_DECISION, codec.decision_to_row(decision))
            return ReserveResult(ok=True, states=tuple(states))

        return self._write(body)


_INSERT_TRANSITION = ("INSERT INTO environment_transitions (environment_id, seq, ts, from_state, to_state, "
                      "decision_id, reason) VALUES (?, ?, ?, ?, ?, ?, ?)")


def _sets(changes: Mapping[str, Any]) -> tuple[str, list[Any]]:
    unknown = [name for name in changes if name not in _MUTABLE]
    if unknown:
        raise ValueError(f"environment columns {unknown} cannot be changed (allowed: {sorted(_MUTABLE)})")
    names = list(changes)
    return ", ".join(f"{name} = ?" for name in names), [_value(name, changes[name]) for name in names]

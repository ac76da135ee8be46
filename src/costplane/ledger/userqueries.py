"""Store methods of users, API tokens (schema v7, projects v9) and the API's scoped reads: the
filtered, paged decisions log and the environment listing.

Mixed into `SqlStore`; same rules as every query module: `?` placeholders, no `%`, values
always bound, one transaction per method. The dialect differences are how a decision's JSON
array of matched policies is searched and how a field of a JSON context is read.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from costplane.ledger import codec
from costplane.ledger.codec import column_list
from costplane.ledger.contracts_admin import CREDENTIAL_TRUST_SECONDS
from costplane.ledger.envqueries import ENV_COLUMNS, row_to_env
from costplane.ledger.envtypes import EnvironmentRecord
from costplane.ledger.queries import Row, Tx
from costplane.ledger.types import DecisionRecord
from costplane.ledger.usertypes import ApiTokenRecord, DecisionQuery, EnvironmentQuery, Scope, UserRecord

__all__ = ["BUMP_GENERATION", "UserQueries", "revoking"]

T = TypeVar("T")

_USER_COLUMNS = ("id", "name", "role", "teams", "password_hash", "created_at", "disabled_at", "projects")
_TOKEN_COLUMNS = ("id", "secret_hash", "prefix", "user_id", "name", "created_at", "expires_at", "revoked_at")
_SELECT_USER = f"SELECT {column_list(_USER_COLUMNS)} FROM users"
_SELECT_TOKEN = f"SELECT {column_list(_TOKEN_COLUMNS)} FROM api_tokens"
_SELECT_DECISION = f"SELECT {column_list(codec.DECISION_COLUMNS)} FROM decisions"
_SELECT_ENV = f"SELECT {column_list(ENV_COLUMNS)} FROM environments"
_GENERATION = "SELECT generation FROM credential_generation WHERE id = 1"
BUMP_GENERATION = "UPDATE credential_generation SET generation = generation + 1 WHERE id = 1"


def revoking(tx: Tx, sql: str, params: Sequence[Any]) -> int:
    """Run a revoking UPDATE and, when it changed a row, bump the credential generation in the
    same transaction (so no process can see the revocation without the new generation)."""
    changed = tx.exec(sql, params)
    if changed:
        tx.exec(BUMP_GENERATION)
    return changed


#: beyond the trust window, what a revocation waits for the readers' and its own clock readings to
#: be taken apart (monotonic clocks of different processes advance at the same rate, not in step)
_TRUST_MARGIN_SECONDS = 0.005


def _opt_us(value: datetime | None) -> int | None:
    return None if value is None else codec.to_us(value)


def _opt_dt(value: Any) -> datetime | None:
    return None if value is None else codec.from_us(int(value))


def _user(row: Sequence[Any]) -> UserRecord:
    teams = codec.load_json(row[3]) or []
    return UserRecord(id=str(row[0]), name=str(row[1]), role=str(row[2]), teams=tuple(str(t) for t in teams),
                      password_hash=str(row[4]), created_at=codec.from_us(int(row[5])), disabled_at=_opt_dt(row[6]),
                      projects=tuple(str(p) for p in codec.load_json(row[7]) or []))


def _token(row: Sequence[Any]) -> ApiTokenRecord:
    return ApiTokenRecord(id=str(row[0]), secret_hash=str(row[1]), prefix=str(row[2]), user_id=str(row[3]),
                          name=str(row[4]), created_at=codec.from_us(int(row[5])), expires_at=_opt_dt(row[6]),
                          revoked_at=_opt_dt(row[7]))


class UserQueries(ABC):
    """Users, API tokens and the decisions log with every filter the API offers."""

    dialect: str

    @abstractmethod
    def _write(self, body: Callable[[Tx], T]) -> T: ...

    @abstractmethod
    def _read(self, body: Callable[[Tx], T]) -> T: ...

    @abstractmethod
    def _read_row(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    # -- users ------------------------------------------------------------------------
    def create_user(self, user: UserRecord) -> None:
        sql = f"INSERT INTO users ({column_list(_USER_COLUMNS)}) VALUES ({', '.join('?' * len(_USER_COLUMNS))})"
        row = (user.id, user.name, user.role, codec.dump_json(list(user.teams)), user.password_hash,
               codec.to_us(user.created_at), _opt_us(user.disabled_at), codec.dump_json(list(user.projects)))
        self._write(lambda tx: tx.exec(sql, row))

    def get_user(self, user_id: str) -> UserRecord | None:
        row = self._read(lambda tx: tx.one(f"{_SELECT_USER} WHERE id = ?", (user_id,)))
        return None if row is None else _user(row)

    def user_by_name(self, name: str) -> UserRecord | None:
        row = self._read(lambda tx: tx.one(f"{_SELECT_USER} WHERE name = ?", (name,)))
        return None if row is None else _user(row)

    def list_users(self) -> list[UserRecord]:
        return [_user(r) for r in self._read(lambda tx: tx.all(f"{_SELECT_USER} ORDER BY name"))]

    def disable_user(self, user_id: str, now: datetime) -> bool:
        return self._revoke("UPDATE users SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL", now, user_id)

    # -- revocations -------------------------------------------------------------------------
    def revoke_key(self, key_id: str, now: datetime) -> bool:
        return self._revoke("UPDATE virtual_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", now, key_id)

    def _revoke(self, sql: str, now: datetime, record_id: str) -> bool:
        """One revocation: the UPDATE and the generation bump in one transaction; then, when it changed
        a row, the wait that lets every credential cache's trusted read expire (contracts_admin:
        `CREDENTIAL_TRUST_SECONDS`) — so when this returns, no process accepts the revoked credential."""
        changed = self._write(lambda tx: revoking(tx, sql, (codec.to_us(now), record_id))) == 1
        if changed:
            time.sleep(CREDENTIAL_TRUST_SECONDS + _TRUST_MARGIN_SECONDS)
        return changed

    # -- the credential generation (v12) ---------------------------------------------------
    def credentials_generation(self) -> int:
        """Grows by one with every revocation; credential caches compare it (a value read is relied on
        for `CREDENTIAL_TRUST_SECONDS` from the start of its read)."""
        row = self._read_row(_GENERATION)  # PostgreSQL: one statement, no BEGIN/COMMIT
        return int(row[0]) if row else 0

    # -- API tokens ---------------------------------------------------------------------
    def create_api_token(self, token: ApiTokenRecord) -> None:
        sql = f"INSERT INTO api_tokens ({column_list(_TOKEN_COLUMNS)}) VALUES ({', '.join('?' * len(_TOKEN_COLUMNS))})"
        row = (token.id, token.secret_hash, token.prefix, token.user_id, token.name, codec.to_us(token.created_at),
               _opt_us(token.expires_at), _opt_us(token.revoked_at))
        self._write(lambda tx: tx.exec(sql, row))

    def api_token_by_hash(self, secret_hash: str) -> ApiTokenRecord | None:
        row = self._read(lambda tx: tx.one(f"{_SELECT_TOKEN} WHERE secret_hash = ?", (secret_hash,)))
        return None if row is None else _token(row)

    def list_api_tokens(self, user_id: str) -> list[ApiTokenRecord]:
        rows = self._read(lambda tx: tx.all(f"{_SELECT_TOKEN} WHERE user_id = ? ORDER BY created_at", (user_id,)))
        return [_token(r) for r in rows]

    def revoke_api_token(self, token_id: str, now: datetime) -> bool:
        return self._revoke("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", now, token_id)

    # -- scoped reads ----------------------------------------------------------------------
    def _json_field(self, column: str, name: str) -> str:
        """SQL reading the string `name` of a JSON object column (a context's dimension)."""
        if self.dialect == "postgres":
            return f"({column} ->> '{name}')"
        return f"json_extract({column}, '$.{name}')"

    def _scope_condition(self, scope: Scope | None, team_expr: str, project_expr: str,
                         conditions: list[str], params: list[Any]) -> None:
        if scope is not None:
            sql, values = scope.sql(team_expr, project_expr)
            conditions.append(sql)
            params += values

    def query_environments(self, query: EnvironmentQuery) -> list[EnvironmentRecord]:
        """Environments matching every set filter of `query`, newest first."""
        conditions: list[str] = []
        params: list[Any] = []
        if query.states:
            conditions.append(f"state IN ({', '.join('?' * len(query.states))})")
            params += list(query.states)
        for column, value in (("team", query.team), ("blueprint", query.blueprint)):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        self._scope_condition(query.scope, "team", self._json_field("context", "project"), conditions, params)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"{_SELECT_ENV}{where} ORDER BY created_at DESC, id DESC LIMIT ?"
        return [row_to_env(r) for r in self._read(lambda tx: tx.all(sql, (*params, int(query.limit))))]

    # -- decisions log --------------------------------------------------------------------
    def query_decisions(self, query: DecisionQuery) -> list[DecisionRecord]:
        """Decisions matching every set filter of `query`, newest first."""
        if query.teams is not None and not query.teams:
            return []
        conditions: list[str] = []
        params: list[Any] = []
        for column, value in (("effect", query.effect), ("key_id", query.key_id)):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        if query.since is not None:
            conditions.append("ts >= ?")
            params.append(codec.to_us(query.since))
        if query.until is not None:
            conditions.append("ts < ?")
            params.append(codec.to_us(query.until))
        if query.policy is not None:
            if self.dialect == "postgres":
                conditions.append("policies @> CAST(? AS JSONB)")
                params.append(codec.dump_json([query.policy]))
            else:
                conditions.append("EXISTS (SELECT 1 FROM json_each(policies) WHERE json_each.value = ?)")
                params.append(query.policy)
        if query.teams is not None:
            conditions.append(f"team IN ({', '.join('?' * len(query.teams))})")
            params += list(query.teams)
        self._scope_condition(query.scope, "team", self._json_field("context", "project"), conditions, params)
        if query.before is not None:
            # keyset paging on the sort key: rows inserted meanwhile never shift later pages
            conditions.append("(ts < ? OR (ts = ? AND id < ?))")
            params += [query.before[0], query.before[0], query.before[1]]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"{_SELECT_DECISION}{where} ORDER BY ts DESC, id DESC LIMIT ?"
        rows = self._read(lambda tx: tx.all(sql, (*params, int(query.limit))))
        return [codec.row_to_decision(r) for r in rows]

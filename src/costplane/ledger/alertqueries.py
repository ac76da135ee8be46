"""Store methods of the visibility features: alert de-duplication marks (schema v6),
decision counts, budget partitions, and paging through events for exports.

Mixed into `SqlStore` next to `SqlQueries`; same rules: `?` placeholders, no `%`,
values always bound, one transaction per method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from costplane.ledger import codec
from costplane.ledger.codec import column_list
from costplane.ledger.queries import Tx
from costplane.ledger.types import CostEvent

__all__ = ["AlertQueries"]

T = TypeVar("T")

_SELECT_EVENT = f"SELECT {column_list(codec.EVENT_COLUMNS)} FROM cost_events"


class AlertQueries(ABC):
    """Alert marks, decision counts, budget partitions and ordered event pages."""

    @abstractmethod
    def _write(self, body: Callable[[Tx], T]) -> T: ...

    @abstractmethod
    def _read(self, body: Callable[[Tx], T]) -> T: ...

    def claim_alert(self, dedup_key: str, kind: str, subject: str, now: datetime) -> bool:
        sql = ("INSERT INTO alert_marks (dedup_key, kind, subject, created_at) VALUES (?, ?, ?, ?)"
               " ON CONFLICT (dedup_key) DO NOTHING")
        return self._write(lambda tx: tx.exec(sql, (dedup_key, kind, subject, codec.to_us(now)))) == 1

    def decision_counts(self) -> dict[tuple[str, str], int]:
        rows = self._read(lambda tx: tx.all("SELECT hook, effect, COUNT(*) FROM decisions GROUP BY hook, effect"))
        return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}

    def budget_partitions(self, budget: str, window_start: int, limit: int = 20) -> list[str]:
        sql = ('SELECT "partition" FROM budget_counters WHERE budget = ? AND bucket >= ?'
               ' GROUP BY "partition" ORDER BY SUM(spent_nano) + SUM(reserved_nano) DESC, "partition" LIMIT ?')
        rows = self._read(lambda tx: tx.all(sql, (budget, int(window_start), int(limit))))
        return [str(r[0]) for r in rows]

    def events_page(self, *, since: datetime | None = None, until: datetime | None = None,
                    after: tuple[datetime, str] | None = None, limit: int = 1000) -> list[CostEvent]:
        conditions: list[str] = []
        params: list[object] = []
        if since is not None:
            conditions.append("ts >= ?")
            params.append(codec.to_us(since))
        if until is not None:
            conditions.append("ts < ?")
            params.append(codec.to_us(until))
        if after is not None:
            ts = codec.to_us(after[0])
            conditions.append("(ts > ? OR (ts = ? AND id > ?))")
            params += [ts, ts, after[1]]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"{_SELECT_EVENT}{where} ORDER BY ts, id LIMIT ?"
        rows = self._read(lambda tx: tx.all(sql, (*params, int(limit))))
        return [codec.row_to_event(r) for r in rows]

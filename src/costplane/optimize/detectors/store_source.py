"""`StoreSource`: the detectors' figures from the store's grouped queries (`ledger/optimizequeries.py`).

A 10 M-event window is never loaded as objects; queries the detectors share run once per source
(`StoreSource._once`), and `prefetch.py` may start some of them ahead on a second thread.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from decimal import Decimal
from typing import Any

from costplane.ledger import codec
from costplane.ledger.contracts_analytics import AnalyticsReads
from costplane.ledger.optimizerows import AgentRunsRow, DecisionEventRow, LoopSummaryRow
from costplane.optimize.detectors.source import (
    Agg,
    CacheRow,
    EmbeddingRow,
    LoopSummary,
    ModelGroup,
    RunSummary,
    UsageRow,
)
from costplane.optimize.history import History

__all__ = ["StoreSource"]

_TAKEN = object()  # a `_take` entry whose reader has taken it


class StoreSource:
    """The same figures from the store's grouped queries (`ledger/optimizequeries.py`)."""

    def __init__(self, store: AnalyticsReads, history: History) -> None:
        self.store = store
        self.since_us = codec.to_us(history.since)
        self.until_us = codec.to_us(history.until)
        self.seconds = history.seconds
        self._window = (self.since_us, self.until_us)
        self._memo: dict[tuple[Any, ...], Future[Any] | object] = {}
        self._lock = threading.Lock()

    def _once(self, key: tuple[Any, ...], compute: Any, *, ahead: bool = False) -> Any:
        """Detectors share queries (the model groups, an agent's runs): each runs once per source, on
        the thread that asks first (`prefetch` asks ahead on a second one; the other waits for it).
        `ahead`: only start it, unless it is already under way, done or taken (None)."""
        with self._lock:
            entry = self._memo.get(key)
            if ahead and entry is not None:
                return None
            # not a future: absent, or its one reader took it (this is another run of that detector)
            mine = not isinstance(entry, Future)
            future: Future[Any] = entry if isinstance(entry, Future) else Future()
            if mine:
                self._memo[key] = future
        if mine:
            try:
                future.set_result(compute())
            except BaseException as exc:  # re-raised to every caller of the key
                future.set_exception(exc)
        return None if ahead else future.result()

    def _take(self, key: tuple[Any, ...], compute: Any) -> Any:
        """`_once` for rows only one detector reads (cacheable requests, embeddings; hundreds of MB at
        10 M events): its reader takes them, so they are not held until the whole run ends."""
        value = self._once(key, compute)
        with self._lock:
            self._memo[key] = _TAKEN
        return value

    def model_groups(self, max_input: int, max_output: int) -> list[ModelGroup]:
        rows = self._once(("groups", max_input, max_output),
                          lambda: self.store.optimize_model_groups(*self._window, max_input, max_output))
        return [ModelGroup(r.agent, r.provider, r.model, r.tier, r.team, r.calls, r.short_calls,
                           Agg(r.calls, r.sum_x, r.sum_y, r.sum_xx, r.sum_xy, r.sum_yy)) for r in rows]

    def model_rows(self, group: ModelGroup, *, short: tuple[int, int] | None = None) -> list[UsageRow]:
        # typed rows (`ModelUsageRow`) are already the detectors' usage tuples: no second conversion
        return list(self.store.optimize_model_rows(
            self.since_us, self.until_us, group.agent, group.provider, group.model, group.tier, group.team,
            max_input=short[0] if short else None, max_output=short[1] if short else None))

    def model_costs(self, group: ModelGroup, femto: Sequence[int], *,
                    short: tuple[int, int] | None = None) -> tuple[int, int, int, set[str]] | None:
        rows = self.store.optimize_model_costs(
            self.since_us, self.until_us, group.agent, group.provider, group.model, group.tier, group.team, femto,
            max_input=short[0] if short else None, max_output=short[1] if short else None,
            by_experiment=short is None)
        if any(max(femto) * (r.max_input_tokens + r.max_output_tokens) >= 2**62 for r in rows):
            return None  # past exact int64: price the rows one by one
        return (sum(r.calls for r in rows), sum(r.cost_nano for r in rows), sum(r.priced_nano for r in rows),
                {r.experiment for r in rows if r.experiment})

    def run_agents(self) -> list[str]:
        return list(self._once(("agents",), lambda: self.store.optimize_agents(*self._window)))

    def _runs(self, agent: str) -> AgentRunsRow:
        """The agent's run figures (`optimize_agent_runs`): one pass serves the summary, the most distinct
        requests and whether (and how often) its runs repeat themselves."""
        runs: AgentRunsRow = self._once(("runs", agent), lambda: self.store.optimize_agent_runs(*self._window, agent))
        return runs

    def run_summary(self, agent: str) -> RunSummary:
        r = self._runs(agent)
        return RunSummary(r.runs, r.calls, Agg(r.runs, r.sum_x, r.sum_y, r.sum_xx, r.sum_xy, r.sum_yy))

    def run_keys(self, agent: str) -> int:
        return self._runs(agent).max_distinct

    def loop_summary(self, agent: str) -> LoopSummary:
        if not self._runs(agent).duplicates:
            return LoopSummary(0, 0, 0, 0)  # no run repeats a request: nothing to sum (no second scan)
        r: LoopSummaryRow = self._once(("loops", agent),
                                       lambda: self.store.optimize_loop_summary(*self._window, agent))
        return LoopSummary(r.duplicates, r.duplicate_cost_nano, r.longest_repeat, r.repeating_runs)

    def run_steps(self, agent: str) -> dict[int, int]:
        return {r.calls: r.runs for r in self.store.optimize_run_steps(*self._window, agent)}

    def run_sizes(self, agent: str) -> list[tuple[int, str, int]]:
        return [(r.first_ts, r.run, r.calls) for r in self.store.optimize_run_sizes(*self._window, agent)]

    def run_excess(self, agent: str, baseline: int) -> int:
        return self.store.optimize_run_excess(*self._window, agent, baseline)

    def agent_days(self, agent: str) -> dict[int, tuple[int, int]]:
        return {r.day: (r.calls, r.cost_nano) for r in self.store.optimize_agent_days(*self._window, agent)}

    def cache_rows(self) -> list[CacheRow]:
        return list(self._take(("cache",), self._cache_rows))

    def read_cache_rows_ahead(self) -> None:
        self._once(("cache",), self._cache_rows, ahead=True)

    def _cache_rows(self) -> list[CacheRow]:
        # filtered and summed per decision in SQL (schema v11 columns): one row per cacheable request
        rows: list[CacheRow] = list(self.store.optimize_cacheable(*self._window))  # `CacheableRow`s
        rows += self._legacy_cache_rows()
        rows.sort(key=lambda r: (r[0], r[1]))
        return rows

    def _legacy_cache_rows(self) -> list[CacheRow]:
        """Decisions recorded before `cache_hash` existed: the in-memory rule (`cache_key`) on them."""
        legacy = self.store.optimize_cache_legacy(*self._window)
        if not legacy:
            return []
        events: dict[str, list[DecisionEventRow]] = {}
        for event in self.store.optimize_decision_events(*self._window, [d.id for d in legacy]):
            events.setdefault(event.decision_id, []).append(event)
        rows: list[CacheRow] = []
        for d in legacy:
            scope = ("agent", d.agent) if d.agent else ("team", d.team) if d.team else None
            evs = sorted(events.get(d.id, []), key=lambda e: (e.ts, e.id))
            if scope is None or not evs or any(e.kind == "cache_hit" or e.status != "ok" for e in evs) or (
                    d.result.get("params") or {}).get("cache") is True:
                continue
            key = _legacy_key(d.input, [e.request_hash for e in evs])
            if key is not None:
                rows.append((d.ts, d.id, scope[0], scope[1], key, sum(e.cost_nano for e in evs)))
        return rows

    def embedding_rows(self) -> list[EmbeddingRow]:
        return list(self._take(("embeddings",), self._embedding_rows))

    def read_embedding_rows_ahead(self) -> None:
        self._once(("embeddings",), self._embedding_rows, ahead=True)

    def _embedding_rows(self) -> list[EmbeddingRow]:
        return [r for r in self.store.optimize_embeddings(*self._window) if r.request_hash]

    def outcomes(self) -> list[tuple[str, str, int, Decimal]]:
        rows = self._once(("outcomes",), lambda: self.store.optimize_outcomes(*self._window))
        return [(r.agent, r.outcome, r.ts, Decimal(r.value)) for r in rows]

    def model_outcome_runs(self, agent: str, provider: str, model: str) -> tuple[int, int]:
        r = self.store.optimize_model_outcome_runs(*self._window, agent, provider, model)
        return r.runs, r.with_outcome


def _legacy_key(data: Mapping[str, Any], hashes: Sequence[str | None]) -> str | None:
    """`history.cache_key` on a decoded decision input and its events' request hashes."""
    params = data.get("params") or {}
    deterministic = data.get("endpoint") == "embeddings" or (
        not data.get("stream") and params.get("temperature") == 0 and params.get("n") in (None, 1))
    return next((h for h in hashes if h), None) if deterministic else None


"""`MemorySource`: the detectors' figures derived from a `History` of objects (tests, small windows).

The definitions are `source.py`'s; `tests/optimize/test_store_path.py` checks they match the store's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from costplane.ledger import codec
from costplane.ledger.types import CostEvent
from costplane.optimize.detectors.source import (
    Agg,
    CacheRow,
    EmbeddingRow,
    LoopSummary,
    ModelGroup,
    RunSummary,
    UsageRow,
)
from costplane.optimize.history import History, cache_key

__all__ = ["MemorySource"]

_DAY_US = 86_400 * 1_000_000


def _x(ts: int, since: int, span: float) -> float:
    return (ts - since) / span


def _agg(points: Iterable[tuple[float, float]]) -> Agg:
    n, sx, sy, sxx, sxy, syy = 0, 0.0, 0.0, 0.0, 0.0, 0.0
    for x, y in points:
        n += 1
        sx += x
        sy += y
        sxx += x * x
        sxy += x * y
        syy += y * y
    return Agg(n, sx, sy, sxx, sxy, syy)


def _usage_row(e: CostEvent) -> UsageRow:
    u = e.usage
    return (codec.to_us(e.ts), e.id, e.context.experiment, u.input_tokens, u.output_tokens, u.cache_read_tokens,
            u.cache_write_tokens, u.reasoning_tokens, e.cost_nano)

@dataclass
class MemorySource:
    """The figures of a `History` held in memory (the same definitions as the store's queries)."""

    history: History

    def __post_init__(self) -> None:
        self.since_us = codec.to_us(self.history.since)
        self.until_us = codec.to_us(self.history.until)
        self.seconds = self.history.seconds
        self._span = float(max(1, self.until_us - self.since_us))
        events = self.history.events
        self._ok = [e for e in events if e.kind == "llm" and e.status == "ok"]
        self._runs = [e for e in events if e.kind == "llm" and e.context.agent is not None
                      and e.context.run is not None and e.decision_id is not None]

    def _key(self, e: CostEvent) -> tuple[Any, ...]:
        c = e.context
        return (c.agent, e.provider, e.model, c.tier, c.team)

    def model_groups(self, max_input: int, max_output: int) -> list[ModelGroup]:
        groups: dict[tuple[Any, ...], list[CostEvent]] = {}
        for e in self._ok:
            groups.setdefault(self._key(e), []).append(e)
        return [ModelGroup(key[0], key[1], key[2], key[3], key[4], len(evs),
                           sum(1 for e in evs if e.usage.input_tokens <= max_input
                               and e.usage.output_tokens <= max_output),
                           _agg((_x(codec.to_us(e.ts), self.since_us, self._span), float(e.usage.input_tokens))
                                for e in evs))
                for key, evs in groups.items()]

    def model_rows(self, group: ModelGroup, *, short: tuple[int, int] | None = None) -> list[UsageRow]:
        key = tuple(group[:5])
        return sorted(_usage_row(e) for e in self._ok if self._key(e) == key and (
            short is None or (e.usage.input_tokens <= short[0] and e.usage.output_tokens <= short[1])))

    def model_costs(self, group: ModelGroup, femto: Sequence[int], *,
                    short: tuple[int, int] | None = None) -> tuple[int, int, int, set[str]] | None:
        return None  # the rows are at hand: `rows.reprice_rows` prices them, with the same arithmetic

    def run_agents(self) -> list[str]:
        return sorted({str(e.context.agent) for e in self._runs})

    def _agent_runs(self, agent: str) -> dict[str, list[CostEvent]]:
        runs: dict[str, list[CostEvent]] = {}
        for e in self._runs:
            if e.context.agent == agent:
                runs.setdefault(str(e.context.run), []).append(e)
        return runs

    def run_keys(self, agent: str) -> int:
        return max((len({e.request_hash for e in r if e.request_hash is not None})
                    + sum(1 for e in r if e.request_hash is None) for r in self._agent_runs(agent).values()),
                   default=0)

    def run_summary(self, agent: str) -> RunSummary:
        runs = self._agent_runs(agent).values()
        return RunSummary(len(runs), sum(len(r) for r in runs),
                          _agg((_x(min(codec.to_us(e.ts) for e in r), self.since_us, self._span), float(len(r)))
                               for r in runs))

    def loop_summary(self, agent: str) -> LoopSummary:
        duplicates = cost = longest = looping = 0
        for events in self._agent_runs(agent).values():
            by_key: dict[str, list[CostEvent]] = {}
            for e in sorted(events, key=lambda e: (e.ts, e.id)):
                if e.request_hash is not None:
                    by_key.setdefault(e.request_hash, []).append(e)
            repeats = [evs for evs in by_key.values() if len(evs) > 1]
            duplicates += sum(len(evs) - 1 for evs in repeats)
            cost += sum(e.cost_nano for evs in repeats for e in evs[1:])
            longest = max([longest, *(len(evs) - 1 for evs in repeats)])
            looping += bool(repeats)
        return LoopSummary(duplicates, cost, longest, looping)

    def run_steps(self, agent: str) -> dict[int, int]:
        return dict(Counter(len(r) for r in self._agent_runs(agent).values()))

    def run_sizes(self, agent: str) -> list[tuple[int, str, int]]:
        return [(min(codec.to_us(e.ts) for e in evs), run, len(evs)) for run, evs in self._agent_runs(agent).items()]

    def run_excess(self, agent: str, baseline: int) -> int:
        return sum(e.cost_nano for evs in self._agent_runs(agent).values()
                   for e in sorted(evs, key=lambda e: (e.ts, e.id))[baseline:])

    def agent_days(self, agent: str) -> dict[int, tuple[int, int]]:
        days: dict[int, tuple[int, int]] = {}
        for e in self._runs:
            if e.context.agent == agent:
                day = (codec.to_us(e.ts) - self.since_us) // _DAY_US
                calls, cost = days.get(day, (0, 0))
                days[day] = (calls + 1, cost + e.cost_nano)
        return days

    def cache_rows(self) -> list[CacheRow]:
        rows: list[CacheRow] = []
        for request in self.history.requests:
            ctx = request.decision.context
            scope = ("agent", ctx.agent) if ctx.agent else ("team", ctx.team) if ctx.team else None
            if scope is None or not request.admitted or request.decision.result.get("params", {}).get(
                    "cache") is True or not request.events or any(
                    e.status != "ok" or e.kind == "cache_hit" for e in request.events):
                continue
            key = cache_key(request.decision, request.events)
            if key is not None:
                rows.append((codec.to_us(request.ts), request.decision.id, scope[0], str(scope[1]), key,
                             request.cost_nano))
        return rows

    def embedding_rows(self) -> list[EmbeddingRow]:
        return [(codec.to_us(e.ts), e.id, e.context.agent, e.context.pipeline, e.context.team, e.model,
                 e.request_hash, e.cost_nano) for e in self.history.events
                if e.endpoint == "embeddings" and e.kind == "llm" and e.status == "ok" and e.request_hash]

    def outcomes(self) -> list[tuple[str, str, int, Decimal]]:
        return [(str(o.context.agent), o.outcome, codec.to_us(o.ts), o.value) for o in self.history.outcomes
                if o.context.agent is not None and self.history.since <= o.ts < self.history.until]

    def model_outcome_runs(self, agent: str, provider: str, model: str) -> tuple[int, int]:
        runs = {e.context.run for e in self._ok if e.context.agent == agent and e.provider == provider
                and e.model == model and e.context.run is not None}
        done = {o.context.run for o in self.history.outcomes if o.context.agent == agent
                and self.history.since <= o.ts < self.history.until}
        return len(runs), len(runs & done)


"""What the request detectors read: grouped figures and compact rows, from memory or from the store.

Every detector asks a `Source` for the few numbers or narrow rows it needs. `MemorySource` derives
them from a `History` of objects (tests, small windows); `StoreSource` asks the store's grouped
queries (`ledger/optimizequeries.py`), so a 10 M-event window is never loaded as objects. Both follow
one definition, so they return the same figures:

* a *model group* is the successful (`kind == "llm"`, `status == "ok"`) events of one (agent,
  provider, model, tier, team);
* a *charged request in a run* is an `llm` event with an agent, a run and a decision id (a request
  answered from the cache has a `cache_hit` event instead); its time is the event's, its repeat key
  the event's request hash (none: it repeats nothing);
* a *cacheable request* is an admitted `llm.request` decision with a cache key (`history.cache_key`)
  whose events in the window are all successful, none a cache hit, and whose policy did not already
  turn the cache on; scoped by its agent, else its team.

Times are integer microseconds since the epoch, money integer nano-USD.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from costplane.ledger import codec
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent
from costplane.optimize.history import History, cache_key

__all__ = ["SHORT", "ZERO", "Agg", "CacheRow", "EmbeddingRow", "LoopSummary", "MemorySource", "ModelGroup",
           "RunSummary", "Source", "StoreSource", "UsageRow", "agent_teams", "most_common", "source_of",
           "trend_candidate"]

_DAY_US = 86_400 * 1_000_000
#: the over-sizing detector's default short-request limits (input, output tokens); the model groups
#: are asked with them by every detector that only needs counts, so one query serves them all
SHORT = (1000, 500)


class Agg(NamedTuple):
    """Sums of a float trend screen: n, Σx, Σy, Σx², Σxy, Σy²."""

    n: int
    sx: float
    sy: float
    sxx: float
    sxy: float
    syy: float

    def plus(self, other: Agg) -> Agg:
        return Agg(self.n + other.n, self.sx + other.sx, self.sy + other.sy, self.sxx + other.sxx,
                   self.sxy + other.sxy, self.syy + other.syy)


ZERO = Agg(0, 0.0, 0.0, 0.0, 0.0, 0.0)


class ModelGroup(NamedTuple):
    agent: str | None
    provider: str
    model: str
    tier: str | None
    team: str | None
    calls: int
    short: int  # calls within the short-request limits asked for
    trend: Agg  # x = time in the window, y = input tokens


#: (ts, id, experiment, input, output, cache read, cache write, reasoning tokens, cost)
UsageRow = tuple[int, str, str | None, int, int, int, int, int, int]
#: (ts, decision id, scope dimension, scope value, cache key, cost)
CacheRow = tuple[int, str, str, str, str, int]
#: (ts, id, agent, pipeline, team, model, request hash, cost)
EmbeddingRow = tuple[int, str, str | None, str | None, str | None, str, str, int]


class RunSummary(NamedTuple):
    runs: int
    calls: int
    trend: Agg  # x = the run's first time in the window, y = its calls


class LoopSummary(NamedTuple):
    duplicates: int
    cost: int
    longest: int
    looping_runs: int


def trend_candidate(agg: Agg, min_t: float, min_growth_percent: int) -> bool:
    """A generous float screen: False only when the exact fit surely fails `min_t` and the growth.
    (The sums come from SQL or Python in different orders; the exact fit decides.)"""
    n = agg.n
    if n < 3:
        return False
    sxx = agg.sxx - agg.sx * agg.sx / n
    if sxx <= 0:
        return True  # degenerate in floats: let the exact fit decide
    sxy = agg.sxy - agg.sx * agg.sy / n
    syy = agg.syy - agg.sy * agg.sy / n
    slope = sxy / sxx
    intercept = (agg.sy - slope * agg.sx) / n
    if slope <= 0:
        return False
    sse = max(0.0, syy - slope * sxy)
    se = math.sqrt(sse / (n - 2)) / math.sqrt(sxx) if n > 2 else 0.0
    t = math.inf if se == 0 else slope / se
    return t >= min_t / 2 and (intercept <= 0 or slope * 100 >= min_growth_percent * intercept / 2)


class Source(Protocol):
    since_us: int
    until_us: int
    seconds: int

    def model_groups(self, max_input: int, max_output: int) -> list[ModelGroup]: ...

    def model_rows(self, group: ModelGroup, *, short: tuple[int, int] | None = None) -> list[UsageRow]:
        """The group's rows, oldest first by (ts, id); `short`: only input <= [0] and output <= [1]."""

    def model_costs(self, group: ModelGroup, femto: Sequence[int], *,
                    short: tuple[int, int] | None = None) -> tuple[int, int, int, set[str]] | None:
        """(calls, recorded cost, cost at the flat per-token femto-USD rates, experiments) of the group,
        summed where the rows are; None: read the rows and price them one by one."""

    def run_agents(self) -> list[str]: ...

    def run_summary(self, agent: str) -> RunSummary: ...

    def run_keys(self, agent: str) -> int:
        """The most distinct requests (repeat keys) in one of the agent's runs."""

    def loop_summary(self, agent: str) -> LoopSummary: ...

    def run_steps(self, agent: str) -> dict[int, int]:
        """calls per run -> number of runs."""

    def run_calls(self, agent: str) -> dict[str, list[tuple[int, str, int]]]:
        """run -> its charged requests (ts, id, cost), oldest first."""

    def agent_days(self, agent: str) -> dict[int, tuple[int, int]]:
        """day of the window -> (charged requests in runs, their cost)."""

    def cache_rows(self) -> list[CacheRow]:
        """Cacheable requests, oldest first by (decision ts, decision id)."""

    def embedding_rows(self) -> list[EmbeddingRow]: ...

    def outcomes(self) -> list[tuple[str, str, int, Decimal]]:
        """(agent, outcome, ts, value) of the window's outcomes that name an agent, oldest first."""


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

    def run_calls(self, agent: str) -> dict[str, list[tuple[int, str, int]]]:
        return {run: sorted((codec.to_us(e.ts), e.id, e.cost_nano) for e in evs)
                for run, evs in self._agent_runs(agent).items()}

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


class StoreSource:
    """The same figures from the store's grouped queries (`ledger/optimizequeries.py`)."""

    def __init__(self, store: Store, history: History) -> None:
        self.store = store
        self.since_us = codec.to_us(history.since)
        self.until_us = codec.to_us(history.until)
        self.seconds = history.seconds
        self._window = (self.since_us, self.until_us)
        self._memo: dict[tuple[Any, ...], Any] = {}

    def _once(self, key: tuple[Any, ...], compute: Any) -> Any:
        """Detectors share queries (the model groups, an agent's runs): each runs once per source."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def model_groups(self, max_input: int, max_output: int) -> list[ModelGroup]:
        rows = self._once(("groups", max_input, max_output),
                          lambda: self.store.optimize_model_groups(*self._window, max_input, max_output))
        return [ModelGroup(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6]),
                           Agg(int(r[5]), *(float(v) for v in r[7:12]))) for r in rows]

    def model_rows(self, group: ModelGroup, *, short: tuple[int, int] | None = None) -> list[UsageRow]:
        rows = self.store.optimize_model_rows(
            self.since_us, self.until_us, group.agent, group.provider, group.model, group.tier, group.team,
            max_input=short[0] if short else None, max_output=short[1] if short else None)
        return [(int(r[0]), r[1], r[2], int(r[3]), int(r[4]), int(r[5]), int(r[6]), int(r[7]), int(r[8]))
                for r in rows]

    def model_costs(self, group: ModelGroup, femto: Sequence[int], *,
                    short: tuple[int, int] | None = None) -> tuple[int, int, int, set[str]] | None:
        rows = self.store.optimize_model_costs(
            self.since_us, self.until_us, group.agent, group.provider, group.model, group.tier, group.team, femto,
            max_input=short[0] if short else None, max_output=short[1] if short else None,
            by_experiment=short is None)
        if any(max(femto) * (int(r[4]) + int(r[5])) >= 2**62 for r in rows):  # past exact int64: price rows
            return None
        return (sum(int(r[1]) for r in rows), sum(int(r[2]) for r in rows), sum(int(r[3]) for r in rows),
                {str(r[0]) for r in rows if r[0]})

    def run_agents(self) -> list[str]:
        return list(self._once(("agents",), lambda: self.store.optimize_agents(*self._window)))

    def run_summary(self, agent: str) -> RunSummary:
        r = self._once(("runs", agent), lambda: self.store.optimize_run_summary(*self._window, agent))
        runs = int(r[0])
        return RunSummary(runs, int(r[1] or 0), Agg(runs, *(float(v or 0) for v in r[2:7])))

    def run_keys(self, agent: str) -> int:
        return self.store.optimize_run_keys(*self._window, agent)

    def loop_summary(self, agent: str) -> LoopSummary:
        r = self.store.optimize_loop_summary(*self._window, agent)
        return LoopSummary(int(r[0]), int(r[1]), int(r[2]), int(r[3]))

    def run_steps(self, agent: str) -> dict[int, int]:
        return {int(calls): int(n) for calls, n in self.store.optimize_run_steps(*self._window, agent)}

    def run_calls(self, agent: str) -> dict[str, list[tuple[int, str, int]]]:
        runs: dict[str, list[tuple[int, str, int]]] = {}
        for run, ts, id_, cost in self.store.optimize_run_calls(*self._window, agent):
            runs.setdefault(run, []).append((int(ts), id_, int(cost)))
        for calls in runs.values():
            calls.sort()
        return runs

    def agent_days(self, agent: str) -> dict[int, tuple[int, int]]:
        return {int(d): (int(n), int(c)) for d, n, c in self.store.optimize_agent_days(*self._window, agent)}

    def cache_rows(self) -> list[CacheRow]:
        requests: dict[str, list[Any]] = {}  # decision id -> [ts, agent, team, key, cache on, cost, refused]
        for ts, id_, agent, team, key, cache_on, kind, status, cost in self.store.optimize_cacheable(*self._window):
            request = requests.setdefault(id_, [int(ts), agent, team, key, cache_on, 0, False])
            request[5] += int(cost)
            request[6] = request[6] or kind == "cache_hit" or status != "ok"
        rows: list[CacheRow] = []
        for id_, (ts, agent, team, key, cache_on, cost, refused) in requests.items():
            scope = ("agent", agent) if agent else ("team", team) if team else None
            if scope is not None and isinstance(key, str) and key and not cache_on and not refused:
                rows.append((ts, id_, scope[0], scope[1], key, cost))
        rows += self._legacy_cache_rows()
        rows.sort(key=lambda r: (r[0], r[1]))
        return rows

    def _legacy_cache_rows(self) -> list[CacheRow]:
        """Decisions recorded before `cache_hash` existed: the in-memory rule (`cache_key`) on them."""
        legacy = self.store.optimize_cache_legacy(*self._window)
        if not legacy:
            return []
        events: dict[str, list[tuple[Any, ...]]] = {}
        for row in self.store.optimize_decision_events(*self._window, [r[1] for r in legacy]):
            events.setdefault(row[0], []).append(row)
        rows: list[CacheRow] = []
        for ts, id_, agent, team, input_json, result_json in legacy:
            scope = ("agent", agent) if agent else ("team", team) if team else None
            evs = sorted(events.get(id_, []), key=lambda r: (r[1], r[2]))
            result = codec.load_json(result_json) or {}
            if scope is None or not evs or any(r[3] == "cache_hit" or r[4] != "ok" for r in evs) or (
                    result.get("params") or {}).get("cache") is True:
                continue
            key = _legacy_key(codec.load_json(input_json) or {}, [r[6] for r in evs])
            if key is not None:
                rows.append((int(ts), id_, scope[0], scope[1], key, sum(int(r[5]) for r in evs)))
        return rows

    def embedding_rows(self) -> list[EmbeddingRow]:
        return [(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], int(r[7]))
                for r in self.store.optimize_embeddings(*self._window) if r[6]]

    def outcomes(self) -> list[tuple[str, str, int, Decimal]]:
        return [(r[0], r[1], int(r[2]), Decimal(r[3])) for r in self.store.optimize_outcomes(*self._window)]


def _legacy_key(data: dict[str, Any], hashes: Sequence[str | None]) -> str | None:
    """`history.cache_key` on a decoded decision input and its events' request hashes."""
    params = data.get("params") or {}
    deterministic = data.get("endpoint") == "embeddings" or (
        not data.get("stream") and params.get("temperature") == 0 and params.get("n") in (None, 1))
    return next((h for h in hashes if h), None) if deterministic else None


def source_of(history: History) -> Source:
    """The store's grouped queries when the history is bound to a store and not loaded, else memory;
    kept on the history so the detectors of one run share it (and its memoised queries)."""
    source: Source | None = history.source
    if source is None:
        store = history.store
        source = StoreSource(store, history) if store is not None and not history.loaded else MemorySource(history)
        history.attach(source)
    return source


def agent_teams(source: Source) -> dict[str, str]:
    """agent -> its most common team over its successful LLM calls (ties: the first by name)."""
    counts: dict[str, Counter[str]] = {}
    for g in source.model_groups(*SHORT):
        if g.agent and g.team:
            counts.setdefault(g.agent, Counter())[g.team] += g.calls
    return {agent: most_common(c)[0][0] for agent, c in counts.items()}


def most_common(counts: Counter[str], n: int = 1) -> list[tuple[str, int]]:
    """`Counter.most_common` with ties broken by name (the same on every source, whatever the order)."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

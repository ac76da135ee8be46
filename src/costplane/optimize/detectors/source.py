"""What the request detectors read: grouped figures and compact rows, from memory or from the store.

Every detector asks a `Source` for the few numbers or narrow rows it needs. `MemorySource` derives
them from a `History` of objects (tests, small windows; `memory_source.py`); `StoreSource` asks the
store's grouped queries (`ledger/optimizequeries.py`; `store_source.py`), so a 10 M-event window is
never loaded as objects. Both follow one definition, so they return the same figures:

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
from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple, Protocol

from costplane.optimize.history import History

__all__ = ["SHORT", "ZERO", "Agg", "CacheRow", "EmbeddingRow", "LoopSummary", "ModelGroup", "RunSummary", "Source",
           "UsageRow", "agent_teams", "most_common", "source_of", "trend_candidate"]

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

    def run_sizes(self, agent: str) -> list[tuple[int, str, int]]:
        """(first time, run, charged requests) of each of the agent's runs, in no particular order."""

    def run_excess(self, agent: str, baseline: int) -> int:
        """The cost of the agent's runs' charged requests beyond each run's first `baseline` (by ts, id)."""

    def agent_days(self, agent: str) -> dict[int, tuple[int, int]]:
        """day of the window -> (charged requests in runs, their cost)."""

    def cache_rows(self) -> list[CacheRow]:
        """Cacheable requests, oldest first by (decision ts, decision id)."""

    def embedding_rows(self) -> list[EmbeddingRow]: ...

    def outcomes(self) -> list[tuple[str, str, int, Decimal]]:
        """(agent, outcome, ts, value) of the window's outcomes that name an agent, oldest first."""

    def model_outcome_runs(self, agent: str, provider: str, model: str) -> tuple[int, int]:
        """(runs of the agent with a successful call of the model, those that recorded an outcome of the
        agent in the window)."""


def source_of(history: History) -> Source:
    """The store's grouped queries when the history is bound to a store and not loaded, else memory;
    kept on the history so the detectors of one run share it (and its memoised queries)."""
    source: Source | None = history.source
    if source is None:
        # imported here: both sources implement this module's contract, so they import it
        from costplane.optimize.detectors.memory_source import MemorySource
        from costplane.optimize.detectors.store_source import StoreSource

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

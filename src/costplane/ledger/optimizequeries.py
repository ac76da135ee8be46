"""Read-only aggregate queries of the waste detectors (issue 6), shared by SQLite and PostgreSQL.

Mixed into both stores like the other *queries mixins. The detectors group in SQL and read rows
only where they need them (the candidates a first, grouped query singled out), as compact tuples of
the columns they use: never one object per event. Schema v10 (`OPTIMIZE_INDEXES`) adds the indexes
these queries are written for — SQLite has no hash aggregation, so a GROUP BY is sort-free only
when an index delivers the rows in group order:

* `cost_events_opt_model` (successful LLM events by agent, provider, model, tier, team, time;
  covering): per-model groups (over-sizing, inflation, tier leakage) and their rows;
* `cost_events_opt_run` (charged requests of agent runs by agent, run, request hash, time; covering):
  calls per run and repeats within a run (amplification, chatter);
* `cost_events_decision` (events by decision id): the events of the cacheable decisions;
* `cost_events_embeddings` (successful embedding events by time): duplicate embeddings;
* `decisions_cacheable` / `decisions_cache_legacy`: decisions that carry an exact cache hash / that
  predate it (a new ledger never writes the latter).

Times are integer microseconds (UTC), money integer nano-USD; rows come back as plain tuples.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from costplane.ledger.queries import Row, Tx

__all__ = ["OPTIMIZE_INDEXES", "OptimizeQueries"]

T = TypeVar("T")

_HOOK = "llm.request"
_DAY_US = 86_400 * 1_000_000

# dialect -> SQL fragments over a decision row (JSON access differs; the text never holds '?' or '%')
_JSON: dict[str, dict[str, str]] = {
    "sqlite": {
        "has_hash": "json_extract(input, '$.cache_hash') IS NOT NULL",
        "hash": "json_extract(input, '$.cache_hash')",  # a non-text value is refused in Python
        "legacy": "json_type(input, '$.cache_hash') IS NULL",
        "cache_on": "CASE WHEN json_type(result, '$.params.cache') = 'true' THEN 1 ELSE 0 END",
    },
    "postgres": {
        "has_hash": "(input ->> 'cache_hash') IS NOT NULL",
        "hash": "CASE WHEN jsonb_typeof(input -> 'cache_hash') = 'string' THEN input ->> 'cache_hash' END",
        "legacy": "NOT jsonb_exists(input, 'cache_hash')",
        "cache_on": "CASE WHEN (result -> 'params' -> 'cache') = 'true'::jsonb THEN 1 ELSE 0 END",
    },
}

_MODEL_WHERE = "kind = 'llm' AND status = 'ok'"
_RUN_WHERE = "agent IS NOT NULL AND run IS NOT NULL AND decision_id IS NOT NULL AND kind = 'llm'"
_EMBED_WHERE = "endpoint = 'embeddings' AND kind = 'llm' AND status = 'ok'"


def _indexes(dialect: str) -> tuple[str, ...]:
    j = _JSON[dialect]
    return (
        "CREATE INDEX IF NOT EXISTS cost_events_opt_model ON cost_events (agent, provider, model, tier, team, ts, id,"
        " experiment, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,"
        f" cost_nano) WHERE {_MODEL_WHERE}",
        "CREATE INDEX IF NOT EXISTS cost_events_opt_run ON cost_events (agent, run, request_hash, ts, id, cost_nano)"
        f" WHERE {_RUN_WHERE}",
        "CREATE INDEX IF NOT EXISTS cost_events_decision ON cost_events (decision_id, ts, kind, status, cost_nano)"
        " WHERE decision_id IS NOT NULL",
        f"CREATE INDEX IF NOT EXISTS cost_events_embeddings ON cost_events (ts, id) WHERE {_EMBED_WHERE}",
        f"CREATE INDEX IF NOT EXISTS decisions_cacheable ON decisions (ts) WHERE hook = '{_HOOK}' AND {j['has_hash']}",
        f"CREATE INDEX IF NOT EXISTS decisions_cache_legacy ON decisions (ts) WHERE hook = '{_HOOK}' AND {j['legacy']}",
    )


#: schema v10, per dialect (used verbatim by `migrations`)
OPTIMIZE_INDEXES: dict[str, tuple[str, ...]] = {d: _indexes(d) for d in _JSON}


def _eq(column: str, value: str | None, params: list[Any]) -> str:
    """`column = ?` or `column IS NULL` (NULL-safe equality both dialects can serve from an index)."""
    if value is None:
        return f"{column} IS NULL"
    params.append(value)
    return f"{column} = ?"


class OptimizeQueries(ABC):
    """Grouped reads and compact row reads of the waste detectors; a subclass supplies `_read`."""

    dialect: str

    @abstractmethod
    def _read(self, body: Callable[[Tx], T]) -> T: ...

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return self._read(lambda tx: tx.all(sql, params))

    def optimize_model_groups(self, since_us: int, until_us: int, max_input: int,
                              max_output: int) -> list[Row]:
        """Successful LLM events per (agent, provider, model, tier, team): calls, calls with input <=
        max_input and output <= max_output, and the sums n·x, y, x², x·y, y² of x = time in the window
        (0..1) and y = input tokens (a first, float screen of the input-token trend)."""
        span = float(max(1, until_us - since_us))
        x = "(CAST(ts - ? AS DOUBLE PRECISION) / ?)"
        y = "CAST(input_tokens AS DOUBLE PRECISION)"
        sql = (f"SELECT agent, provider, model, tier, team, COUNT(*),"
               f" SUM(CASE WHEN input_tokens <= ? AND output_tokens <= ? THEN 1 ELSE 0 END),"
               f" SUM({x}), SUM({y}), SUM({x} * {x}), SUM({x} * {y}), SUM({y} * {y})"
               # `+ts`: the window is a filter, not an index range (the ts index would force a sort)
               f" FROM cost_events WHERE {_MODEL_WHERE} AND +ts >= ? AND +ts < ?"
               " GROUP BY agent, provider, model, tier, team")
        params = [max_input, max_output, *[since_us, span] * 4, since_us, until_us]  # x appears 4 times
        return self._rows(sql, params)

    def optimize_model_rows(self, since_us: int, until_us: int, agent: str | None, provider: str, model: str,
                            tier: str | None, team: str | None, *, max_input: int | None = None,
                            max_output: int | None = None) -> list[Row]:
        """Rows (ts, id, experiment, input, output, cache read, cache write, reasoning tokens, cost) of
        one group of `optimize_model_groups`, oldest first by (ts, id); optionally only the short ones."""
        params: list[Any] = []
        where = [_MODEL_WHERE, _eq("agent", agent, params), _eq("provider", provider, params),
                 _eq("model", model, params), _eq("tier", tier, params), _eq("team", team, params),
                 "ts >= ?", "ts < ?"]
        params += [since_us, until_us]
        if max_input is not None and max_output is not None:
            where.append("input_tokens <= ? AND output_tokens <= ?")
            params += [max_input, max_output]
        sql = ("SELECT ts, id, experiment, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
               f" reasoning_tokens, cost_nano FROM cost_events WHERE {' AND '.join(where)} ORDER BY ts, id")
        return self._rows(sql, params)

    def optimize_model_costs(self, since_us: int, until_us: int, agent: str | None, provider: str, model: str,
                             tier: str | None, team: str | None, femto: Sequence[int], *,
                             max_input: int | None = None, max_output: int | None = None,
                             by_experiment: bool = False) -> list[Row]:
        """(experiment or NULL, calls, recorded cost, cost at the flat rates `femto` — femto-USD per
        input, cache read, cache write, output, reasoning token — each call rounded half-up to nano-USD
        as `PriceSheet.cost_nano` does, largest input, largest output) of one model group, optionally
        only its short calls; one row per experiment with `by_experiment`, else one row. Exact integer
        arithmetic (PostgreSQL: NUMERIC, SQLite: 64-bit; the caller checks the largest token counts
        keep that exact)."""
        params: list[Any] = list(femto)
        where = [_MODEL_WHERE, _eq("agent", agent, params), _eq("provider", provider, params),
                 _eq("model", model, params), _eq("tier", tier, params), _eq("team", team, params),
                 "ts >= ?", "ts < ?"]
        params += [since_us, until_us]
        if max_input is not None and max_output is not None:
            where.append("input_tokens <= ? AND output_tokens <= ?")
            params += [max_input, max_output]
        num = "CAST({} AS NUMERIC)" if self.dialect == "postgres" else "({})"
        total = (f"({num.format('input_tokens - cache_read_tokens - cache_write_tokens')} * ?"
                 f" + {num.format('cache_read_tokens')} * ? + {num.format('cache_write_tokens')} * ?"
                 f" + {num.format('output_tokens - reasoning_tokens')} * ? + {num.format('reasoning_tokens')} * ?"
                 " + 500000)")
        nano = f"FLOOR({total} / 1000000)" if self.dialect == "postgres" else f"({total} / 1000000)"
        sql = (f"SELECT {'experiment' if by_experiment else 'NULL'}, COUNT(*), COALESCE(SUM(cost_nano), 0),"
               f" COALESCE(SUM({nano}), 0), COALESCE(MAX(input_tokens), 0), COALESCE(MAX(output_tokens), 0)"
               f" FROM cost_events WHERE {' AND '.join(where)}{' GROUP BY experiment' if by_experiment else ''}")
        return self._rows(sql, params)

    def optimize_agents(self, since_us: int, until_us: int) -> list[str]:
        """The agents with charged requests in runs (the run detectors' population): one index seek
        per agent (the next agent after the last one found), not a scan of every event."""
        sql = (f"SELECT agent FROM cost_events WHERE {_RUN_WHERE} AND agent > ? AND +ts >= ? AND +ts < ?"
               " ORDER BY agent LIMIT 1")
        agents: list[str] = []
        while rows := self._rows(sql, (agents[-1] if agents else "", since_us, until_us)):
            agents.append(str(rows[0][0]))
        return agents

    def optimize_run_summary(self, since_us: int, until_us: int, agent: str) -> Row:
        """One agent's runs: (runs, calls, and the sums of x = the run's first time in the window (0..1)
        and y = its calls: x, y, x², x·y, y²)."""
        span = float(max(1, until_us - since_us))
        x = "(CAST(first_ts - ? AS DOUBLE PRECISION) / ?)"
        y = "CAST(calls AS DOUBLE PRECISION)"
        runs = (f"SELECT COUNT(*) AS calls, MIN(ts) AS first_ts FROM cost_events WHERE {_RUN_WHERE} AND agent = ?"
                " AND ts >= ? AND ts < ? GROUP BY run")
        sql = (f"SELECT COUNT(*), SUM(calls), SUM({x}), SUM({y}), SUM({x} * {x}), SUM({x} * {y}),"
               f" SUM({y} * {y}) FROM ({runs}) r")
        return self._rows(sql, (*[since_us, span] * 4, agent, since_us, until_us))[0]  # x appears 4 times

    def optimize_run_keys(self, since_us: int, until_us: int, agent: str) -> int:
        """The most distinct requests (request hashes; a request without one counts alone) in one run."""
        runs = ("SELECT COUNT(DISTINCT request_hash) + SUM(CASE WHEN request_hash IS NULL THEN 1 ELSE 0 END) AS k"
                f" FROM cost_events WHERE {_RUN_WHERE} AND agent = ? AND ts >= ? AND ts < ? GROUP BY run")
        row = self._rows(f"SELECT MAX(k) FROM ({runs}) r", (agent, since_us, until_us))[0]
        return int(row[0] or 0)

    def optimize_loop_summary(self, since_us: int, until_us: int, agent: str) -> Row:
        """One agent's repeats within a run: (duplicates, their cost, longest repeat, runs that repeat).
        A duplicate is a request whose hash an earlier request of the same run (by ts, id) carried."""
        first_cost = ("cost_nano" if self.dialect == "sqlite"  # SQLite: the row of MIN(ts) (ties: index order)
                      else "(ARRAY_AGG(cost_nano ORDER BY ts, id))[1]")
        keys = (f"SELECT run, COUNT(*) AS n, SUM(cost_nano) - {first_cost} AS dup_cost, MIN(ts) AS first_ts"
                f" FROM cost_events WHERE {_RUN_WHERE} AND agent = ? AND request_hash IS NOT NULL"
                " AND ts >= ? AND ts < ? GROUP BY run, request_hash")
        sql = ("SELECT COALESCE(SUM(n - 1), 0), COALESCE(SUM(dup_cost), 0), COALESCE(MAX(n) - 1, 0),"
               f" COUNT(DISTINCT run) FROM ({keys}) k WHERE n > 1")
        return self._rows(sql, (agent, since_us, until_us))[0]

    def optimize_run_steps(self, since_us: int, until_us: int, agent: str) -> list[Row]:
        """(calls per run, number of runs) of one agent."""
        runs = (f"SELECT COUNT(*) AS calls FROM cost_events WHERE {_RUN_WHERE} AND agent = ? AND ts >= ?"
                " AND ts < ? GROUP BY run")
        return self._rows(f"SELECT calls, COUNT(*) FROM ({runs}) r GROUP BY calls", (agent, since_us, until_us))

    def optimize_run_calls(self, since_us: int, until_us: int, agent: str) -> list[Row]:
        """(run, ts, id, cost) of every charged request in one agent's runs, grouped by run."""
        sql = (f"SELECT run, ts, id, cost_nano FROM cost_events WHERE {_RUN_WHERE} AND agent = ?"
               " AND ts >= ? AND ts < ?")
        return self._rows(sql, (agent, since_us, until_us))

    def optimize_agent_days(self, since_us: int, until_us: int, agent: str) -> list[Row]:
        """(day of the window, calls, cost) of one agent's charged requests in runs."""
        sql = (f"SELECT (ts - ?) / ? AS d, COUNT(*), SUM(cost_nano) FROM cost_events WHERE {_RUN_WHERE}"
               " AND agent = ? AND ts >= ? AND ts < ? GROUP BY 1")
        return self._rows(sql, (since_us, _DAY_US, agent, since_us, until_us))

    def optimize_cacheable(self, since_us: int, until_us: int) -> list[Row]:
        """Admitted `llm.request` decisions that carry a cache hash, one row per event of theirs in the
        window: (ts, id, agent, team, hash or NULL if not text, cache already on (0/1), event kind,
        event status, event cost). Not grouped here: a decision has one event, so a GROUP BY would only
        add a sort."""
        j = _JSON[self.dialect]
        sql = (f"SELECT d.ts, d.id, d.agent, d.team, {j['hash'].replace('input', 'd.input')},"
               f" {j['cache_on'].replace('result', 'd.result')}, e.kind, e.status, e.cost_nano"
               " FROM decisions d JOIN cost_events e ON e.decision_id = d.id AND e.ts >= ? AND e.ts < ?"
               f" WHERE d.hook = '{_HOOK}' AND {j['has_hash'].replace('input', 'd.input')}"
               " AND d.ts >= ? AND d.ts < ? AND d.status_code = 200 AND d.effect <> 'deny'")
        return self._rows(sql, (since_us, until_us, since_us, until_us))

    def optimize_cache_legacy(self, since_us: int, until_us: int) -> list[Row]:
        """Admitted `llm.request` decisions without the cache-hash key (recorded before it existed):
        (ts, id, agent, team, input JSON, result JSON); their events come from `optimize_decision_events`."""
        j = _JSON[self.dialect]
        sql = (f"SELECT ts, id, agent, team, input, result FROM decisions WHERE hook = '{_HOOK}' AND {j['legacy']}"
               " AND ts >= ? AND ts < ? AND status_code = 200 AND effect <> 'deny'")
        return self._rows(sql, (since_us, until_us))

    def optimize_decision_events(self, since_us: int, until_us: int, decision_ids: Sequence[str]) -> list[Row]:
        """(decision id, ts, id, kind, status, cost, request hash) of the events of some decisions."""
        out: list[Row] = []
        ids = sorted(set(decision_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            sql = ("SELECT decision_id, ts, id, kind, status, cost_nano, request_hash FROM cost_events"
                   f" WHERE decision_id IN ({', '.join('?' for _ in chunk)}) AND ts >= ? AND ts < ?")
            out += self._rows(sql, (*chunk, since_us, until_us))
        return out

    def optimize_embeddings(self, since_us: int, until_us: int) -> list[Row]:
        """(ts, id, agent, pipeline, team, model, request hash, cost) of successful embedding events with
        a request hash, oldest first by (ts, id)."""
        sql = ("SELECT ts, id, agent, pipeline, team, model, request_hash, cost_nano FROM cost_events"
               f" WHERE {_EMBED_WHERE} AND request_hash IS NOT NULL AND ts >= ? AND ts < ? ORDER BY ts, id")
        return self._rows(sql, (since_us, until_us))

    def optimize_outcomes(self, since_us: int, until_us: int) -> list[Row]:
        """(agent, outcome, ts, value text) of the outcomes recorded with an agent in the window."""
        sql = ("SELECT agent, outcome, ts, value FROM outcomes WHERE agent IS NOT NULL AND ts >= ? AND ts < ?"
               " ORDER BY ts, id")
        return self._rows(sql, (since_us, until_us))

"""One recorded `llm.request` as policy replay reads it: a plain record, decoded once.

A replay hands each recorded decision's input back to the decision core (`DecisionCore.redecide`)
and settles what it admits with what the request really spent. `ReplayRequest` holds exactly what
that takes, in plain slots: the recorded input, its context and time, whether it was admitted, what
its events cost, the model it was served by, its cache key, the usage to re-price on another model,
and each event's time, kind and request hash (the loop guard counts them). Both ways of building one
go through `_build`, so the store path (`from_rows`, `optimize.stream`) and the in-memory path
(`from_recorded`, a `RecordedRequest`) give equal records (tested on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from costplane.attribution.context import Context
from costplane.ledger import codec
from costplane.optimize.history import RecordedRequest, input_cache_key
from costplane.pricing.types import TokenUsage
from costplane.pricing.usagecodec import with_extras

__all__ = ["EventFacts", "ReplayRequest", "Spent", "from_recorded", "from_rows"]

#: what replay reads of one cost event: kind, cost_nano, model, request_hash and the usage counts
#: (input, output, cache read, cache write, reasoning) — or the whole `TokenUsage` when the event
#: has billed units beyond those five (1-hour cache writes, audio, web searches, a served tier)
Counts = tuple[int, int, int, int, int]
EventFacts = tuple[str, int, str, "str | None", "Counts | TokenUsage", datetime]
#: what the ledger is told of each recorded event: its time, kind and request hash
Spent = tuple[datetime, str, "str | None"]


@dataclass(slots=True)
class ReplayRequest:
    id: str  # the decision's
    ts: datetime
    context: Context
    admitted: bool  # recorded as admitted (status 200, not denied)
    model: str  # the model the client asked for
    recorded: Mapping[str, Any]  # the decision's input, as logged: what the decision core rebuilds
    cost_nano: int  # what its events cost
    served_model: str
    cached: bool  # already served from the response cache
    cache_key: str | None
    cache_param: bool  # the recorded result already asked the cache
    usages: tuple[Counts | TokenUsage, ...]  # of the events a re-pricing charges (not cache hits)
    spent: tuple[Spent, ...]  # every event, in order

    @property
    def team(self) -> str | None:
        return self.context.team

    @property
    def agent(self) -> str | None:
        return self.context.agent

    def usage(self) -> list[TokenUsage]:
        """The usage to re-price, validated."""
        return [counts if isinstance(counts, TokenUsage) else TokenUsage(*counts) for counts in self.usages]


def _build(id_: str, ts: datetime, context: Context, effect: str, status_code: int, recorded: Mapping[str, Any],
           result: Mapping[str, Any], events: Sequence[EventFacts]) -> ReplayRequest:
    """The one place that reads a decision's input/result and its events for a replay (the rules of
    `RecordedRequest` and `cache_key`)."""
    get = recorded.get
    model = str(get("model", ""))
    served = result.get("model")
    if not (isinstance(served, str) and served):
        served = events[0][2] if events else model
    result_params: Mapping[str, Any] = result.get("params") or {}
    usages: tuple[Counts | TokenUsage, ...]
    if len(events) == 1:  # the usual case, without the generators
        kind, cost, _, request_hash, usage, at = events[0]
        cached, usages = kind == "cache_hit", () if kind == "cache_hit" else (usage,)
        cache_key = input_cache_key(recorded, (request_hash,))
        spent: tuple[Spent, ...] = ((at, kind, request_hash),)
    else:
        cost = sum(e[1] for e in events)
        cached = any(e[0] == "cache_hit" for e in events)
        usages = tuple(e[4] for e in events if e[0] != "cache_hit")
        cache_key = input_cache_key(recorded, (e[3] for e in events))
        spent = tuple((e[5], e[0], e[3]) for e in events)
    return ReplayRequest(
        id_, ts, context, status_code == 200 and effect != "deny", model, recorded, cost, served, cached,
        cache_key, result_params.get("cache") is True, usages, spent,
    )


def from_recorded(request: RecordedRequest) -> ReplayRequest:
    """From an in-memory request (a `History`)."""
    decision = request.decision
    events: list[EventFacts] = []
    for e in request.events:
        u = e.usage
        counts: Counts | TokenUsage = u if u.units or u.conditions else (
            u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens)
        events.append((e.kind, e.cost_nano, e.model, e.request_hash, counts, e.ts))
    return _build(decision.id, decision.ts, decision.context, decision.effect, decision.status_code,
                  decision.input, decision.result, events)


def from_rows(row: Sequence[Any], context: Context, events: Sequence[Sequence[Any]]) -> ReplayRequest:
    """From a row of `Store.replay_decision_rows` (its context already decoded) and the rows of
    `Store.replay_event_rows` that carry its id, in (ts, id) order (`replayqueries` names the columns)."""
    facts: list[EventFacts] = [
        (e[3], int(e[9]), e[2], e[11], _counts(e), codec.from_us(int(e[1]))) for e in events]
    return _build(row[0], codec.from_us(row[1]), context, row[2], int(row[3]), _json(row[5]), _json(row[6]), facts)


def _counts(e: Sequence[Any]) -> Counts | TokenUsage:
    """An event row's usage: the five token columns, with the billed units the ledger keeps in its
    `unit_prices` JSON (`codec`) when it has any."""
    counts = (int(e[4]), int(e[5]), int(e[6]), int(e[7]), int(e[8]))
    prices = e[12] if len(e) > 12 else None
    if prices is None or (isinstance(prices, str) and '"_usage"' not in prices):
        return counts
    extras = (orjson.loads(prices) if isinstance(prices, str) else prices).get("_usage")
    if not isinstance(extras, Mapping):
        return counts
    try:
        return with_extras(TokenUsage(*counts), extras.get("units"), extras.get("conditions"))
    except ValueError:  # a unit this version's price data does not know: the token columns
        return counts


def _json(text: str | None) -> Any:
    """A JSON column read as text (`replay_decision_rows` casts it on both stores)."""
    return (orjson.loads(text) if text is not None else None) or {}

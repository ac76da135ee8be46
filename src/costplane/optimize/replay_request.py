"""One recorded `llm.request` as policy replay reads it: a plain record, decoded once.

A replay reads a dozen facts of each request (its context, the request the decision core saw, what
it cost, the model it was served by, its cache key, the usage to re-price). `ReplayRequest` holds
exactly those, in plain slots: no frozen dataclasses, no per-event objects, no validation on the way
in (the usage is validated when it is re-priced, as a `TokenUsage`). Both ways of building one go
through `_build`, so the store path (`from_rows`, `optimize.stream`) and the in-memory path
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
from costplane.optimize.history import RecordedRequest, input_cache_key, input_protocol
from costplane.pricing.types import TokenUsage
from costplane.pricing.usagecodec import with_extras

__all__ = ["EventFacts", "ReplayRequest", "from_recorded", "from_rows"]

#: what replay reads of one cost event: kind, cost_nano, model, request_hash and the usage counts
#: (input, output, cache read, cache write, reasoning) — or the whole `TokenUsage` when the event
#: has billed units beyond those five (1-hour cache writes, audio, web searches, a served tier)
Counts = tuple[int, int, int, int, int]
EventFacts = tuple[str, int, str, "str | None", "Counts | TokenUsage"]


@dataclass(slots=True)
class ReplayRequest:
    id: str  # the decision's
    ts: datetime
    context: Context
    admitted: bool  # recorded as admitted (status 200, not denied)
    model: str  # the model the client asked for
    protocol: str
    facts: dict[str, Any]  # the `request` CEL variable as recorded; the replay sets "provider" (its route)
    embeddings: bool
    max_tokens: Any  # the recorded max_tokens when a positive int, else None
    input_tokens_bound: int
    cost_nano: int  # what its events cost
    served_model: str
    cached: bool  # already served from the response cache
    cache_key: str | None
    cache_param: bool  # the recorded result already asked the cache
    usages: tuple[Counts | TokenUsage, ...]  # of the events a re-pricing charges (not cache hits)

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
    `RecordedRequest`, `LlmRequest.cel`, `cache_key` and `input_protocol`)."""
    get = recorded.get
    params: Mapping[str, Any] = get("params") or {}
    facts: dict[str, Any] = {k: v for k, v in params.items() if v is not None} if params else {}
    model = str(get("model", ""))
    bound = int(get("input_tokens_bound") or 0)
    # one key at a time, in `LlmRequest.cel`'s order (a params key of the same name keeps its place)
    facts["model"] = model
    facts["provider"] = ""
    facts["endpoint"] = str(get("endpoint", ""))
    facts["input_tokens"] = int(get("input_tokens_estimate") or 0)
    facts["input_tokens_bound"] = bound
    facts["max_tokens"] = int(get("max_tokens") or 0)
    facts["stream"] = bool(get("stream"))
    served = result.get("model")
    if not (isinstance(served, str) and served):
        served = events[0][2] if events else model
    asked = get("max_tokens")
    result_params: Mapping[str, Any] = result.get("params") or {}
    usages: tuple[Counts | TokenUsage, ...]
    if len(events) == 1:  # the usual case, without the generators
        kind, cost, _, request_hash, usage = events[0]
        cached, usages = kind == "cache_hit", () if kind == "cache_hit" else (usage,)
        cache_key = input_cache_key(recorded, (request_hash,))
    else:
        cost = sum(e[1] for e in events)
        cached = any(e[0] == "cache_hit" for e in events)
        usages = tuple(e[4] for e in events if e[0] != "cache_hit")
        cache_key = input_cache_key(recorded, (e[3] for e in events))
    return ReplayRequest(
        id_, ts, context, status_code == 200 and effect != "deny", model, input_protocol(recorded), facts,
        get("endpoint") == "embeddings", asked if isinstance(asked, int) and asked > 0 else None, bound, cost, served,
        cached, cache_key, result_params.get("cache") is True, usages,
    )


def from_recorded(request: RecordedRequest) -> ReplayRequest:
    """From an in-memory request (a `History`)."""
    decision = request.decision
    events: list[EventFacts] = []
    for e in request.events:
        u = e.usage
        counts: Counts | TokenUsage = u if u.units or u.conditions else (
            u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens)
        events.append((e.kind, e.cost_nano, e.model, e.request_hash, counts))
    return _build(decision.id, decision.ts, decision.context, decision.effect, decision.status_code,
                  decision.input, decision.result, events)


def from_rows(row: Sequence[Any], context: Context, events: Sequence[Sequence[Any]]) -> ReplayRequest:
    """From a row of `Store.replay_decision_rows` (its context already decoded) and the rows of
    `Store.replay_event_rows` that carry its id, in (ts, id) order (`replayqueries` names the columns)."""
    facts: list[EventFacts] = [
        (e[3], int(e[9]), e[2], e[11], _counts(e)) for e in events]
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

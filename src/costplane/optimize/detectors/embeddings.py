"""Duplicate embeddings: the same content embedded again by the same scope.

Reads the window's cost events with `endpoint == "embeddings"` (successful `llm` events; events
already served from the cache cost nothing and are skipped). Per agent (else pipeline, else team),
events with the same (model, request hash) embed the same content: the first is needed, every later
one is a repeat, and the repeats' cost is the saving — at any distance in time, unlike
`cache_opportunity`, which only counts repeats inside the response cache's TTL. The evidence says how
many repeats fall inside `gateway.cache_ttl` and the longest gap between a repeat and the previous
embedding of the same content. The emitted policy is `mutate` with `set: {cache: true}` for the
scope's embedding requests, with a comment giving the `gateway.cache_ttl` that would cover the repeats
(with a shorter TTL a replay saves only the repeats inside it).

On a store the embedding events are read through a partial index (`cost_events_embeddings`) as
compact rows; nothing else is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from costplane.money import format_usd
from costplane.optimize.detectors.source import source_of
from costplane.optimize.findings import DetectorInput, Finding, cel_string, monthly, policy_name
from costplane.optimize.history import History

__all__ = ["ENDPOINT", "NAME", "EmbeddingSettings", "detect"]

NAME = "duplicate_embeddings"
ENDPOINT = "embeddings"


@dataclass(frozen=True, slots=True)
class EmbeddingSettings:
    min_repeats: int = 10
    min_share_percent: int = 5  # repeats as a share of the scope's embedding calls
    min_monthly_saving_nano: int = 1_000_000_000  # $1


@dataclass(slots=True)
class _Scope:
    dimension: str
    value: str
    calls: int = 0
    repeats: int = 0
    saved_nano: int = 0
    cost_nano: int = 0
    within_ttl: int = 0
    max_gap_seconds: int = 0
    last_seen: dict[tuple[str, str], int] = field(default_factory=dict)  # -> last time (µs)
    models: set[str] = field(default_factory=set)


def detect(history: History, inputs: DetectorInput, settings: EmbeddingSettings | None = None) -> list[Finding]:
    settings = settings or EmbeddingSettings()
    ttl = inputs.config.gateway.cache_ttl
    scopes: dict[tuple[str, str], _Scope] = {}
    for ts, _, agent, pipeline, team, model, request_hash, cost in source_of(history).embedding_rows():
        scope_key = next(((d, v) for d, v in (("agent", agent), ("pipeline", pipeline), ("team", team)) if v), None)
        if scope_key is None:
            continue
        scope = scopes.setdefault(scope_key, _Scope(*scope_key))
        scope.calls += 1
        scope.cost_nano += cost
        scope.models.add(model)
        key = (model, request_hash)
        previous = scope.last_seen.get(key)
        scope.last_seen[key] = ts
        if previous is None:
            continue
        gap = int((ts - previous) / 1_000_000)
        scope.repeats += 1
        scope.saved_nano += cost
        scope.within_ttl += gap < ttl
        scope.max_gap_seconds = max(scope.max_gap_seconds, gap)
    findings = []
    for scope in sorted(scopes.values(), key=lambda s: (s.dimension, s.value)):
        per_month = monthly(scope.saved_nano, history.seconds)
        if (scope.repeats < settings.min_repeats or scope.repeats * 100 < settings.min_share_percent * scope.calls
                or per_month < settings.min_monthly_saving_nano):
            continue
        findings.append(_finding(scope, per_month, ttl))
    return findings


def _finding(scope: _Scope, per_month: int, ttl: int) -> Finding:
    name = policy_name("cache-embeddings", scope.dimension, scope.value)
    when = f"ctx.{scope.dimension} == {cel_string(scope.value)} && request.endpoint == {cel_string(ENDPOINT)}"
    reason = (f"{scope.dimension} {scope.value} embeds the same content repeatedly: embeddings are served from the "
              f"response cache (costplane recommend: {NAME}, est. {format_usd(per_month)} USD/month)")
    needed_ttl = scope.max_gap_seconds + 1
    comment = ("" if needed_ttl <= ttl else
               f"# {scope.repeats - scope.within_ttl} of the {scope.repeats} repeats come later than gateway.cache_ttl "
               f"({ttl}s): set gateway.cache_ttl: {needed_ttl}s in costplane.yaml (or store the vectors) to cover "
               "them\n")
    document = (f"{comment}kind: Policy\nname: {name}\non: llm.request\nwhen: {cel_string(when)}\neffect: mutate\n"
                f"set: {{cache: true}}\nreason: {cel_string(reason)}\n")
    distinct = scope.calls - scope.repeats
    return Finding(
        detector=NAME,
        title=f"{scope.repeats} of {scope.calls} embedding requests of {scope.dimension} {scope.value} embed "
              f"content it already embedded ({distinct} distinct)",
        scope={scope.dimension: scope.value},
        evidence={"embedding_calls": scope.calls, "distinct_contents": distinct, "repeats": scope.repeats,
                  "repeat_share": f"{scope.repeats / scope.calls:.2f}", "cost_nano": scope.cost_nano,
                  "repeats_within_cache_ttl": scope.within_ttl, "max_repeat_gap_seconds": scope.max_gap_seconds,
                  "cache_ttl_seconds": ttl, "models": sorted(scope.models)},
        observed_saving_nano=scope.saved_nano, monthly_saving_nano=per_month, document=document,
    )

"""Cache opportunity: identical deterministic requests answered again instead of from the cache.

A request is cacheable when the gateway would key its response cache on it (`history.cache_key`:
deterministic chat — temperature 0, one choice, no stream — or an embedding). Per agent (else team),
the agent's cacheable requests that were not already served from the cache run through the same
TTL cache simulation as policy replay (`gateway.cache_ttl`): every hit is a request whose cost
the cache would have saved — with every repeat inside the TTL, that is the cost of the requests
minus one per distinct request. The emitted policy is `mutate` with `set: {cache: true}` for the scope.

The cacheable requests come from the source: on a store, only the decisions that carry a cache hash
(a partial index) joined with their events — never the whole decisions log.
"""

from __future__ import annotations

from dataclasses import dataclass

from costplane.money import format_usd
from costplane.optimize.detectors.source import source_of
from costplane.optimize.findings import DetectorInput, Finding, cel_string, monthly, policy_name
from costplane.optimize.history import History

__all__ = ["NAME", "CacheSettings", "detect"]

NAME = "cache_opportunity"


@dataclass(frozen=True, slots=True)
class CacheSettings:
    min_hits: int = 10
    min_share_percent: int = 5  # repeats as a share of the scope's cacheable requests
    min_monthly_saving_nano: int = 1_000_000_000  # $1


@dataclass(slots=True)
class _Scope:
    dimension: str
    value: str
    cacheable: int = 0
    hits: int = 0
    saved_nano: int = 0
    keys: int = 0


def detect(history: History, inputs: DetectorInput, settings: CacheSettings | None = None) -> list[Finding]:
    settings = settings or CacheSettings()
    ttl = inputs.config.gateway.cache_ttl
    ttl_us = ttl * 1_000_000
    scopes: dict[tuple[str, str], _Scope] = {}
    expires: dict[tuple[str, str, str], int] = {}  # the simulated cache: (scope, key) -> expiry
    for ts, _, dimension, value, key, cost in source_of(history).cache_rows():  # oldest first
        scope = scopes.setdefault((dimension, value), _Scope(dimension, value))
        scope.cacheable += 1
        entry = (dimension, value, key)
        if ts < expires.get(entry, ts):  # the same TTL rule as `optimize.cache.CacheSimulation`
            scope.hits += 1
            scope.saved_nano += cost
        else:
            expires[entry] = ts + ttl_us
            scope.keys += 1
    findings = []
    for scope in sorted(scopes.values(), key=lambda s: (s.dimension, s.value)):
        per_month = monthly(scope.saved_nano, history.seconds)
        if (scope.hits < settings.min_hits or scope.hits * 100 < settings.min_share_percent * scope.cacheable
                or per_month < settings.min_monthly_saving_nano):
            continue
        name = policy_name("cache", scope.dimension, scope.value)
        when = f"ctx.{scope.dimension} == {cel_string(scope.value)}"
        reason = (f"identical deterministic requests of {scope.dimension} {scope.value} are served from the "
                  f"response cache (costplane recommend: {NAME}, est. {format_usd(per_month)} USD/month)")
        document = (f"kind: Policy\nname: {name}\non: llm.request\nwhen: {cel_string(when)}\neffect: mutate\n"
                    f"set: {{cache: true}}\nreason: {cel_string(reason)}\n")
        findings.append(Finding(
            detector=NAME,
            title=f"{scope.hits} of {scope.cacheable} deterministic requests of {scope.dimension} {scope.value} "
                  "repeat an identical request within the cache TTL",
            scope={scope.dimension: scope.value},
            evidence={"cacheable_requests": scope.cacheable, "distinct_requests": scope.keys,
                      "repeats": scope.hits, "repeat_share": f"{scope.hits / scope.cacheable:.2f}",
                      "cache_ttl_seconds": ttl},
            observed_saving_nano=scope.saved_nano, monthly_saving_nano=per_month, document=document,
        ))
    return findings

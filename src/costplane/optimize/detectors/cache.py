"""Cache opportunity: identical deterministic requests answered again instead of from the cache.

A request is cacheable when the gateway would key its response cache on it (`history.cache_key`:
deterministic chat — temperature 0, one choice, no stream — or an embedding). Per agent (else team),
the agent's cacheable requests that were not already served from the cache run through the same
TTL cache simulation as policy replay (`gateway.cache_ttl`): every hit is a request whose cost
the cache would have saved — with every repeat inside the TTL, that is the cost of the requests
minus one per distinct request. The emitted policy is `mutate` with `set: {cache: true}` for the scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from costplane.money import format_usd
from costplane.optimize.cache import CacheSimulation
from costplane.optimize.findings import DetectorInput, Finding, cel_string, monthly, policy_name
from costplane.optimize.history import History, RecordedRequest, cache_key

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


def _scope_of(request: RecordedRequest) -> tuple[str, str] | None:
    ctx = request.decision.context
    if ctx.agent:
        return "agent", ctx.agent
    if ctx.team:
        return "team", ctx.team
    return None


def detect(history: History, inputs: DetectorInput, settings: CacheSettings | None = None) -> list[Finding]:
    settings = settings or CacheSettings()
    ttl = inputs.config.gateway.cache_ttl
    scopes: dict[tuple[str, str], _Scope] = {}
    caches: dict[tuple[str, str], CacheSimulation] = {}
    for request in history.requests:
        scope_key = _scope_of(request)
        if scope_key is None or not request.admitted or request.cached or request.decision.result.get(
                "params", {}).get("cache") is True:
            continue
        if not request.events or any(e.status != "ok" for e in request.events):
            continue
        key = cache_key(request.decision, request.events)
        if key is None:
            continue
        scope = scopes.setdefault(scope_key, _Scope(*scope_key))
        cache = caches.setdefault(scope_key, CacheSimulation(ttl))
        scope.cacheable += 1
        if cache.hit(key, request.ts):
            scope.hits += 1
            scope.saved_nano += request.cost_nano
        else:
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

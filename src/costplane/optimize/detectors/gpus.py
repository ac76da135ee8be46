"""Idle and over-provisioned GPU environments, from the environment records the store keeps.

What is persisted (and therefore what this reads, via `Store.list_environments`): each environment's
priced resources (SKU, count, hourly nano-USD, GPU type), its start and end, its lifecycle (the idle
rule, if any), `idle_since` (set by the scheduler while an idle rule watches) and `metrics` — the
*latest* reading of each metric with its time (no time series of readings is stored). So:

* **idle** (`idle_gpu_environments`) — a GPU environment whose latest `gpu_util` reading is below
  `idle_below` percent was idle from `idle_since` (when recorded) or else from that reading's time,
  until it ended (or the window's end): no later reading showed use. Environments whose blueprint has
  an idle rule that tears down or suspends are skipped (the rule already bounds the idle time). Per
  blueprint, saving = Σ idle seconds × the environment's hourly price. Emits an `environment.runtime`
  `teardown` policy for the blueprint below that utilisation (with a comment recommending the
  blueprint idle rule, which waits `for` a window before acting).
* **over-provisioned** (`oversized_gpu_environments`) — per (blueprint, per-GPU SKU
  `provider/gpu/TYPE`): the highest latest `gpu_memory_gb` reading (GB used per GPU, pushed through
  `POST /v1/environments/{id}/metrics`) across its environments, plus `headroom_percent`, fits a GPU
  of the same provider with less memory (`GPU_MEMORY_GB`: the SKU table's `memory_gib` is the host's
  memory, not the GPU's) that the SkuCatalog prices lower; the cheapest such SKU is proposed. Saving
  = each environment's run time in the window re-priced on it (SkuPrice.cost_nano, exact). Emits an
  `environment.launch` `deny` for the blueprint on that GPU type, naming the GPU to use. Compute
  throughput is not compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from costplane.ledger.envtypes import EnvironmentRecord
from costplane.ledger.store import Store
from costplane.money import format_usd
from costplane.optimize.findings import Finding, cel_string, monthly, policy_name
from costplane.pricing.skus import SkuCatalog, SkuPrice, UnknownSku

__all__ = ["GPU_MEMORY_GB", "IDLE", "MEMORY_METRIC", "OVERSIZED", "UTIL_METRIC", "EnvironmentHistory",
           "GpuSettings", "detect_idle", "detect_oversized", "load_environments"]

IDLE = "idle_gpu_environments"
OVERSIZED = "oversized_gpu_environments"
UTIL_METRIC = "gpu_util"
MEMORY_METRIC = "gpu_memory_gb"
_ALL = 1_000_000

#: memory of one GPU, GB, by the SKU table's gpu_type
GPU_MEMORY_GB: Mapping[str, int] = {
    "H100": 80, "A100-80GB": 80, "A100-40GB": 40, "L40S": 48, "L4": 24, "A10G": 24, "A10": 24,
    "T4": 16, "V100": 16, "P4": 8,
}


@dataclass(frozen=True, slots=True)
class GpuSettings:
    idle_below: Decimal = Decimal(10)  # gpu_util percent
    min_idle_seconds: int = 1800  # an environment counts as idle from this long on
    headroom_percent: int = 20  # over the observed memory
    min_environments: int = 3
    min_monthly_saving_nano: int = 1_000_000_000  # $1


@dataclass(frozen=True, slots=True)
class EnvironmentHistory:
    """The environments that ran in [since, until), and the SKU prices to re-price them with."""

    since: datetime
    until: datetime
    environments: tuple[EnvironmentRecord, ...]
    skus: SkuCatalog

    @property
    def seconds(self) -> int:
        return max(1, int((self.until - self.since).total_seconds()))

    def run_span(self, env: EnvironmentRecord) -> tuple[datetime, datetime] | None:
        """The part of the environment's run inside the window (None if it did not run in it)."""
        if env.started_at is None:
            return None
        start, end = max(env.started_at, self.since), min(env.ended_at or self.until, self.until)
        return (start, end) if end > start else None


def load_environments(store: Store, since: datetime, until: datetime, skus: SkuCatalog) -> EnvironmentHistory:
    """Every environment that ran in [since, until) (read-only: `Store.list_environments`)."""
    envs = [e for e in store.list_environments(limit=_ALL) if e.started_at is not None
            and e.started_at < until and (e.ended_at is None or e.ended_at > since)]
    envs.sort(key=lambda e: (e.created_at, e.id))
    return EnvironmentHistory(since, until, tuple(envs), skus)


def _reading(env: EnvironmentRecord, metric: str) -> tuple[Decimal, datetime] | None:
    reading = env.metrics.get(metric)
    if not isinstance(reading, Mapping):
        return None
    try:
        return Decimal(str(reading["value"])), datetime.fromisoformat(str(reading["at"]))
    except (KeyError, ValueError, InvalidOperation):
        return None


def _gpu_resources(env: EnvironmentRecord) -> list[Mapping[str, Any]]:
    return [r for r in env.resources if r.get("gpu_type")]


def _hourly_share(hourly_nano: int, seconds: int) -> int:
    return (hourly_nano * seconds * 2 + 3600) // 7200  # half-up


def _governed_idle(env: EnvironmentRecord) -> bool:
    rule = env.lifecycle.get("idle")
    return isinstance(rule, Mapping) and rule.get("action") in ("teardown", "suspend")


@dataclass(slots=True)
class _Idle:
    environments: int = 0
    idle_environments: int = 0
    idle_seconds: int = 0
    saving: int = 0
    worst_util: Decimal = Decimal(0)


def detect_idle(history: EnvironmentHistory, settings: GpuSettings | None = None) -> list[Finding]:
    settings = settings or GpuSettings()
    blueprints: dict[str, _Idle] = {}
    for env in history.environments:
        span = history.run_span(env)
        if span is None or not _gpu_resources(env) or _governed_idle(env):
            continue
        tally = blueprints.setdefault(env.blueprint, _Idle())
        tally.environments += 1
        reading = _reading(env, UTIL_METRIC)
        if reading is None or reading[0] >= settings.idle_below:
            continue
        start = max(env.idle_since or reading[1], span[0])
        seconds = int((span[1] - start).total_seconds())
        if seconds < settings.min_idle_seconds:
            continue
        tally.idle_environments += 1
        tally.idle_seconds += seconds
        tally.saving += _hourly_share(env.hourly_nano, seconds)
        tally.worst_util = max(tally.worst_util, reading[0])
    findings = []
    for blueprint, tally in sorted(blueprints.items()):
        per_month = monthly(tally.saving, history.seconds)
        if tally.idle_environments < settings.min_environments or per_month < settings.min_monthly_saving_nano:
            continue
        below = settings.idle_below
        when = (f"request.blueprint == {cel_string(blueprint)} && {cel_string(UTIL_METRIC)} in request && "
                f"request.{UTIL_METRIC} < {float(below)}")
        reason = (f"environments of blueprint {blueprint} below {below}% GPU utilisation are torn down (costplane "
                  f"recommend: {IDLE}, est. {format_usd(per_month)} USD/month)")
        document = (f"# or give blueprint {blueprint} lifecycle.idle: {{metric: {UTIL_METRIC}, below: {below}, "
                    f"for: 30m, action: teardown}} (waits for the window before acting)\n"
                    f"kind: Policy\nname: {policy_name('idle-gpu', blueprint)}\non: environment.runtime\n"
                    f"when: {cel_string(when)}\neffect: teardown\nreason: {cel_string(reason)}\n")
        findings.append(Finding(
            detector=IDLE,
            title=f"{tally.idle_environments} of {tally.environments} GPU environments of blueprint {blueprint} sat "
                  f"below {below}% utilisation for {tally.idle_seconds / 3600:.1f} h",
            scope={"blueprint": blueprint},
            evidence={"environments": tally.environments, "idle_environments": tally.idle_environments,
                      "idle_seconds": tally.idle_seconds, "highest_idle_gpu_util": str(tally.worst_util),
                      "idle_below_percent": str(below),
                      "derived_from": "latest gpu_util reading per environment (and idle_since) to its end"},
            observed_saving_nano=tally.saving, monthly_saving_nano=per_month, document=document,
        ))
    return findings


@dataclass(slots=True)
class _Sized:
    sku: str
    gpu_type: str
    environments: list[tuple[EnvironmentRecord, int]]  # with its GPU count
    peak_gb: Decimal = Decimal(0)


def _smaller(skus: SkuCatalog, current: SkuPrice, need_gb: Decimal, at: datetime) -> SkuPrice | None:
    prefix = f"{current.provider}/gpu/".lower()
    have = GPU_MEMORY_GB.get(current.gpu_type or "")
    if have is None:
        return None
    fits = [p for p in skus.prices(at) if p.sku.lower().startswith(prefix) and p.hourly_usd < current.hourly_usd
            and need_gb <= GPU_MEMORY_GB.get(p.gpu_type or "", 0) < have]
    return min(fits, key=lambda p: (p.hourly_usd, p.sku)) if fits else None


def detect_oversized(history: EnvironmentHistory, settings: GpuSettings | None = None) -> list[Finding]:
    settings = settings or GpuSettings()
    groups: dict[tuple[str, str], _Sized] = {}
    for env in history.environments:
        reading = _reading(env, MEMORY_METRIC)
        if reading is None or history.run_span(env) is None:
            continue
        for resource in _gpu_resources(env):
            sku = str(resource.get("sku") or "")
            if "/gpu/" not in sku.lower():
                continue  # whole machines: the GPU's share is not priced separately
            group = groups.setdefault((env.blueprint, sku.lower()), _Sized(sku, str(resource["gpu_type"]), []))
            group.environments.append((env, int(resource.get("count") or 1)))
            group.peak_gb = max(group.peak_gb, reading[0])
    findings = []
    for (blueprint, _), group in sorted(groups.items()):
        if len(group.environments) < settings.min_environments:
            continue
        finding = _oversized(history, settings, blueprint, group)
        if finding is not None:
            findings.append(finding)
    return findings


def _oversized(history: EnvironmentHistory, settings: GpuSettings, blueprint: str, group: _Sized) -> Finding | None:
    need = group.peak_gb * (100 + settings.headroom_percent) / 100
    try:
        current = history.skus.lookup(group.sku, history.until)
    except UnknownSku:
        return None
    small = _smaller(history.skus, current, need, history.until)
    if small is None:
        return None
    cost = small_cost = seconds_total = 0
    for env, count in group.environments:
        span = history.run_span(env)
        if span is None:
            continue
        seconds = int((span[1] - span[0]).total_seconds())
        try:
            cost += history.skus.lookup(group.sku, span[0]).cost_nano(seconds, count)
            small_cost += history.skus.lookup(small.sku, span[0]).cost_nano(seconds, count)
        except UnknownSku:
            return None
        seconds_total += seconds
    saving = cost - small_cost
    per_month = monthly(saving, history.seconds)
    if per_month < settings.min_monthly_saving_nano:
        return None
    small_type = str(small.gpu_type)  # in GPU_MEMORY_GB (see _smaller)
    when = f"request.blueprint == {cel_string(blueprint)} && request.gpu_type == {cel_string(group.gpu_type)}"
    reason = (f"blueprint {blueprint} uses at most {group.peak_gb} GB of GPU memory: launch it on {small_type} "
              f"({GPU_MEMORY_GB[small_type]} GB, {small.sku}) instead of {group.gpu_type} (costplane recommend: "
              f"{OVERSIZED}, est. {format_usd(per_month)} USD/month)")
    document = (f"# and change blueprint {blueprint}'s GPU resource sku to {small.sku}\n"
                f"kind: Policy\nname: {policy_name('right-size-gpu', blueprint, 'to', small_type)}\n"
                f"on: environment.launch\nwhen: {cel_string(when)}\neffect: deny\nreason: {cel_string(reason)}\n")
    return Finding(
        detector=OVERSIZED,
        title=f"{len(group.environments)} environments of blueprint {blueprint} run on {group.gpu_type} but use at "
              f"most {group.peak_gb} GB of GPU memory; {small_type} fits",
        scope={"blueprint": blueprint, "gpu_type": group.gpu_type},
        evidence={"environments": len(group.environments), "sku": group.sku, "smaller_sku": small.sku,
                  "peak_gpu_memory_gb": str(group.peak_gb), "needed_gb_with_headroom": str(need),
                  "gpu_memory_gb": GPU_MEMORY_GB.get(group.gpu_type),
                  "smaller_gpu_memory_gb": GPU_MEMORY_GB[small_type],
                  "run_seconds": seconds_total, "cost_nano": cost, "smaller_cost_nano": small_cost},
        observed_saving_nano=saving, monthly_saving_nano=per_month, document=document,
    )

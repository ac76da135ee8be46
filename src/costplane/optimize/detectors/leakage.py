"""Tier leakage: experiment-tier traffic on production-priced (large) models.

Per provider, the *small* model is the cheapest (output, then input rate) the history used for at
least `min_small_requests` successful calls in any tier; a *large* model is one dearer on both
rates, of the same family (`pricing.model_families`: chat models are never routed to embedding
models). Experiment-tier (`ctx.tier == "experiment"`) calls to a large model are re-priced on the
small model (Catalog, at each call's time); the difference is the saving. The emitted policy routes
experiment-tier requests for the large model to the small one.

Counts come from the source's model groups; only the experiment-tier calls of a large model are
read as rows, to re-price them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from costplane.money import format_usd
from costplane.optimize.detectors.rows import reprice_groups
from costplane.optimize.detectors.source import SHORT, ModelGroup, Source, most_common, source_of
from costplane.optimize.findings import DetectorInput, Finding, cel_string, monthly, policy_name
from costplane.optimize.history import History
from costplane.optimize.pricing import dearer, model_families, price_sheet, pricing_provider

__all__ = ["NAME", "TIER", "LeakageSettings", "detect"]

NAME = "tier_leakage"
TIER = "experiment"


@dataclass(frozen=True, slots=True)
class LeakageSettings:
    min_small_requests: int = 10
    min_requests: int = 20
    min_monthly_saving_nano: int = 1_000_000_000  # $1


def detect(history: History, inputs: DetectorInput, settings: LeakageSettings | None = None) -> list[Finding]:
    settings = settings or LeakageSettings()
    source = source_of(history)
    counts: dict[str, Counter[str]] = {}
    leaked: dict[tuple[str, str], list[ModelGroup]] = {}
    for group in source.model_groups(*SHORT):
        counts.setdefault(group.provider, Counter())[group.model] += group.calls
        if group.tier == TIER:
            leaked.setdefault((group.provider, group.model), []).append(group)
    findings = []
    for provider, models in sorted(counts.items()):
        genai_provider = pricing_provider(inputs.config, provider)
        sheets = {m: s for m in models if (s := price_sheet(inputs.catalog, m, genai_provider, history.until))}
        for family in model_families(sheets):  # a chat model is never routed to an embedding model
            smalls = [m for m in family if models[m] >= settings.min_small_requests]
            if not smalls:
                continue
            small = min(smalls, key=lambda m: (sheets[m].output, sheets[m].input, m))
            for large in family:
                groups = leaked.get((provider, large), [])
                if large != small and dearer(sheets[large], sheets[small]) and sum(g.calls for g in groups) >= \
                        settings.min_requests:
                    finding = _finding(source, inputs, settings, provider, genai_provider, small, large, groups)
                    if finding is not None:
                        findings.append(finding)
    return findings


def _finding(source: Source, inputs: DetectorInput, settings: LeakageSettings, provider: str,
             genai_provider: str | None, small: str, large: str, groups: list[ModelGroup]) -> Finding | None:
    costs = reprice_groups(source, inputs.catalog, small, genai_provider, groups)
    if costs is None:
        return None
    calls, cost, small_cost, experiments = costs
    saving = cost - small_cost
    per_month = monthly(saving, source.seconds)
    if per_month < settings.min_monthly_saving_nano:
        return None
    teams: Counter[str] = Counter()
    for g in groups:
        teams[g.team or "(none)"] += g.calls
    when = f"ctx.tier == {cel_string(TIER)} && request.model == {cel_string(large)}"
    reason = (f"experiment-tier requests use {small}, not the production-priced {large} (costplane recommend: "
              f"{NAME}, est. {format_usd(per_month)} USD/month)")
    document = (f"kind: Policy\nname: {policy_name('experiment-tier', large, 'to', small)}\non: llm.request\n"
                f"when: {cel_string(when)}\neffect: route\nset: {{model: {cel_string(small)}}}\n"
                f"reason: {cel_string(reason)}\n")
    return Finding(
        detector=NAME,
        title=f"{calls} experiment-tier requests use the production-priced {large} instead of {small}",
        scope={"tier": TIER, "provider": provider, "model": large},
        evidence={"large_model": large, "small_model": small, "calls": calls, "cost_nano": cost,
                  "small_cost_nano": small_cost, "teams": dict(most_common(teams, 5)),
                  "experiments": len(experiments)},
        observed_saving_nano=saving, monthly_saving_nano=per_month, document=document,
    )

"""Model over-sizing: a large model used for short, routine requests of an agent that a smaller model
of the same provider already serves.

For each (agent, provider) with at least two models: a *small* model is one the agent used for at
least `min_small_requests` successful calls; a *large* model is any other model of that provider
whose input and output rates are both higher. Small and large are of one family (`pricing.model_families`):
a model with an output price (chat) is never compared with one without (embeddings).
The large model's *short* calls (input ≤
`max_input_tokens`, output ≤ `max_output_tokens`) are re-priced on the small model (Catalog, at each
call's time); the difference is the saving. The emitted policy routes the agent's requests for the
large model with `request.input_tokens <= max_input_tokens` to the small model.

Counts come from the source's model groups (grouped in SQL on a store); only the short calls of a
(agent, large model) pair are read as rows, to re-price them.

Equal outcome rate: when the agent records outcomes, each model's outcome rate is the share of the
agent's runs that called it and recorded an outcome; no finding when the small model's rate is
significantly lower than the large model's (one-sided two-proportion z-test, `max_outcome_z`). Both
rates are in the evidence; an agent that records no outcomes is reported with the rate "not measured".
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from costplane.money import format_usd
from costplane.optimize.detectors.rows import reprice_groups
from costplane.optimize.detectors.source import SHORT, ModelGroup, Source, most_common, source_of
from costplane.optimize.findings import DetectorInput, Finding, cel_string, monthly, policy_name
from costplane.optimize.history import History
from costplane.optimize.pricing import dearer, model_families, price_sheet, pricing_provider

__all__ = ["NAME", "OversizingSettings", "detect"]

NAME = "model_oversizing"


@dataclass(frozen=True, slots=True)
class OversizingSettings:
    max_input_tokens: int = SHORT[0]
    max_output_tokens: int = SHORT[1]
    min_small_requests: int = 10
    min_requests: int = 20  # short calls on the large model
    min_monthly_saving_nano: int = 1_000_000_000  # $1
    # the small model's outcome rate may not be lower by more than this many standard errors
    # (one-sided two-proportion z-test at 95 %)
    max_outcome_z: float = 1.645


def detect(history: History, inputs: DetectorInput, settings: OversizingSettings | None = None) -> list[Finding]:
    settings = settings or OversizingSettings()
    source = source_of(history)
    groups: dict[tuple[str, str], dict[str, list[ModelGroup]]] = {}
    for group in source.model_groups(settings.max_input_tokens, settings.max_output_tokens):
        if group.agent:
            groups.setdefault((group.agent, group.provider), {}).setdefault(group.model, []).append(group)
    findings: list[Finding] = []
    for (agent, provider), models in sorted(groups.items()):
        if len(models) < 2:
            continue
        genai_provider = pricing_provider(inputs.config, provider)
        sheets = {m: s for m in models if (s := price_sheet(inputs.catalog, m, genai_provider, history.until))}
        for family in model_families(sheets):  # a chat model is never routed to an embedding model
            smalls = [m for m in family if sum(g.calls for g in models[m]) >= settings.min_small_requests]
            if not smalls:
                continue
            small = min(smalls, key=lambda m: (sheets[m].output, sheets[m].input, m))
            for large in family:
                if large == small or not dearer(sheets[large], sheets[small]):
                    continue
                finding = _finding(source, inputs, settings, agent, provider, genai_provider, small, large,
                                   models[large])
                if finding is not None:
                    findings.append(finding)
    return findings


def _finding(source: Source, inputs: DetectorInput, settings: OversizingSettings, agent: str, provider: str,
             genai_provider: str | None, small: str, large: str, groups: list[ModelGroup]) -> Finding | None:
    short_calls = sum(g.short for g in groups)
    if short_calls < settings.min_requests:
        return None
    limits = (settings.max_input_tokens, settings.max_output_tokens)
    costs = reprice_groups(source, inputs.catalog, small, genai_provider, [g for g in groups if g.short], limits)
    if costs is None:
        return None
    _, cost, small_cost, _ = costs
    saving = cost - small_cost
    per_month = monthly(saving, source.seconds)
    if per_month < settings.min_monthly_saving_nano:
        return None
    outcomes = _outcome_rates(source, settings, agent, provider, small, large)
    if outcomes is None:
        return None
    teams: Counter[str] = Counter()
    for g in groups:
        if g.team and g.short:
            teams[g.team] += g.short
    team = most_common(teams)
    calls = sum(g.calls for g in groups)
    scope = {"agent": agent, "provider": provider, **({"team": team[0][0]} if team else {})}
    name = policy_name("right-size", agent, large, "to", small)
    when = (f"ctx.agent == {cel_string(agent)} && request.model == {cel_string(large)}"
            f" && request.input_tokens <= {settings.max_input_tokens}")
    reason = (f"short requests of agent {agent} go to {small} (costplane recommend: {NAME}, "
              f"est. {format_usd(per_month)} USD/month)")
    document = (f"kind: Policy\nname: {name}\non: llm.request\nwhen: {cel_string(when)}\neffect: route\n"
                f"set: {{model: {cel_string(small)}}}\nreason: {cel_string(reason)}\n")
    return Finding(
        detector=NAME,
        title=f"agent {agent} uses {large} for {short_calls} short requests that {small} could serve",
        scope=scope,
        evidence={"large_model": large, "small_model": small, "large_calls": calls, "short_calls": short_calls,
                  "short_share": f"{short_calls / calls:.2f}", "short_cost_nano": cost,
                  "small_cost_nano": small_cost, "max_input_tokens": settings.max_input_tokens,
                  "max_output_tokens": settings.max_output_tokens, **outcomes},
        observed_saving_nano=saving, monthly_saving_nano=per_month, document=document,
    )


def _outcome_rates(source: Source, settings: OversizingSettings, agent: str, provider: str, small: str,
                   large: str) -> dict[str, str] | None:
    """The evidence on the two models' outcome rates (share of the agent's runs using the model that
    recorded an outcome); None when the small model's rate is significantly lower (no finding)."""
    if agent not in {a for a, _, _, _ in source.outcomes()}:
        return {"outcome_rate": "not measured: the agent records no outcomes"}
    small_runs, small_done = source.model_outcome_runs(agent, provider, small)
    large_runs, large_done = source.model_outcome_runs(agent, provider, large)
    evidence = {"outcome_rate_small": _rate(small_done, small_runs),
                "outcome_rate_large": _rate(large_done, large_runs)}
    if small_runs and large_runs:
        pooled = (small_done + large_done) / (small_runs + large_runs)
        se = math.sqrt(pooled * (1 - pooled) * (1 / small_runs + 1 / large_runs))
        if se > 0 and (small_done / small_runs - large_done / large_runs) / se < -settings.max_outcome_z:
            return None
    return evidence


def _rate(done: int, runs: int) -> str:
    return f"{done / runs:.2f} ({done} of {runs} runs)" if runs else "no runs"

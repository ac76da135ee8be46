"""Model over-sizing: a large model used for short, routine requests of an agent that a smaller model
of the same provider already serves.

For each (agent, provider) with at least two models: a *small* model is one the agent used for at
least `min_small_requests` successful calls; a *large* model is any other model of that provider
whose input and output rates are both higher. The large model's *short* calls (input ≤
`max_input_tokens`, output ≤ `max_output_tokens`) are re-priced on the small model (Catalog, at each
call's time); the difference is the saving. The emitted policy routes the agent's requests for the
large model with `request.input_tokens <= max_input_tokens` to the small model.

Counts come from the source's model groups (grouped in SQL on a store); only the short calls of a
(agent, large model) pair are read as rows, to re-price them.

Not checked yet: that the small model reaches an equal outcome rate (outcome data per model).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from costplane.money import format_usd
from costplane.optimize.detectors.rows import reprice_groups
from costplane.optimize.detectors.source import SHORT, ModelGroup, Source, most_common, source_of
from costplane.optimize.findings import DetectorInput, Finding, cel_string, monthly, policy_name
from costplane.optimize.history import History
from costplane.optimize.pricing import price_sheet, pricing_provider
from costplane.pricing.types import PriceSheet

__all__ = ["NAME", "OversizingSettings", "detect"]

NAME = "model_oversizing"


@dataclass(frozen=True, slots=True)
class OversizingSettings:
    max_input_tokens: int = SHORT[0]
    max_output_tokens: int = SHORT[1]
    min_small_requests: int = 10
    min_requests: int = 20  # short calls on the large model
    min_monthly_saving_nano: int = 1_000_000_000  # $1


def _dearer(large: PriceSheet, small: PriceSheet) -> bool:
    return large.input > small.input and large.output > small.output


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
        sheets = {m: price_sheet(inputs.catalog, m, genai_provider, history.until) for m in models}
        smalls = [m for m, gs in models.items() if sum(g.calls for g in gs) >= settings.min_small_requests
                  and sheets[m] is not None]
        if not smalls:
            continue
        small = min(smalls, key=lambda m: (sheets[m].output, sheets[m].input, m))  # type: ignore[union-attr]
        small_sheet = sheets[small]
        assert small_sheet is not None
        for large, large_groups in sorted(models.items()):
            large_sheet = sheets[large]
            if large == small or large_sheet is None or not _dearer(large_sheet, small_sheet):
                continue
            finding = _finding(source, inputs, settings, agent, provider, genai_provider, small, large, large_groups)
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
                  "max_output_tokens": settings.max_output_tokens},
        observed_saving_nano=saving, monthly_saving_nano=per_month, document=document,
    )

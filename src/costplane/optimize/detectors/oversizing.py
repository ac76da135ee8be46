"""Model over-sizing: a large model used for short, routine requests of an agent that a smaller model
of the same provider already serves.

For each (agent, provider) with at least two models: a *small* model is one the agent used for at
least `min_small_requests` successful calls; a *large* model is any other model of that provider
whose input and output rates are both higher. The large model's *short* calls (input ≤
`max_input_tokens`, output ≤ `max_output_tokens`) are re-priced on the small model (Catalog, at each
call's time); the difference is the saving. The emitted policy routes the agent's requests for the
large model with `request.input_tokens <= max_input_tokens` to the small model.

Not checked yet: that the small model reaches an equal outcome rate (outcome data per model).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from costplane.ledger.types import CostEvent
from costplane.money import format_usd
from costplane.optimize.findings import DetectorInput, Finding, cel_string, monthly, policy_name
from costplane.optimize.history import History
from costplane.optimize.pricing import price_sheet, pricing_provider, reprice_each
from costplane.pricing.types import PriceSheet

__all__ = ["NAME", "OversizingSettings", "detect"]

NAME = "model_oversizing"


@dataclass(frozen=True, slots=True)
class OversizingSettings:
    max_input_tokens: int = 1000
    max_output_tokens: int = 500
    min_small_requests: int = 10
    min_requests: int = 20  # short calls on the large model
    min_monthly_saving_nano: int = 1_000_000_000  # $1


def _dearer(large: PriceSheet, small: PriceSheet) -> bool:
    return large.input > small.input and large.output > small.output


def detect(history: History, inputs: DetectorInput, settings: OversizingSettings | None = None) -> list[Finding]:
    settings = settings or OversizingSettings()
    groups: dict[tuple[str, str], dict[str, list[CostEvent]]] = {}
    for event in history.events:
        if event.kind != "llm" or event.status != "ok" or not event.context.agent:
            continue
        groups.setdefault((event.context.agent, event.provider), {}).setdefault(event.model, []).append(event)
    findings: list[Finding] = []
    for (agent, provider), models in sorted(groups.items()):
        if len(models) < 2:
            continue
        genai_provider = pricing_provider(inputs.config, provider)
        sheets = {m: price_sheet(inputs.catalog, m, genai_provider, history.until) for m in models}
        smalls = [m for m, evs in models.items() if len(evs) >= settings.min_small_requests and sheets[m] is not None]
        if not smalls:
            continue
        small = min(smalls, key=lambda m: (sheets[m].output, sheets[m].input, m))  # type: ignore[union-attr]
        small_sheet = sheets[small]
        assert small_sheet is not None
        for large, events in sorted(models.items()):
            large_sheet = sheets[large]
            if large == small or large_sheet is None or not _dearer(large_sheet, small_sheet):
                continue
            finding = _finding(history, inputs, settings, agent, provider, genai_provider, small, large, events)
            if finding is not None:
                findings.append(finding)
    return findings


def _finding(history: History, inputs: DetectorInput, settings: OversizingSettings, agent: str, provider: str,
             genai_provider: str | None, small: str, large: str, events: list[CostEvent]) -> Finding | None:
    short = [e for e in events if e.usage.input_tokens <= settings.max_input_tokens
             and e.usage.output_tokens <= settings.max_output_tokens]
    if len(short) < settings.min_requests:
        return None
    costs = reprice_each(inputs.catalog, small, genai_provider, short)
    if costs is None:
        return None
    cost, small_cost = costs
    saving = cost - small_cost
    per_month = monthly(saving, history.seconds)
    if per_month < settings.min_monthly_saving_nano:
        return None
    team = Counter(e.context.team for e in short if e.context.team).most_common(1)
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
        title=f"agent {agent} uses {large} for {len(short)} short requests that {small} could serve",
        scope=scope,
        evidence={"large_model": large, "small_model": small, "large_calls": len(events), "short_calls": len(short),
                  "short_share": f"{len(short) / len(events):.2f}", "short_cost_nano": cost,
                  "small_cost_nano": small_cost, "max_input_tokens": settings.max_input_tokens,
                  "max_output_tokens": settings.max_output_tokens},
        observed_saving_nano=saving, monthly_saving_nano=per_month, document=document,
    )

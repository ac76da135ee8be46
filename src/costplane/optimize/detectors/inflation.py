"""Prompt inflation: input tokens per request creeping up over the window for the same agent and model.

Per (agent, provider, model), the successful calls' input tokens are regressed on their time in the
window (0 = start, 1 = end). A rise of at least `min_growth_percent` of the starting level, with a
slope at least `min_t` standard errors from zero, is inflation. Each call's *extra* tokens are the
fitted rise since the window start (slope · time); the saving is those tokens priced at the model's
input rate (Catalog, at the call's time: exact integer nano-USD).

The emitted policy is a **context cap**: `deny` for the agent's requests to that model whose input
estimate exceeds the starting level plus two residual standard deviations (`cap_tokens`), with a
reason telling the client to trim its context. Change `effect: deny` to `notify` for an alert-only
variant (it then saves nothing in a replay).

A float screen over the group's sums (from the source's model groups, in SQL on a store) picks the
candidates; only their rows are read, in (ts, id) order, and fitted exactly as before.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass

from costplane.money import format_usd
from costplane.optimize.detectors.rows import trim_saving
from costplane.optimize.detectors.source import (
    SHORT,
    ZERO,
    ModelGroup,
    Source,
    UsageRow,
    most_common,
    source_of,
    trend_candidate,
)
from costplane.optimize.findings import DetectorInput, Finding, cel_string, monthly, policy_name
from costplane.optimize.history import History
from costplane.optimize.pricing import pricing_provider
from costplane.optimize.trend import fit_line

__all__ = ["NAME", "InflationSettings", "detect"]

NAME = "prompt_inflation"


@dataclass(frozen=True, slots=True)
class InflationSettings:
    min_requests: int = 50
    min_growth_percent: int = 20  # rise over the window, as a share of the starting level
    min_t: float = 5.0
    min_monthly_saving_nano: int = 1_000_000_000  # $1


def detect(history: History, inputs: DetectorInput, settings: InflationSettings | None = None) -> list[Finding]:
    settings = settings or InflationSettings()
    source = source_of(history)
    groups: dict[tuple[str, str, str], list[ModelGroup]] = {}
    for group in source.model_groups(*SHORT):
        if group.agent:
            groups.setdefault((group.agent, group.provider, group.model), []).append(group)
    findings = []
    for (agent, provider, model), parts in sorted(groups.items()):
        trend = ZERO
        for g in parts:
            trend = trend.plus(g.trend)
        if trend.n >= settings.min_requests and trend_candidate(trend, settings.min_t, settings.min_growth_percent):
            rows = list(heapq.merge(*(source.model_rows(g) for g in parts)))  # (ts, id) order, as in memory
            finding = _finding(source, inputs, settings, agent, provider, model, rows, parts)
            if finding is not None:
                findings.append(finding)
    return findings


def _finding(source: Source, inputs: DetectorInput, settings: InflationSettings, agent: str, provider: str,
             model: str, rows: list[UsageRow], parts: list[ModelGroup]) -> Finding | None:
    span = source.seconds
    xs = [min(1.0, max(0.0, (r[0] - source.since_us) / 1_000_000 / span)) for r in rows]
    line = fit_line(xs, [float(r[3]) for r in rows])
    if (line is None or line.intercept <= 0 or line.t < settings.min_t
            or line.slope * 100 < settings.min_growth_percent * line.intercept):
        return None
    extra_tokens, saving = trim_saving(inputs.catalog, model, pricing_provider(inputs.config, provider), rows,
                                       (max(0, round(line.slope * x)) for x in xs))
    per_month = monthly(saving, span)
    if per_month < settings.min_monthly_saving_nano:
        return None
    start, end = round(line.intercept), round(line.at(1.0))
    cap = math.ceil(line.intercept + 2 * line.residual_sd)
    teams: Counter[str] = Counter()
    for g in parts:
        if g.team:
            teams[g.team] += g.calls
    team = most_common(teams)
    scope = {"agent": agent, "model": model, **({"team": team[0][0]} if team else {})}
    when = (f"ctx.agent == {cel_string(agent)} && request.model == {cel_string(model)}"
            f" && request.input_tokens > {cap}")
    reason = (f"context cap: agent {agent} sends at most {cap} input tokens to {model}; trim the prompt "
              f"(costplane recommend: {NAME}, est. {format_usd(per_month)} USD/month)")
    document = (f"kind: Policy\nname: {policy_name('context-cap', agent, model)}\non: llm.request\n"
                f"when: {cel_string(when)}\neffect: deny\nreason: {cel_string(reason)}\n")
    return Finding(
        detector=NAME,
        title=f"agent {agent} sends {model} {end - start} more input tokens per request than at the start "
              f"({start} -> {end})",
        scope=scope,
        evidence={"requests": len(rows), "input_tokens_start": start, "input_tokens_end": end,
                  "growth": f"{line.slope / line.intercept:.2f}", "slope_t": f"{line.t:.1f}",
                  "extra_input_tokens": extra_tokens, "cap_tokens": cap},
        observed_saving_nano=saving, monthly_saving_nano=per_month, document=document,
    )

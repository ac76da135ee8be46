"""Inference amplification: LLM calls per agent run, or per business outcome, trending up.

**Per run.** Per agent with at least `min_runs` runs (`ctx.run`), the calls per run are regressed on
the run's start time in the window (0 = start, 1 = end). A rise of at least `min_growth_percent` of
the starting level, at least `min_t` standard errors from zero, is amplification. The baseline is the
fitted calls per run at the window start, rounded (at least 1); the saving is the cost of every
run's calls beyond the baseline (its last ones). The emitted document is a per-run `max_calls`
budget at the baseline (`per: [run]`, lifetime window) for the agent.

**Per outcome.** Per agent and outcome type it records (`costplane.outcome(...)`, `POST
/v1/outcomes` with the agent in the context), the agent's calls per outcome are counted per day of
the window (days with at least one outcome, at least `min_days` of them) and regressed on the day's
middle in the window, with the same thresholds. The baseline is the fitted calls per outcome at the
window start; a day's excess calls are its calls beyond baseline × its outcomes, and its saving
their share of the day's cost. This catches runs that stay the same length while fewer of them
produce the result (retries, abandoned runs). An agent already reported per run is not reported
again per outcome (the same calls). The emitted document is a soft daily `max_calls` budget for the
agent at the baseline times its median daily outcomes, which alerts when the agent spends more
calls than its outcomes justify.

Calls are the agent's charged requests in runs (`source`); for an agent whose float trend screen
passes, one row per run (first call, calls) is read and fitted exactly, and the cost beyond the
baseline is summed by the source (a window function over the run index on a store).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from costplane.money import format_usd
from costplane.optimize.detectors.source import Source, agent_teams, source_of, trend_candidate
from costplane.optimize.findings import DetectorInput, Finding, cel_string, monthly, policy_name
from costplane.optimize.history import History
from costplane.optimize.trend import fit_line

__all__ = ["NAME", "AmplificationSettings", "detect"]

NAME = "inference_amplification"
_DAY = 86_400


@dataclass(frozen=True, slots=True)
class AmplificationSettings:
    min_runs: int = 20
    min_growth_percent: int = 25
    min_t: float = 5.0
    min_days: int = 7  # days with outcomes, per outcome type
    min_monthly_saving_nano: int = 1_000_000_000  # $1


def detect(history: History, inputs: DetectorInput,
           settings: AmplificationSettings | None = None) -> list[Finding]:
    settings = settings or AmplificationSettings()
    source = source_of(history)
    findings = []
    for agent in source.run_agents():
        summary = source.run_summary(agent)
        if summary.runs >= settings.min_runs and trend_candidate(summary.trend, settings.min_t,
                                                                 settings.min_growth_percent):
            finding = _finding(source, settings, agent)
            if finding is not None:
                findings.append(finding)
    reported = {f.scope["agent"] for f in findings}
    return findings + _per_outcome(source, settings, reported)


def _finding(source: Source, settings: AmplificationSettings, agent: str) -> Finding | None:
    runs = sorted(source.run_sizes(agent))  # by (first call, run)
    if len(runs) < settings.min_runs:
        return None
    xs = [min(1.0, max(0.0, (first - source.since_us) / 1_000_000 / source.seconds)) for first, _, _ in runs]
    line = fit_line(xs, [float(calls) for _, _, calls in runs])
    if (line is None or line.intercept <= 0 or line.t < settings.min_t
            or line.slope * 100 < settings.min_growth_percent * line.intercept):
        return None
    baseline = max(1, round(line.intercept))
    excess_calls = sum(max(0, calls - baseline) for _, _, calls in runs)
    saving = source.run_excess(agent, baseline)  # each run's calls after its first `baseline` (by ts, id)
    per_month = monthly(saving, source.seconds)
    if per_month < settings.min_monthly_saving_nano:
        return None
    team = agent_teams(source).get(agent)
    end = round(line.at(1.0))
    scope = {"agent": agent, **({"team": team} if team else {})}
    description = (f"runs of agent {agent} make at most {baseline} LLM calls (costplane recommend: {NAME}, "
                   f"est. {format_usd(per_month)} USD/month)")
    document = (f"kind: Budget\nname: {policy_name('run-calls', agent)}\n"
                f"scope: {cel_string(f'ctx.agent == {cel_string(agent)}')}\nmax_calls: {baseline}\nper: [run]\n"
                f"window: lifetime\ndescription: {cel_string(description)}\n")
    return Finding(
        detector=NAME,
        title=f"agent {agent} makes {end} LLM calls per run, up from {baseline} at the start of the window",
        scope=scope,
        evidence={"runs": len(runs), "calls_per_run_start": baseline, "calls_per_run_end": end,
                  "slope_t": f"{line.t:.1f}", "excess_calls": excess_calls,
                  "calls": sum(calls for _, _, calls in runs)},
        observed_saving_nano=saving, monthly_saving_nano=per_month, document=document,
    )


def _per_outcome(source: Source, settings: AmplificationSettings, reported: set[str]) -> list[Finding]:
    daily: dict[tuple[str, str], dict[int, Decimal]] = {}
    for agent, outcome, ts, value in source.outcomes():
        day = (ts - source.since_us) // (_DAY * 1_000_000)
        per_day = daily.setdefault((agent, outcome), {})
        per_day[day] = per_day.get(day, Decimal(0)) + value
    findings = []
    for (agent, outcome), outcomes in sorted(daily.items()):
        if agent in reported:
            continue
        finding = _outcome_finding(source, settings, agent, outcome, outcomes)
        if finding is not None:
            findings.append(finding)
    return findings


def _outcome_finding(source: Source, settings: AmplificationSettings, agent: str, outcome: str,
                     outcomes: dict[int, Decimal]) -> Finding | None:
    calls = source.agent_days(agent)
    days = sorted(d for d in calls if outcomes.get(d, 0) > 0)
    if len(days) < settings.min_days:
        return None
    xs = [min(1.0, (d + 0.5) * _DAY / source.seconds) for d in days]
    line = fit_line(xs, [calls[d][0] / float(outcomes[d]) for d in days])
    if (line is None or line.intercept <= 0 or line.t < settings.min_t
            or line.slope * 100 < settings.min_growth_percent * line.intercept):
        return None
    baseline = line.intercept
    saving = excess_calls = 0
    for d in days:
        n, cost = calls[d]
        excess = max(0, n - round(baseline * float(outcomes[d])))
        excess_calls += excess
        saving += (2 * cost * excess + n) // (2 * n)  # the excess calls' share of the day's cost, half-up
    per_month = monthly(saving, source.seconds)
    if per_month < settings.min_monthly_saving_nano:
        return None
    total = sum(outcomes[d] for d in days)
    median = sorted(outcomes[d] for d in days)[len(days) // 2]
    cap = max(1, round(baseline * float(median)))
    team = agent_teams(source).get(agent)
    end = line.at(1.0)
    scope = {"agent": agent, "outcome": outcome, **({"team": team} if team else {})}
    description = (f"agent {agent} needs about {baseline:.1f} LLM calls per {outcome} (costplane recommend: "
                   f"{NAME} per outcome, est. {format_usd(per_month)} USD/month); alerts past {cap} calls a day")
    document = (f"kind: Budget\nname: {policy_name('outcome-calls', agent, outcome)}\n"
                f"scope: {cel_string(f'ctx.agent == {cel_string(agent)}')}\nmax_calls: {cap}\n"
                f"window: {{calendar: day, timezone: UTC}}\nenforcement: soft\n"
                f"description: {cel_string(description)}\n")
    return Finding(
        detector=NAME,
        title=f"agent {agent} makes {end:.1f} LLM calls per {outcome}, up from {baseline:.1f} at the start "
              "of the window",
        scope=scope,
        evidence={"per": "outcome", "outcome": outcome, "days": len(days), "outcomes": str(total),
                  "calls": sum(calls[d][0] for d in days), "calls_per_outcome_start": f"{baseline:.2f}",
                  "calls_per_outcome_end": f"{end:.2f}", "slope_t": f"{line.t:.1f}",
                  "excess_calls": excess_calls, "daily_outcomes_median": str(median)},
        observed_saving_nano=saving, monthly_saving_nano=per_month, document=document,
    )



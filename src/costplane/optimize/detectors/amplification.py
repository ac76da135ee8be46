"""Inference amplification: LLM calls per agent run trending up.

Per agent with at least `min_runs` runs (`ctx.run`), the calls per run are regressed on the run's
start time in the window (0 = start, 1 = end). A rise of at least `min_growth_percent` of the
starting level, at least `min_t` standard errors from zero, is amplification. The baseline is the
fitted calls per run at the window start, rounded (at least 1); the saving is the cost of every
run's calls beyond the baseline (its last ones). The emitted document is a per-run `max_calls`
budget at the baseline (`per: [run]`, lifetime window) for the agent.

Calls per *outcome* are not analysed yet (runs only).
"""

from __future__ import annotations

from dataclasses import dataclass

from costplane.money import format_usd
from costplane.optimize.agentruns import AgentRun, agent_runs
from costplane.optimize.findings import DetectorInput, Finding, cel_string, monthly, policy_name
from costplane.optimize.history import History
from costplane.optimize.trend import fit_line

__all__ = ["NAME", "AmplificationSettings", "detect"]

NAME = "inference_amplification"


@dataclass(frozen=True, slots=True)
class AmplificationSettings:
    min_runs: int = 20
    min_growth_percent: int = 25
    min_t: float = 5.0
    min_monthly_saving_nano: int = 1_000_000_000  # $1


def detect(history: History, inputs: DetectorInput,
           settings: AmplificationSettings | None = None) -> list[Finding]:
    settings = settings or AmplificationSettings()
    findings = []
    for agent, runs in agent_runs(history).items():
        if len(runs) >= settings.min_runs:
            finding = _finding(history, settings, agent, runs)
            if finding is not None:
                findings.append(finding)
    return findings


def _finding(history: History, settings: AmplificationSettings, agent: str, runs: list[AgentRun]) -> Finding | None:
    xs = [min(1.0, max(0.0, (r.requests[0].ts - history.since).total_seconds() / history.seconds)) for r in runs]
    line = fit_line(xs, [float(r.calls) for r in runs])
    if (line is None or line.intercept <= 0 or line.t < settings.min_t
            or line.slope * 100 < settings.min_growth_percent * line.intercept):
        return None
    baseline = max(1, round(line.intercept))
    excess_calls = sum(max(0, r.calls - baseline) for r in runs)
    saving = sum(q.cost_nano for r in runs for q in r.requests[baseline:])
    per_month = monthly(saving, history.seconds)
    if per_month < settings.min_monthly_saving_nano:
        return None
    team = runs[0].team()
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
                  "calls": sum(r.calls for r in runs)},
        observed_saving_nano=saving, monthly_saving_nano=per_month, document=document,
    )

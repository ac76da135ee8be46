"""Agent chatter: near-duplicate requests repeated within one agent run (tool-call loops).

Two requests of a run are near-duplicates when their normalised request hash is equal (the hash the
gateway's loop guard counts, recorded on the cost event as `request_hash`). Every repeat after the
first in a run is a duplicate; their cost is the saving. The finding needs `min_duplicates`
duplicates that are at least `min_share_percent` of the agent's calls. Evidence: runs with loops, the
longest loop, steps per run.

The emitted document is a per-run call budget for the agent (`max_calls` = the most *distinct*
requests any of its runs needed, `per: [run]`, lifetime) — it caps loops without cutting a run that
does not repeat itself — with a comment recommending the gateway's loop guard
(`gateway.loop_threshold`), which refuses the repeats themselves.

Every figure is grouped per agent by the source (in SQL on a store); no run is read as rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from costplane.money import format_usd
from costplane.optimize.detectors.source import agent_teams, source_of
from costplane.optimize.findings import DetectorInput, Finding, cel_string, monthly, policy_name
from costplane.optimize.history import History

__all__ = ["NAME", "ChatterSettings", "detect"]

NAME = "agent_chatter"


@dataclass(frozen=True, slots=True)
class ChatterSettings:
    min_duplicates: int = 10
    min_share_percent: int = 5
    loop_guard_threshold: int = 3  # the loop_threshold the comment recommends
    min_monthly_saving_nano: int = 1_000_000_000  # $1


def detect(history: History, inputs: DetectorInput, settings: ChatterSettings | None = None) -> list[Finding]:
    settings = settings or ChatterSettings()
    source = source_of(history)
    findings = []
    for agent in source.run_agents():
        loops = source.loop_summary(agent)
        per_month = monthly(loops.cost, source.seconds)
        if loops.duplicates < settings.min_duplicates or per_month < settings.min_monthly_saving_nano:
            continue
        summary = source.run_summary(agent)
        if loops.duplicates * 100 < settings.min_share_percent * summary.calls:
            continue
        team = agent_teams(source).get(agent)
        max_keys = source.run_keys(agent)
        steps = sorted(calls for calls, runs in source.run_steps(agent).items() for _ in range(runs))
        description = (f"runs of agent {agent} stop repeating themselves (costplane recommend: {NAME}, "
                       f"est. {format_usd(per_month)} USD/month)")
        document = (f"# also set gateway.loop_threshold: {settings.loop_guard_threshold} in costplane.yaml: the loop "
                    f"guard refuses the repeats themselves\n"
                    f"kind: Budget\nname: {policy_name('run-steps', agent)}\n"
                    f"scope: {cel_string(f'ctx.agent == {cel_string(agent)}')}\nmax_calls: {max_keys}\n"
                    f"per: [run]\nwindow: lifetime\ndescription: {cel_string(description)}\n")
        findings.append(Finding(
            detector=NAME,
            title=f"agent {agent} repeats {loops.duplicates} near-identical requests within "
                  f"{loops.looping_runs} of {summary.runs} runs",
            scope={"agent": agent, **({"team": team} if team else {})},
            evidence={"runs": summary.runs, "looping_runs": loops.looping_runs, "duplicates": loops.duplicates,
                      "calls": summary.calls, "longest_loop": loops.longest,
                      "steps_per_run_median": steps[len(steps) // 2], "steps_per_run_max": steps[-1],
                      "distinct_requests_per_run_max": max_keys,
                      "loop_guard_threshold": inputs.config.gateway.loop_threshold},
            observed_saving_nano=loops.cost, monthly_saving_nano=per_month, document=document,
        ))
    return findings

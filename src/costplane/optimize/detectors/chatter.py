"""Agent chatter: near-duplicate requests repeated within one agent run (tool-call loops).

Two requests of a run are near-duplicates when their normalised request hash is equal (the hash the
gateway's loop guard counts: decision input `request_hash`). Every repeat after the first in a run
is a duplicate; their cost is the saving. The finding needs `min_duplicates` duplicates that are at
least `min_share_percent` of the agent's calls. Evidence: runs with loops, the longest loop, steps
per run.

The emitted document is a per-run call budget for the agent (`max_calls` = the most *distinct*
requests any of its runs needed, `per: [run]`, lifetime) — it caps loops without cutting a run that
does not repeat itself — with a comment recommending the gateway's loop guard
(`gateway.loop_threshold`), which refuses the repeats themselves.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from costplane.money import format_usd
from costplane.optimize.agentruns import AgentRun, agent_runs
from costplane.optimize.findings import DetectorInput, Finding, cel_string, monthly, policy_name
from costplane.optimize.history import History, RecordedRequest

__all__ = ["NAME", "ChatterSettings", "detect"]

NAME = "agent_chatter"


@dataclass(frozen=True, slots=True)
class ChatterSettings:
    min_duplicates: int = 10
    min_share_percent: int = 5
    loop_guard_threshold: int = 3  # the loop_threshold the comment recommends
    min_monthly_saving_nano: int = 1_000_000_000  # $1


def _key(request: RecordedRequest) -> str:
    value = request.decision.input.get("request_hash")
    if isinstance(value, str) and value:
        return value
    return next((e.request_hash for e in request.events if e.request_hash), request.decision.id)


@dataclass(slots=True)
class _Tally:
    calls: int = 0
    duplicates: int = 0
    saving: int = 0
    looping_runs: int = 0
    longest: int = 0
    max_distinct: int = 0


def _tally(runs: list[AgentRun]) -> _Tally:
    tally = _Tally()
    for run in runs:
        seen: Counter[str] = Counter()
        for request in run.requests:
            key = _key(request)
            if seen[key]:
                tally.duplicates += 1
                tally.saving += request.cost_nano
            seen[key] += 1
        tally.calls += run.calls
        tally.max_distinct = max(tally.max_distinct, len(seen))
        repeats = max(seen.values()) - 1
        tally.longest = max(tally.longest, repeats)
        tally.looping_runs += repeats > 0
    return tally


def detect(history: History, inputs: DetectorInput, settings: ChatterSettings | None = None) -> list[Finding]:
    settings = settings or ChatterSettings()
    findings = []
    for agent, runs in agent_runs(history).items():
        tally = _tally(runs)
        per_month = monthly(tally.saving, history.seconds)
        if (tally.duplicates < settings.min_duplicates or per_month < settings.min_monthly_saving_nano
                or tally.duplicates * 100 < settings.min_share_percent * tally.calls):
            continue
        team = runs[0].team()
        steps = sorted(r.calls for r in runs)
        description = (f"runs of agent {agent} stop repeating themselves (costplane recommend: {NAME}, "
                       f"est. {format_usd(per_month)} USD/month)")
        document = (f"# also set gateway.loop_threshold: {settings.loop_guard_threshold} in costplane.yaml: the loop "
                    f"guard refuses the repeats themselves\n"
                    f"kind: Budget\nname: {policy_name('run-steps', agent)}\n"
                    f"scope: {cel_string(f'ctx.agent == {cel_string(agent)}')}\nmax_calls: {tally.max_distinct}\n"
                    f"per: [run]\nwindow: lifetime\ndescription: {cel_string(description)}\n")
        findings.append(Finding(
            detector=NAME,
            title=f"agent {agent} repeats {tally.duplicates} near-identical requests within "
                  f"{tally.looping_runs} of {len(runs)} runs",
            scope={"agent": agent, **({"team": team} if team else {})},
            evidence={"runs": len(runs), "looping_runs": tally.looping_runs, "duplicates": tally.duplicates,
                      "calls": tally.calls, "longest_loop": tally.longest,
                      "steps_per_run_median": steps[len(steps) // 2], "steps_per_run_max": steps[-1],
                      "distinct_requests_per_run_max": tally.max_distinct,
                      "loop_guard_threshold": inputs.config.gateway.loop_threshold},
            observed_saving_nano=tally.saving, monthly_saving_nano=per_month, document=document,
        ))
    return findings

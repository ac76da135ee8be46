"""Agent runs as the run-level detectors see them: each agent's admitted, charged requests per run."""

from __future__ import annotations

from dataclasses import dataclass

from costplane.optimize.history import History, RecordedRequest

__all__ = ["AgentRun", "agent_runs"]


@dataclass(frozen=True, slots=True)
class AgentRun:
    agent: str
    run: str
    requests: tuple[RecordedRequest, ...]  # time order

    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def cost_nano(self) -> int:
        return sum(r.cost_nano for r in self.requests)

    def team(self) -> str | None:
        return next((r.decision.context.team for r in self.requests if r.decision.context.team), None)


def agent_runs(history: History) -> dict[str, list[AgentRun]]:
    """agent -> its runs (by first request time); only admitted requests that were charged (events)."""
    grouped: dict[tuple[str, str], list[RecordedRequest]] = {}
    for request in history.requests:
        ctx = request.decision.context
        if ctx.agent and ctx.run and request.admitted and request.events and not request.cached:
            grouped.setdefault((ctx.agent, ctx.run), []).append(request)
    runs: dict[str, list[AgentRun]] = {}
    for (agent, run), requests in grouped.items():
        runs.setdefault(agent, []).append(AgentRun(agent, run, tuple(requests)))
    for agent_list in runs.values():
        agent_list.sort(key=lambda r: (r.requests[0].ts, r.run))
    return dict(sorted(runs.items()))

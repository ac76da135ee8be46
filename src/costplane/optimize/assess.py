"""Capability assessment: score the seven capabilities 1-5 from what costplane enforces and records.

`observe(store, bundle, since, until)` gathers the facts; `assess(observations, answers)` applies the
rubric (docs/optimize.md) and returns, per capability, the observed score, the evidence, the gaps
and next steps. `answers` are the worksheet's yes/no answers for what the ledger cannot show; a
"yes" raises the score to that question's level at most (reported as `declared`, next to `observed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from costplane.ledger.codec import to_us
from costplane.ledger.contracts_admin import Credentials, Environments
from costplane.ledger.contracts_analytics import AnalyticsReads
from costplane.ledger.contracts_records import RunLedger
from costplane.policy.bundle import Bundle

__all__ = [
    "CAPABILITIES",
    "QUESTIONS",
    "Assessment",
    "AssessmentReads",
    "Observations",
    "Question",
    "Score",
    "assess",
    "observe",
    "render_markdown",
]

_ALL = 2_000_000_000

CAPABILITIES: tuple[tuple[str, str], ...] = (
    ("enforcement", "Real-time cost enforcement"),
    ("attribution", "Contextual attribution"),
    ("policy_as_code", "Policy-as-code for spend"),
    ("optimization", "AI-aware optimization"),
    ("lifecycle", "Lifecycle governance"),
    ("pipelines", "Pipelined cost tracking"),
    ("visibility", "Self-service visibility"),
)


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    capability: str
    level: int
    text: str


QUESTIONS: tuple[Question, ...] = (
    Question("replay_before_enable", "policy_as_code", 5, "Are policy changes replayed against history "
             "(`costplane policy replay`) before they are switched on?"),
    Question("recommendations_reviewed", "optimization", 4, "Are `costplane recommend` findings reviewed "
             "and turned into policies on a schedule?"),
    Question("non_llm_environments", "lifecycle", 3, "Are all non-LLM environments (GPU, notebooks, "
             "clusters) launched only through governed blueprints?"),
    Question("iac_gate", "lifecycle", 4, "Does CI run `costplane iac check` on every infrastructure plan?"),
    Question("dashboards", "visibility", 4, "Do teams see their own live spend (dashboard, CLI, response "
             "headers) without asking FinOps?"),
    Question("alerts_exports", "visibility", 5, "Are budget alerts routed to the owning team and spend "
             "exported (FOCUS/metrics) to the company's reporting?"),
)


@dataclass(frozen=True, slots=True)
class Observations:
    events: int = 0
    spend_nano: int = 0
    admitted_nano: int = 0  # spend whose event carries a decision id
    team_nano: int = 0  # spend with a team
    full_context_nano: int = 0  # team + (project or owner) + (run or agent)
    run_nano: int = 0  # spend with a run
    saved_nano: int = 0
    decisions: int = 0
    decision_hooks: tuple[str, ...] = ()
    optimizing_decisions: int = 0  # route or mutate effects
    bundle_loaded: bool = False
    policies: int = 0
    policy_hooks: tuple[str, ...] = ()
    optimizing_policies: int = 0  # route or mutate policies
    tests: int = 0
    tested_policies: int = 0
    budgets: int = 0
    hard_budgets: int = 0
    alerting_budgets: int = 0
    blueprints: int = 0
    slos: int = 0
    environments: int = 0
    governed_environments: int = 0  # with a decision, a TTL and a max TTL
    idle_ruled_environments: int = 0
    run_trees: int = 0
    outcomes: int = 0
    attributed_keys: int = 0
    open_findings_nano: int = 0  # monthly saving the detectors still find
    since: datetime | None = None  # start of the assessed window (UTC)


@dataclass(frozen=True, slots=True)
class Score:
    capability: str
    title: str
    observed: int
    declared: int
    evidence: tuple[str, ...]
    gaps: tuple[str, ...]
    next_steps: tuple[str, ...]

    @property
    def score(self) -> int:
        return max(self.observed, self.declared)


@dataclass(frozen=True, slots=True)
class Assessment:
    scores: tuple[Score, ...]
    observations: Observations
    answers: Mapping[str, bool] = field(default_factory=dict)

    @property
    def warnings(self) -> tuple[str, ...]:
        """What makes the scores read worse than the organisation may be: a window with no spend."""
        if self.observations.events:
            return ()
        since = self.observations.since
        window = "" if since is None else f" since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        return (f"no cost events{window}: the spend shares (enforcement, attribution, pipelines) have nothing "
                "to measure and read 0%; widen --since, or send traffic through the gateway",)

    def to_json(self) -> dict[str, Any]:
        return {
            "scores": [{"capability": s.capability, "title": s.title, "score": s.score, "observed": s.observed,
                        "declared": s.declared, "evidence": list(s.evidence), "gaps": list(s.gaps),
                        "next_steps": list(s.next_steps)} for s in self.scores],
            "average": f"{sum(s.score for s in self.scores) / len(self.scores):.1f}",
            "answers": dict(self.answers),
            "warnings": list(self.warnings),
        }


class AssessmentReads(AnalyticsReads, Environments, RunLedger, Credentials, Protocol):
    """What the assessment reads: the spend and decision shares, environments, run trees and
    outcomes, and the keys."""


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _pct(part: int, whole: int) -> str:
    return f"{100 * _share(part, whole):.0f}%"


def observe(store: AssessmentReads, bundle: Bundle | None, since: datetime, *,
            open_findings_nano: int = 0) -> Observations:
    """Read what the ledger and the bundle show (read-only)."""
    since_us = to_us(since)
    shares = store.assess_spend(since_us)
    decisions = store.assess_decisions(since_us)
    envs = store.list_environments(limit=_ALL)
    governed = [e for e in envs if e.decision_id and e.lifecycle.get("ttl") and e.lifecycle.get("max_ttl")]
    tested: set[str] = set()
    if bundle is not None:
        for test in bundle.tests:
            for key in ("policies", "notify"):
                names = test.expect.get(key)
                if isinstance(names, Sequence) and not isinstance(names, str):
                    tested.update(str(n) for n in names)
    policies = bundle.policies if bundle else ()
    budgets = bundle.budgets if bundle else ()
    return Observations(
        events=shares.events, spend_nano=shares.cost_nano, admitted_nano=shares.with_decision_nano,
        team_nano=shares.with_team_nano, full_context_nano=shares.attributed_nano, run_nano=shares.with_run_nano,
        saved_nano=shares.saved_nano, decisions=sum(d.decisions for d in decisions),
        decision_hooks=tuple(sorted({d.hook for d in decisions})),
        optimizing_decisions=sum(d.decisions for d in decisions if d.effect in ("route", "mutate")),
        bundle_loaded=bundle is not None, policies=len(policies),
        policy_hooks=tuple(sorted({p.hook for p in policies})),
        optimizing_policies=sum(1 for p in policies if p.effect in ("route", "mutate")),
        tests=len(bundle.tests) if bundle else 0, tested_policies=len(tested & {p.name for p in policies}),
        budgets=len(budgets), hard_budgets=sum(1 for b in budgets if b.hard),
        alerting_budgets=sum(1 for b in budgets if b.alerts), blueprints=len(bundle.blueprints) if bundle else 0,
        slos=len(bundle.slos) if bundle else 0, environments=len(envs), governed_environments=len(governed),
        idle_ruled_environments=sum(1 for e in envs if e.lifecycle.get("idle")),
        run_trees=len(store.run_roots(since=since, limit=_ALL)), outcomes=len(store.list_outcomes(since=since)),
        attributed_keys=sum(1 for k in store.list_keys() if k.attributes.get("team")),
        open_findings_nano=open_findings_nano, since=since,
    )


def _level(checks: Sequence[tuple[bool, str, str]]) -> tuple[int, list[str]]:
    """Levels 2..5 in order: (met, gap, next step); the score is 1 + the levels met in a row."""
    score, gaps = 1, list[str]()
    for met, gap, step in checks:
        if met and not gaps:
            score += 1
        elif not met:
            gaps.append(f"{gap}|{step}")
    return score, gaps


def _scores(o: Observations) -> dict[str, tuple[int, list[str], list[str]]]:
    a = _share(o.admitted_nano, o.spend_nano)
    hooks = set(o.decision_hooks) | set(o.policy_hooks)
    coverage = _share(o.tested_policies, o.policies)
    run_share = _share(o.run_nano, o.spend_nano)
    monthly_spend = o.spend_nano
    rubric: dict[str, list[tuple[bool, str, str]]] = {
        "enforcement": [
            (a >= 0.10, "under 10% of spend passed an admission decision", "send LLM traffic through the gateway"),
            (a >= 0.50, "under half of spend passed an admission decision", "route the remaining teams' keys "
             "through the gateway or the SDK"),
            (a >= 0.90 and o.hard_budgets > 0, "no hard budget, or under 90% admitted spend",
             "declare hard budgets for every team"),
            (a >= 0.99 and len(hooks) >= 2, "enforcement at one hook only, or under 99% admitted spend",
             "govern environments (environment.launch) and IaC plans (iac.plan) too"),
        ],
        "attribution": [
            (_share(o.team_nano, o.spend_nano) >= 0.5, "under half of spend has a team", "bind a team to every key"),
            (_share(o.team_nano, o.spend_nano) >= 0.9, "under 90% of spend has a team", "bind a team to every key"),
            (_share(o.full_context_nano, o.spend_nano) >= 0.7, "under 70% of spend has full context "
             "(team + project/owner + run/agent)", "send x-costplane-run / agent headers or use the SDK context"),
            (_share(o.full_context_nano, o.spend_nano) >= 0.95, "under 95% of spend has full context",
             "instrument the remaining agents with the SDK or OTLP"),
        ],
        "policy_as_code": [
            (o.policies + o.budgets > 0, "no policy bundle is configured",
             "write a bundle (costplane policy validate)"),
            (o.tests > 0, "no PolicyTest cases", "add PolicyTest cases and run `costplane policy test` in CI"),
            (coverage >= 0.5, f"only {_pct(o.tested_policies, o.policies)} of policies are named by a test",
             "name every policy in some PolicyTest's expect.policies"),
            (coverage >= 0.9 and len(o.policy_hooks) >= 2, "policy tests cover under 90% of policies, or policies "
             "at one hook only", "cover every policy with a test; add environment or IaC policies"),
        ],
        "optimization": [
            (o.optimizing_policies > 0, "no route or mutate policy", "add routing / cache / max_tokens policies"),
            (o.optimizing_decisions > 0, "no request was routed or mutated in the window",
             "check the routing policies' conditions against real traffic (policy replay)"),
            (o.saved_nano > 0, "no saving recorded (reroutes, cache hits)", "enable the response cache for "
             "deterministic agents"),
            (o.saved_nano > 0 and o.open_findings_nano * 100 <= monthly_spend, "the detectors still find "
             "savings above 1% of spend", "apply `costplane recommend`'s policies after replaying them"),
        ],
        "lifecycle": [
            (o.blueprints > 0, "no blueprints", "declare governed blueprints with TTLs"),
            (o.environments > 0, "no environment was launched from a blueprint", "launch environments with "
             "`costplane env launch`"),
            (o.environments > 0 and o.governed_environments == o.environments, "environments without a "
             "decision, TTL or max TTL", "give every blueprint a ttl and max_ttl"),
            (o.environments > 0 and o.idle_ruled_environments * 2 >= o.environments, "under half of "
             "environments have an idle rule", "add idle rules to the blueprints"),
        ],
        "pipelines": [
            (run_share >= 0.10 or o.run_trees > 0, "under 10% of spend carries a run", "send x-costplane-run"),
            (o.run_trees > 0, "no run trees", "use the SDK's run/step context or OTLP spans"),
            (run_share >= 0.5 and o.outcomes > 0, "under half of spend in runs, or no outcomes",
             "report outcomes (costplane outcomes report)"),
            (run_share >= 0.9 and o.outcomes > 0 and o.slos > 0, "no economic SLO, or under 90% of spend in runs",
             "declare economic SLOs (cost per outcome)"),
        ],
        "visibility": [
            (o.events > 0, "no spend recorded yet", "put the gateway in the path"),
            (o.attributed_keys > 0, "no key is bound to a team", "issue per-team keys (costplane keys create)"),
            (o.alerting_budgets > 0, "no budget has alert thresholds", "add alerts: [50, 80, 100] to budgets"),
        ],
    }
    out: dict[str, tuple[int, list[str], list[str]]] = {}
    for capability, checks in rubric.items():
        score, raw = _level(checks)
        out[capability] = (score, [g.split("|")[0] for g in raw], [g.split("|")[1] for g in raw])
    return out


def _evidence(o: Observations) -> dict[str, list[str]]:
    return {
        "enforcement": [f"{_pct(o.admitted_nano, o.spend_nano)} of spend passed an admission decision",
                        f"{o.hard_budgets} of {o.budgets} budgets are hard",
                        f"hooks in use: {', '.join(sorted(set(o.decision_hooks) | set(o.policy_hooks))) or 'none'}"],
        "attribution": [f"{_pct(o.team_nano, o.spend_nano)} of spend has a team",
                        f"{_pct(o.full_context_nano, o.spend_nano)} has team + project/owner + run/agent"],
        "policy_as_code": [f"{o.policies} policies, {o.budgets} budgets, {o.tests} tests",
                           f"{o.tested_policies} of {o.policies} policies named by a test"],
        "optimization": [f"{o.optimizing_policies} route/mutate policies, {o.optimizing_decisions} such decisions",
                         f"saved {o.saved_nano} nano-USD", f"open findings: {o.open_findings_nano} nano-USD/month"],
        "lifecycle": [f"{o.blueprints} blueprints, {o.environments} environments "
                      f"({o.governed_environments} with decision + TTL + max TTL, {o.idle_ruled_environments} "
                      "with an idle rule)"],
        "pipelines": [f"{_pct(o.run_nano, o.spend_nano)} of spend carries a run", f"{o.run_trees} run trees, "
                      f"{o.outcomes} outcomes, {o.slos} SLOs"],
        "visibility": [f"{o.events} cost events", f"{o.attributed_keys} keys bound to a team",
                       f"{o.alerting_budgets} budgets with alerts"],
    }


def assess(observations: Observations, answers: Mapping[str, bool] | None = None) -> Assessment:
    answers = dict(answers or {})
    computed, evidence = _scores(observations), _evidence(observations)
    scores = []
    for capability, title in CAPABILITIES:
        observed, gaps, steps = computed[capability]
        declared = max((q.level for q in QUESTIONS if q.capability == capability and answers.get(q.id)), default=0)
        declared = min(declared, observed + 1)  # a worksheet answer lifts by one level at most
        scores.append(Score(capability, title, observed, declared, tuple(evidence[capability]), tuple(gaps),
                            tuple(steps)))
    return Assessment(tuple(scores), observations, answers)


def render_markdown(assessment: Assessment) -> str:
    lines = ["# costplane capability assessment", "", "| capability | score | observed | declared |",
             "|---|---|---|---|"]
    if assessment.warnings:
        lines[1:1] = ["", *[f"> **Note:** {w}" for w in assessment.warnings]]
    for s in assessment.scores:
        lines.append(f"| {s.title} | {s.score} | {s.observed} | {s.declared or '-'} |")
    lines += ["", f"Average: {assessment.to_json()['average']} / 5", ""]
    for s in assessment.scores:
        lines += [f"## {s.title}: {s.score}/5", "", *[f"- {e}" for e in s.evidence], ""]
        if s.gaps:
            steps = zip(s.gaps, s.next_steps, strict=True)
            lines += ["Gaps and next steps:", "", *[f"- {g} → {n}" for g, n in steps], ""]
    return "\n".join(lines)

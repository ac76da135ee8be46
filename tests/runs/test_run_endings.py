"""How runs ended, derived from the ledger (runs.ending), on SQLite and PostgreSQL (the `store` fixture
runs each test on both): a run seen only through the gateway and stopped by a budget, the loop guard,
a call limit, a policy or a concurrency limit shows `stopped` with the decision that stopped it, its
agent or pipeline and its start time; a refused run that went on is ok; an admitted call with no
response is running (reservation open) or error (released); SDK runs keep their own status unless
a gateway refusal ended them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from costplane.attribution.context import Context
from costplane.ledger import Store
from costplane.ledger.runtypes import RunNode
from costplane.ledger.types import CostEvent, DecisionRecord, Reservation
from costplane.pricing.types import TokenUsage
from costplane.runs.tree import build_tree, list_runs

T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)


def _ctx(run: str, **dims: str) -> Context:
    return Context(team="ml", project="p1", agent=dims.get("agent"), pipeline=dims.get("pipeline"), run=run)


class Gateway:
    """Writes what the decision core writes for one run: admissions with a reservation settled into a
    cost event, and denials."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.n = 0

    def call(self, ctx: Context, at: datetime, *, end: str = "settle", latency_ms: int = 200) -> str:
        self.n += 1
        dec, res = f"dec-{self.n}", f"res-{self.n}"
        record = DecisionRecord(dec, at, "llm.request", "allow", "r1", ctx, {}, {"reservation_id": res})
        self.store.reserve(Reservation(res, (), at, at + timedelta(minutes=5), dec), record)
        if end == "settle":
            event = CostEvent(f"evt-{self.n}", at + timedelta(milliseconds=latency_ms), ctx, "openai", "gpt-4o-mini",
                              1_000, usage=TokenUsage(10, 5), decision_id=dec, reservation_id=res,
                              latency_ms=latency_ms)
            self.store.settle(res, event)
        elif end == "release":
            self.store.release(res)
        return dec

    def deny(self, ctx: Context, at: datetime, code: str, status: int, reason: str,
             result: Mapping[str, Any] | None = None, policies: tuple[str, ...] = ()) -> str:
        self.n += 1
        dec = f"dec-{self.n}"
        self.store.record_decision(DecisionRecord(dec, at, "llm.request", "deny", "r1", ctx, {},
                                                  {"code": code, **(result or {})}, policies=policies,
                                                  reason=reason, status_code=status))
        return dec


STOPS: list[tuple[str, str, int, dict[str, Any], tuple[str, ...], str, str | None]] = [
    ("budget_exceeded", "budget 'agent-run-limits' [run=r] exceeded", 402,
     {"budget": "agent-run-limits", "limit": "amount"}, (), "budget", "agent-run-limits"),
    ("loop_detected", "loop detected in run 'r'", 429, {"repeats": 4}, (), "loop_guard", None),
    ("call_limit_exceeded", "budget 'agent-run-limits' [run=r]: 41 calls > limit 40", 429,
     {"budget": "agent-run-limits", "limit": "calls"}, (), "call_limit", "agent-run-limits"),
    ("policy_denied", "denied by policy 'no-reasoning': reasoning models are not available", 403, {},
     ("cheap-route", "no-reasoning"), "policy", "no-reasoning"),
    ("concurrency_limit", "budget 'one-at-a-time': 2 concurrent requests > limit 1", 429,
     {"budget": "one-at-a-time", "limit": "concurrent"}, (), "concurrency", "one-at-a-time"),
]


@pytest.mark.parametrize(("code", "reason", "status", "result", "policies", "kind", "name"), STOPS,
                         ids=[s[5] for s in STOPS])
def test_a_gateway_only_run_stopped_by_a_denial(store: Store, code: str, reason: str, status: int,
                                                 result: dict[str, Any], policies: tuple[str, ...], kind: str,
                                                 name: str | None) -> None:
    gw = Gateway(store)
    ctx = _ctx("r-stop", agent="research-agent")
    for i in range(3):
        gw.call(ctx, T0 + timedelta(seconds=i))
    denial = gw.deny(ctx, T0 + timedelta(seconds=5), code, status, reason, result, policies)
    gw.call(_ctx("r-other", pipeline="kb-index"), T0 + timedelta(seconds=6))  # another run, still ok

    runs = {r.run: r for r in list_runs(store)}
    run = runs["r-stop"]
    assert run.status == "stopped" and run.agent == "research-agent" and run.kind == "run"
    assert run.started_at == T0 - timedelta(milliseconds=0)  # the first admission, before its event
    assert run.events == 3 and run.cost_nano == 3_000
    assert run.stopped_by is not None
    assert dict(run.stopped_by) == {"kind": kind, "name": name, "decision_id": denial, "code": code,
                                    "at": (T0 + timedelta(seconds=5)).isoformat(), "reason": reason}
    other = runs["r-other"]
    assert other.status == "ok" and other.stopped_by is None and other.pipeline == "kb-index"
    assert [r.run for r in list_runs(store)] == ["r-other", "r-stop"]  # newest start first

    tree = build_tree(store, "r-stop")
    assert tree is not None and tree.status == "stopped" and tree.stopped_by == run.stopped_by
    assert tree.started_at == T0 and tree.attributes["agent"] == "research-agent"
    leaf = tree.children[-1]
    assert (leaf.kind, leaf.name, leaf.attributes["decision_id"]) == ("denial", code, denial)
    assert tree.to_json()["stopped_by"]["decision_id"] == denial


def test_a_run_refused_on_its_first_call_is_listed(store: Store) -> None:
    gw = Gateway(store)
    denial = gw.deny(_ctx("r-deep", agent="research-agent"), T0, "budget_exceeded", 402, "budget 'b' exceeded",
                     {"budget": "b"})
    (run,) = list_runs(store)
    assert (run.run, run.status, run.agent, run.started_at, run.events) == ("r-deep", "stopped", "research-agent",
                                                                            T0, 0)
    assert run.stopped_by is not None and run.stopped_by["decision_id"] == denial
    tree = build_tree(store, "r-deep")
    assert tree is not None and tree.status == "stopped" and [c.kind for c in tree.children] == ["denial"]
    assert build_tree(store, "r-unknown") is None


def test_refused_then_admitted_again_is_ok_and_late_settlements_do_not_resume(store: Store) -> None:
    gw = Gateway(store)
    went_on = _ctx("r-on", agent="a")
    gw.call(went_on, T0)
    gw.deny(went_on, T0 + timedelta(seconds=1), "loop_detected", 429, "loop")
    gw.call(went_on, T0 + timedelta(seconds=2))  # the agent changed its prompt and carried on
    slow = _ctx("r-slow", agent="a")
    gw.call(slow, T0, latency_ms=9_000)  # admitted first, settled after the denial
    gw.deny(slow, T0 + timedelta(seconds=1), "budget_exceeded", 402, "budget 'b' exceeded", {"budget": "b"})
    store.record_nodes([], [CostEvent("otel-1", T0 + timedelta(seconds=8), slow, "openai", "gpt-4o-mini", 0,
                                      status="superseded")])  # the slow call's span, counted by the gateway
    direct = _ctx("r-direct", agent="a")
    gw.deny(direct, T0, "budget_exceeded", 402, "budget 'b' exceeded", {"budget": "b"})
    store.record_nodes([], [CostEvent("sdk-1", T0 + timedelta(seconds=3), direct, "openai", "gpt-4o-mini", 7)])
    runs = {r.run: r for r in list_runs(store)}
    assert runs["r-on"].status == "ok" and runs["r-on"].stopped_by is None
    assert runs["r-slow"].status == "stopped" and runs["r-slow"].events == 1
    slow_tree = build_tree(store, "r-slow")
    assert slow_tree is not None and [c.kind for c in slow_tree.children] == ["llm", "denial"]
    assert runs["r-direct"].status == "ok"  # spend recorded without a reservation after the denial: it went on


def test_running_and_error_from_the_latest_admission(store: Store) -> None:
    gw = Gateway(store)
    gw.call(_ctx("r-live", agent="a"), T0)
    gw.call(_ctx("r-live", agent="a"), T0 + timedelta(seconds=1), end="open")
    gw.call(_ctx("r-fail", agent="a"), T0)
    gw.call(_ctx("r-fail", agent="a"), T0 + timedelta(seconds=1), end="release")  # the upstream failed
    runs = {r.run: r for r in list_runs(store)}
    assert runs["r-live"].status == "running" and runs["r-live"].ended_at is None
    assert runs["r-fail"].status == "error" and runs["r-fail"].ended_at == T0 + timedelta(seconds=1)
    tree = build_tree(store, "r-live")
    assert tree is not None and tree.status == "running"


def test_sdk_runs_keep_their_status_unless_a_refusal_ended_them(store: Store) -> None:
    gw = Gateway(store)
    nodes = []
    for run, status in (("sdk-err", "error"), ("sdk-ok", "ok"), ("sdk-guard", "stopped")):
        ctx = _ctx(run, agent="sdk-bot")
        attributes = {"error": "BudgetExceeded: agent run 'x' stopped before call"} if status == "stopped" else {}
        nodes.append(RunNode(run, run, "agent", "sdk-bot", T0, ended_at=T0 + timedelta(seconds=9), status=status,
                             context=ctx, attributes=attributes))
        gw.call(ctx, T0 + timedelta(seconds=1))
    denial = gw.deny(_ctx("sdk-err", agent="sdk-bot"), T0 + timedelta(seconds=2), "call_limit_exceeded", 429,
                     "41 calls > limit 40", {"budget": "agent-run-limits"})
    gw.deny(_ctx("sdk-ok", agent="sdk-bot"), T0 + timedelta(seconds=2), "call_limit_exceeded", 429,
            "41 calls > limit 40", {"budget": "agent-run-limits"})
    store.record_nodes(nodes)
    runs = {r.run: r for r in list_runs(store)}
    assert runs["sdk-err"].status == "stopped" and runs["sdk-err"].stopped_by is not None
    assert runs["sdk-err"].stopped_by["decision_id"] == denial and runs["sdk-err"].kind == "agent"
    assert runs["sdk-ok"].status == "ok" and runs["sdk-ok"].stopped_by is None  # the program handled it
    guard = runs["sdk-guard"].stopped_by
    assert runs["sdk-guard"].status == "stopped" and guard is not None
    assert (guard["kind"], guard["code"], guard["decision_id"]) == ("budget", "BudgetExceeded", None)
    assert all(r.started_at == T0 and r.agent == "sdk-bot" and r.events == 1 for r in runs.values())


def test_the_list_reads_a_constant_number_of_statements(store: Store) -> None:
    gw = Gateway(store)
    for i in range(30):
        ctx = _ctx(f"r-{i:02d}", agent="a")
        gw.call(ctx, T0 + timedelta(seconds=i))
        if i % 3 == 0:
            gw.deny(ctx, T0 + timedelta(seconds=i, milliseconds=500), "loop_detected", 429, "loop")
    calls: list[str] = []
    for name in ("run_roots", "run_members", "run_activity", "latest_decisions", "reservation_statuses",
                 "run_nodes", "run_events", "spend"):
        original = getattr(store, name)

        def counted(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kwargs)

        setattr(store, name, counted)
    runs = list_runs(store, limit=20)
    assert len(runs) == 20 and runs[0].run == "r-29"
    assert sum(r.status == "stopped" for r in runs) == 6  # 27, 24, …, 12
    assert "run_nodes" not in calls and "run_events" not in calls and len(calls) <= 5

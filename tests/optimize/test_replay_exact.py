"""Replay under the unchanged bundle gives the live decisions back, exactly.

Random traffic is decided live by the decision core on a SQLite store (hard, soft, rolling, calendar
and per-run budgets, call and concurrency limits, route on exceed, route / mutate / deny policies, the
loop guard), with calls in flight while later ones are decided and settled when they finish. The
recorded day is then streamed from the store and replayed through `optimize.replay` under the same
bundle: every decision's effect, status, model, result, budgets and policies — and every denial's
code — are those of the live decision, and the replay report shows no change and no saving.
"""

from __future__ import annotations

import heapq
import tempfile
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costplane.attribution.context import Context
from costplane.config import parse_config
from costplane.core.bundle_state import ActiveBundle
from costplane.core.decision import DecisionCore
from costplane.core.requests import Admission, LlmRequest
from costplane.ledger.open import open_store
from costplane.ledger.store import Store
from costplane.ledger.types import DecisionRecord
from costplane.optimize.replay import Replayer, ReplayReport, replay_store
from costplane.optimize.stream import event_lag, iter_requests
from costplane.policy.bundle import Bundle, load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.pricing.catalog import Catalog
from costplane.pricing.types import TokenUsage

BUNDLE = """
kind: Policy
name: small-for-batch
on: llm.request
when: ctx.tier == "batch"
effect: route
set: {model: gpt-4o-mini}
---
kind: Policy
name: cap-experiments
on: llm.request
when: ctx.tier == "experiment"
effect: mutate
set: {max_tokens: 300}
---
kind: Policy
name: no-huge-prompts
on: llm.request
when: request.input_tokens > 7000
effect: deny
reason: prompts over 7000 tokens are refused
---
kind: Budget
name: team-a-hourly
scope: ctx.team == "a"
amount: 0.04 USD
window: {rolling: 1h}
on_exceed: {route: gpt-4o-mini}
---
kind: Budget
name: team-b-daily
scope: ctx.team == "b"
amount: 0.03 USD
window: {calendar: day, timezone: Europe/Paris}
---
kind: Budget
name: run-limits
scope: ctx.run != ""
per: [run]
max_calls: 6
max_concurrent: 2
---
kind: Budget
name: everything-soft
amount: 0.02 USD
enforcement: soft
"""
START = datetime(2026, 3, 28, 21, 0, tzinfo=UTC)  # the Paris day ends within the recording (and DST starts)
CONFIG = parse_config({
    "providers": {"oa": {"type": "openai", "base_url": "http://127.0.0.1:1/v1", "models": ["gpt-*"]}},
    "gateway": {"loop_threshold": 3, "loop_window": "10m"},
})
CATALOG = Catalog.load()

call = st.tuples(
    st.sampled_from(("a", "b", "c")),  # team
    st.sampled_from(("", "r1", "r2")),  # run
    st.sampled_from(("", "batch", "experiment")),  # tier
    st.sampled_from(("gpt-4o", "gpt-4o-mini")),
    st.sampled_from((200, 1_500, 4_000, 8_000)),  # input tokens
    st.sampled_from((None, 150, 1_000)),  # max_tokens
    st.sampled_from((None, "h1", "h2")),  # loop hash
    st.sampled_from((0, 5, 40, 300, 1_800)),  # seconds since the previous call
    st.sampled_from((0, 2, 30, 200)),  # seconds in flight (0 with no usage: it failed at once)
    st.sampled_from((0, 1, 2)),  # outcome: failed (released), half the bound, the whole bound
)
# each call repeated 1 to 8 times in a row: bursts reach the call, concurrency and loop limits
calls = st.lists(st.tuples(call, st.integers(1, 8)), min_size=3, max_size=12).map(
    lambda chunks: [one for one, times in chunks for _ in range(times)][:60])


def _record(store: Store, bundle: Bundle, traffic: list[tuple[Any, ...]]) -> datetime:
    """Decide and settle the traffic live; returns when it ended."""
    active = ActiveBundle(bundle.revision, PolicyEngine(bundle), {b.name: b for b in bundle.budgets})
    clock = [START]
    core = DecisionCore(CONFIG, store, CATALOG, lambda: active, clock=lambda: clock[0], store=store)
    inflight: list[tuple[datetime, int, Admission, int]] = []

    def finish_until(at: datetime) -> None:
        while inflight and inflight[0][0] <= at:
            due, _, admission, outcome = heapq.heappop(inflight)
            clock[0] = due
            output = admission.max_tokens * outcome // 2
            core.settle(admission, TokenUsage(admission.request.input_estimate, output))

    now = START
    for n, (team, run, tier, model, tokens, max_tokens, loop, gap, latency, outcome) in enumerate(traffic):
        # a live clock never stands still (decisions of one microsecond are replayed in id order)
        now += timedelta(seconds=gap, milliseconds=1)
        finish_until(now)
        clock[0] = now
        ctx = Context(team=team, run=run or None, tier=tier or None)
        got = core.admit(ctx, LlmRequest("openai", "chat.completions", model, tokens + 50, tokens, max_tokens,
                                         loop_hash=loop))
        if not isinstance(got, Admission):
            continue
        if outcome == 0:
            core.release(got)  # the upstream call failed: nothing spent
        else:
            heapq.heappush(inflight, (now + timedelta(seconds=latency), n, got, outcome))
    finish_until(datetime.max.replace(tzinfo=UTC))
    return now + timedelta(seconds=1)


def _same(live: DecisionRecord, replayed: DecisionRecord | None) -> tuple[Any, ...]:
    assert replayed is not None, f"{live.id} was not decided again"
    drop = ("reservation_id",)
    facts = [(r.effect, r.status_code, r.result.get("code"), {k: v for k, v in r.result.items() if k not in drop},
              r.budgets, r.policies, r.hook, r.bundle_revision, r.context, r.input) for r in (live, replayed)]
    assert facts[0] == facts[1], f"decision {live.id} at {live.ts}: live {facts[0]} != replayed {facts[1]}"
    return facts[0][:3]


EXACT = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow])


@EXACT
@given(traffic=calls)
def test_replay_under_the_unchanged_bundle_reproduces_every_live_decision(traffic: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _record_and_replay(Path(tmp), traffic)


def _record_and_replay(folder: Path, traffic: list[tuple[Any, ...]]) -> None:
    (folder / "bundle").mkdir()
    (folder / "bundle" / "b.yaml").write_text(textwrap.dedent(BUNDLE))
    bundle = load_bundle(folder / "bundle")
    store = open_store(f"sqlite:///{folder / 'ledger.db'}")
    try:
        store.migrate()
        until = _record(store, bundle, traffic)
        live = {d.id: d for d in store.list_decisions(limit=10_000) if d.hook == "llm.request"}
        assert len(live) == len(traffic)
        replayer = Replayer(bundle, CONFIG, CATALOG, ReplayReport(bundle.revision, START, until))
        seen = []
        for request in iter_requests(store, START, until, lag=event_lag(CONFIG), batch=7):
            seen.append(_same(live[request.id], replayer.run(request)))
        replayer.finish()
        assert len(seen) == len(live)
        report = replay_store(store, START, until, bundle, CONFIG, CATALOG, batch=7)
    finally:
        store.close()
    assert (report.changed, report.newly_admitted, report.saved_nano) == (0, 0, 0)
    assert report.recorded_nano == report.replayed_nano
    OUTCOMES.update(code or effect for effect, _, code in seen)


OUTCOMES: set[str] = set()


def test_the_recorded_traffic_reaches_every_kind_of_decision() -> None:
    """The examples above are not vacuous: together they allow, route (by policy and on exceed), mutate,
    and refuse by policy, amount, calls, concurrency and the loop guard."""
    if not OUTCOMES:
        test_replay_under_the_unchanged_bundle_reproduces_every_live_decision()
    assert {"allow", "route", "mutate", "policy_denied", "budget_exceeded", "call_limit_exceeded",
            "concurrency_limit", "loop_detected"} <= OUTCOMES, OUTCOMES

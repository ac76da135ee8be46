"""The decision core without HTTP: admission, worst-case bounds, claims, settlement and notifications."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from costplane.attribution.context import Context
from costplane.config import parse_config
from costplane.core.bundle_state import ActiveBundle
from costplane.core.decision import DecisionCore
from costplane.core.notify import Notification
from costplane.core.requests import Admission, Denial, LlmRequest
from costplane.ledger.open import open_store
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.pricing.catalog import Catalog
from costplane.pricing.types import TokenUsage

BUNDLE = """
kind: Policy
name: big-prompts
on: llm.request
when: request.input_tokens > 1000
effect: notify
reason: a big prompt
---
kind: Policy
name: cap-output
on: llm.request
when: ctx.tier == "experiment"
effect: mutate
set: {max_tokens: 64}
---
kind: Budget
name: soft-team
scope: ctx.team == "soft"
amount: 0.000001 USD
enforcement: soft
---
kind: Budget
name: alerting
scope: ctx.team == "alert"
amount: 0.01 USD
alerts: [50, 100]
"""


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        self.seen.append(notification)


@pytest.fixture
def core(tmp_path: Path) -> tuple[DecisionCore, Recorder]:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "bundle.yaml").write_text(textwrap.dedent(BUNDLE))
    bundle = load_bundle(tmp_path / "b")
    active = ActiveBundle(bundle.revision, PolicyEngine(bundle), {b.name: b for b in bundle.budgets})
    config = parse_config({"providers": {"oa": {"type": "openai", "base_url": "http://127.0.0.1:1/v1",
                                                "models": ["gpt-*"]}}})
    store = open_store(f"sqlite:///{tmp_path}/l.db")
    store.migrate()
    recorder = Recorder()
    fixed = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    return DecisionCore(config, store, Catalog.load(), lambda: active, clock=lambda: fixed, store=store,
                        notifier=recorder), recorder


def request(**overrides: object) -> LlmRequest:
    values: dict[str, object] = {"protocol": "openai", "endpoint": "chat.completions", "model": "gpt-4o-mini",
                                 "input_bound": 100, "input_estimate": 30, "max_tokens": None}
    values.update(overrides)
    return LlmRequest(**values)  # type: ignore[arg-type]


def test_worst_case_uses_policy_cap_then_default(core: tuple[DecisionCore, Recorder]) -> None:
    decision_core, _ = core
    capped = decision_core.admit(Context(tier="experiment"), request(max_tokens=500))
    assert isinstance(capped, Admission) and capped.max_tokens == 64 and capped.effect == "mutate"
    default = decision_core.admit(Context(), request())
    assert isinstance(default, Admission) and default.max_tokens == 4096
    # the reservation is the bound: 100 input tokens at 0.15 and 4096 output tokens at 0.6 USD/MTok
    assert default.worst_nano == 100 * 150 + 4096 * 600


def test_notify_policy_and_soft_budget_notify_but_allow(core: tuple[DecisionCore, Recorder]) -> None:
    decision_core, recorder = core
    admitted = decision_core.admit(Context(team="soft"), request(input_estimate=2000, input_bound=8000))
    assert isinstance(admitted, Admission)
    kinds = {(n.kind, n.subject) for n in recorder.seen}
    assert kinds == {("policy", "big-prompts"), ("soft_budget_exceeded", "soft-team")}
    assert all(n.decision_id == admitted.decision_id for n in recorder.seen)


def test_alert_thresholds_fire_once_when_crossed(core: tuple[DecisionCore, Recorder]) -> None:
    decision_core, recorder = core
    percents = []
    for _ in range(8):  # 8 × 2000 output tokens of gpt-4o-mini = 8 × 0.0012 USD: crosses 50% then 100%
        admitted = decision_core.admit(Context(team="alert"), request(max_tokens=2000))
        if isinstance(admitted, Denial):
            break
        decision_core.settle(admitted, TokenUsage(input_tokens=0, output_tokens=2000))
        percents += [n.data["percent"] for n in recorder.seen if n.kind == "budget_threshold"]
        recorder.seen.clear()
    assert percents == [50]  # the hard limit refuses before spend can reach 100%


def test_unknown_model_is_a_400_and_writes_nothing(core: tuple[DecisionCore, Recorder]) -> None:
    decision_core, _ = core
    denial = decision_core.admit(Context(), request(model="mistral-large"))
    assert isinstance(denial, Denial) and denial.status == 400 and denial.decision_id is None
    assert decision_core.store.list_decisions() == []


def test_unverifiable_spend_fails_closed_unless_every_budget_fails_open(tmp_path: Path) -> None:
    import sqlite3

    from costplane.ledger.sqlite import SqliteStore

    def core_with(bundle_text: str) -> DecisionCore:
        root = tmp_path / f"b{abs(hash(bundle_text))}"
        root.mkdir()
        (root / "bundle.yaml").write_text(textwrap.dedent(bundle_text))
        bundle = load_bundle(root)
        active = ActiveBundle(bundle.revision, PolicyEngine(bundle), {b.name: b for b in bundle.budgets})
        config = parse_config({"providers": {"oa": {"type": "openai", "base_url": "http://127.0.0.1:1/v1"}}})
        store = SqliteStore(tmp_path / "locked.db", busy_timeout_ms=50)
        store.migrate()
        return DecisionCore(config, store, Catalog.load(), lambda: active, notifier=Recorder(), store=store)

    closed = core_with("kind: Budget\nname: strict\namount: 10 USD\n")
    opened = core_with("kind: Budget\nname: lenient\namount: 10 USD\nfail: open\n")
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock: spend cannot be verified
    try:
        denial = closed.admit(Context(), request())
        assert isinstance(denial, Denial)
        assert (denial.status, denial.code) == (503, "spend_unverifiable") and denial.retryable
        allowed = opened.admit(Context(), request())
        assert isinstance(allowed, Admission) and allowed.reservation is None
        assert "fail open" in allowed.reason
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

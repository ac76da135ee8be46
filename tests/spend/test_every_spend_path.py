"""Every spend path records through the decision core: a hard budget with room for N units is
exhausted after N on any path, the next admission is refused (gateway 402, environment launch 402,
the SDK's direct-mode admission), and each alert threshold reaches the webhook exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openai
import pytest

from costplane.attribution.context import Context
from costplane.core.claims import budget_claims
from costplane.core.requests import Denial, LlmRequest
from costplane.httpstatus import denial_status
from costplane.ledger.envtypes import EnvironmentRecord
from costplane.policy.hookschema import DECISION_INPUT_VERSION
from costplane.pricing.types import TokenUsage
from costplane.sdk import agent_run, resource_cost, tool
from costplane.sdk.guards import SpendRefused
from costplane.sdk.session import Session
from store_fixtures import pg_schema
from visibility_harness import Served, WebhookSink, wait_for

UNIT = 1_600_000  # one minute of aws/m6i.large: the unit the budget holds ten of
LIMIT = 10 * UNIT

BUNDLE = f"""
kind: Budget
name: acct-hard
scope: ctx.team == "acct"
amount: {LIMIT / 1e9:.4f} USD
window: lifetime
enforcement: hard
alerts: [50, 80]
---
kind: Blueprint
name: box
resources: [{{kind: instance, sku: aws/m6i.large}}]
driver: {{type: noop}}
lifecycle: {{ttl: 60s, max_ttl: 1h, accrue_every: 60s}}
"""

ASK = [{"role": "user", "content": "One line, please."}]
Spend = Callable[[Served, dict[str, Any]], bool]  # one unit of spend; False: refused at admission


def _spent(served: Served) -> int:
    spec = served.app.bundle.budgets["acct-hard"]
    claims = budget_claims([spec], Context(team="acct"), "", 0, datetime.now(UTC))
    return served.app.store.claim_states(claims)[0].spent_nano


def _gateway(stream: bool) -> Spend:
    def spend(served: Served, state: dict[str, Any]) -> bool:
        client = state.setdefault("client", served.openai(served.key(team="acct")))
        try:
            if stream:
                for _ in client.chat.completions.create(model="gpt-4o", messages=ASK, max_tokens=60, stream=True,
                                                        stream_options={"include_usage": True}):
                    pass
            else:
                client.chat.completions.create(model="gpt-4o", messages=ASK, max_tokens=60)
        except openai.APIStatusError as exc:
            assert exc.status_code == 402, exc
            return False
        return True
    return spend


def _session(served: Served, state: dict[str, Any]) -> Session:
    session: Session = state.setdefault("session", Session(application=served.app))
    return session


def _sdk_direct(served: Served, state: dict[str, Any]) -> bool:
    session = _session(served, state)
    with agent_run("bot", session=session, team="acct"), tool("search", cost_usd="0.0016"):
        pass
    session.flush()
    return True


def _direct_request() -> LlmRequest:
    return LlmRequest("openai", "chat.completions", "gpt-4o", 10, 10, 30)  # worst case 0.000325 USD


def _sdk_admitted(served: Served, state: dict[str, Any]) -> bool:
    """A direct-mode call admitted before it is made (a store session), then settled with its usage."""
    session = _session(served, state)
    try:
        admission = session.admit_llm(Context(team="acct", run="r-direct"), _direct_request())
    except SpendRefused as refused:
        assert refused.code == "budget_exceeded", refused
        return False
    assert admission.max_tokens == 30 and admission.reservation is not None
    session.settle_llm(admission, TokenUsage(input_tokens=10, output_tokens=30))
    return True


def _resource(served: Served, state: dict[str, Any]) -> bool:
    session = _session(served, state)
    with agent_run("trainer", session=session, team="acct"):
        resource_cost("compute", "aws/m6i.large", seconds=60, session=session)
    session.flush()
    return True


def _ingest(served: Served, state: dict[str, Any]) -> bool:
    key = state.setdefault("key", served.key(team="acct"))
    event = {"id": f"evt_{uuid.uuid4().hex}", "provider": "serpapi", "model": "search", "kind": "tool",
             "cost_nano": UNIT, "context": {"run": "r-ingest"}, "ts": datetime.now(UTC).isoformat()}
    response = httpx.post(f"{served.url}/v1/runs/ingest", json={"events": [event]},
                          headers={"authorization": f"Bearer {key}"}, timeout=20)
    assert response.status_code < 300, response.text
    return True


def _otlp(served: Served, state: dict[str, Any]) -> bool:
    key = state.setdefault("key", served.key(team="acct"))
    now = datetime.now(UTC)
    start = int(now.timestamp() * 1e9)
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
             "gen_ai.response.model": "gpt-4o", "gen_ai.usage.input_tokens": 440, "gen_ai.usage.output_tokens": 50}
    span = {"traceId": uuid.uuid4().hex, "spanId": uuid.uuid4().hex[:16], "name": "chat gpt-4o",
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 1_000_000),
            "attributes": [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
                           for k, v in attrs.items()]}
    body = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}
    response = httpx.post(f"{served.url}/v1/traces", json=body, timeout=20,
                          headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200 and "rejected" not in response.text.lower(), response.text
    return True


def _environment(served: Served, state: dict[str, Any]) -> bool:
    core = served.app.environments
    env = state.get("env")
    if env is None:
        env = core.launch(Context(team="acct", owner="dev"), "box", {})
        assert isinstance(env, EnvironmentRecord), env
        state["env"], state["minutes"] = env, 0
    state["minutes"] += 1
    fresh = served.app.store.get_environment(env.id)
    assert fresh is not None and fresh.started_at is not None
    core.accrue(fresh, fresh.started_at + timedelta(minutes=state["minutes"]))
    return True


PATHS: dict[str, Spend] = {"gateway": _gateway(False), "gateway_stream": _gateway(True), "sdk_direct": _sdk_direct,
                           "sdk_admitted": _sdk_admitted,
                           "runs_ingest": _ingest, "otlp": _otlp, "environment_accrual": _environment,
                           "resource_cost": _resource}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backing(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: make_served's SQLite file; else a fresh PostgreSQL schema (dropped after the server stops)."""
    if request.param == "sqlite":
        yield None
        return
    with pg_schema() as url:
        yield url


@pytest.mark.parametrize("path", list(PATHS))
def test_a_hard_budget_is_exhausted_and_alerted_once_on_every_spend_path(
        backing: str | None, path: str, make_served: Callable[..., Served], sink: WebhookSink) -> None:
    _run(path, make_served(BUNDLE, alerts={"webhooks": [{"url": sink.url}]}, store_url=backing), sink)


def _run(path: str, served: Served, sink: WebhookSink) -> None:
    spend, state = PATHS[path], {}
    units, first = 0, 0
    try:
        while _spent(served) < LIMIT and units < 80:
            if not spend(served, state):
                break
            units += 1
            first = first or _spent(served)
    finally:
        if "session" in state:
            state["session"].close()
    spent = _spent(served)
    admitted = path.startswith("gateway") or path == "sdk_admitted"
    if admitted:  # admission holds the worst case: refused before the limit
        assert 0 < spent <= LIMIT and spent > LIMIT * 80 // 100, (spent, units)
    else:  # spend observed after the fact: exactly N units fill the budget
        assert first > 0 and units == -(-LIMIT // first) and spent >= LIMIT, (units, first, spent)
    # the next admission against the budget is refused, on the gateway and for an environment
    with pytest.raises(openai.APIStatusError) as refused:
        served.openai(served.key(team="acct")).chat.completions.create(model="gpt-4o", messages=ASK,
                                                                      max_tokens=60)
    assert refused.value.status_code == 402
    launched = served.app.environments.launch(Context(team="acct", owner="dev"), "box", {})
    assert isinstance(launched, Denial) and launched.code == "budget_exceeded" and denial_status(launched) == 402
    with Session(application=served.app) as direct, pytest.raises(SpendRefused) as sdk_refused:
        direct.admit_llm(Context(team="acct"), _direct_request())  # the SDK's direct mode, same decider
    assert sdk_refused.value.code == "budget_exceeded" and sdk_refused.value.decision_id
    # each threshold once, whatever the path
    def thresholds() -> list[int]:
        return sorted(b["costplane"]["data"]["percent"] for b in sink.received
                      if b["costplane"]["kind"] == "budget_threshold")

    assert wait_for(lambda: thresholds() == [50, 80], timeout=10), thresholds()
    assert not wait_for(lambda: len(thresholds()) > 2, timeout=0.6)
    assert Counter(thresholds()) == Counter({50: 1, 80: 1})
    # post-hoc spend is logged as observed decisions (one per recorded batch) with the exact evaluated input
    if not admitted:
        observed = served.app.store.list_decisions(effect="observed", limit=500)
        assert len(observed) == units and all(d.hook == "spend.record" for d in observed)
        facts = [r for d in observed for r in d.input["requests"]]
        assert observed[0].input["version"] == DECISION_INPUT_VERSION and facts[0]["cost_nano"] > 0
        assert observed[0].budgets == ("acct-hard",)
        source = {"runs_ingest": "ingest", "otlp": "otlp", "environment_accrual": "environment"}.get(path, "sdk")
        assert {r["source"] for r in facts} == {source} == {d.input["source"] for d in observed}
        # every event counted names the decision that observed it
        named = [e for d in observed for e in d.result["event_ids"]]
        assert len(named) == len(set(named)) == len(facts)

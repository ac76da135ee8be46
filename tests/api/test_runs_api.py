"""Runs, cost trees, cost per outcome, economic SLOs and decisions paging in the users' API (/api/v1)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from api_harness import Api

from costplane.attribution.context import Context
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.runs.report import cost_per_outcome
from costplane.runs.tree import build_tree


def test_runs_list_filters_and_tree(make_api: Callable[..., Api]) -> None:
    api = make_api(None, more=True)
    runs = {r["run"]: r for r in api.get("fin", "/api/v1/runs").json()["runs"]}
    assert {"run-a", "run-b", "run-c", "run-x"} <= set(runs)
    assert runs["run-a"]["cost_usd"] == "0.1" and runs["run-a"]["agent"] == "alpha-bot"
    assert [r["run"] for r in api.get("fin", "/api/v1/runs", agent="alpha-bot").json()["runs"]] == ["run-a"]
    assert [r["run"] for r in api.get("fin", "/api/v1/runs", pipeline="beta-pipe").json()["runs"]] == ["run-b"]
    assert {r["run"] for r in api.get("fin", "/api/v1/runs", team="beta").json()["runs"]} == {"run-b", "run-c"}
    assert len(api.get("fin", "/api/v1/runs", limit="1").json()["runs"]) == 1
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert api.get("fin", "/api/v1/runs", since=future).json()["runs"] == []

    tree = api.get("dev-a", "/api/v1/runs/run-a")
    assert tree.status_code == 200
    expected = build_tree(api.app.store, "run-a")
    assert expected is not None and tree.json() == expected.to_json()
    step = tree.json()["children"][0]
    assert step["name"] == "plan" and step["children"][0]["cost_nano"] == 100_000_000
    assert api.get("dev-b", "/api/v1/runs/run-a").status_code == 404  # another team's run: as if unknown
    assert api.get("dev-b", "/api/v1/runs/run-c").status_code == 200  # an events-only run of beta
    for params, field in [({"limit": "0"}, "limit"), ({"since": "monday"}, "since"), ({"colour": "x"}, "colour")]:
        error = api.get("fin", "/api/v1/runs", **params).json()["error"]
        assert error["field"] == field


def test_cost_per_outcome(make_api: Callable[..., Api]) -> None:
    api = make_api(None, more=True)
    body = api.get("fin", "/api/v1/outcomes", outcome="ticket_resolved", group_by="team").json()
    assert body["outcomes"] == ["ticket_resolved"] and body["group_by"] == ["team"]
    rows = {r["group"]["team"]: r for r in body["rows"]}
    # alpha: 1.25 + 0.25 USD of seeded calls + 0.1 of run-a, one ticket
    assert rows["alpha"]["cost_usd"] == "1.6" and rows["alpha"]["outcomes"] == "1"
    assert rows["alpha"]["cost_per_outcome_usd"] == "1.6"
    direct = cost_per_outcome(api.app.store, "ticket_resolved", group_by=["team"])
    assert [r["cost_nano"] for r in body["rows"]] == [r.cost_nano for r in direct]
    every_type = api.get("fin", "/api/v1/outcomes").json()
    assert every_type["outcomes"] == ["ticket_resolved"] and len(every_type["rows"]) == 1
    mine = api.get("dev-a", "/api/v1/outcomes", group_by="agent").json()["rows"]
    assert [(r["group"]["agent"], r["outcomes"]) for r in mine if r["outcomes"] != "0"] == [("alpha-bot", "1")]
    assert api.get("fin", "/api/v1/outcomes", group_by="colour").json()["error"]["field"] == "group_by"
    assert api.get("fin", "/api/v1/outcomes", bucket="week").json()["error"]["field"] == "bucket"


def test_slos_value_target_and_breach(make_api: Callable[..., Api]) -> None:
    api = make_api(None, more=True)
    slos = {s["name"]: s for s in api.get("root", "/api/v1/slos").json()["slos"]}
    alpha = slos["alpha-ticket-cost"]
    assert (alpha["target_usd"], alpha["value_usd"], alpha["outcomes"]) == ("1", "1.6", "1")
    assert alpha["breached"] is True and alpha["scope"] == {"team": "alpha"}
    org = slos["org-ticket-cost"]
    assert org["outcomes"] == "3" and org["scope"] == {}
    mine = api.get("dev-a", "/api/v1/slos").json()["slos"]
    assert [s["name"] for s in mine] == ["alpha-ticket-cost"]


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_decisions_paging_is_stable(make_api: Callable[..., Api], store_url: Callable[[], str]) -> None:
    api = make_api(store_url())
    base = datetime.now(UTC) - timedelta(hours=1)

    def add(i: int, ts: datetime, team: str = "alpha") -> None:
        api.app.store.record_decision(DecisionRecord(
            id=f"pg-{i:04d}", ts=ts, hook="llm.request", effect="allow", bundle_revision="r",
            context=Context(team=team), input={}, result={}))

    for i in range(40):  # groups of 4 share one timestamp: ties are broken by id
        add(i, base + timedelta(seconds=i // 4))
    add(999, base, "beta")
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "7", **({"cursor": cursor} if cursor else {})}
        page = api.get("dev-a", "/api/v1/decisions", **params).json()
        seen += [d["id"] for d in page["decisions"]]
        pages += 1
        if pages == 2:  # concurrent inserts: newer ones never shift later pages
            for j in range(5):
                add(100 + j, datetime.now(UTC) + timedelta(seconds=j))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = {f"pg-{i:04d}" for i in range(40)} | {"dec-0", "dec-2"}  # + the harness' alpha decisions
    assert len(seen) == len(set(seen)) and set(seen) == expected
    assert pages == 6  # 42 decisions, 7 a page: the sixth page, full, already says it is the last
    bad = api.get("dev-a", "/api/v1/decisions", cursor="not a cursor!")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "cursor"
    assert api.get("dev-a", "/api/v1/decisions", limit="1001").json()["error"]["field"] == "limit"


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_gateway_runs_show_how_they_ended(make_api: Callable[..., Api], store_url: Callable[[], str]) -> None:
    """Runs seen only through the gateway: stopped with the decision that stopped them, agent and start
    time, in the list, the tree and the machine API, valid against the served schemas; a run refused on
    its first call is its team's like any other."""
    import jsonschema

    from costplane.api.runs import RUN_SCHEMA, RUNS_SCHEMA

    api = make_api(store_url())
    store = api.app.store
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    alpha = Context(team="alpha", agent="alpha-research", run="r-stop")
    store.record_decision(DecisionRecord("dec-ok", start, "llm.request", "allow", "r", alpha, {}, {}))
    store.record_nodes([], [CostEvent("ev-stop", start + timedelta(seconds=1), alpha, "openai", "gpt-4o-mini", 5,
                                      decision_id="dec-ok", reservation_id="res-ok", latency_ms=500)])
    store.record_decision(DecisionRecord(
        "dec-stop", start + timedelta(seconds=2), "llm.request", "deny", "r", alpha, {},
        {"code": "call_limit_exceeded", "budget": "agent-run-limits", "limit": "calls"},
        reason="budget 'agent-run-limits' [run=r-stop]: 41 calls > limit 40", status_code=429))
    beta = Context(team="beta", pipeline="beta-etl", run="r-refused")
    store.record_decision(DecisionRecord(
        "dec-refused", start + timedelta(seconds=3), "llm.request", "deny", "r", beta, {}, {"code": "policy_denied"},
        policies=("no-o1",), reason="denied by policy 'no-o1': not for pipelines", status_code=403))

    body = api.get("fin", "/api/v1/runs").json()
    jsonschema.validate(body, RUNS_SCHEMA)
    runs = {r["run"]: r for r in body["runs"]}
    stop = runs["r-stop"]
    assert (stop["status"], stop["agent"], stop["started_at"]) == ("stopped", "alpha-research", start.isoformat())
    assert stop["stopped_by"] == {"kind": "call_limit", "name": "agent-run-limits", "decision_id": "dec-stop",
                                  "code": "call_limit_exceeded", "at": (start + timedelta(seconds=2)).isoformat(),
                                  "reason": "budget 'agent-run-limits' [run=r-stop]: 41 calls > limit 40"}
    refused = runs["r-refused"]
    assert (refused["status"], refused["pipeline"], refused["events"]) == ("stopped", "beta-etl", 0)
    assert refused["stopped_by"]["kind"] == "policy" and refused["stopped_by"]["name"] == "no-o1"
    assert [r["run"] for r in api.get("fin", "/api/v1/runs", agent="alpha-research").json()["runs"]] == ["r-stop"]
    assert "r-refused" not in {r["run"] for r in api.get("dev-a", "/api/v1/runs").json()["runs"]}
    assert "r-refused" in {r["run"] for r in api.get("dev-b", "/api/v1/runs").json()["runs"]}

    tree = api.get("dev-a", "/api/v1/runs/r-stop").json()
    jsonschema.validate(tree, RUN_SCHEMA)
    assert tree["status"] == "stopped" and tree["stopped_by"]["decision_id"] == "dec-stop"
    assert tree["attributes"]["agent"] == "alpha-research" and tree["started_at"] == start.isoformat()
    assert [c["kind"] for c in tree["children"]] == ["llm", "denial"]
    assert api.get("dev-a", "/api/v1/runs/r-refused").status_code == 404
    assert api.get("dev-b", "/api/v1/runs/r-refused").json()["stopped_by"]["decision_id"] == "dec-refused"

    from costplane.gateway.keys import create_key

    keys = {team: create_key(store, f"{team}-key", {"team": team})[0] for team in ("alpha", "beta")}

    def machine(team: str, path: str) -> httpx.Response:
        return httpx.get(f"{api.url}{path}", headers={"authorization": f"Bearer {keys[team]}"}, timeout=10)

    listed = machine("alpha", "/v1/runs").json()
    jsonschema.validate(listed, RUNS_SCHEMA)
    mine = {r["run"]: r for r in listed["runs"]}
    assert mine["r-stop"]["stopped_by"]["decision_id"] == "dec-stop" and "r-refused" not in mine
    assert machine("beta", "/v1/runs/r-refused").json()["stopped_by"]["kind"] == "policy"
    assert machine("alpha", "/v1/runs/r-refused").status_code == 404

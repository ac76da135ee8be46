"""A developer or viewer of team alpha never reads team beta's data — on EVERY endpoint of the
route table (a new endpoint without a check here fails the test), on SQLite and on PostgreSQL.
Project scoping too: a developer scoped to project px reads px's data and nothing of alpha/beta."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from api_harness import Api

from costplane.api.service import endpoints
from costplane.lifecycle.service import build_core

# words that must never appear in what a scoped user reads (team names, agents, runs of others)
FORBIDDEN = {"dev-a": ("beta", "gamma", "run-x"), "view-a": ("beta", "gamma", "run-x"), "dev-px": ("alpha", "beta")}
OWN_TEAM = {"dev-a": "alpha", "view-a": "alpha", "dev-px": None}
OWN_PROJECT = {"dev-a": None, "view-a": None, "dev-px": "px"}

Check = Callable[[Api, str], list[httpx.Response]]


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code == 200, response.text
    return response


def _mine(who: str, team: str | None, project: str | None) -> bool:
    return (team is not None and team == OWN_TEAM[who]) or (project is not None and project == OWN_PROJECT[who])


def _forbidden_role(api: Api, who: str, method: str, path: str, body: object = None) -> httpx.Response:
    response = api.call(who, method, path, json=body)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden_role", response.text
    return response


def check_openapi(api: Api, who: str) -> list[httpx.Response]:
    _ok(httpx.get(f"{api.url}/api/v1/openapi.json", timeout=10))
    return []  # public: the document holds no team data


def check_whoami(api: Api, who: str) -> list[httpx.Response]:
    me = _ok(api.get(who, "/api/v1/whoami"))
    assert me.json()["user"] == who
    assert me.json()["teams"] == ([OWN_TEAM[who]] if OWN_TEAM[who] else [])
    assert me.json()["projects"] == ([OWN_PROJECT[who]] if OWN_PROJECT[who] else [])
    return [me]


def check_spend(api: Api, who: str) -> list[httpx.Response]:
    rows = _ok(api.get(who, "/api/v1/spend", group_by="team,project")).json()["rows"]
    assert rows and all(_mine(who, r["group"]["team"], r["group"]["project"]) for r in rows)
    everything = _ok(api.get("root", "/api/v1/spend", group_by="team,project")).json()["rows"]
    expected = sum(int(r["events"]) for r in everything if _mine(who, r["group"]["team"], r["group"]["project"]))
    ungrouped = _ok(api.get(who, "/api/v1/spend")).json()
    assert ungrouped["rows"][0]["events"] == expected
    other = api.get(who, "/api/v1/spend", team="beta")
    if OWN_PROJECT[who] is None:  # nothing of team beta can be readable: refused, naming the field
        assert other.status_code == 403 and other.json()["error"]["field"] == "team"
    else:  # a project-scoped user may read beta events of their project: filtered, here none
        assert _ok(other).json()["rows"] == []
    assert _ok(api.get(who, "/api/v1/spend", agent="beta-bot")).json()["rows"] == []
    return [ungrouped_response for ungrouped_response in (api.get(who, "/api/v1/spend", group_by="agent,run"),)]


def check_budgets(api: Api, who: str) -> list[httpx.Response]:
    response = _ok(api.get(who, "/api/v1/budgets"))
    names = {(b["name"], b["partition"]) for b in response.json()["budgets"]}
    assert names == ({("per-team", "team=alpha"), ("alpha-only", "")} if OWN_TEAM[who] == "alpha" else set())
    return [response]


def check_decisions(api: Api, who: str) -> list[httpx.Response]:
    response = _ok(api.get(who, "/api/v1/decisions", limit="1000"))
    mine = response.json()["decisions"]
    assert mine and all(_mine(who, d["context"].get("team"), d["context"].get("project")) for d in mine)
    everything = _ok(api.get("root", "/api/v1/decisions", limit="1000")).json()["decisions"]
    assert len(mine) == sum(_mine(who, d["context"].get("team"), d["context"].get("project")) for d in everything)
    assert _ok(api.get(who, "/api/v1/decisions", key="key-beta")).json()["decisions"] == []
    assert _ok(api.get(who, "/api/v1/decisions", policy="beta-policy")).json()["decisions"] == []
    return [response, api.get(who, "/api/v1/decisions", effect="deny")]


def check_list_keys(api: Api, who: str) -> list[httpx.Response]:
    return [_forbidden_role(api, who, "GET", "/api/v1/keys")]


def check_create_key(api: Api, who: str) -> list[httpx.Response]:
    return [_forbidden_role(api, who, "POST", "/api/v1/keys", {"name": "x"})]


def check_revoke_key(api: Api, who: str) -> list[httpx.Response]:
    return [_forbidden_role(api, who, "DELETE", "/api/v1/keys/key-x")]


def check_blueprints(api: Api, who: str) -> list[httpx.Response]:
    response = _ok(api.get(who, "/api/v1/blueprints"))
    assert {b["name"] for b in response.json()["blueprints"]} == {"noop-box", "big-box"}
    return [response]


def _env_ids(api: Api, who: str, **params: str) -> set[str]:
    return {e["id"] for e in _ok(api.get(who, "/api/v1/environments", **params)).json()["environments"]}


def check_environments(api: Api, who: str) -> list[httpx.Response]:
    own = api.ids["env-px"] if OWN_PROJECT[who] else api.ids["env-alpha"]
    assert _env_ids(api, who) == {own}
    assert _env_ids(api, who, team="beta") == set()
    assert _env_ids(api, "root") >= {api.ids["env-alpha"], api.ids["env-beta"], api.ids["env-px"]}
    return [api.get(who, "/api/v1/environments", status="active")]


def check_environment(api: Api, who: str) -> list[httpx.Response]:
    own = api.ids["env-px"] if OWN_PROJECT[who] else api.ids["env-alpha"]
    response = _ok(api.get(who, f"/api/v1/environments/{own}"))
    assert response.json()["transitions"]
    other = api.get(who, f"/api/v1/environments/{api.ids['env-beta']}")
    unknown = api.get(who, "/api/v1/environments/env-nope")
    assert other.status_code == unknown.status_code == 404  # existence is not leaked
    assert other.json()["error"]["code"] == unknown.json()["error"]["code"] == "unknown_environment"
    return [response]


def _env_action(api: Api, who: str, action: str) -> list[httpx.Response]:
    path = f"/api/v1/environments/{api.ids['env-beta']}/{action}"
    if who == "view-a":
        return [_forbidden_role(api, who, "POST", path, {})]
    response = api.call(who, "POST", path, json={})
    assert response.status_code == 404 and response.json()["error"]["field"] == "env_id", response.text
    return [response]


def check_launch_environment(api: Api, who: str) -> list[httpx.Response]:
    if who == "view-a":
        return [_forbidden_role(api, who, "POST", "/api/v1/environments", {"blueprint": "noop-box"})]
    body = {"blueprint": "noop-box", "team": "beta"} if OWN_TEAM[who] else {"blueprint": "noop-box", "project": "py"}
    response = api.call(who, "POST", "/api/v1/environments", json=body)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["field"] == ("team" if OWN_TEAM[who] else "project")
    return []  # the refusal echoes the caller's own input; nothing read


def check_extend_environment(api: Api, who: str) -> list[httpx.Response]:
    return _env_action(api, who, "extend")


def check_teardown_environment(api: Api, who: str) -> list[httpx.Response]:
    return _env_action(api, who, "teardown")


def check_approve_environment(api: Api, who: str) -> list[httpx.Response]:
    return [_forbidden_role(api, who, "POST", f"/api/v1/environments/{api.ids['env-beta']}/approve", {})]


def check_reject_environment(api: Api, who: str) -> list[httpx.Response]:
    return [_forbidden_role(api, who, "POST", f"/api/v1/environments/{api.ids['env-beta']}/reject", {})]


def check_runs(api: Api, who: str) -> list[httpx.Response]:
    response = _ok(api.get(who, "/api/v1/runs"))
    assert {r["run"] for r in response.json()["runs"]} == ({"run-x"} if OWN_PROJECT[who] else {"run-a"})
    assert _ok(api.get(who, "/api/v1/runs", team="beta")).json()["runs"] == []
    everything = {r["run"] for r in _ok(api.get("root", "/api/v1/runs")).json()["runs"]}
    assert everything >= {"run-a", "run-b", "run-c", "run-x"}
    return [response]


def check_run(api: Api, who: str) -> list[httpx.Response]:
    own = "run-x" if OWN_PROJECT[who] else "run-a"
    response = _ok(api.get(who, f"/api/v1/runs/{own}"))
    assert response.json()["id"] == own and response.json()["cost_nano"] > 0
    for other in ("run-b", "run-c", "run-nope"):  # another team's run (node or events only) is 404 like none
        missing = api.get(who, f"/api/v1/runs/{other}")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "run_not_found", other
    assert _ok(api.get("root", "/api/v1/runs/run-c")).json()["cost_nano"] == 50_000_000
    return [response]


def check_outcomes(api: Api, who: str) -> list[httpx.Response]:
    response = _ok(api.get(who, "/api/v1/outcomes", group_by="team,project,agent"))
    rows = response.json()["rows"]
    assert rows and all(_mine(who, r["group"]["team"], r["group"]["project"]) for r in rows)
    assert sum(int(r["outcomes"]) for r in rows) == 1
    ungrouped = _ok(api.get(who, "/api/v1/outcomes", outcome="ticket_resolved")).json()["rows"]
    assert [r["outcomes"] for r in ungrouped] == ["1"]
    return [response]


def check_slos(api: Api, who: str) -> list[httpx.Response]:
    response = _ok(api.get(who, "/api/v1/slos"))
    assert {s["name"] for s in response.json()["slos"]} == ({"alpha-ticket-cost"} if OWN_TEAM[who] else set())
    return [response]


def check_bundle(api: Api, who: str) -> list[httpx.Response]:
    response = _ok(api.get(who, "/api/v1/bundle"))
    body = response.json()
    assert body["blueprints"] == ["noop-box", "big-box"]
    assert set(body["budgets"]) == ({"per-team", "alpha-only"} if OWN_TEAM[who] else set())
    assert body["counts"]["slos"] == len(body["slos"])
    return [response]


def check_get_only(path: str) -> Check:
    """For a read-only endpoint with no rule of its own here: it must answer and leak nothing."""
    def check(api: Api, who: str) -> list[httpx.Response]:
        return [_ok(api.get(who, path))]
    return check


# Machine API (/v1) routes take costplane keys only: a user's API token is 403 on every one of them
# (what keys see and do is walked route by route in test_scoping_walk.py).
_MACHINE = ("machine_launch_environment", "machine_environments", "machine_environment",
            "machine_extend_environment", "machine_teardown_environment", "machine_approve_environment",
            "machine_reject_environment", "machine_environment_metrics", "machine_runs", "machine_ingest_runs",
            "machine_run", "machine_record_outcomes", "machine_outcome_report", "machine_slos",
            "machine_otlp_traces", "machine_admit_call", "machine_settle_call", "machine_release_call")


def _user_on_machine(operation: str) -> Check:
    def check(api: Api, who: str) -> list[httpx.Response]:
        table = {e.operation_id: e for e in endpoints(api.app, build_core(api.app))}
        endpoint = table[operation]
        path = endpoint.path.replace("{env_id}", api.ids["env-beta"]).replace("{run}", "run-b")
        return [_forbidden_role(api, who, endpoint.method, path, {} if endpoint.method == "POST" else None)]
    return check


CHECKS: dict[str, Check] = {
    name[len("check_"):]: fn for name, fn in globals().items()
    if name.startswith("check_") and name != "check_get_only"
}
CHECKS.update({operation: _user_on_machine(operation) for operation in _MACHINE})
CHECKS["overview"] = check_get_only("/api/v1/overview")  # added by the dashboard work; scanned like the rest


def _check_everything(api: Api, who: str) -> None:
    assert _ok(api.get(who, "/api/v1/whoami")).json()["teams"] is None
    spend = _ok(api.get(who, "/api/v1/spend", group_by="team")).json()
    assert {r["group"]["team"] for r in spend["rows"]} == {"alpha", "beta", "gamma"}
    names = {(b["name"], b["partition"]) for b in _ok(api.get(who, "/api/v1/budgets")).json()["budgets"]}
    assert names == {("per-team", "team=alpha"), ("per-team", "team=beta"), ("per-team", "team=gamma"),
                     ("alpha-only", ""), ("beta-only", ""), ("org", "")}  # gamma: the px environment's reservation
    assert {s["name"] for s in _ok(api.get(who, "/api/v1/slos")).json()["slos"]} == {
        "alpha-ticket-cost", "beta-ticket-cost", "org-ticket-cost"}
    assert len(_env_ids(api, who)) == 3
    teams = {r["group"]["team"] for r in _ok(api.get(who, "/api/v1/outcomes", group_by="team")).json()["rows"]}
    assert teams == {"alpha", "beta", "gamma"}


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_scoping_on_every_endpoint(make_api: Callable[..., Api], store_url: Callable[[], str]) -> None:
    api = make_api(store_url(), more=True)
    table = endpoints(api.app, build_core(api.app))
    unchecked = sorted(e.operation_id for e in table if e.operation_id not in CHECKS)
    assert not unchecked, f"endpoints without a scoping check in tests/api/test_scoping.py: {unchecked}"
    for who in ("dev-a", "view-a", "dev-px"):
        for endpoint in table:
            for response in CHECKS[endpoint.operation_id](api, who):
                for word in FORBIDDEN[who]:
                    assert word not in response.text, (who, endpoint.operation_id, word)
    beta = _ok(api.get("dev-b", "/api/v1/spend", group_by="team")).json()
    assert [r["group"]["team"] for r in beta["rows"]] == ["beta"]
    for who in ("root", "fin"):
        _check_everything(api, who)
    assert api.call("fin", "GET", "/api/v1/keys").status_code == 403

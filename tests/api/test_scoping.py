"""A developer or viewer of team alpha never reads team beta's data — on every endpoint of the
route table, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from api_harness import Api

from costplane.api.service import endpoints


def _check_alpha_only(api: Api, who: str) -> None:
    me = api.get(who, "/api/v1/whoami").json()
    assert me["teams"] == ["alpha"] and me["user"] == who

    spend = api.get(who, "/api/v1/spend", group_by="team,model").json()
    assert {r["group"]["team"] for r in spend["rows"]} == {"alpha"}
    assert spend["total_usd"] == "1.5"
    ungrouped = api.get(who, "/api/v1/spend").json()
    assert ungrouped["total_usd"] == "1.5" and ungrouped["rows"][0]["events"] == 2
    by_agent = api.get(who, "/api/v1/spend", group_by="agent", bucket="day").json()
    assert {r["group"]["agent"] for r in by_agent["rows"]} == {"alpha-bot"}
    denied = api.get(who, "/api/v1/spend", team="beta")
    assert denied.status_code == 403 and denied.json()["error"]["field"] == "team"
    assert api.get(who, "/api/v1/spend", team="alpha").json()["total_usd"] == "1.5"
    assert api.get(who, "/api/v1/spend", agent="beta-bot").json()["rows"] == []

    budgets = api.get(who, "/api/v1/budgets").json()["budgets"]
    assert {(b["name"], b["partition"]) for b in budgets} == {("per-team", "team=alpha"), ("alpha-only", "")}
    assert "beta" not in str(budgets)

    decisions = api.get(who, "/api/v1/decisions").json()["decisions"]
    assert {d["context"]["team"] for d in decisions} == {"alpha"} and len(decisions) == 2
    assert api.get(who, "/api/v1/decisions", key="key-beta").json()["decisions"] == []
    assert api.get(who, "/api/v1/decisions", policy="beta-policy").json()["decisions"] == []
    assert api.get(who, "/api/v1/decisions", effect="deny").json()["decisions"] == []

    for method, path in [("GET", "/api/v1/keys"), ("POST", "/api/v1/keys"), ("DELETE", "/api/v1/keys/key-x")]:
        response = api.call(who, method, path, json={"name": "x"})
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "forbidden_role"


def _check_everything(api: Api, who: str) -> None:
    assert api.get(who, "/api/v1/whoami").json()["teams"] is None
    spend = api.get(who, "/api/v1/spend", group_by="team").json()
    assert {r["group"]["team"]: r["cost_usd"] for r in spend["rows"]} == {"alpha": "1.5", "beta": "2.000000001"}
    names = {(b["name"], b["partition"]) for b in api.get(who, "/api/v1/budgets").json()["budgets"]}
    assert names == {("per-team", "team=alpha"), ("per-team", "team=beta"), ("alpha-only", ""), ("beta-only", ""),
                     ("org", "")}
    assert len(api.get(who, "/api/v1/decisions").json()["decisions"]) == 3


TESTED = {"openapi", "whoami", "spend", "budgets", "decisions", "list_keys", "create_key", "revoke_key"}


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_team_scoping_on_every_endpoint(make_api: Callable[[str | None], Api],
                                        store_url: Callable[[], str]) -> None:
    api = make_api(store_url())
    assert {e.operation_id for e in endpoints(api.app)} == TESTED  # a new endpoint must be added here
    for who in ("dev-a", "view-a"):
        _check_alpha_only(api, who)
    beta = api.get("dev-b", "/api/v1/spend", group_by="team").json()
    assert [r["group"]["team"] for r in beta["rows"]] == ["beta"]
    for who in ("root", "fin"):
        _check_everything(api, who)
    assert api.call("fin", "GET", "/api/v1/keys").status_code == 403

"""The OpenAPI document matches the served table; auth, errors, budgets' live state, keys."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from api_harness import Api
from openapi_spec_validator import validate

from costplane.api.credentials import hash_password, issue_token, verify_password
from costplane.api.service import endpoints
from costplane.lifecycle.service import build_core


def test_openapi_document_is_valid_and_every_route_is_served(make_api: Callable[[str | None], Api]) -> None:
    api = make_api(None)
    document = httpx.get(f"{api.url}/api/v1/openapi.json", timeout=10).json()
    validate(document)
    table = endpoints(api.app, build_core(api.app))
    assert {(p, m.upper()) for p, ops in document["paths"].items() for m in ops} == {(e.path, e.method)
                                                                                    for e in table}
    for endpoint in table:
        path = endpoint.path.replace("{key_id}", "key-none").replace("{env_id}", "env-none").replace(
            "{run_id}", "run-none")
        response = httpx.request(endpoint.method, f"{api.url}{path}", timeout=10)
        assert response.status_code == (200 if not endpoint.roles else 401), endpoint.path
        if endpoint.roles:
            assert response.json()["error"]["field"] == "authorization"


def test_errors_name_the_field(make_api: Callable[[str | None], Api]) -> None:
    api = make_api(None)
    for params, field in [({"bucket": "week"}, "bucket"), ({"since": "yesterday"}, "since"),
                          ({"group_by": "team,colour"}, "group_by"), ({"colour": "red"}, "colour")]:
        error = api.get("fin", "/api/v1/spend", **params).json()["error"]
        assert error["field"] == field and field in error["message"]
    assert api.get("fin", "/api/v1/decisions", limit="0").json()["error"]["field"] == "limit"
    bad = api.call("root", "POST", "/api/v1/keys", json={"attributes": {}}).json()["error"]
    assert bad["field"] == "name"


def test_budget_live_state_and_forecast(make_api: Callable[[str | None], Api]) -> None:
    api = make_api(None)
    budgets = {(b["name"], b["partition"]): b for b in api.get("fin", "/api/v1/budgets").json()["budgets"]}
    alpha = budgets[("per-team", "team=alpha")]
    assert (alpha["spent_usd"], alpha["reserved_usd"], alpha["remaining_usd"], alpha["limit_usd"]) == (
        "1.5", "0", "8.5", "10")
    assert alpha["utilisation"] == "0.15" and alpha["exhausted"] is False
    assert budgets[("org", "")]["spent_usd"] == "3.500000001"
    rolling = budgets[("alpha-only", "")]
    assert rolling["forecast_exhaustion_at"] is not None  # 1.5 of 2 USD in a 1 h window: runs out within 20 min


def test_keys_admin_lifecycle_and_token_revocation(make_api: Callable[[str | None], Api]) -> None:
    api = make_api(None)
    created = api.call("root", "POST", "/api/v1/keys", json={"name": "bot", "attributes": {"team": "alpha"}})
    assert created.status_code == 201 and created.json()["secret"].startswith("cpk_")
    listed = api.get("root", "/api/v1/keys").json()["keys"]
    assert [k["name"] for k in listed] == ["bot"] and "secret" not in listed[0]
    assert api.call("root", "DELETE", f"/api/v1/keys/{created.json()['id']}").json()["revoked"] is True
    assert api.call("root", "DELETE", f"/api/v1/keys/{created.json()['id']}").status_code == 404
    user = api.app.store.user_by_name("dev-b")
    assert user is not None
    secret, token = issue_token(api.app.store, user, "second")
    api.tokens["second"] = secret
    assert api.get("second", "/api/v1/whoami").status_code == 200
    assert api.app.store.revoke_api_token(token.id, token.created_at)
    assert api.get("second", "/api/v1/whoami").status_code == 401
    assert api.app.store.disable_user(user.id, token.created_at)
    assert api.get("dev-b", "/api/v1/whoami").status_code == 401


def test_password_hashing() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct" not in stored
    assert verify_password("correct horse", stored) and not verify_password("wrong horse", stored)
    assert hash_password("correct horse") != stored  # salted
    assert not verify_password("anything", "")


def test_empty_typed_parameters_are_refused_naming_them(make_api: Callable[[str | None], Api]) -> None:
    api = make_api(None)
    for path, name in [("/api/v1/spend", "since"), ("/api/v1/decisions", "limit"), ("/api/v1/runs", "limit"),
                       ("/api/v1/environments", "status"), ("/api/v1/outcomes", "group_by")]:
        response = api.get("fin", path, **{name: ""})
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"] == {"code": "invalid_parameter", "field": name,
                                            "message": f"{name}: empty; give a value or leave the parameter out"}
    assert api.get("fin", "/api/v1/environments", team="").status_code == 200  # a plain string may be empty
    key = api.call("root", "POST", "/api/v1/keys", json={"name": "m", "attributes": {"team": "alpha"}}).json()
    machine = httpx.get(f"{api.url}/v1/runs", params={"since": ""}, timeout=10,
                        headers={"authorization": f"Bearer {key['secret']}"})
    assert machine.status_code == 400 and machine.json()["error"]["field"] == "since"
    unknown = httpx.get(f"{api.url}/v1/runs", params={"colour": "red"}, timeout=10,
                        headers={"authorization": f"Bearer {key['secret']}"})
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "colour"


def test_machine_api_is_in_the_openapi_document(make_api: Callable[[str | None], Api]) -> None:
    api = make_api(None)
    paths = httpx.get(f"{api.url}/api/v1/openapi.json", timeout=10).json()["paths"]
    for path, method in [("/v1/environments", "post"), ("/v1/environments/{env_id}/approve", "post"),
                         ("/v1/runs", "get"), ("/v1/runs/{run}", "get"), ("/v1/runs/ingest", "post"),
                         ("/v1/outcomes", "post"), ("/v1/outcomes/report", "get"), ("/v1/slos", "get"),
                         ("/v1/traces", "post")]:
        operation = paths[path][method]
        assert operation["x-costplane-scoping"], path
        assert "key" in operation["x-costplane-roles"] or operation["x-costplane-roles"] == ["approver"]
    assert paths["/v1/environments/{env_id}/approve"]["post"]["x-costplane-roles"] == ["approver"]

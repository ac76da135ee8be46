"""The tenant-isolation walk: EVERY route of the one route table (users' API /api/v1 and machine
API /v1, every method) is called by every caller — one user of each role, keys bound to team
alpha, to team beta, to project px, an approver key of team beta, an unbound key and no
credential — against team alpha's resources, on SQLite and PostgreSQL.

* a route whose table entry declares no scoping rule fails the walk (and the server refuses to build it);
* a caller outside alpha's scope gets 401/403/404, or a 2xx that shows nothing of alpha (its own rows);
  on a `resource` route it is exactly 404, like an unknown id;
* a caller who may (role allowed, scope covering alpha) gets a 2xx (a POST: 409 for a state conflict,
  402 for the budget the walk's own launches exhaust);
* after every outside caller has tried everything, alpha's environment, runs and outcomes are untouched;
* a direct-mode call admitted for key-a (`POST /v1/runs/admit`) is settled or released only by key-a:
  every other caller — outside alpha or covering it — gets 404 on `/v1/runs/settle|release`, like an
  unknown reservation, and the reservation stays open until key-a ends it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from api_harness import Api

from costplane.api.service import endpoints
from costplane.api.table import RULES, Endpoint
from costplane.gateway.keys import create_key
from costplane.ledger.envtypes import EnvState
from costplane.lifecycle.service import build_core

USERS = ("root", "fin", "dev-a", "view-a", "dev-b", "dev-px", "dev-ab")
KEYS = {"key-a": {"team": "alpha", "owner": "ci-a"}, "key-b": {"team": "beta", "owner": "ci-b"},
        "key-px": {"project": "px"}, "approver-b": {"team": "beta", "role": "approver"},
        "approver-a": {"team": "alpha", "role": "approver"}, "key-any": {"owner": "ops"}}
# callers whose scope covers team alpha's rows (unscoped ones included)
COVERS_ALPHA = {"root", "fin", "dev-a", "view-a", "dev-ab", "key-a", "approver-a", "key-any"}
OUTSIDE = ("dev-b", "dev-px", "key-b", "key-px", "approver-b", "anon")
INSIDE = ("root", "fin", "dev-a", "view-a", "dev-ab", "key-a", "approver-a", "key-any")
ROLE = {"root": "admin", "fin": "finance", "dev-a": "developer", "view-a": "viewer", "dev-b": "developer",
        "dev-px": "developer", "dev-ab": "developer", "key-a": "key", "key-b": "key", "key-px": "key",
        "approver-b": "approver", "approver-a": "approver", "key-any": "key", "anon": ""}

BODIES: dict[str, Any] = {
    "create_key": {"name": "walk"},
    "launch_environment": {"blueprint": "noop-box", "team": "alpha"},
    "extend_environment": {"by": "1h"},
    "machine_launch_environment": {"blueprint": "noop-box", "context": {"team": "alpha", "owner": "walker"}},
    "machine_extend_environment": {"by": "1h"},
    "machine_environment_metrics": {"gpu_util": 1.5},
    "machine_ingest_runs": {"nodes": [{"id": "run-a-walk", "run": "run-a", "kind": "step", "name": "walk",
                                       "parent_id": "run-a", "started_at": "2026-12-01T00:00:00+00:00",
                                       "context": {"team": "alpha"}}]},
    "machine_record_outcomes": {"outcome": "ticket_resolved", "run": "run-a", "context": {"team": "alpha"}},
    "machine_admit_call": {"request": {"protocol": "openai", "model": "gpt-4o-mini", "input_tokens_bound": 20,
                                       "max_tokens": 10}, "context": {"team": "alpha"}},
}
#: the admission calls only the key that was admitted may end (the walk seeds one reservation for each)
KEY_A_ONLY = ("machine_settle_call", "machine_release_call")
QUERIES = {"machine_outcome_report": {"outcome": "ticket_resolved", "by": "team,agent"},
           "outcomes": {"group_by": "team"}, "spend": {"group_by": "team,agent"}}


def _leaks(response: httpx.Response, api: Api) -> list[str]:
    words = ("alpha", api.ids["env-alpha"], "run-a")
    return [w for w in words if w in response.text]


def _call(api: Api, secrets: dict[str, str], who: str, endpoint: Endpoint, key_id: str,
          bodies: dict[str, Any] | None = None) -> httpx.Response:
    path = (endpoint.path.replace("{env_id}", api.ids["env-alpha"]).replace("{run_id}", "run-a")
            .replace("{run}", "run-a").replace("{key_id}", key_id))
    headers = {"authorization": f"Bearer {secrets[who]}"} if who != "anon" else {}
    content: bytes | None = None
    if endpoint.operation_id == "machine_otlp_traces":
        headers["content-type"] = "application/json"
        content = orjson.dumps({"resourceSpans": []})
    elif endpoint.method != "GET":
        content = orjson.dumps((bodies or BODIES).get(endpoint.operation_id, {}))
        headers["content-type"] = "application/json"
    return api.http.request(endpoint.method, api.url + path, params=QUERIES.get(endpoint.operation_id), content=content,
                         headers=headers, timeout=20)


def _may_call(who: str, endpoint: Endpoint) -> bool:
    return not endpoint.roles or ROLE[who] in endpoint.roles


def _admit_for(api: Api, secret: str) -> str:
    """A direct-mode call admitted for the key `secret` under team alpha: its reservation's id."""
    response = httpx.post(api.url + "/v1/runs/admit", json=BODIES["machine_admit_call"],
                          headers={"authorization": f"Bearer {secret}"}, timeout=20)
    assert response.status_code == 200, response.text
    reservation_id = response.json()["reservation_id"]
    assert isinstance(reservation_id, str)  # alpha's budgets apply: one reservation of the worst case
    return reservation_id


def _settle_body(reservation_id: str) -> dict[str, Any]:
    return {"reservation_id": reservation_id, "request": BODIES["machine_admit_call"]["request"],
            "model": "gpt-4o-mini", "usage": {"input_tokens": 12, "output_tokens": 7}, "context": {"team": "alpha"}}


def _status(api: Api, reservation_id: str) -> str:
    found = api.app.store.get_reservation(reservation_id)
    assert found is not None
    return found.status


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
@pytest.mark.timeout(900)  # ~40 routes x 14 callers, twice
def test_every_route_every_caller(make_api: Callable[..., Api], store_url: Callable[[], str]) -> None:
    api = make_api(store_url(), more=True)
    store = api.app.store
    secrets = dict(api.tokens)
    key_ids: dict[str, str] = {}
    for name, attributes in KEYS.items():
        secrets[name], created = create_key(store, name, attributes)
        key_ids[name] = created.id
    victim = create_key(store, "victim", {"team": "alpha"})[1].id
    to_settle, to_release = _admit_for(api, secrets["key-a"]), _admit_for(api, secrets["key-a"])
    bodies = {**BODIES, "machine_settle_call": _settle_body(to_settle), "machine_release_call": {
        "reservation_id": to_release}}
    table = endpoints(api.app, build_core(api.app))
    undeclared = [e.operation_id for e in table if e.scoping is None or e.scoping.rule not in RULES]
    assert not undeclared, f"routes without a scoping rule: {undeclared}"
    assert {e.path.split("/")[1] for e in table} == {"api", "v1"}  # both APIs are in the one table
    assert len({(e.method, e.path) for e in table}) == len(table)

    before_nodes = len(store.run_nodes("run-a"))
    before_outcomes = len(store.list_outcomes(outcome="ticket_resolved"))
    for who in OUTSIDE:  # first: nobody outside alpha's scope may read or change anything of alpha
        for endpoint in table:
            response = _call(api, secrets, who, endpoint, victim, bodies)
            label = (who, endpoint.method, endpoint.path, response.status_code, response.text[:300])
            assert response.status_code < 500, label
            if who == "anon":
                assert response.status_code == 401 or not endpoint.roles, label
                continue
            if not _may_call(who, endpoint):
                assert response.status_code == 403, label
                assert response.json()["error"]["code"] == "forbidden_role", label
                continue
            assert endpoint.scoping is not None
            if endpoint.operation_id in KEY_A_ONLY:  # key-a's admission: not found for anyone else
                assert response.status_code == 404, label
                assert response.json()["error"]["code"] == "unknown_reservation", label
            elif endpoint.scoping.rule == "resource":
                assert response.status_code == 404, label  # exactly like an unknown id: existence not leaked
            elif response.status_code < 300:
                assert not _leaks(response, api), (label, _leaks(response, api))
            else:
                assert response.status_code in (400, 403, 404), label
                if endpoint.scoping.rule == "attribution" and response.status_code == 403:
                    assert response.json()["error"]["field"], label  # names the field it refuses
    env = store.get_environment(api.ids["env-alpha"])
    assert env is not None and env.state == EnvState.ACTIVE and env.extensions == 0 and not env.metrics
    assert len(store.run_nodes("run-a")) == before_nodes
    assert len(store.list_outcomes(outcome="ticket_resolved")) == before_outcomes
    alpha_envs = [e for e in store.list_environments() if e.context.team == "alpha"]
    assert [e.id for e in alpha_envs] == [api.ids["env-alpha"]], "an outside caller launched into team alpha"
    assert (_status(api, to_settle), _status(api, to_release)) == ("open", "open")
    admitted = [d for d in store.list_decisions(limit=1000) if d.input.get("direct")]
    assert len(admitted) > 2  # the outside keys' own admissions (landing in their own scope)
    assert {d.context.key_id for d in admitted if d.context.team == "alpha"} == {key_ids["key-a"]}, \
        "an outside caller admitted a call into team alpha"

    for who in INSIDE:  # then: whoever may, gets a 2xx (409 only when the state forbids it)
        for endpoint in table:
            response = _call(api, secrets, who, endpoint, victim, bodies)
            label = (who, endpoint.method, endpoint.path, response.status_code, response.text[:300])
            if not _may_call(who, endpoint):
                assert response.status_code == 403, label
                continue
            if endpoint.operation_id in KEY_A_ONLY:  # covering alpha is not enough: only the admitted key
                assert response.status_code == (200 if who == "key-a" else 404), label
                continue
            if endpoint.operation_id == "revoke_key" and who != "root":
                continue
            # a POST may meet a state conflict (409) or the alpha budget the walk's launches exhaust (402)
            allowed = (200, 201, 202) + ((402, 409) if endpoint.method == "POST" else ())
            assert response.status_code in allowed, label
    assert store.get_key(victim).revoked_at is not None  # type: ignore[union-attr]
    assert (_status(api, to_settle), _status(api, to_release)) == ("settled", "released")


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_keys_see_exactly_their_bound_scope(make_api: Callable[..., Api], store_url: Callable[[], str]) -> None:
    api = make_api(store_url(), more=True)
    secrets = {name: create_key(api.app.store, name, attributes)[0] for name, attributes in KEYS.items()}

    def get(who: str, path: str, **params: str) -> Any:
        response = api.http.get(api.url + path, params=params, headers={"x-api-key": secrets[who]}, timeout=20)
        assert response.status_code == 200, response.text
        return response.json()

    envs = {who: {e["id"] for e in get(who, "/v1/environments")["environments"]} for who in ("key-a", "key-px")}
    assert envs == {"key-a": {api.ids["env-alpha"]}, "key-px": {api.ids["env-px"]}}
    assert {e["id"] for e in get("key-any", "/v1/environments")["environments"]} >= set(api.ids.values())
    assert {r["run"] for r in get("key-a", "/v1/runs")["runs"]} == {"run-a"}
    assert {r["run"] for r in get("key-b", "/v1/runs")["runs"]} == {"run-b", "run-c"}
    org_key = create_key(api.app.store, "org", {"org": "acme"})[0]  # the seeded rows belong to no org
    secrets["key-org"] = org_key
    assert get("key-org", "/v1/runs")["runs"] == [] and get("key-org", "/v1/environments")["environments"] == []
    assert get("key-org", "/v1/outcomes/report", outcome="ticket_resolved")["rows"] == []
    teams = {r["group"]["team"] for r in get("key-b", "/v1/outcomes/report", outcome="ticket_resolved",
                                              by="team")["rows"]}
    assert teams == {"beta"}
    assert {s["name"] for s in get("key-a", "/v1/slos")["slos"]} <= {"alpha-ticket-cost"}
    # a key's bound team overrides the payload's: what key-b writes lands in beta, never in alpha
    launched = api.http.post(api.url + "/v1/environments", json={"blueprint": "noop-box", "context": {"team": "alpha"}},
                          headers={"x-api-key": secrets["key-b"]}, timeout=20)
    assert launched.status_code == 201 and launched.json()["context"]["team"] == "beta", launched.text
    # approving needs the approver role AND scope over the environment
    pending = api.http.post(api.url + "/v1/environments", json={"blueprint": "big-box"},
                         headers={"x-api-key": secrets["key-a"]}, timeout=20)
    assert pending.status_code == 202, pending.text
    path = f"{api.url}/v1/environments/{pending.json()['id']}/approve"
    assert api.http.post(path, headers={"x-api-key": secrets["key-a"]}, timeout=20).status_code == 403
    assert api.http.post(path, headers={"x-api-key": secrets["approver-b"]}, timeout=20).status_code == 404
    approved = api.http.post(path, headers={"x-api-key": secrets["approver-a"]}, timeout=20)
    assert approved.status_code == 200 and approved.json()["state"] == "active", approved.text


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_an_admission_is_ended_only_by_the_key_it_was_admitted_for(make_api: Callable[..., Api],
                                                                    store_url: Callable[[], str]) -> None:
    api = make_api(store_url(), more=True)
    secrets = {name: create_key(api.app.store, name, attributes)[0] for name, attributes in KEYS.items()}

    def post(who: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(api.url + path, json=body, headers={"x-api-key": secrets[who]}, timeout=20)

    reservation_id = _admit_for(api, secrets["key-a"])
    for who in ("key-b", "key-px", "approver-b", "approver-a", "key-any"):  # same team or unbound: still not theirs
        for path, body in (("/v1/runs/settle", _settle_body(reservation_id)),
                           ("/v1/runs/release", {"reservation_id": reservation_id})):
            refused = post(who, path, body)
            assert refused.status_code == 404, (who, path, refused.text)
            assert refused.json()["error"] == {"code": "unknown_reservation", "field": "reservation_id",
                                               "message": refused.json()["error"]["message"]}
            assert "alpha" not in refused.text
    assert _status(api, reservation_id) == "open"
    unknown = post("key-a", "/v1/runs/release", {"reservation_id": "rsv_does_not_exist"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_reservation"

    settled = post("key-a", "/v1/runs/settle", _settle_body(reservation_id))
    assert settled.status_code == 200, settled.text
    event = api.app.store.get_event(settled.json()["event_id"])
    assert event is not None and event.context.team == "alpha" and event.cost_nano == settled.json()["cost_nano"] > 0
    assert _status(api, reservation_id) == "settled"
    again = post("key-a", "/v1/runs/settle", _settle_body(reservation_id))
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_open"  # settled once
    assert post("key-a", "/v1/runs/release", {"reservation_id": reservation_id}).status_code == 409

    # a key bound to team beta admits into beta whatever its payload says
    admitted = post("key-b", "/v1/runs/admit", BODIES["machine_admit_call"])
    assert admitted.status_code == 200, admitted.text
    (decision,) = [d for d in api.app.store.list_decisions(limit=200) if d.id == admitted.json()["decision_id"]]
    assert decision.context.team == "beta" and "alpha" not in admitted.text

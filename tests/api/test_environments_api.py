"""Environments and blueprints in the users' API (/api/v1), over HTTP on the real server with the noop
driver: launch → extend → teardown by a developer, approvals, role and team refusals, bad bodies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
from api_harness import Api

from costplane.core.envpricing import estimate
from costplane.lifecycle.service import build_core
from costplane.money import format_usd
from costplane.policy.blueprintschema import resolve_inputs

ENVS = "/api/v1/environments"


def test_developer_launches_extends_and_tears_down(make_api: Callable[..., Api]) -> None:
    api = make_api(None)
    launched = api.call("dev-a", "POST", ENVS, json={"blueprint": "noop-box", "inputs": {"size": "xlarge"},
                                                     "tags": {"tier": "dev", "cost_center": "cc-7"}, "ttl": "30m"})
    assert launched.status_code == 201, launched.text
    env = launched.json()
    assert env["state"] == "active" and env["owner"] == "dev-a"
    assert env["context"]["team"] == "alpha" and env["context"]["user"] == "dev-a"
    assert env["context"]["cost_center"] == "cc-7" and env["inputs"] == {"size": "xlarge"}
    assert 1790 <= env["time_left_seconds"] <= 1800 and env["hourly_usd"] != "0"
    env_id = env["id"]

    extended = api.call("dev-a", "POST", f"{ENVS}/{env_id}/extend", json={"by": "1h"})
    assert extended.status_code == 200, extended.text
    assert extended.json()["extensions"] == 1
    before, after = (datetime.fromisoformat(e["expires_at"]) for e in (env, extended.json()))
    assert (after - before).total_seconds() == 3600
    default_step = api.call("dev-a", "POST", f"{ENVS}/{env_id}/extend")  # no body: the blueprint's extend_by
    assert default_step.status_code == 200 and default_step.json()["extensions"] == 2

    shown = api.get("dev-a", f"{ENVS}/{env_id}").json()
    assert [t["to"] for t in shown["transitions"]][:1] == ["active"] and len(shown["transitions"]) >= 3
    down = api.call("dev-a", "POST", f"{ENVS}/{env_id}/teardown")
    assert down.status_code == 200 and down.json()["state"] == "torn_down", down.text
    again = api.call("dev-a", "POST", f"{ENVS}/{env_id}/teardown")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_running"
    assert [e["id"] for e in api.get("dev-a", ENVS, status="torn_down").json()["environments"]] == [env_id]
    assert api.get("dev-a", ENVS, blueprint="big-box").json()["environments"] == []

    # every step is in the decisions log, scoped to the developer's team, under the bundle revision
    hooks = [d["hook"] for d in api.get("dev-a", "/api/v1/decisions").json()["decisions"]
             if d["hook"].startswith("environment.")]
    assert hooks.count("environment.extend") == 2 and "environment.launch" in hooks


def test_roles_and_teams_are_enforced(make_api: Callable[..., Api]) -> None:
    api = make_api(None)
    env_id = api.call("dev-a", "POST", ENVS, json={"blueprint": "noop-box"}).json()["id"]
    for who in ("fin", "view-a"):
        for path in (ENVS, f"{ENVS}/{env_id}/extend", f"{ENVS}/{env_id}/teardown", f"{ENVS}/{env_id}/approve",
                     f"{ENVS}/{env_id}/reject"):
            refused = api.call(who, "POST", path, json={"blueprint": "noop-box"})
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_role", (who, path)
    assert api.get("fin", f"{ENVS}/{env_id}").status_code == 200  # finance reads everything
    assert api.get("view-a", f"{ENVS}/{env_id}").status_code == 200  # the viewer's own team
    for path in (f"{ENVS}/{env_id}/extend", f"{ENVS}/{env_id}/teardown"):
        other = api.call("dev-b", "POST", path)
        assert other.status_code == 404 and other.json()["error"]["field"] == "env_id"
    assert api.get("dev-b", f"{ENVS}/{env_id}").status_code == 404
    wrong = api.call("dev-a", "POST", ENVS, json={"blueprint": "noop-box", "team": "beta"})
    assert wrong.status_code == 403 and wrong.json()["error"]["field"] == "team"
    ambiguous = api.call("dev-ab", "POST", ENVS, json={"blueprint": "noop-box"})
    assert ambiguous.status_code == 400 and ambiguous.json()["error"]["field"] == "team"
    chosen = api.call("dev-ab", "POST", ENVS, json={"blueprint": "noop-box", "team": "beta"})
    assert chosen.status_code == 201 and chosen.json()["context"]["team"] == "beta"
    project = api.call("dev-px", "POST", ENVS, json={"blueprint": "noop-box", "project": "px", "team": "gamma"})
    assert project.status_code == 403 and project.json()["error"]["field"] == "team"
    by_project = api.call("dev-px", "POST", ENVS, json={"blueprint": "noop-box", "project": "px"})
    assert by_project.status_code == 201 and by_project.json()["context"]["project"] == "px"
    assert api.call("dev-px", "POST", f"{ENVS}/{by_project.json()['id']}/teardown").status_code == 200
    anyone = api.call("root", "POST", f"{ENVS}/{env_id}/teardown")  # admin: any environment
    assert anyone.status_code == 200 and anyone.json()["state"] == "torn_down"


def test_denials_explain_themselves(make_api: Callable[..., Api]) -> None:
    api = make_api(None)
    denied = api.call("dev-a", "POST", ENVS, json={"blueprint": "noop-box", "tags": {"tier": "forbidden"}})
    assert denied.status_code == 403
    error = denied.json()["error"]
    assert error["code"] == "policy_denied" and error["policies"] == ["no-forbidden-tier"]
    assert error["bundle_revision"] == api.app.bundle.revision
    assert error["decision_id"] and denied.headers["x-costplane-decision-id"] == error["decision_id"]
    assert "forbidden tier may not launch" in error["message"]
    logged = api.get("dev-a", "/api/v1/decisions", effect="deny").json()["decisions"]
    assert error["decision_id"] in {d["id"] for d in logged}

    # alpha-only: 2 USD an hour, 1.5 spent; 3 h of an xlarge (0.192 USD/h) would reserve 0.576
    broke = api.call("dev-a", "POST", ENVS, json={"blueprint": "noop-box", "inputs": {"size": "xlarge"}, "ttl": "3h"})
    assert broke.status_code == 402, broke.text
    assert broke.json()["error"]["code"] == "budget_exceeded" and "alpha-only" in broke.json()["error"]["message"]
    assert broke.json()["error"]["decision_id"] and broke.json()["error"]["bundle_revision"] == api.app.bundle.revision

    too_long = api.call("dev-a", "POST", ENVS, json={"blueprint": "noop-box", "ttl": "5h"})
    assert too_long.status_code == 403 and too_long.json()["error"]["field"] == "ttl"
    env_id = api.call("dev-a", "POST", ENVS, json={"blueprint": "noop-box"}).json()["id"]
    past_max = api.call("dev-a", "POST", f"{ENVS}/{env_id}/extend", json={"by": "1d"})
    assert past_max.status_code == 403 and past_max.json()["error"]["code"] == "max_ttl_exceeded"
    assert past_max.json()["error"]["decision_id"] and past_max.json()["error"]["field"] == "by"


def test_approval_flow(make_api: Callable[..., Api]) -> None:
    api = make_api(None)
    pending = api.call("dev-a", "POST", ENVS, json={"blueprint": "big-box"})
    assert pending.status_code == 202, pending.text
    assert pending.json()["state"] == "pending_approval" and pending.json()["approval"]["decision_id"]
    env_id = pending.json()["id"]
    assert api.call("dev-a", "POST", f"{ENVS}/{env_id}/approve").status_code == 403
    approved = api.call("root", "POST", f"{ENVS}/{env_id}/approve")
    assert approved.status_code == 200 and approved.json()["state"] == "active", approved.text
    assert api.call("root", "POST", f"{ENVS}/{env_id}/approve").status_code == 409
    other = api.call("dev-a", "POST", ENVS, json={"blueprint": "big-box"}).json()["id"]
    rejected = api.call("root", "POST", f"{ENVS}/{other}/reject", json={"reason": "too big for a demo"})
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    assert "too big for a demo" in rejected.json()["end_reason"]
    bad = api.call("root", "POST", f"{ENVS}/{other}/reject", json={"reason": 7})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "reason"


def test_bad_bodies_name_the_field(make_api: Callable[..., Api]) -> None:
    api = make_api(None)
    cases: list[tuple[object, str, int]] = [
        ({}, "blueprint", 400), ({"blueprint": 3}, "blueprint", 400), ([1], "(body)", 400),
        ({"blueprint": "noop-box", "inputs": [1]}, "inputs", 400),
        ({"blueprint": "noop-box", "ttl": "soon"}, "ttl", 400), ({"blueprint": "noop-box", "ttl": True}, "ttl", 400),
        ({"blueprint": "noop-box", "tags": ["a"]}, "tags", 400),
        ({"blueprint": "noop-box", "tags": {"owner": "mallory"}}, "tags.owner", 400),
        ({"blueprint": "noop-box", "tags": {"tier": "has space"}}, "tags.tier", 400),
        ({"blueprint": "noop-box", "colour": "red"}, "colour", 400),
        ({"blueprint": "noop-box", "team": ""}, "team", 400),
        ({"blueprint": "noop-box", "inputs": {"size": "huge"}}, "inputs.size", 400),
        ({"blueprint": "nope"}, "blueprint", 404),
    ]
    for body, field, status in cases:
        response = api.call("dev-a", "POST", ENVS, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["field"] == field, (body, response.json())
    broken = httpx.post(f"{api.url}{ENVS}", content=b"{nope", timeout=10,
                        headers={"authorization": f"Bearer {api.tokens['dev-a']}"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"
    env_id = api.call("dev-a", "POST", ENVS, json={"blueprint": "noop-box"}).json()["id"]
    for by in ("soon", -5, [1]):
        response = api.call("dev-a", "POST", f"{ENVS}/{env_id}/extend", json={"by": by})
        assert response.status_code == 400 and response.json()["error"]["field"] == "by", by
    listing = api.get("dev-a", ENVS, status="sleeping")
    assert listing.status_code == 400 and listing.json()["error"]["field"] == "status"


def test_blueprints_describe_inputs_lifecycle_and_cost(make_api: Callable[..., Api]) -> None:
    api = make_api(None)
    response = api.get("view-a", "/api/v1/blueprints")
    assert response.status_code == 200
    blueprints = {b["name"]: b for b in response.json()["blueprints"]}
    box = blueprints["noop-box"]
    assert box["inputs"] == [{"name": "size", "type": "string", "allowed": ["large", "xlarge"], "default": "large",
                              "minimum": None, "maximum": None, "pattern": None, "required": False}]
    assert (box["lifecycle"]["ttl"], box["lifecycle"]["max_ttl"], box["lifecycle"]["extend_by"]) == (3600, 10800,
                                                                                                     3600)
    assert box["require"] == ["owner"] and box["resources"] == [{"kind": "instance", "sku": "aws/m6i.{size}",
                                                                 "count": "1"}]
    core = build_core(api.app)
    spec = next(b for b in core.blueprints() if b.name == "noop-box")
    expected = estimate(spec, resolve_inputs(spec, {}), core.skus).hourly_nano
    assert expected > 0 and box["estimated_hourly_usd"] == format_usd(expected)
    launched = api.call("dev-a", "POST", ENVS, json={"blueprint": "noop-box"}).json()
    assert launched["hourly_usd"] == box["estimated_hourly_usd"]  # the estimate is what a default launch costs
    bundle = api.get("root", "/api/v1/bundle").json()
    assert bundle["revision"] == api.app.bundle.revision
    assert bundle["counts"] == {"policies": 2, "budgets": 4, "blueprints": 2, "slos": 3}
    assert bundle["policies"] == ["big-box-needs-approval", "no-forbidden-tier"]


def test_machine_and_users_api_share_environments(make_api: Callable[..., Api]) -> None:
    api = make_api(None)
    key = api.call("root", "POST", "/api/v1/keys", json={"name": "ci", "attributes": {"team": "alpha",
                                                                                     "owner": "ci-bot"}}).json()
    machine = httpx.post(f"{api.url}/v1/environments", json={"blueprint": "noop-box"}, timeout=10,
                         headers={"authorization": f"Bearer {key['secret']}"})
    assert machine.status_code == 201, machine.text
    seen = api.get("dev-a", f"{ENVS}/{machine.json()['id']}")
    assert seen.status_code == 200 and seen.json()["owner"] == "ci-bot"
    human = api.call("dev-a", "POST", ENVS, json={"blueprint": "noop-box"}).json()["id"]
    shown = httpx.get(f"{api.url}/v1/environments/{human}", timeout=10,
                      headers={"authorization": f"Bearer {key['secret']}"})
    assert shown.status_code == 200 and shown.json()["owner"] == "dev-a"

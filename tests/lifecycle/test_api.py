"""The /v1/environments HTTP API over a real server: every route, auth errors, bad input naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from costplane.lifecycle.drivers.process import process_state

from .server import LiveServer, live_server

P = "/v1/environments"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path) as live:
        yield live


def _client(server: LiveServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=20,
                        headers={"authorization": f"Bearer {key}"})


def _error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


def test_launch_list_show_extend_metrics_teardown(server: LiveServer) -> None:
    with _client(server, server.key(team="ml", owner="alice", tier="production")) as http:
        launched = http.post(P, json={"blueprint": "noop-box", "ttl": "30m", "context": {"project": "p1"}})
        assert launched.status_code == 201, launched.text
        env = launched.json()
        assert env["state"] == "active" and env["owner"] == "alice" and env["context"]["project"] == "p1"
        assert env["hourly_usd"] == "0.096" and env["projected_usd"] == "0.048"
        assert 1790 <= env["time_left_seconds"] <= 1800
        listed = http.get(P, params={"state": "active"}).json()["environments"]
        assert [e["id"] for e in listed] == [env["id"]]
        assert http.get(P, params={"state": "torn_down"}).json()["environments"] == []
        extended = http.post(f"{P}/{env['id']}/extend", json={"by": "30m"})
        assert extended.status_code == 200 and extended.json()["extensions"] == 1
        assert extended.json()["projected_usd"] == "0.096"
        metrics = http.post(f"{P}/{env['id']}/metrics", json={"gpu_util": 3.5})
        assert metrics.status_code == 200 and metrics.json()["metrics"]["gpu_util"]["value"] == 3.5
        ended = http.post(f"{P}/{env['id']}/teardown")
        assert ended.status_code == 200 and ended.json()["state"] == "torn_down"
        shown = http.get(f"{P}/{env['id']}").json()
        assert [t["to"] for t in shown["transitions"]] == ["active", "active", "torn_down"]
        assert shown["transitions"][-1]["reason"] == "torn down by alice" and shown["ended_at"]
        again = http.post(f"{P}/{env['id']}/teardown")
        assert again.status_code == 409 and _error(again)["code"] == "not_running"


def test_approval_flow_needs_an_approver(server: LiveServer) -> None:
    user = server.key(team="ml", owner="bob", tier="production")
    approver = server.key(team="ml", owner="carol", role="approver")
    foreign = server.key(team="platform", owner="dora", role="approver")
    with _client(server, user) as http, _client(server, approver) as boss, _client(server, foreign) as other:
        pending = http.post(P, json={"blueprint": "gpu-box", "inputs": {"gpu_type": "T4", "gpus": 4}})
        assert pending.status_code == 202 and pending.json()["state"] == "pending_approval"
        env_id = pending.json()["id"]
        refused = http.post(f"{P}/{env_id}/approve")  # no approver role
        assert refused.status_code == 403 and _error(refused)["code"] == "forbidden_role"
        assert _error(refused)["field"] == "authorization"
        # an approver of another team has no scope over the environment: 404, like an unknown one
        for action in ("approve", "reject"):
            outside = other.post(f"{P}/{env_id}/{action}")
            assert outside.status_code == 404 and _error(outside)["code"] == "unknown_environment", outside.text
        assert server.app.store.get_environment(env_id).state == "pending_approval"  # type: ignore[union-attr]
        approved = boss.post(f"{P}/{env_id}/approve")
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "active"
        pid = int(server.app.store.get_environment(env_id).handle["pid"])  # type: ignore[union-attr]
        assert process_state(pid) not in (None, "Z")
        assert http.post(f"{P}/{env_id}/teardown").status_code == 200
        second = http.post(P, json={"blueprint": "gpu-box", "inputs": {"gpu_type": "T4", "gpus": 4}}).json()
        rejected = boss.post(f"{P}/{second['id']}/reject", json={"reason": "use 1 GPU"})
        assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
        assert rejected.json()["end_reason"] == "rejected by carol: use 1 GPU"
        late = boss.post(f"{P}/{second['id']}/approve")
        assert late.status_code == 409 and _error(late)["code"] == "not_pending"


def test_auth_errors(server: LiveServer) -> None:
    for headers in ({}, {"authorization": "Bearer cpk_nope"}):
        response = httpx.get(server.url + "/v1/environments", headers=headers, timeout=10)
        assert response.status_code == 401 and _error(response)["field"] == "authorization"
        assert _error(response)["code"] == "invalid_api_key"


def test_bad_input_names_the_field(server: LiveServer) -> None:
    with _client(server, server.key(team="ml", owner="dan")) as http:
        cases: list[tuple[Any, str, str]] = [
            ({}, "blueprint", "invalid_field"),
            ({"blueprint": "noop-box", "inputs": [1]}, "inputs", "invalid_field"),
            ({"blueprint": "noop-box", "ttl": "soon"}, "ttl", "invalid_field"),
            ({"blueprint": "noop-box", "context": "x"}, "context", "invalid_field"),
            ({"blueprint": "gpu-box", "inputs": {"gpus": 12}}, "inputs.gpus", "invalid_input"),
        ]
        for body, field, code in cases:
            response = http.post(P, json=body)
            assert response.status_code == 400, (body, response.text)
            assert _error(response)["code"] == code and _error(response)["field"] == field, response.text
        not_json = http.post(P, content=b"{nope", headers={"content-type": "application/json"})
        assert not_json.status_code == 400 and _error(not_json)["field"] == "(body)"
        unknown = http.post(P, json={"blueprint": "nope"})
        assert unknown.status_code == 404 and "noop-box" in _error(unknown)["message"]
        too_long = http.post(P, json={"blueprint": "noop-box", "ttl": "3h"})
        assert too_long.status_code == 403 and _error(too_long)["code"] == "ttl_exceeds_max"
        env = http.post(P, json={"blueprint": "noop-box"}).json()
        bad_metric = http.post(f"{P}/{env['id']}/metrics", json={"gpu_util": "high"})
        assert bad_metric.status_code == 400 and _error(bad_metric)["field"] == "gpu_util"
        assert _error(http.post(f"{P}/{env['id']}/metrics", json={}))["field"] == "(body)"
        for fact in ("budget_remaining_usd", "hourly_usd", "idle_seconds"):  # computed by the scheduler
            spoof = http.post(f"{P}/{env['id']}/metrics", json={fact: 99999})
            assert spoof.status_code == 400 and _error(spoof)["field"] == fact, spoof.text
        bad_by = http.post(f"{P}/{env['id']}/extend", json={"by": -3})
        assert bad_by.status_code == 400 and _error(bad_by)["field"] == "by"
        missing = http.get(P + "/env_missing")
        assert missing.status_code == 404 and _error(missing)["field"] == "env_id"
        assert http.post(P + "/env_missing/metrics", json={"cpu_util": 1}).status_code == 404
        http.post(f"{P}/{env['id']}/teardown")

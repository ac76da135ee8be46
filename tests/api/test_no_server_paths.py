"""Decision reasons and errors name bundle files relative to the bundle (policies/x.yaml:12), never by the
server's absolute path, and carry no traceback file paths."""

from __future__ import annotations

from collections.abc import Callable

from api_harness import Api

from costplane.api.redact import bundle_relative


def test_bundle_relative() -> None:
    root = "/srv/costplane/bundle"
    text = f"blueprint 'gpu' ({root}/policies/x.yaml:12) requires owner; see GET /api/v1/blueprints"
    assert bundle_relative(text, [root]) == ("blueprint 'gpu' (policies/x.yaml:12) requires owner; "
                                             "see GET /api/v1/blueprints")
    assert bundle_relative("/old/place/policies/y.yml:3: bad", [root]) == "policies/y.yml:3: bad"
    assert bundle_relative('File "/usr/lib/python3.11/site-packages/x.py", line 9', []) == 'File "x.py", line 9'
    assert bundle_relative("fetch https://example.com/a/b.json at /api/v1/x", []) == \
        "fetch https://example.com/a/b.json at /api/v1/x"
    assert bundle_relative("no paths here: 5 USD", [root]) == "no paths here: 5 USD"


def test_refused_launch_reason_has_no_server_path(make_api: Callable[..., Api]) -> None:
    api = make_api()
    root = str(api.app.config.bundle)
    refused = api.call("root", "POST", "/api/v1/environments", json={"blueprint": "noop-box",
                                                                     "inputs": {"size": "huge"}})
    assert refused.status_code == 400, refused.text
    decisions = api.get("root", "/api/v1/decisions", limit="50").json()["decisions"]
    reasons = [d["reason"] for d in decisions if d["hook"] == "environment.launch"]
    assert reasons and all(root not in r and "/tmp/" not in r for r in reasons), reasons
    assert any("environments.yaml:" in r and "inputs.size" in r for r in reasons), reasons
    error = refused.json()["error"]
    assert root not in error["message"] and root not in error["reason"], error
    assert "/tmp/" not in refused.text and "environments.yaml:" in error["message"], error
    assert error["field"] == "inputs.size", error

"""A route to a model that only an untranslatable protocol family serves is a bundle error at load,
naming the file and line; a route to another translatable vendor loads."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from costplane.app import Application
from costplane.config import parse_config
from costplane.policy.types import BundleError

PROVIDERS = {
    "openai": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "models": ["gpt-*"]},
    "anthropic": {"type": "anthropic", "base_url": "http://127.0.0.1:9/v1", "models": ["claude-*"]},
    "bedrock": {"type": "bedrock", "base_url": "http://127.0.0.1:9", "region": "us-east-1",
                "models": ["amazon.*"], "api_key_env": "BEDROCK_API_KEY"},
}


def _app(tmp_path: Path, target: str) -> Application:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "routes.yaml").write_text(textwrap.dedent(f"""\
        kind: Policy
        name: small-by-default
        on: llm.request
        when: request.input_tokens < 4000
        effect: route
        set: {{model: {target}}}
        """))
    config = parse_config({"store": f"sqlite:///{tmp_path}/s.db", "bundle": str(bundle), "providers": PROVIDERS},
                          base=tmp_path)
    return Application(config)


def test_a_route_only_bedrock_serves_is_refused_at_load_naming_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as refused:
        _app(tmp_path, "amazon.nova-lite-v1:0")
    (issue,) = refused.value.issues
    assert str(issue.location).endswith("routes.yaml:1") and issue.field == "set.model"
    assert "bedrock" in issue.message and "cannot be translated" in issue.message


def test_a_route_to_another_translatable_vendor_loads(tmp_path: Path) -> None:
    application = _app(tmp_path, "claude-haiku-4-5")
    try:
        assert application.config.route_target("claude-haiku-4-5", "openai") is not None
    finally:
        application.close()


def test_a_route_to_a_bedrock_model_pinned_to_bedrock_requests_loads(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "routes.yaml").write_text(textwrap.dedent("""\
        kind: Policy
        name: nova-for-experiments
        on: llm.request
        when: ctx.tier == "experiment" && request.endpoint in ["converse", "invoke"]
        effect: route
        set: {model: amazon.nova-lite-v1:0}
        """))
    config = parse_config({"store": f"sqlite:///{tmp_path}/s.db", "bundle": str(bundle), "providers": PROVIDERS},
                          base=tmp_path)
    Application(config).close()

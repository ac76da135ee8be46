"""costplane.yaml: validation errors name file:line and field; the docs table matches SETTINGS."""

from __future__ import annotations

from pathlib import Path

import pytest

from costplane.config import ConfigError, load_config, parse_config, settings_table

ROOT = Path(__file__).resolve().parents[1]


def test_docs_embed_the_settings_table() -> None:
    assert settings_table() in (ROOT / "docs" / "configuration.md").read_text()


def test_example_config_loads() -> None:
    config = load_config(ROOT / "examples" / "costplane.yaml")
    assert {p.name for p in config.providers} >= {"openai", "anthropic"}
    assert config.bundle is not None and config.bundle.is_dir()


def test_defaults() -> None:
    config = parse_config({})
    assert config.gateway.default_max_tokens == 4096 and config.gateway.reservation_ttl == 600
    assert config.store_url.startswith("sqlite:///")


def test_errors_name_file_line_field_and_expectation(tmp_path: Path) -> None:
    path = tmp_path / "costplane.yaml"
    path.write_text(
        "server:\n  port: 99999\n"
        "gateway:\n  reservation_ttl: soon\n  default_max_tokns: 10\n"
        "providers:\n  openai:\n    type: opena\n    base_url: http://x/v1\n"
        "store: mysql://x\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert f"{path}:2: server.port: expected an integer from 0 to 65535, got 99999" in text
    assert f"{path}:4: gateway.reservation_ttl:" in text and "'30m'" in text
    assert f"{path}:5: gateway.default_max_tokns: unknown setting" in text
    assert f"{path}:8: providers.openai.type: expected one of openai, anthropic, openai-compatible" in text
    assert "store: expected a URL" in text


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "costplane.yaml"
    path.write_text("server:\n  port: [1,\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: not valid YAML"):
        load_config(path)


def test_provider_routing_by_protocol_and_alias() -> None:
    config = parse_config({"providers": {
        "oa": {"type": "openai", "base_url": "http://a/v1", "models": ["gpt-*"], "aliases": {"fast": "gpt-4o-mini"}},
        "an": {"type": "anthropic", "base_url": "http://b/v1", "models": ["claude-*"]},
    }})
    assert config.provider_for("fast", "openai") == (config.providers[0], "gpt-4o-mini")
    assert config.provider_for("claude-haiku-4-5", "openai") is None
    assert config.provider_for("claude-haiku-4-5", "anthropic") == (config.providers[1], "claude-haiku-4-5")

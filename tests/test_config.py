"""costplane.yaml: validation errors name file:line and field; defaults, environment overrides and
`costplane config show` come from the one settings table (costplane.settings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from costplane.cli.main import app
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


def test_the_ledger_section_is_checked_when_the_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "costplane.yaml"
    path.write_text("server:\n  port: 99999\nledger:\n  leases: maybe\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert f"{path}:4: ledger.leases: expected on or off, got 'maybe'" in text
    assert f"{path}:2: server.port:" in text  # collected with the other sections' errors
    path.write_text("ledger:\n  lease_ttl: 2h\n")
    with pytest.raises(ConfigError, match=rf"{path}:2: ledger.lease_ttl: expected 2s to 1h"):
        load_config(path)
    path.write_text("ledger:\n  leases: on\n  lease_ttl: 45s\n  journal_fsync: off\n")
    assert load_config(path).path == path
    with pytest.raises(ConfigError, match=r"ledger\.leases: expected on or off"):
        parse_config({}, env={"COSTPLANE_LEASES": "sometimes"})
    with pytest.raises(ConfigError, match=r"ledger\.journl: unknown setting"):
        parse_config({"ledger": {"journl": "/tmp/j"}})


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


def test_gateway_settings_from_the_table_with_their_ranges(tmp_path: Path) -> None:
    config = parse_config({"gateway": {"cache_purge_interval": "30s", "key_cache_seconds": 5}})
    assert config.gateway.cache_purge_interval == 30 and config.gateway.cache_ttl == 3600
    path = tmp_path / "costplane.yaml"
    path.write_text("gateway:\n  default_max_tokens: 0\n  cache_purge_interval: never\n"
                    "alerts:\n  backlog: 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert f"{path}:2: gateway.default_max_tokens: expected an integer from 1 to 2147483648, got 0" in text
    assert f"{path}:3: gateway.cache_purge_interval: expected a duration" in text
    assert f"{path}:5: alerts.backlog: expected an integer from 1 to 1000000, got 0" in text


def test_environment_overrides_the_file_only_when_given(tmp_path: Path) -> None:
    path = tmp_path / "costplane.yaml"
    path.write_text("server:\n  port: 8181\nstore: sqlite:///a.db\n")
    env = {"COSTPLANE_PORT": "9191", "COSTPLANE_STORE": "postgresql://u@db:5432/x", "COSTPLANE_HOST": ""}
    assert load_config(path).port == 8181
    config = load_config(path, env=env)
    assert (config.port, config.store_url, config.host) == (9191, "postgresql://u@db:5432/x", "127.0.0.1")
    with pytest.raises(ConfigError, match=r"server\.port \(\$COSTPLANE_PORT\): expected an integer from 0 to 65535"):
        load_config(path, env={"COSTPLANE_PORT": "eighty"})


def _show(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    path = tmp_path / "costplane.yaml"
    if not path.exists():
        path.write_text("gateway:\n  cache_ttl: 2h\nmetrics:\n  token: abcdefghijklmnopqrstuvwxyz\n")
    result = CliRunner().invoke(app, ["config", "show", "--config", str(path), *args], env=env or {})
    return result.exit_code, result.output


def test_config_show_json_names_value_and_source(tmp_path: Path) -> None:
    code, output = _show(tmp_path, "--format", "json", env={"COSTPLANE_PORT": "9000"})
    assert code == 0, output
    rows = {row["setting"]: row for row in json.loads(output)["settings"]}
    assert rows["gateway.cache_ttl"] == {"setting": "gateway.cache_ttl", "value": "2h", "default": "1h",
                                            "source": "file", "where": f"{tmp_path / 'costplane.yaml'}:2"}
    assert (rows["server.port"]["value"], rows["server.port"]["source"]) == (9000, "env")
    assert (rows["gateway.reservation_ttl"]["value"], rows["gateway.reservation_ttl"]["source"]) == ("10m", "default")
    assert rows["metrics.token"]["value"] == "(set)" and "abcdefghijkl" not in output


def test_config_show_yaml_is_a_loadable_configuration(tmp_path: Path) -> None:
    code, output = _show(tmp_path, "--format", "yaml")
    assert code == 0, output
    data = yaml.safe_load(output)
    assert data["gateway"]["cache_ttl"] == "2h" and data["server"]["port"] == 8080
    data["metrics"] = {}
    reloaded = parse_config(data)
    assert reloaded.gateway.cache_ttl == 7200 and reloaded.gateway.reservation_ttl == 600


def test_config_show_table_and_errors(tmp_path: Path) -> None:
    code, output = _show(tmp_path)
    assert code == 0 and "gateway.cache_ttl" in output and "file:2" in output
    code, output = _show(tmp_path, "--format", "xml")
    assert code == 2 and "--format: expected one of table, yaml, json" in output
    (tmp_path / "costplane.yaml").write_text("gateway:\n  loop_window: soon\n")
    code, output = _show(tmp_path)
    assert code == 2 and "costplane.yaml:2: gateway.loop_window: expected a duration" in output


def test_a_relative_sqlite_store_from_the_environment_is_relative_to_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "costplane.yaml"
    path.write_text("store: sqlite:///in-file.db\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(path).store_url == f"sqlite:///{tmp_path / 'conf' / 'in-file.db'}"
    from_env = load_config(path, env={"COSTPLANE_STORE": "sqlite:///here.db"})
    assert from_env.store_url == f"sqlite:///{tmp_path / 'here.db'}"


def test_provider_types_of_every_protocol_family(tmp_path: Path) -> None:
    config = parse_config({"providers": {
        "az": {"type": "azure-openai", "base_url": "https://res.openai.azure.com", "api_version": "2024-10-21",
               "deployments": {"prod-4o": "gpt-4o"}, "models": []},
        "gm": {"type": "gemini", "api_key_env": "GEMINI_KEY"},
        "br": {"type": "bedrock", "region": "eu-west-1", "aws_access_key_id_env": "AK",
               "aws_secret_access_key_env": "SK"},
    }})
    az, gm, br = config.providers
    assert [p.protocol for p in config.providers] == ["azure-openai", "gemini", "bedrock"]
    assert config.provider_for("prod-4o", "azure-openai") == (az, "gpt-4o")
    assert config.provider_for("prod-4o", "openai") is None
    assert az.deployment_for("gpt-4o") == "prod-4o" and az.pricing_provider == "azure"
    assert gm.base_url == "https://generativelanguage.googleapis.com" and gm.pricing_provider == "google"
    assert br.base_url == "https://bedrock-runtime.eu-west-1.amazonaws.com" and br.region == "eu-west-1"
    assert br.aws_credentials() is None  # the variables are not set


def test_provider_type_fields_are_checked_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "costplane.yaml"
    path.write_text(
        "providers:\n"
        "  az:\n    type: azure-openai\n    base_url: https://x\n    deployments: [a]\n"
        "  br:\n    type: bedrock\n    region: us-east-1\n    aws_access_key_id_env: AK\n"
        "  br2:\n    type: bedrock\n    region: us-east-1\n"
        "  oa:\n    type: openai\n    base_url: http://x/v1\n    region: us-east-1\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert f"{path}:5: providers.az.deployments: expected a mapping of deployment name to model name" in text
    assert f"{path}:9: providers.br.aws_access_key_id_env: set both" in text
    assert f"{path}:10: providers.br2: expected aws_access_key_id_env and aws_secret_access_key_env" in text
    assert f"{path}:16: providers.oa.region: unknown setting" in text


def test_a_route_reaches_another_translatable_family() -> None:
    config = parse_config({"providers": {
        "oa": {"type": "openai", "base_url": "http://a/v1", "models": ["gpt-*"]},
        "an": {"type": "anthropic", "base_url": "http://b/v1", "models": ["claude-*"]},
        "br": {"type": "bedrock", "region": "us-east-1", "api_key_env": "K", "models": ["amazon.*"]},
    }})
    oa, an, _ = config.providers
    assert config.route_target("gpt-4o-mini", "openai") == (oa, "gpt-4o-mini")
    assert config.route_target("claude-haiku-4-5", "openai") == (an, "claude-haiku-4-5")
    assert config.route_target("amazon.nova-lite-v1:0", "openai") is None  # Bedrock is not translated into
    assert config.route_target("gpt-4o", "bedrock") is None  # nor out of

"""alerts: in costplane.yaml — parsed, and errors name file:line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from costplane.config import ConfigError, load_config


def test_alerts_config_parsed(tmp_path: Path) -> None:
    path = tmp_path / "costplane.yaml"
    path.write_text("alerts:\n  webhooks:\n    - url: https://hooks.example/a\n      kinds: [budget_threshold]\n"
                    "  forecast_interval: 10m\n  retries: 5\n")
    alerts = load_config(path).alerts
    assert alerts.webhooks[0].url == "https://hooks.example/a" and alerts.webhooks[0].kinds == ("budget_threshold",)
    assert alerts.forecast_interval == 600 and alerts.retries == 5


@pytest.mark.parametrize(("text", "where", "field"), [
    ("alerts:\n  webhooks:\n    - url: ftp://x\n", 3, "alerts.webhooks[0].url"),
    ("alerts:\n  webhooks:\n    - url: https://x\n      kinds: [budget, policy]\n", 4, "alerts.webhooks[0].kinds"),
    ("alerts:\n  webhooks:\n    - url: https://x\n      secret: s\n", 4, "alerts.webhooks[0].secret"),
    ("alerts:\n  retries: many\n", 2, "alerts.retries"),
    ("alerts:\n  forecast_interval: soon\n", 2, "alerts.forecast_interval"),
    ("alerts:\n  webhook: []\n", 2, "alerts.webhook"),
])
def test_alerts_config_errors_name_file_line_and_field(tmp_path: Path, text: str, where: int, field: str) -> None:
    path = tmp_path / "costplane.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{path}:{where}: {field}:" in str(info.value)

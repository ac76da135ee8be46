"""`costplane prices list|show` through Typer's CliRunner."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costplane.cli.main import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


@pytest.fixture(autouse=True)
def _no_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./costplane.yaml is picked up by accident
    monkeypatch.delenv("COSTPLANE_CONFIG", raising=False)


def write_config(tmp_path: Path, pricing: str) -> Path:
    path = tmp_path / "costplane.yaml"
    path.write_text("pricing:\n" + pricing, encoding="utf-8")
    return path


def test_list_table_filters_by_provider_and_search() -> None:
    result = runner.invoke(app, ["prices", "list", "--provider", "openai", "--search", "gpt-4o-mini"],
                           env=WIDE)
    assert result.exit_code == 0, result.output
    assert "gpt-4o-mini" in result.output and "0.075" in result.output and "genai-prices" in result.output
    assert "anthropic" not in result.output


def test_list_json() -> None:
    result = runner.invoke(app, ["prices", "list", "-p", "openai", "-s", "gpt-4o-mini", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    mini = next(row for row in rows if row["model"] == "gpt-4o-mini")
    assert mini["price"]["rates"] == {"input": "0.15", "cache_read": "0.075", "cache_write": "0.15",
                                      "output": "0.6", "reasoning": "0.6", "storage_searches": "2.5",
                                      "web_searches": "10"}
    assert mini["price"]["declared"]["cache_write"] is None
    assert mini["not_metered"] == []  # every unit the data prices is metered
    assert mini["price"]["units"]["web_searches"] == {"usd": "10", "per": 1000, "quoted": "per 1K web searches"}
    assert {v["when"]["service_tier"] for v in mini["price"]["variants"] if "service_tier" in v["when"]} >= {
        "priority"}


def test_list_includes_overrides_from_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, "  overrides:\n    - {model: acme-private-llm, provider: internal,"
                                    " input: '0.50', output: '1.50'}\n")
    result = runner.invoke(app, ["prices", "list", "--search", "acme", "--config", str(config), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert [(r["provider"], r["model"], r["source"], r["price"]["rates"]["output"])
            for r in json.loads(result.output)] == [("internal", "acme-private-llm", "override", "1.50")]


def test_show_at_a_date_with_history() -> None:
    result = runner.invoke(app, ["prices", "show", "claude-sonnet-4-6", "--provider", "anthropic",
                                 "--at", "2026-01-01", "--format", "json"])
    assert result.exit_code == 0, result.output
    detail = json.loads(result.output)
    assert detail["matched_model"] == "claude-sonnet-4-6" and detail["at"].startswith("2026-01-01T00:00:00")
    assert detail["price"]["tiers"][0]["above_input_tokens"] == 200_000
    assert [(h["condition"], h["active"]) for h in detail["history"]][:1] == [("always", True)]
    assert ("from 2026-03-13", False) in [(h["condition"], h["active"]) for h in detail["history"]]
    assert detail["data_version"] == f"genai-prices {version('genai-prices')}"
    assert detail["not_metered"] == [] and {"web_searches", "cache_write_1h"} <= set(detail["price"]["units"])
    assert detail["from_override"] is False


def test_show_table() -> None:
    result = runner.invoke(app, ["prices", "show", "gpt-4o-2024-08-06", "--at", "2026-06-01T10:00:00"],
                           env=WIDE)
    assert result.exit_code == 0, result.output
    for text in ("gpt-4o (openai)", f"genai-prices {version('genai-prices')}", "History of prices",
                 "Every billed unit", "web_searches", "per 1K web searches", "2026-06-01 10:00 UTC"):
        assert text in result.output
    assert "not metered" not in result.output


def test_show_override(tmp_path: Path) -> None:
    config = write_config(tmp_path, "  overrides:\n    - model: gpt-4o\n      provider: openai\n"
                                    "      input: 2\n      output: 8\n      effective_from: 2026-01-01\n")
    result = runner.invoke(app, ["prices", "show", "gpt-4o", "-p", "openai", "--at", "2026-02-01",
                                 "--config", str(config), "-f", "json"])
    assert result.exit_code == 0, result.output
    detail = json.loads(result.output)
    assert detail["from_override"] is True and detail["price"]["rates"]["input"] == "2"
    assert detail["history"][-1]["override"] == "pricing.overrides[0]"


def test_show_unknown_model_suggests_and_exits_1() -> None:
    result = runner.invoke(app, ["prices", "show", "gpt-4o-mnii"])
    assert result.exit_code == 1
    assert "no known price for model 'gpt-4o-mnii'" in result.output
    assert "did you mean: gpt-4o-mini" in result.output
    json_result = runner.invoke(app, ["prices", "show", "gpt-4o-mnii", "-f", "json"])
    assert json_result.exit_code == 1
    assert "gpt-4o-mini" in json.loads(json_result.output)["suggestions"]


def test_show_model_without_token_price_exits_1() -> None:
    result = runner.invoke(app, ["prices", "show", "whisper-large-v3", "-p", "groq"], env=WIDE)
    assert result.exit_code == 1
    assert "no per-token price in effect" in result.output and "audio_hours" in result.output


def test_bad_options_and_config(tmp_path: Path) -> None:
    assert runner.invoke(app, ["prices", "show", "gpt-4o", "--at", "yesterday"]).exit_code == 2
    assert runner.invoke(app, ["prices", "list", "--format", "xml"]).exit_code == 2
    config = write_config(tmp_path, "  overrides:\n    - {model: m, input: -1, output: 1}\n")
    result = runner.invoke(app, ["prices", "list", "--config", str(config)])
    assert result.exit_code == 2
    assert "costplane.yaml:3: pricing.overrides[0].input" in result.output

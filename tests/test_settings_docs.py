"""The settings table is the one source: docs/configuration.md is regenerated from it, and the
defaults the parsers apply are the defaults it declares."""

from __future__ import annotations

from pathlib import Path

from costplane.cli.config import effective_settings
from costplane.config import parse_config
from costplane.ledger.open import LEASE_KEYS
from costplane.ledger.windows import parse_duration
from costplane.otel import export_settings
from costplane.reconcile import settings as reconcile_settings
from costplane.serversettings import SERVER_KEYS
from costplane.settings import BEGIN, END, SECTIONS, SETTINGS, Setting, embed, keys_of, reference_table, shown

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_docs_table_is_regenerated_without_a_difference() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    assert embed(text) == text, "docs/configuration.md is stale: run python -m costplane.settings docs/configuration.md"


def test_every_setting_is_one_row_of_the_table() -> None:
    table = reference_table()
    assert len(table.splitlines()) == len(SETTINGS) + 2
    assert len({s.path for s in SETTINGS}) == len(SETTINGS)
    for s in SETTINGS:
        assert f"| `{s.path}` |" in table


def test_the_parsed_defaults_are_the_declared_defaults() -> None:
    """parse_config({}) applies, for every setting, the default the table (and so the docs) shows —
    also for the sections parsed outside costplane.config (telemetry, reconcile)."""
    rows = effective_settings(parse_config({}), {}, {}, "costplane.yaml", {})
    assert [r.setting for r in rows] == list(SETTINGS)
    for row in rows:
        assert row.source == "default"
        if row.setting.path == "store":
            assert str(row.value).endswith("/costplane.db")  # resolved against the working directory
            continue
        if row.setting.path == "bundle":
            assert row.value is None
            continue
        assert _normal(row.setting, row.value) == _normal(row.setting, row.setting.default), row.setting.path


def _normal(setting: Setting, value: object) -> object:
    return parse_duration(str(value)) if setting.type == "duration" else shown(setting, value)


def test_every_section_parser_accepts_exactly_the_declared_keys() -> None:
    assert SECTIONS == ("server", "store", "bundle", "gateway", "providers", "pricing", "alerts", "reconcile",
                        "telemetry", "metrics", "ledger")
    assert keys_of("ledger") == LEASE_KEYS
    assert set(keys_of("server")) == {"host", "port", *SERVER_KEYS}
    assert keys_of("telemetry") == export_settings._KEYS
    assert keys_of("reconcile") == reconcile_settings._KEYS
    assert set(keys_of("metrics")) == {"token", "token_env"}

"""FOCUS 1.2 export (CSV and Parquet) and chargeback: exact money, every column, x_ context."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costplane.attribution.context import Context
from costplane.cli.main import app as cli
from costplane.export.chargeback import chargeback
from costplane.export.focus import FOCUS_COLUMNS, X_COLUMNS
from costplane.ledger.types import CostEvent
from costplane.money import nano_to_decimal
from costplane.pricing.types import TokenUsage

# FOCUS 1.2 columns that must never be null for a usage charge (focus-validator's 1.x NotNull rules)
NOT_NULL = ("BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
            "ChargeCategory", "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
            "EffectiveCost", "InvoiceIssuerName", "ListCost", "ProviderName", "PublisherName", "ServiceCategory",
            "ServiceName", "ConsumedQuantity", "ConsumedUnit", "PricingQuantity", "PricingUnit", "SkuId",
            "SkuPriceId", "ChargeFrequency", "PricingCategory")
ISO = "%Y-%m-%dT%H:%M:%SZ"


def _events(store) -> int:
    base = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    total = 0
    for i in range(7):
        cost = 123_456_789 * (i + 1) + 1  # nano-USD that no float sums exactly
        total += cost
        store.record_event(CostEvent(
            id=f"evt_{i}", ts=base + timedelta(hours=i, microseconds=250), provider="openai", model="gpt-4o-mini",
            context=Context(team="support" if i % 2 else "growth", agent="triage", run=f"r-{i}", tags={"env": "prod"}),
            cost_nano=cost, endpoint="chat.completions", usage=TokenUsage(input_tokens=100 + i, output_tokens=20),
            unit_prices={"input": "0.15", "output": "0.6"}, latency_ms=1500, saved_nano=5 if i == 0 else 0))
    store.record_event(CostEvent(id="evt_late", ts=datetime(2026, 12, 2, tzinfo=UTC), provider="openai",
                                 model="gpt-4o", context=Context(team="support"), cost_nano=999))
    return total


def test_focus_csv_round_trip(store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    total = _events(store)
    out = tmp_path / "focus.csv"
    (tmp_path / "costplane.yaml").write_text(f"store: {store.url}\n")
    result = CliRunner().invoke(cli, ["export", "focus", "--since", "2026-11-01", "--until", "2026-12-01",
                                      "--format", "csv", "--output", str(out), "-c", str(tmp_path / "costplane.yaml")])
    assert result.exit_code == 0, result.output
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [*FOCUS_COLUMNS, *X_COLUMNS]
    assert len(rows) == 7
    assert sum(Decimal(r["BilledCost"]) for r in rows) == nano_to_decimal(total)
    for row in rows:
        assert all(row[c] for c in NOT_NULL), [c for c in NOT_NULL if not row[c]]
        assert row["BilledCost"] == row["EffectiveCost"] == row["ListCost"] == row["ContractedCost"]
        assert row["ChargeCategory"] == "Usage" and row["BillingCurrency"] == "USD"
        assert row["ServiceCategory"] == "AI and Machine Learning" and row["ConsumedUnit"] == "Tokens"
        start, end = (datetime.strptime(row[c], ISO) for c in ("ChargePeriodStart", "ChargePeriodEnd"))
        assert start < end and row["BillingPeriodStart"] == "2026-11-01T00:00:00Z"
        assert json.loads(row["Tags"])["env"] == "prod" and row["x_Agent"] == "triage"
        assert row["x_Team"] in ("support", "growth") and row["x_Run"].startswith("r-")
    assert rows[0]["ConsumedQuantity"] == "120" and rows[0]["x_SavedCost"] == "0.000000005"


def test_focus_parquet_round_trip(store, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from costplane.export.focus import focus_row, iter_events
    from costplane.export.writers import write_parquet

    total = _events(store)
    out = tmp_path / "focus.parquet"
    since, until = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    count = write_parquet((focus_row(e) for e in iter_events(store, since, until, batch=3)),
                          [*FOCUS_COLUMNS, *X_COLUMNS], out, batch=4)
    table = pq.read_table(out)
    assert count == table.num_rows == 7
    assert str(table.schema.field("BilledCost").type) == "decimal128(38, 9)"
    assert sum(table.column("BilledCost").to_pylist()) == nano_to_decimal(total)
    assert set(table.column("ServiceCategory").to_pylist()) == {"AI and Machine Learning"}


def test_chargeback_per_team_per_month(store, tmp_path: Path) -> None:
    _events(store)
    rows = {r.group: r for r in chargeback(store, "2026-11")}
    support = sum(123_456_789 * (i + 1) + 1 for i in range(7) if i % 2)
    assert rows["support"].cost_nano == support and rows["support"].events == 3
    assert rows["growth"].saved_nano == 5 and rows["growth"].top_models[0][0] == "gpt-4o-mini"
    (tmp_path / "costplane.yaml").write_text(f"store: {store.url}\n")
    out = tmp_path / "cb.csv"
    result = CliRunner().invoke(cli, ["export", "chargeback", "--month", "2026-12", "--output", str(out),
                                      "-c", str(tmp_path / "costplane.yaml")])
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines()[1].startswith("support,0.000000999,0,1,gpt-4o 0.000000999")
    config = str(tmp_path / "costplane.yaml")
    bad = CliRunner().invoke(cli, ["export", "chargeback", "--month", "2026-13", "-c", config])
    assert bad.exit_code == 1 and "2026-13" in bad.output

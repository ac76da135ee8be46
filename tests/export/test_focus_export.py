"""FOCUS 1.2 / 1.3 exports (CSV and Parquet) of every kind of cost event, checked by the conformance
checker (focus_conformance.py); exact money; company names; chargeback per team per month."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from focus_conformance import Report, check_csv, check_parquet, check_rows
from focus_fixtures import gpu_job_event, llm_events, record_all
from typer.testing import CliRunner

from costplane.attribution.context import Context
from costplane.cli.main import app as cli
from costplane.export.chargeback import chargeback
from costplane.export.focus import FocusExporter
from costplane.export.focus_columns import columns_for
from costplane.export.focus_lines import charge_lines
from costplane.export.focus_names import Companies, company_of, vendor_of
from costplane.ledger.types import CostEvent
from costplane.money import nano_to_decimal
from costplane.pricing.types import PriceSheet, TokenUsage

CONFIG = """store: {url}
providers:
  openai-main: {{type: openai, base_url: "https://api.openai.com/v1"}}
  local: {{type: openai-compatible, base_url: "http://127.0.0.1:9000/v1", company: Contoso AI}}
"""


def _export(store: Any, tmp: Path, version: str | None, fmt: str, *extra: str) -> tuple[Path, Any]:
    config = tmp / "costplane.yaml"
    config.write_text(CONFIG.format(url=store.url))
    out = tmp / f"focus-{version}.{fmt}"
    args = ["export", "focus", "--format", fmt, "--output", str(out), "-c", str(config), *extra]
    if version:
        args += ["--version", version]
    return out, CliRunner().invoke(cli, args)


def _read(path: Path, fmt: str) -> list[dict[str, Any]]:
    if fmt == "csv":
        with path.open(newline="") as handle:
            return [{k: (v if v != "" else None) for k, v in r.items()} for r in csv.DictReader(handle)]
    import pyarrow.parquet as pq

    return list(pq.read_table(path).to_pylist())


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_exports_of_every_event_kind_conform(store: Any, tmp_path: Path, version: str, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow.parquet")
    total, env = record_all(store, tmp_path)
    out, result = _export(store, tmp_path, version, fmt)
    assert result.exit_code == 0, result.output
    report: Report = (check_csv if fmt == "csv" else check_parquet)(out, version)
    assert report.ok, "\n".join(report.errors)
    rows = _read(out, fmt)
    assert report.rows == len(rows) == 31 and f"FOCUS {version}" in result.output
    assert list(rows[0]) == list(columns_for(version))
    # the rules the issue is about were read from the spec data and evaluated on every row
    assert any("ListUnitPrice MUST NOT be null when ChargeCategory is" in text for text in report.checked)
    assert any("product of ListUnitPrice and PricingQuantity" in text for text in report.checked)
    # exact money: the export's BilledCost is the ledger's spend to the nano-dollar
    assert sum(Decimal(str(r["BilledCost"])) for r in rows) == nano_to_decimal(total)
    usage = [r for r in rows if r["ChargeCategory"] == "Usage"]
    assert len(usage) == len(rows) and all(r["ListUnitPrice"] is not None for r in usage)
    for row in rows:
        price, quantity = Decimal(str(row["ListUnitPrice"])), Decimal(str(row["PricingQuantity"]))
        assert Decimal(str(row["ListCost"])) == price * quantity
        details = json.loads(row["SkuPriceDetails"], parse_float=Decimal, parse_int=Decimal)
        assert all(key.startswith("x_") for key in details)
        assert details["x_UnitListPrice"] == Decimal(str(row["ListUnitPrice"]))
    by_event = {}
    for row in rows:
        by_event.setdefault(row["x_EventId"], []).append(row)
    mini = by_event["evt_mini"]
    assert [r["SkuMeter"] for r in mini] == ["Input Tokens", "Cache Read Tokens", "Output Tokens", "Reasoning Tokens"]
    assert {r["PricingUnit"] for r in mini} == {"1000000 Tokens"}
    assert [str(r["PricingQuantity"]).rstrip("0").rstrip(".") for r in mini] == ["0.0008", "0.0002", "0.0002", "0.0001"]
    # the ledger keeps every billed unit and the served tier: they come back itemised from the store
    assert [r["SkuMeter"] for r in by_event["evt_sonnet_1h"]][-2:] == ["Cache Write 1h Tokens", "Web Searches"]
    assert json.loads(by_event["evt_priority"][0]["SkuPriceDetails"])["x_ServiceTier"] == "priority"
    provider = "ServiceProviderName" if version == "1.3" else "ProviderName"
    assert {r[provider] for r in mini} == {"OpenAI"} and mini[0]["x_ProviderKey"] == "openai-main"
    assert by_event["evt_bedrock"][0][provider] == "Amazon Web Services"
    assert by_event["evt_bedrock"][0]["PublisherName"] == "Anthropic"
    assert by_event["evt_sonnet"][0]["InvoiceIssuerName"] == "Anthropic"
    assert by_event["evt_flagged"][0][provider] == "Contoso AI"  # providers.local.company in costplane.yaml
    assert by_event["evt_flagged"][0]["x_PriceFlagged"] == "true"
    if version == "1.3":
        assert all(r["HostProviderName"] == r["ServiceProviderName"] for r in rows)
        assert all(r["AllocatedMethodId"] is None and r["ContractApplied"] is None for r in rows)
    # event-level facts sit on the first row only
    assert mini[0]["x_SavedCost"] is not None and mini[1]["x_SavedCost"] is None
    assert str(mini[0]["x_InputTokens"]) == "1000" and mini[2]["x_InputTokens"] is None
    # unpriced, estimated and unknown-unit events: one conformant line at the event's cost
    for name in ("evt_unpriced", "evt_estimated", "evt_audio", "evt_cached"):
        (line,) = by_event[name]
        assert line["x_CostBasis"] == "event" and line["PricingUnit"] == "Requests"
    assert by_event["evt_unpriced"][0]["x_Status"] == "unpriced"
    # environments: one row per SKU, count x hours at the SKU's hourly price, billed = accrued
    env_rows = [r for r in rows if r["ResourceId"] == env.id]
    assert len(env_rows) == 4 and {r["ServiceCategory"] for r in env_rows} == {"Compute"}
    assert sum(Decimal(str(r["BilledCost"])) for r in env_rows) == nano_to_decimal(env.accrued_nano)
    first = next(r for r in env_rows if str(r["x_LineIndex"]) == "0")
    assert first["SkuId"] == "aws/gpu/L4" and first["PricingUnit"] == "Hours"
    assert Decimal(str(first["PricingQuantity"])) == Decimal("3.003888889")  # 2 GPUs x 1 h 30 min 7 s
    gpu = by_event["evt_gpu"][0]
    assert gpu[provider] == "Amazon Web Services" and gpu["ServiceName"] == "Amazon EC2"


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_every_metered_unit_gets_its_own_priced_row(version: str) -> None:
    """1-hour cache writes and web searches (their own units and prices), a service tier's prices."""
    events = {e.id: e for e in llm_events()}
    exporter = FocusExporter(version)
    tools = {r["SkuMeter"]: r for r in exporter.rows(events["evt_sonnet_1h"])}
    priority = list(exporter.rows(events["evt_priority"]))
    report = check_rows([*tools.values(), *priority], exporter.columns, version)
    assert report.ok, report.errors
    assert list(tools) == ["Input Tokens", "Cache Write Tokens", "Output Tokens", "Cache Write 1h Tokens",
                           "Web Searches"]
    hour = tools["Cache Write 1h Tokens"]
    assert (hour["PricingQuantity"], hour["ListUnitPrice"], hour["ConsumedQuantity"]) == ("0.001", "6", "1000")
    searches = tools["Web Searches"]
    assert (searches["PricingUnit"], searches["PricingQuantity"], searches["ListCost"]) == (
        "1000 Web Searches", "0.002", "0.02")
    assert sum(Decimal(str(r["BilledCost"])) for r in tools.values()) == nano_to_decimal(
        events["evt_sonnet_1h"].cost_nano)
    assert priority[0]["ListUnitPrice"] == "0.25" and "[service_tier=priority]" in str(priority[0]["SkuPriceId"])
    assert json.loads(str(priority[0]["SkuPriceDetails"]))["x_ServiceTier"] == "priority"


def test_default_version_is_1_3_and_bad_input_is_named(store: Any, tmp_path: Path) -> None:
    store.record_event(llm_events()[0])
    out, result = _export(store, tmp_path, None, "csv", "--company", "openai-main=OpenAI Ireland")
    assert result.exit_code == 0, result.output
    rows = _read(out, "csv")
    assert "ServiceProviderName" in rows[0] and rows[0]["ServiceProviderName"] == "OpenAI Ireland"
    assert check_csv(out, "1.3").ok
    bad = _export(store, tmp_path, "1.1", "csv")[1]
    assert bad.exit_code == 1 and "--version" in bad.output and "1.1" in bad.output
    company = _export(store, tmp_path, "1.3", "csv", "--company", "nonsense")[1]
    assert company.exit_code == 1 and "--company" in company.output


def test_token_lines_are_exact_and_fall_back_when_facts_do_not_add_up() -> None:
    mini = llm_events()[0]
    lines = charge_lines(mini)
    assert sum(line.billed_nano for line in lines) == mini.cost_nano
    assert [line.list_cost for line in lines] == [Decimal("0.00012"), Decimal("0.000015"), Decimal("0.00012"),
                                                   Decimal("0.00006")]
    # a cost that the unit prices do not explain is exported as it was recorded, not re-priced
    odd = CostEvent(id="e", ts=mini.ts, context=Context(), provider="openai", model="gpt-4o-mini",
                    cost_nano=mini.cost_nano + 10, usage=mini.usage, unit_prices=mini.unit_prices)
    (line,) = charge_lines(odd)
    assert line.basis == "event" and line.billed_nano == odd.cost_nano and line.quantity == 1
    # cumulative rounding: three half nano-dollars are billed 1 + 0 + 1, adding up to the ledger's 2
    half = PriceSheet(model="m", provider="openai", input=Decimal("0.0005"), output=Decimal("0.0005"),
                      cache_read=Decimal("0.0005"))
    usage = TokenUsage(input_tokens=2, output_tokens=1, cache_read_tokens=1)
    small = CostEvent(id="h", ts=mini.ts, context=Context(), provider="openai", model="m",
                      cost_nano=half.cost_nano(usage), usage=usage,
                      unit_prices={k: str(v) for k, v in half.rates().items()})
    assert small.cost_nano == 2 and [line.billed_nano for line in charge_lines(small)] == [1, 0, 1]
    job = gpu_job_event()
    (gpu,) = charge_lines(job)
    assert gpu.unit == "Hours" and gpu.billed_nano == job.cost_nano and gpu.quantity == Decimal("3.003888889")


def test_company_names() -> None:
    assert vendor_of("claude-sonnet-4-5") == "Anthropic" and vendor_of("us.anthropic.claude-3-haiku") == "Anthropic"
    assert vendor_of("gpt-4o-mini") == "OpenAI" and vendor_of("gemini-2.5-pro") == "Google"
    assert vendor_of("meta.llama3-70b-instruct-v1:0") == "Meta" and vendor_of("my-model") is None
    assert company_of("azure", "gpt-4o") == "Microsoft" and company_of("gcp", "gcp/a3-highgpu-8g") == "Google Cloud"
    assert company_of("local", "claude-3-haiku") == "Anthropic" and company_of("local", "x") == "local"
    names = Companies.from_providers({"main": (None, "openai", None), "proxy": (None, "openai-compatible", "groq"),
                                      "mine": ("Contoso AI", "openai-compatible", None),
                                      "lab": (None, "openai-compatible", None)})
    assert names.hints == {"main": "OpenAI", "proxy": "Groq", "mine": "Contoso AI"}
    assert names.provider("lab", "mistral-large") == "Mistral AI"
    assert names.publisher("aws", "anthropic.claude-3-haiku") == "Anthropic"
    assert names.service("aws", "anthropic.claude-3-haiku", compute=False) == "Amazon Bedrock"


def test_exporter_rows_follow_the_version_columns() -> None:
    event = llm_events()[1]
    for version in ("1.2", "1.3"):
        rows = list(FocusExporter(version).rows(event))
        assert all(list(r) == list(columns_for(version)) for r in rows)
    assert "ServiceProviderName" not in columns_for("1.2") and "ServiceProviderName" in columns_for("1.3")
    with pytest.raises(ValueError, match=r"1\.4"):
        FocusExporter("1.4")


def _events(store: Any) -> int:
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


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_reconcile_reads_the_export_as_a_bill(store: Any, tmp_path: Path, fmt: str) -> None:
    """`costplane reconcile` takes a FOCUS file as a bill: costplane's own export reads back to the ledger's spend,
    under the companies' canonical provider names and the x_Model models."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow.parquet")
    from costplane.reconcile.settings import ReconcileSettings
    from costplane.reconcile.sources.context import ReadContext
    from costplane.reconcile.sources.focus import FocusOptions, read_focus

    for event in llm_events():
        store.record_event(event)
    out, result = _export(store, tmp_path, "1.3", fmt)
    assert result.exit_code == 0, result.output
    report = (check_csv if fmt == "csv" else check_parquet)(out, "1.3")
    assert report.ok, report.errors
    bill = read_focus(out, ReadContext.of(ReconcileSettings()), FocusOptions())
    assert bill.has_model
    assert sum(line.cost for line in bill.lines) == nano_to_decimal(sum(e.cost_nano for e in llm_events()))
    providers = {line.provider for line in bill.lines if line.cost}
    assert {"openai", "anthropic", "aws"} <= providers

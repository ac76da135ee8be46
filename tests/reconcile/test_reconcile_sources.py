"""Each bill format read exactly, with errors that name the file and the field."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from reconcile_seed import DATA, SETTINGS

from costplane.reconcile.settings import ReconcileSettings
from costplane.reconcile.sources import FocusOptions, ReadContext, read_bill
from costplane.reconcile.types import MONEY, TOKENS, ReconcileError

CTX = ReadContext.of(SETTINGS)
D1, D2 = date(2026, 11, 2), date(2026, 11, 3)


def test_openai_costs_pages_are_read_exactly_with_models_and_projects() -> None:
    source = read_bill(DATA / "openai_costs.json", CTX)
    assert (source.kind, source.label, source.has_model, source.has_project) == (MONEY, "openai-costs", True, True)
    assert {p: sorted(days) for p, days in source.covered.items()} == {"openai": [D1, D2]}
    by_key: dict[tuple[date, str | None, str | None], Decimal] = {}
    for line in source.lines:
        key = (line.day, line.model, line.project)
        by_key[key] = by_key.get(key, Decimal(0)) + line.cost
    # 0.1 + 0.2 read as decimals is 0.3 exactly (as binary floats it would be 0.30000000000000004)
    assert by_key == {(D1, "gpt-4o", "search"): Decimal("1.25"), (D1, "gpt-4o-mini", ""): Decimal("0.3"),
                      (D2, "gpt-4o", "search"): Decimal("2.0")}
    assert source.lines[0].raw_model == "gpt-4o-2024-08-06, input"
    assert source.lines[0].source.endswith("openai_costs.json: [0].data[0].results[0]")


def test_openai_usage_tokens() -> None:
    source = read_bill(DATA / "openai_usage.json", CTX)
    assert (source.kind, source.label) == (TOKENS, "openai-usage")
    assert [(x.day, x.model, x.project, x.input_tokens, x.output_tokens, x.requests) for x in source.lines] == [
        (D1, "gpt-4o", "search", 1500, 300, 2), (D1, "gpt-4o-mini", "", 3000, 500, 1),
        (D2, "gpt-4o", "search", 2000, 600, 1)]


def test_anthropic_cost_amounts_are_cents_strings() -> None:
    source = read_bill(DATA / "anthropic_cost_report.json", CTX)
    assert (source.kind, source.label) == (MONEY, "anthropic-cost")
    assert [(x.day, x.model, x.project, x.cost) for x in source.lines] == [
        (D1, "claude-sonnet-4-5", "support", Decimal("2.5")), (D1, "claude-sonnet-4-5", "support", Decimal("0.5")),
        (D2, "claude-sonnet-4-5", "support", Decimal("4.375")), (D2, "claude-haiku-4-5", "support", Decimal("0.1"))]


def test_anthropic_usage_counts_every_prompt_token() -> None:
    source = read_bill(DATA / "anthropic_usage_report.json", CTX)
    first = source.lines[0]
    assert (first.model, first.project, first.input_tokens, first.output_tokens) == ("claude-sonnet-4-5", "support",
                                                                                     2000, 400)


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _anthropic_cost(result: dict[str, object]) -> dict[str, object]:
    return {"data": [{"starting_at": "2026-11-02T00:00:00Z", "ending_at": "2026-11-03T00:00:00Z",
                      "results": [result]}], "has_more": False, "next_page": None}


def test_a_non_token_anthropic_cost_is_a_line_of_its_own(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.json", _anthropic_cost({"amount": "1.00", "currency": "USD", "workspace_id": None,
                                                        "model": None, "cost_type": "web_search",
                                                        "description": "Web Search"}))
    [line] = read_bill(path, CTX).lines
    assert (line.model, line.project, line.cost) == ("web_search", "", Decimal("0.01"))


@pytest.mark.parametrize(("result", "message"), [
    ({"amount": 123.45, "currency": "USD"}, "data[0].results[0].amount: expected a decimal string of cents"),
    ({"amount": "1", "currency": "EUR"}, "data[0].results[0].currency: only USD bills"),
    ({"amount": "abc", "currency": "USD"}, "data[0].results[0].amount: expected a number"),
])
def test_bad_anthropic_costs_name_the_field(tmp_path: Path, result: dict[str, object], message: str) -> None:
    path = _write(tmp_path, "c.json", _anthropic_cost(result))
    with pytest.raises(ReconcileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_bill(path, CTX)


def test_bad_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"data": [\n  {"start_time": 1,\n  oops}\n]}')
    with pytest.raises(ReconcileError, match=r"broken\.json:3: not valid JSON"):
        read_bill(path, CTX)


def test_a_daily_bucket_cannot_be_cut_into_another_zones_days() -> None:
    paris = ReadContext.of(ReconcileSettings(timezone="Europe/Paris"))
    with pytest.raises(ReconcileError, match=r"spans two days in Europe/Paris"):
        read_bill(DATA / "anthropic_cost_report.json", paris)


FOCUS_HEADER = "BilledCost,EffectiveCost,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,BillingCurrency," \
               "ProviderName,ServiceProviderName,SkuId,ResourceId,x_Model,x_Project,Tags\n"


def test_focus_csv_uses_the_service_provider_and_the_x_columns(tmp_path: Path) -> None:
    path = tmp_path / "focus.csv"
    path.write_text(FOCUS_HEADER
                    + '1.10,1.00,2026-11-02T10:00:00Z,2026-11-02T11:00:00Z,Usage,USD,Microsoft,OpenAI,s,r,'
                      'gpt-4o-2024-08-06,search,"{""team"": ""a""}"\n'
                    + "0.50,0.50,2026-11-02T00:00:00Z,2026-11-03T00:00:00Z,Tax,USD,Microsoft,OpenAI,s,r,,,\n")
    source = read_bill(path, CTX)
    [line] = source.lines
    assert (line.day, line.provider, line.model, line.project, line.cost) == (D1, "openai", "gpt-4o", "search",
                                                                              Decimal("1.10"))
    assert source.skipped == {"Tax": 1}
    effective = read_bill(path, CTX, focus=FocusOptions("EffectiveCost", None, "Tags.team"))
    assert (effective.lines[0].cost, effective.lines[0].project) == (Decimal("1.00"), "a")


def test_a_bad_focus_row_names_the_file_line(tmp_path: Path) -> None:
    path = tmp_path / "focus.csv"
    path.write_text(FOCUS_HEADER + "1.10,1,2026-11-02T10:00:00Z,,Usage,USD,OpenAI,,s,r,m,p,\n"
                    + "lots,1,2026-11-02T10:00:00Z,,Usage,USD,OpenAI,,s,r,m,p,\n")
    with pytest.raises(ReconcileError, match=r"focus\.csv:3: BilledCost: expected a decimal amount"):
        read_bill(path, CTX)


def test_focus_parquet_decimals(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({
        "BilledCost": pa.array([Decimal("0.123456789012")], pa.decimal128(20, 12)),
        "ChargePeriodStart": pa.array(["2026-11-03T05:00:00Z"]), "ProviderName": pa.array(["Anthropic"]),
        "ChargeCategory": pa.array(["Usage"]), "x_Model": pa.array(["claude-haiku-4-5-20251001"]),
    })
    path = tmp_path / "focus.parquet"
    pq.write_table(table, path)
    [line] = read_bill(path, CTX).lines
    assert (line.day, line.provider, line.model, line.cost) == (D2, "anthropic", "claude-haiku-4-5",
                                                                Decimal("0.123456789012"))


def test_a_file_that_is_not_a_bill(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.json", {"hello": 1})
    with pytest.raises(ReconcileError, match=r"x\.json: expected a report page"):
        read_bill(path, CTX)
    csv_path = tmp_path / "x.csv"
    csv_path.write_text("a,b\n1,2\n")
    with pytest.raises(ReconcileError, match=r"not a FOCUS file: the column ChargePeriodStart is missing"):
        read_bill(csv_path, CTX)

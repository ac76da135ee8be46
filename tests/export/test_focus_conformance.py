"""The conformance checker itself: it reads the spec data faithfully, and planted defects make it fail."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from focus_conformance import check_csv, check_parquet, check_rows, load_requirements, parse_rules
from focus_fixtures import gpu_job_event, llm_events

from costplane.export.focus import FocusExporter
from costplane.export.writers import write_csv, write_parquet


def _rows(version: str) -> tuple[list[str], list[dict[str, Any]]]:
    exporter = FocusExporter(version)
    rows = [row for event in [*llm_events(), gpu_job_event()] for row in exporter.rows(event)]
    return list(exporter.columns), rows


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([["" if r.get(c) is None else r[c] for c in columns] for r in rows])
    return path


def test_requirements_are_read_from_the_spec_data() -> None:
    v12, v13 = load_requirements("1.2"), load_requirements("1.3")
    assert len(v12) == 57 and len(v13) == 65
    assert v13["ServiceProviderName"].feature_level == "Mandatory" and not v13["ServiceProviderName"].allows_nulls
    assert v13["CommitmentDiscountStatus"].allowed_values == ("Used", "Unused")  # the 1.3 correction
    assert v12["ChargeCategory"].allowed_values == ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
    assert v12["ListUnitPrice"].applicability == ("PUBLIC_PRICE_LIST_SUPPORTED",)  # taken from 1.3 for 1.2
    for spec in (v12, v13):
        rules, unparsed = parse_rules(spec)
        kinds = {(r.column, r.kind) for r in rules}
        for column in ("ListUnitPrice", "ContractedUnitPrice", "PricingCurrencyListUnitPrice",
                       "PricingCurrencyContractedUnitPrice", "PricingQuantity", "SkuPriceId"):
            assert (column, "not_null") in kinds, column
        assert ("ListCost", "product") in kinds and ("ContractedCost", "product") in kinds
        assert ("ChargeFrequency", "not_value") in kinds and ("ChargeClass", "value") in kinds
        assert ("ListUnitPrice", "non_negative") in kinds
        assert unparsed and all(isinstance(text, str) for text in unparsed)  # listed, not silently passed


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_clean_rows_pass_and_each_planted_defect_fails(version: str, tmp_path: Path) -> None:
    columns, rows = _rows(version)
    assert check_csv(_write_csv(tmp_path / "ok.csv", columns, rows), version).ok

    def fails(change: Any, expect: str, cols: list[str] | None = None) -> None:
        planted = [dict(r) for r in rows]
        change(planted)
        report = check_csv(_write_csv(tmp_path / "bad.csv", cols or columns, planted), version)
        assert not report.ok and report.failed(expect), (expect, report.errors)

    def null_list_price(rs: list[dict[str, Any]]) -> None:
        rs[0]["ListUnitPrice"] = None

    def bad_frequency(rs: list[dict[str, Any]]) -> None:
        rs[1]["ChargeFrequency"] = "Sometimes"

    def bad_date(rs: list[dict[str, Any]]) -> None:
        rs[2]["ChargePeriodStart"] = "2026-11-03 09:30:00"

    def per_million_details(rs: list[dict[str, Any]]) -> None:  # price details in another unit than PricingUnit
        rs[0]["PricingUnit"], rs[0]["PricingQuantity"] = "Tokens", "800"
        rs[0]["ListUnitPrice"] = rs[0]["ContractedUnitPrice"] = "0.00000015"

    def unprefixed_key(rs: list[dict[str, Any]]) -> None:
        rs[0]["SkuPriceDetails"] = '{"input_usd_per_mtok": 0.15}'

    def wrong_list_cost(rs: list[dict[str, Any]]) -> None:
        rs[0]["ListCost"] = "0.00013"

    def wrong_subcategory(rs: list[dict[str, Any]]) -> None:
        rs[0]["ServiceSubcategory"] = "Virtual Machines"

    def purchase_usage_based(rs: list[dict[str, Any]]) -> None:
        rs[0]["ChargeCategory"] = "Purchase"

    fails(null_list_price, "ListUnitPrice MUST NOT be null when ChargeCategory")
    fails(bad_frequency, "ChargeFrequency: 'Sometimes' is not an allowed value")
    fails(bad_date, "ChargePeriodStart: '2026-11-03 09:30:00' is not an ISO 8601")
    fails(per_million_details, "not the price of one PricingUnit 'Tokens'")
    fails(unprefixed_key, "key 'input_usd_per_mtok' is neither FOCUS-defined nor x_")
    fails(wrong_list_cost, "ListCost")
    fails(wrong_subcategory, "parent is 'Compute'")
    fails(purchase_usage_based, 'MUST NOT be "Usage-Based" when ChargeCategory is "Purchase"')
    missing = "ServiceProviderName" if version == "1.3" else "ProviderName"
    fails(lambda rs: None, f"column {missing}: missing (Mandatory)", [c for c in columns if c != missing])
    fails(lambda rs: None, "column Extra: not a FOCUS", [*columns, "Extra"])


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_parquet_types_are_checked(version: str, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    columns, rows = _rows(version)
    good = tmp_path / "ok.parquet"
    write_parquet(rows, columns, good)
    assert check_parquet(good, version).ok
    table = pq.read_table(good)
    for column, as_type, expect in (("ListUnitPrice", pa.string(), "ListUnitPrice: is string in Parquet"),
                                    ("PricingQuantity", pa.float64(), "PricingQuantity: is double in Parquet"),
                                    ("ChargePeriodStart", pa.string(), "ChargePeriodStart: is string")):
        index = table.schema.get_field_index(column)
        changed = table.set_column(index, pa.field(column, as_type), table.column(column).cast(as_type))
        bad = tmp_path / f"bad-{column}.parquet"
        pq.write_table(changed, bad)
        report = check_parquet(bad, version)
        assert not report.ok and report.failed(expect), report.errors
    # the CSV writer and the checker agree on the same rows
    assert check_csv(tmp_path / "ok.csv" if write_csv(rows, columns, tmp_path / "ok.csv") else good, version).ok


def test_presence_follows_what_the_generator_supports() -> None:
    columns, rows = _rows("1.3")
    without = [c for c in columns if not c.startswith("Sku")]
    trimmed = [{k: v for k, v in r.items() if k in without} for r in rows]
    report = check_rows(trimmed, without, "1.3")
    assert report.failed("column SkuPriceId: missing (Conditional)")
    quiet = check_rows(trimmed, without, "1.3", supports=frozenset({"USAGE_MEASUREMENT_SUPPORTED"}))
    assert not quiet.failed("column SkuPriceId: missing")

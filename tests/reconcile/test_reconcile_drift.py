"""Metered vs billed on a seeded ledger (SQLite and PostgreSQL): the planted drift and nothing else."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from reconcile_seed import DATA, PROVIDERS, SETTINGS, seed

from costplane.ledger import Store
from costplane.reconcile.match import Line
from costplane.reconcile.metered import ledger_provider_map
from costplane.reconcile.run import Reconciliation, reconcile
from costplane.reconcile.settings import ReconcileSettings
from costplane.reconcile.sources import ReadContext, read_bill
from costplane.reconcile.types import ReconcileError

BILLS = ("openai_costs.json", "openai_usage.json", "anthropic_cost_report.json", "anthropic_usage_report.json")
D1, D2 = date(2026, 11, 2), date(2026, 11, 3)


def _run(store: Store, files: tuple[str, ...] = BILLS, settings: ReconcileSettings = SETTINGS, *,
         paths: tuple[Path, ...] = (), **options: object) -> Reconciliation:
    ctx = ReadContext.of(settings)
    sources = [read_bill(DATA / name, ctx) for name in files] + [read_bill(p, ctx) for p in paths]
    return reconcile(store, sources, settings, ledger_provider_map(PROVIDERS, settings), **options)  # type: ignore[arg-type]


def _key(line: Line) -> tuple[object, ...]:
    return line.kind, line.day, line.provider, line.model, line.project


def test_the_planted_drift_and_nothing_else(store: Store) -> None:
    seed(store)
    result = _run(store)
    [breach] = result.breaches
    assert _key(breach) == ("money", D2, "anthropic", "claude-sonnet-4-5", "support")
    assert (breach.metered, breach.billed, breach.drift, breach.drift_pct) == (
        Decimal("4.000000000"), Decimal("4.375"), Decimal("0.375000000"), Decimal("8.57"))
    assert breach.status == "matched" and breach.events == 1
    others = [line for line in result.lines if line is not breach]
    assert all(line.drift == 0 and line.status == "matched" and not line.breach for line in others)
    assert sorted(_key(line) for line in result.money) == [
        ("money", D1, "anthropic", "claude-sonnet-4-5", "support"), ("money", D1, "openai", "gpt-4o", "search"),
        ("money", D1, "openai", "gpt-4o-mini", ""), ("money", D2, "anthropic", "claude-haiku-4-5", "support"),
        ("money", D2, "anthropic", "claude-sonnet-4-5", "support"), ("money", D2, "openai", "gpt-4o", "search")]
    assert len(result.tokens) == 6  # the usage reports match the ledger's token counts line for line
    assert result.unmatched("billed_only") == () and result.unmatched("metered_only") == ()
    # totals over the compared days; the $9.99 of 2026-11-05 lies outside every bill
    assert result.totals() == {"anthropic": (Decimal("7.1"), Decimal("7.475")), "openai": (Decimal("3.55"),
                                                                                       Decimal("3.55"))}
    document = result.to_json()
    assert document["breaches"] == 1 and document["days"] == ["2026-11-02", "2026-11-03"]
    assert document["totals"]["money"]["anthropic"] == {"metered": "7.100000000", "billed": "7.475",
                                                        "drift": "0.375000000"}
    json.dumps(document)  # plain JSON throughout


def test_unmatched_lines_on_both_sides(store: Store, tmp_path: Path) -> None:
    seed(store, [("x1", "2026-11-03T12:00:00", "openai", "gpt-4.1", "search", "0.42", 10, 10, 0, 0)])
    costs = json.loads((DATA / "openai_costs.json").read_text())
    costs[1]["data"][0]["results"].append({"object": "organization.costs.result", "amount": {"value": "0.07",
                                           "currency": "usd"}, "line_item": "web search tool calls",
                                           "project_id": "proj_search"})
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(costs))
    result = _run(store, ("anthropic_cost_report.json",), paths=(path,))
    [billed_only] = result.unmatched("billed_only")
    assert (_key(billed_only), billed_only.billed, billed_only.metered, billed_only.drift_pct) == (
        ("money", D2, "openai", "web search tool calls", "search"), Decimal("0.07"), Decimal(0), Decimal("100.00"))
    [metered_only] = result.unmatched("metered_only")
    assert (_key(metered_only), metered_only.metered, metered_only.drift_pct) == (
        ("money", D2, "openai", "gpt-4.1", "search"), Decimal("0.420000000"), None)
    assert metered_only.breach  # $0.42 metered and nothing billed passes both thresholds
    assert not billed_only.breach  # $0.07 is under the $0.10 threshold
    assert {_key(b) for b in result.breaches} == {_key(metered_only),
                                                  ("money", D2, "anthropic", "claude-sonnet-4-5", "support")}


def test_a_billed_day_with_no_line_makes_ledger_spend_unmatched(store: Store, tmp_path: Path) -> None:
    seed(store)
    report = json.loads((DATA / "anthropic_cost_report.json").read_text())
    report["data"][1]["results"] = []  # Anthropic billed nothing on 2026-11-03
    path = tmp_path / "cost.json"
    path.write_text(json.dumps(report))
    result = _run(store, (), paths=(path,))
    assert sorted((line.day, line.model, line.status, line.metered) for line in result.money) == [
        (D1, "claude-sonnet-4-5", "matched", Decimal("3.000000000")),
        (D2, "claude-haiku-4-5", "metered_only", Decimal("0.100000000")),
        (D2, "claude-sonnet-4-5", "metered_only", Decimal("4.000000000"))]


def test_provider_grain_rolls_both_sides_up(store: Store) -> None:
    seed(store)
    result = _run(store, ("openai_costs.json", "anthropic_cost_report.json"), grain="provider")
    assert [(line.day, line.provider, line.model, line.project, line.drift) for line in result.money] == [
        (D1, "anthropic", None, None, Decimal(0)), (D1, "openai", None, None, Decimal(0)),
        (D2, "anthropic", None, None, Decimal("0.375000000")), (D2, "openai", None, None, Decimal(0))]


def test_thresholds_decide_what_alerts(store: Store) -> None:
    seed(store)
    assert _run(store, settings=replace(SETTINGS, drift_threshold_pct=Decimal(9))).breaches == ()  # 8.57 % < 9 %
    assert _run(store, settings=replace(SETTINGS, drift_threshold_usd=Decimal("0.40"))).breaches == ()
    assert len(_run(store, settings=replace(SETTINGS, drift_threshold_usd=None)).breaches) == 1
    assert _run(store, settings=replace(SETTINGS, drift_threshold_usd=None, drift_threshold_pct=None)).breaches == ()


def test_since_until_keep_only_those_days(store: Store) -> None:
    seed(store)
    result = _run(store, since=D2, until=date(2026, 11, 4))
    assert {line.day for line in result.lines} == {D2}
    assert len(result.breaches) == 1


def test_two_bills_for_one_provider_day_are_refused(store: Store) -> None:
    with pytest.raises(ReconcileError, match=r"two bills cover openai on 2026-11-02"):
        _run(store, ("openai_costs.json", "openai_costs.json"))  # the same file twice
    copy = DATA / "openai_costs.json"
    ctx = ReadContext.of(SETTINGS)
    first, second = read_bill(copy, ctx), read_bill(copy, ctx)
    second.path = "again.json"
    with pytest.raises(ReconcileError, match=r"two bills cover openai on 2026-11-02: .*openai_costs\.json and again"):
        reconcile(store, [first, second], SETTINGS, {})


def test_a_named_zone_cuts_hourly_focus_rows_into_local_days(store: Store, tmp_path: Path) -> None:
    seed(store)
    path = tmp_path / "focus.csv"  # the e6 call at 23:30 UTC on 2026-11-03 is 2026-11-04 in Tokyo
    path.write_text("BilledCost,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ProviderName,x_Model\n"
                    "4.00,2026-11-03T23:00:00Z,2026-11-04T00:00:00Z,Usage,Anthropic,claude-sonnet-4-5\n")
    tokyo = replace(SETTINGS, timezone="Asia/Tokyo")
    result = _run(store, (), tokyo, paths=(path,))
    assert [(line.day, line.model, line.metered, line.billed, line.status) for line in result.money] == [
        (date(2026, 11, 4), "claude-sonnet-4-5", Decimal("4.000000000"), Decimal("4.00"), "matched")]


def test_a_token_drift_cannot_hide_behind_the_other_kind_of_token(store: Store, tmp_path: Path) -> None:
    seed(store)
    usage = json.loads((DATA / "openai_usage.json").read_text())
    first = usage["data"][1]["results"][0]  # 2026-11-03 gpt-4o: the ledger has 2000 prompt, 600 completion
    first["input_tokens"], first["output_tokens"] = 2300, 300  # the same total, split differently
    path = tmp_path / "usage.json"
    path.write_text(json.dumps(usage))
    result = _run(store, (), paths=(path,))
    [breach] = result.breaches
    assert (_key(breach), breach.drift, breach.metered_split, breach.billed_split) == (
        ("tokens", D2, "openai", "gpt-4o", "search"), Decimal(0), (2000, 600), (2300, 300))
    line = next(x for x in result.to_json()["tokens"] if x["breach"])
    assert line["prompt_tokens"] == {"metered": 2000, "billed": 2300}


def test_bills_of_different_hours_of_one_day_go_together_but_not_overlapping_ones(store: Store,
                                                                                   tmp_path: Path) -> None:
    seed(store)
    header = "BilledCost,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ProviderName,x_Model\n"
    morning, night, late = tmp_path / "morning.csv", tmp_path / "night.csv", tmp_path / "late.csv"
    morning.write_text(header + "0.10,2026-11-03T11:00:00Z,2026-11-03T12:00:00Z,Usage,Anthropic,claude-haiku-4-5\n")
    night.write_text(header + "4.00,2026-11-03T23:00:00Z,2026-11-04T00:00:00Z,Usage,Anthropic,claude-sonnet-4-5\n")
    late.write_text(header + "1.00,2026-11-03T23:30:00Z,2026-11-04T00:00:00Z,Usage,Anthropic,claude-sonnet-4-5\n")
    result = _run(store, (), paths=(morning, night))
    assert [(line.model, line.status, line.drift) for line in result.money] == [
        ("claude-haiku-4-5", "matched", Decimal(0)), ("claude-sonnet-4-5", "matched", Decimal(0))]
    with pytest.raises(ReconcileError, match=r"two bills cover anthropic on 2026-11-03: .*night\.csv and .*late\.csv"):
        _run(store, (), paths=(night, late))

"""`costplane reconcile` end to end: files or --fetch (a fake admin API on 127.0.0.1), the three
formats, the exit codes and the drift alert to a webhook, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from reconcile_fake_api import ANTHROPIC_KEY, OPENAI_KEY, FakeApi, fake_api
from reconcile_seed import DATA, seed
from typer.testing import CliRunner

from costplane.cli.main import app
from costplane.ledger import open_store

BILLS = [str(DATA / name) for name in ("openai_costs.json", "openai_usage.json", "anthropic_cost_report.json",
                                       "anthropic_usage_report.json")]
runner = CliRunner()


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with fake_api() as served:
        yield served


@pytest.fixture
def config(store_url: Callable[[], str], tmp_path: Path, api: FakeApi) -> Path:
    url = store_url()
    store = open_store(url)
    store.migrate()
    seed(store)
    store.close()
    path = tmp_path / "costplane.yaml"
    path.write_text(yaml.safe_dump({
        "store": url,
        "providers": {"openai": {"type": "openai", "base_url": "https://api.openai.com/v1"},
                      "claude-prod": {"type": "anthropic", "base_url": "https://api.anthropic.com"}},
        "alerts": {"webhooks": [{"url": f"{api.base}/hook", "kinds": ["reconcile_drift"]}]},
        "reconcile": {"drift_threshold_pct": 5, "drift_threshold_usd": "0.10",
                      "projects": {"proj_search": "search", "wrkspc_01Support": "support", "default": None}},
    }))
    return path


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["reconcile", *args])
    return result.exit_code, result.stdout, result.stderr


def test_files_json_exit_1_and_one_alert_per_drift(config: Path, api: FakeApi) -> None:
    code, out, err = _run(*BILLS, "--format", "json", "-c", str(config))
    assert code == 1, err
    document = json.loads(out)
    [breach] = [line for line in document["money"] if line["breach"]]
    assert (breach["day"], breach["provider"], breach["model"], breach["project"]) == (
        "2026-11-03", "anthropic", "claude-sonnet-4-5", "support")
    assert (breach["metered"], breach["billed"], breach["drift"], breach["drift_pct"]) == (
        "4.000000000", "4.375", "0.375000000", "8.57")
    assert document["breaches"] == 1 and document["unmatched"] == {"billed_only": 0, "metered_only": 0}
    [hook] = api.hooks
    assert hook["costplane"]["kind"] == "reconcile_drift"
    assert [b["drift"] for b in hook["costplane"]["data"]["breaches"]] == ["0.375000000"]
    assert "claude-sonnet-4-5" in hook["text"]
    code, _, err = _run(*BILLS, "--format", "json", "-c", str(config))
    assert code == 1 and "already raised" in err  # the same drift does not alert twice
    assert len(api.hooks) == 1


def test_csv_is_exact_and_the_table_marks_the_alert(config: Path) -> None:
    code, out, _ = _run(*BILLS, "--format", "csv", "--no-alert", "-c", str(config))
    assert code == 1
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 12  # six money lines and six token lines
    assert [(r["kind"], r["model"], r["drift"]) for r in rows if r["breach"] == "true"] == [
        ("money", "claude-sonnet-4-5", "0.375000000")]
    code, out, _ = _run(*BILLS, "--no-alert", "-c", str(config))
    assert code == 1 and "ALERT" in out and "1 line(s) past the drift threshold" in out


def test_within_threshold_exits_0_without_alert(config: Path, api: FakeApi) -> None:
    code, _, err = _run(*BILLS, "--threshold-pct", "10", "--format", "json", "-c", str(config))
    assert code == 0, err
    assert api.hooks == []


def test_bad_input_exits_2_naming_the_file(config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "costs.json"
    bad.write_text('{"object": "page", "data": [{"start_time": "soon", "end_time": 1, "results": []}]}')
    code, _, err = _run(str(bad), "--report-kind", "openai-costs", "-c", str(config))
    assert code == 2 and "costs.json: data[0].start_time: expected Unix seconds" in err
    code, _, err = _run("--threshold-usd", "lots", *BILLS, "-c", str(config))
    assert code == 2 and "--threshold-pct/--threshold-usd/--timezone" in err
    code, _, err = _run(*BILLS, "--timezone", "Europe/Paris", "-c", str(config))
    assert code == 2 and "spans two days in Europe/Paris" in err


def test_fetch_follows_pages_with_the_admin_keys(config: Path, api: FakeApi, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", ANTHROPIC_KEY)
    saved = tmp_path / "bills"
    code, out, err = _run("--fetch", "openai", "--fetch", "anthropic", "--api-base", api.base, "--since",
                          "2026-11-02", "--until", "2026-11-04", "--save", str(saved), "--format", "json",
                          "--no-alert", "-c", str(config))
    assert code == 1, err
    document = json.loads(out)
    assert [(b["provider"], b["model"], b["drift"]) for b in document["money"] if b["breach"]] == [
        ("anthropic", "claude-sonnet-4-5", "0.375000000")]
    paths = [path for path, _, _ in api.requests]
    assert paths.count("/v1/organization/costs") == 2 and paths.count("/v1/organizations/cost_report") == 2
    costs = [q for path, q, _ in api.requests if path == "/v1/organization/costs"]
    assert ("start_time", "1793577600") in costs[0] and ("end_time", "1793750400") in costs[0]
    assert ("group_by", "line_item") in costs[0] and ("group_by", "project_id") in costs[0]
    assert ("page", "page_AAAAAGdGxdEiJdKOAAAAAGcqsYA=") in costs[1]
    anthropic = [q for path, q, _ in api.requests if path == "/v1/organizations/cost_report"]
    assert ("starting_at", "2026-11-02T00:00:00Z") in anthropic[0] and ("group_by[]", "workspace_id") in anthropic[0]
    assert ("page", "page_MjAyNi0xMS0wMw==") in anthropic[1]
    assert sorted(p.name for p in saved.iterdir()) == [
        "anthropic-cost-2026-11-02-2026-11-04.json", "anthropic-usage-2026-11-02-2026-11-04.json",
        "openai-costs-2026-11-02-2026-11-04.json", "openai-usage-2026-11-02-2026-11-04.json"]
    saved_costs = json.loads((saved / "openai-costs-2026-11-02-2026-11-04.json").read_text())
    assert [page["data"][0]["results"][0]["amount"] for page in saved_costs] == [
        {"value": 0.6, "currency": "usd"}, {"value": 1.5, "currency": "usd"}]  # numbers kept as the API sent them
    # what was saved reads back offline to the same result
    code, again, _ = _run(*(str(p) for p in sorted(saved.iterdir())), "--format", "json", "--no-alert",
                          "-c", str(config))
    assert code == 1 and json.loads(again)["money"] == document["money"]


def test_fetch_without_a_key_or_with_a_wrong_one(config: Path, api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
    code, _, err = _run("--fetch", "openai", "--api-base", api.base, "-c", str(config))
    assert code == 2 and "OPENAI_ADMIN_KEY" in err
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", "sk-ant-admin01-wrong")
    code, _, err = _run("--fetch", "anthropic", "--api-base", api.base, "-c", str(config))
    assert code == 2 and "HTTP 401" in err and "sk-ant-admin01-wrong" not in err


def test_a_bad_reconcile_setting_names_the_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "costplane.yaml"
    path.write_text("store: sqlite:///ledger.db\nreconcile:\n  drift_threshold_pct: lots\n  timezone: Mars/Base\n")
    code, _, err = _run(*BILLS, "-c", str(path))
    assert code == 2
    assert "costplane.yaml:3: reconcile.drift_threshold_pct" in err and "reconcile.timezone" in err

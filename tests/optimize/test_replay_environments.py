"""Policy replay of environment launches: denied / needs approval / budget refused / changed, with the
environments' actual accrued cost as the saving; the GPU detectors' emitted policies replayed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costplane.cli.main import app
from costplane.ledger import Store, open_store
from costplane.optimize.detectors.gpus import IDLE, OVERSIZED, detect_idle, detect_oversized, load_environments
from costplane.optimize.replay import ReplayReport, render_text, replay_store
from costplane.optimize.synthetic import SyntheticHistory, SyntheticSpec, generate, synthetic_config, write
from costplane.policy.bundle import load_bundle
from costplane.pricing.catalog import Catalog
from costplane.pricing.skus import SkuCatalog

from .replay_helpers import RECORDED_BUNDLE, Seeded, environment_cost, seed_environments, table_counts

CATALOG = Catalog.load()
SKUS = SkuCatalog.load()
CONFIG = synthetic_config()
T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
runner = CliRunner()


def _bundle(tmp: Path, name: str, text: str) -> Path:
    root = tmp / name
    root.mkdir()
    (root / "all.yaml").write_text(text)
    return root


def _replay(store: Store, seeded: Seeded, root: Path) -> ReplayReport:
    return replay_store(store, seeded.start, seeded.end, load_bundle(root), CONFIG, CATALOG, SKUS, batch=3)


def _hours(sku: str, hours: float, count: int = 1) -> int:
    return SKUS.lookup(sku, T0).cost_nano(int(hours * 3600), count)


@pytest.fixture
def seeded(store: Store, tmp_path: Path) -> Seeded:
    return seed_environments(store, tmp_path, T0)


def test_recorded_bundle_replays_to_the_recorded_cost(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    report = _replay(store, seeded, _bundle(tmp_path, "same", RECORDED_BUNDLE))
    launches = report.launches
    costs = [environment_cost(store, e) for e in (seeded.a100, seeded.l4, seeded.cpu)]
    assert (launches.launches, launches.ran, launches.changes, launches.newly_admitted) == (4, 3, [], 0)
    assert launches.recorded_nano == launches.replayed_nano == sum(costs) and all(c > 0 for c in costs)
    # the accrued events are what the environments cost: hourly price x hours run
    assert costs == [_hours("aws/gpu/A100-80GB", 3, 2), _hours("aws/gpu/L4", 5.5), _hours("aws/m6i.large", 1)]


def test_removed_blueprint_tighter_inputs_and_max_ttl(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    tighter = (RECORDED_BUNDLE.replace("allowed: [L4, A100-80GB]", "allowed: [L4]")
               .replace("max_ttl: 12h", "max_ttl: 5h").split("---")[0])  # cpu-box removed
    report = _replay(store, seeded, _bundle(tmp_path, "tight", tighter))
    launches = report.launches
    changes = {c.environment_id: c for c in launches.changes}
    a100, l4, cpu = (environment_cost(store, e) for e in (seeded.a100, seeded.l4, seeded.cpu))
    assert (changes[seeded.a100].kind, changes[seeded.a100].saved_nano) == ("denied", a100)
    assert "inputs.gpu_type" in changes[seeded.a100].detail
    assert (changes[seeded.cpu].kind, changes[seeded.cpu].saved_nano) == ("denied", cpu)
    assert "no blueprint named 'cpu-box'" in changes[seeded.cpu].detail
    # the 2 h extension would pass max_ttl 5 h: the environment stops at its first expiry, 4 h
    assert changes[seeded.l4].kind == "changed" and "extension 1 past max_ttl" in changes[seeded.l4].detail
    assert changes[seeded.l4].saved_nano == l4 - _hours("aws/gpu/L4", 4)
    assert launches.saved_nano == a100 + cpu + l4 - _hours("aws/gpu/L4", 4)
    assert launches.newly_admitted == 0  # the ownerless launch stays denied
    assert report.total_saved_nano == launches.saved_nano  # no LLM requests in this history


def test_approval_budget_and_ttl_cap(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    candidate = RECORDED_BUNDLE + """---
kind: Budget
name: ml-envs
scope: ctx.team == "ml"
amount: 5 USD
window: lifetime
---
kind: Policy
name: l4-one-hour
on: environment.launch
when: request.gpu_type == "L4"
effect: mutate
set: {ttl: 1h}
---
kind: Policy
name: web-needs-approval
on: environment.launch
when: ctx.team == "web"
effect: require_approval
reason: web launches are approved by finance
"""
    report = _replay(store, seeded, _bundle(tmp_path, "gates", candidate))
    changes = {c.environment_id: c for c in report.launches.changes}
    a100, l4, cpu = (environment_cost(store, e) for e in (seeded.a100, seeded.l4, seeded.cpu))
    assert (changes[seeded.a100].kind, changes[seeded.a100].cause, changes[seeded.a100].saved_nano) == (
        "budget_refused", "ml-envs", a100)
    # capped to 1 h: the recorded extension (3 h in) comes after the environment would have ended
    assert (changes[seeded.l4].kind, changes[seeded.l4].cause) == ("changed", "l4-one-hour")
    assert changes[seeded.l4].saved_nano == l4 - _hours("aws/gpu/L4", 1)
    assert (changes[seeded.cpu].kind, changes[seeded.cpu].cause, changes[seeded.cpu].saved_nano) == (
        "needs_approval", "web-needs-approval", 0)
    assert report.launches.at_stake_nano == cpu
    assert report.launches.by_kind["budget_refused"].saved_nano == a100


def test_a_denied_launch_the_candidate_admits_is_newly_admitted(store: Store, seeded: Seeded,
                                                                tmp_path: Path) -> None:
    report = _replay(store, seeded, _bundle(tmp_path, "loose", RECORDED_BUNDLE.replace("require: [owner]", "")))
    assert report.launches.newly_admitted == 1 and report.launches.changes == []


def test_extension_denied_by_an_extend_policy(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    candidate = RECORDED_BUNDLE + ("---\nkind: Policy\nname: no-extensions\non: environment.extend\n"
                                   "effect: deny\nreason: launch a new one\n")
    report = _replay(store, seeded, _bundle(tmp_path, "noext", candidate))
    (change,) = report.launches.changes
    assert (change.environment_id, change.cause) == (seeded.l4, "no-extensions")
    assert change.saved_nano == environment_cost(store, seeded.l4) - _hours("aws/gpu/L4", 4)


def test_extension_capped_by_an_extend_mutate(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    candidate = RECORDED_BUNDLE + ("---\nkind: Policy\nname: short-extensions\non: environment.extend\n"
                                   "effect: mutate\nset: {ttl: 30m}\n")
    report = _replay(store, seeded, _bundle(tmp_path, "short", candidate))
    (change,) = report.launches.changes
    # asked for 2 h at 3 h in, granted 30 min: it ends at 4.5 h instead of running to 5.5 h
    assert (change.environment_id, change.kind, change.cause) == (seeded.l4, "changed", "short-extensions")
    assert "extension 1 capped to 1800s" in change.detail
    assert change.saved_nano == environment_cost(store, seeded.l4) - _hours("aws/gpu/L4", 4.5)


# -- the GPU detectors' emitted policies, replayed over the synthetic GPU history -------------------

CANDIDATE_BLUEPRINTS = """
kind: Blueprint
name: notebook-a100
resources: [{kind: gpu, sku: aws/gpu/A100-80GB, count: 1}]
driver: {type: noop}
lifecycle: {ttl: 24h, max_ttl: 24h}
---
kind: Blueprint
name: finetune-a100
resources: [{kind: gpu, sku: "SKU", count: 2}]
driver: {type: noop}
lifecycle: {ttl: 24h, max_ttl: 24h}
---
kind: Blueprint
name: train-h100
resources: [{kind: gpu, sku: aws/gpu/H100, count: 4}]
driver: {type: noop}
lifecycle: {ttl: 24h, max_ttl: 24h}
"""


@pytest.fixture(scope="module")
def gpus() -> SyntheticHistory:
    return generate(SyntheticSpec(oversizing=False, cache=False, gpus=True), CATALOG, SKUS)


def _gpu_candidate(store: Store, gpus: SyntheticHistory, tmp: Path, *, resize: bool) -> Path:
    history = load_environments(store, gpus.start, gpus.end, SKUS)
    findings = {f.detector: f for f in [*detect_idle(history), *detect_oversized(history)]}
    root = tmp / f"candidate-{resize}"
    root.mkdir()
    for name, finding in findings.items():
        (root / f"{name}.yaml").write_text(finding.document)
    # the over-sizing finding says: "change blueprint finetune-a100's GPU resource sku to aws/gpu/L4"
    sku = findings[OVERSIZED].evidence["smaller_sku"] if resize else "aws/gpu/A100-80GB"
    (root / "blueprints.yaml").write_text(CANDIDATE_BLUEPRINTS.replace("SKU", str(sku)))
    return root


def test_replaying_the_gpu_detectors_policies_removes_their_cost(store: Store, gpus: SyntheticHistory,
                                                                 tmp_path: Path) -> None:
    write(store, gpus)
    root = _gpu_candidate(store, gpus, tmp_path, resize=True)
    report = replay_store(store, gpus.start, gpus.end, load_bundle(root), CONFIG, CATALOG, SKUS)
    launches = report.launches
    assert launches.ran == 3 * SyntheticSpec().gpu_environments
    idle = launches.by_cause["idle-gpu-notebook-a100"]
    resized = launches.by_cause["blueprint finetune-a100"]
    assert idle.kinds == {"changed": SyntheticSpec().gpu_environments}
    assert resized.kinds == {"changed": SyntheticSpec().gpu_environments}
    # the idle hours are gone (to the nano-USD rounding of each environment) and the L4 price is paid
    assert abs(idle.saved_nano - gpus.known[IDLE]) <= SyntheticSpec().gpu_environments
    assert resized.saved_nano == gpus.known[OVERSIZED]
    assert "train-h100" not in launches.by_blueprint  # the control is unchanged
    assert launches.saved_nano == idle.saved_nano + resized.saved_nano
    assert "2x aws/gpu/A100-80GB -> 2x aws/gpu/L4" in next(
        c.detail for c in launches.changes if c.blueprint == "finetune-a100")


def test_the_right_size_deny_alone_denies_the_whole_run(store: Store, gpus: SyntheticHistory,
                                                        tmp_path: Path) -> None:
    write(store, gpus)
    root = _gpu_candidate(store, gpus, tmp_path, resize=False)
    report = replay_store(store, gpus.start, gpus.end, load_bundle(root), CONFIG, CATALOG, SKUS)
    denied = [c for c in report.launches.changes if c.blueprint == "finetune-a100"]
    assert {c.kind for c in denied} == {"denied"} and len(denied) == SyntheticSpec().gpu_environments
    whole = sum(e.accrued_nano for e in gpus.environments if e.blueprint == "finetune-a100")
    assert sum(c.saved_nano for c in denied) == whole > gpus.known[OVERSIZED]


# -- the CLI: launches section in text and json; nothing written -----------------------------------

def test_cli_shows_the_launches_section(store_url: Callable[[], str], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url = store_url()
    store = open_store(url)
    store.migrate()
    seeded = seed_environments(store, tmp_path, datetime.now(UTC).replace(microsecond=0) - timedelta(days=5))
    a100 = environment_cost(store, seeded.a100)
    store.close()
    config = tmp_path / "costplane.yaml"
    config.write_text(f"store: {json.dumps(url)}\nbundle: recorded-bundle\n")
    candidate = _bundle(tmp_path, "cand", RECORDED_BUNDLE.replace("allowed: [L4, A100-80GB]", "allowed: [L4]"))
    monkeypatch.chdir(tmp_path)
    before = table_counts(url)
    result = runner.invoke(app, ["policy", "replay", str(candidate), "--since", "30d", "--config", str(config),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    launches = json.loads(result.stdout)["launches"]
    assert (launches["launches"], launches["ran"], launches["changed"], launches["saved_nano"]) == (4, 3, 1, a100)
    assert launches["changes"][0]["environment_id"] == seeded.a100 and launches["changes"][0]["kind"] == "denied"
    assert json.loads(result.stdout)["total_saved_nano"] == a100
    text = runner.invoke(app, ["policy", "replay", str(candidate), "--config", str(config)])
    assert text.exit_code == 0, text.output
    assert "environment launches: 4 replayed (3 ran)" in text.output and "launches by change:" in text.output
    assert seeded.a100 in text.output and "inputs.gpu_type" in text.output
    assert table_counts(url) == before


def test_render_text_without_launches_has_no_launch_changes(store: Store, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    report = replay_store(store, now - timedelta(days=1), now, load_bundle(_bundle(tmp_path, "empty", RECORDED_BUNDLE)),
                          CONFIG, CATALOG, SKUS)
    text = render_text(report)
    assert "environment launches: 0 replayed" in text and "biggest launch changes" not in text

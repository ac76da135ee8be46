"""Duplicate embeddings and idle / over-provisioned GPU environments: known savings, clean controls, valid YAML."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from costplane.ledger import open_store
from costplane.optimize.detectors import run_detectors
from costplane.optimize.detectors.gpus import EnvironmentHistory, load_environments
from costplane.optimize.findings import DetectorInput, Finding
from costplane.optimize.history import History
from costplane.optimize.synthetic import SyntheticHistory, SyntheticSpec, generate, synthetic_config, write
from costplane.policy.bundle import load_bundle
from costplane.pricing.catalog import Catalog
from costplane.pricing.skus import SkuCatalog

CATALOG = Catalog.load()
SKUS = SkuCatalog.load()
CONFIG = synthetic_config()
INPUTS = DetectorInput(CONFIG, CATALOG)
NEW = ("duplicate_embeddings", "idle_gpu_environments", "oversized_gpu_environments")


def as_history(synthetic: SyntheticHistory) -> History:
    return History.build(synthetic.start, synthetic.end, synthetic.decisions, synthetic.events)


def as_environments(synthetic: SyntheticHistory) -> EnvironmentHistory:
    return EnvironmentHistory(synthetic.start, synthetic.end, synthetic.environments, SKUS)


def _run(synthetic: SyntheticHistory) -> list[Finding]:
    return run_detectors(as_history(synthetic), INPUTS, environments=as_environments(synthetic))


@pytest.fixture(scope="module")
def planted() -> SyntheticHistory:
    return generate(SyntheticSpec.all_patterns(embeddings=True, gpus=True), CATALOG, SKUS)


@pytest.fixture(scope="module")
def findings(planted: SyntheticHistory) -> dict[str, Finding]:
    return {f.detector: f for f in _run(planted)}


def test_opt_in_patterns_leave_every_other_figure_unchanged(planted: SyntheticHistory) -> None:
    base = generate(SyntheticSpec.all_patterns(), CATALOG)
    assert {k: planted.known[k] for k in base.known} == base.known
    assert set(planted.known) == set(base.known) | set(NEW)
    assert base.environments == () and generate(SyntheticSpec(), CATALOG).known == generate(
        SyntheticSpec(embeddings=False, gpus=False), CATALOG).known
    again = generate(SyntheticSpec.all_patterns(embeddings=True, gpus=True), CATALOG, SKUS)
    assert again.known == planted.known and again.environments == planted.environments


def test_each_detector_finds_its_pattern_within_10_percent(planted: SyntheticHistory,
                                                           findings: dict[str, Finding]) -> None:
    assert set(findings) == set(planted.known)
    for name in NEW:
        known = planted.known[name]
        assert known > 1_000_000_000
        assert abs(findings[name].monthly_saving_nano - known) <= known // 10, name
    assert findings["duplicate_embeddings"].scope == {"pipeline": "reindex"}
    assert findings["duplicate_embeddings"].evidence["repeats_within_cache_ttl"] == 0
    assert findings["idle_gpu_environments"].scope == {"blueprint": "notebook-a100"}
    assert findings["oversized_gpu_environments"].scope == {"blueprint": "finetune-a100", "gpu_type": "A100-80GB"}
    assert findings["oversized_gpu_environments"].evidence["smaller_sku"] == "aws/gpu/L4"
    # the planted embeddings repeat a day apart: the TTL cache simulation does not count them twice
    assert findings["cache_opportunity"].scope == {"agent": "faq-bot"}


@pytest.mark.parametrize("seed", [7, 8, 11])
def test_clean_control_raises_nothing(seed: int) -> None:
    control = generate(SyntheticSpec(seed=seed, oversizing=False, cache=False), CATALOG)
    assert _run(control) == []
    with_patterns = generate(SyntheticSpec(seed=seed, embeddings=True, gpus=True), CATALOG, SKUS)
    found = _run(with_patterns)
    assert {f.detector for f in found} == {"model_oversizing", "cache_opportunity", *NEW}
    # the controls inside the patterns: distinct search queries, busy H100 training that needs its memory
    scopes = [f.scope for f in found]
    assert {"agent": "search-api"} not in scopes
    assert not any(s.get("blueprint") == "train-h100" for s in scopes)


def test_documents_validate(findings: dict[str, Finding], tmp_path: Path) -> None:
    for name in NEW:
        (tmp_path / f"{name}.yaml").write_text(findings[name].document)
    bundle = load_bundle(tmp_path)
    effects = {p.name: (p.hook, p.effect) for p in bundle.policies}
    assert effects == {"cache-embeddings-pipeline-reindex": ("llm.request", "mutate"),
                       "idle-gpu-notebook-a100": ("environment.runtime", "teardown"),
                       "right-size-gpu-finetune-a100-to-L4": ("environment.launch", "deny")}


def test_environments_read_through_the_store(store_url: Callable[[], str], planted: SyntheticHistory) -> None:
    store = open_store(store_url())
    try:
        store.migrate()
        write(store, planted)
        loaded = load_environments(store, planted.start, planted.end, SKUS)
        assert {e.id for e in loaded.environments} == {e.id for e in planted.environments}
        found = {f.detector: f for f in run_detectors(as_history(planted), INPUTS, names=NEW[1:], environments=loaded)}
        assert set(found) == set(NEW[1:])
        for name in NEW[1:]:
            assert found[name].observed_saving_nano == {f.detector: f for f in _run(planted)}[name].observed_saving_nano
    finally:
        store.close()


def test_unknown_detector_names_both_registries() -> None:
    with pytest.raises(ValueError, match="idle_gpu_environments"):
        run_detectors(as_history(generate(SyntheticSpec(days=1, control_calls=4), CATALOG)), INPUTS, names=["nope"])


def test_recommend_cli_reaches_the_gpu_detectors(tmp_path: Path) -> None:
    """The environment detectors are reached from `costplane recommend` (not only from Python)."""
    import json
    from datetime import UTC, datetime, timedelta

    from typer.testing import CliRunner

    from costplane.cli.main import app

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
    planted = generate(SyntheticSpec(start=start, days=10, oversizing=False, cache=False, gpus=True), CATALOG, SKUS)
    store = open_store(f"sqlite:///{tmp_path}/ledger.db")
    store.migrate()
    write(store, planted)
    store.close()
    (tmp_path / "costplane.yaml").write_text(
        "store: sqlite:///ledger.db\nproviders:\n"
        "  openai: {type: openai, base_url: 'http://127.0.0.1:9/v1', models: ['gpt-*', 'text-embedding-*']}\n"
        "  anthropic: {type: anthropic, base_url: 'http://127.0.0.1:9/v1', models: ['claude-*']}\n")
    result = CliRunner().invoke(app, ["recommend", "--since", "30d", "--format", "json",
                                      "--config", str(tmp_path / "costplane.yaml")])
    assert result.exit_code == 0, result.output
    detectors = {f["detector"] for f in json.loads(result.output)["findings"]}
    assert {"idle_gpu_environments", "oversized_gpu_environments"} <= detectors

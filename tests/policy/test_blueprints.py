from __future__ import annotations

from pathlib import Path

import pytest

from costplane.policy.blueprintschema import InputError, resolve_inputs
from costplane.policy.bundle import load_bundle
from costplane.policy.types import BundleError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "bundle"


def test_example_blueprints_load() -> None:
    bundle = load_bundle(EXAMPLES)
    gpu = bundle.blueprint("gpu-finetune")
    assert gpu is not None and gpu.lifecycle.ttl == 4 * 3600 and gpu.lifecycle.idle is not None
    assert resolve_inputs(gpu, {"gpus": "2"}) == {"gpu_type": "L4", "gpus": 2}


def test_bad_blueprint_errors_have_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "bp.yaml").write_text(
        "kind: Blueprint\nname: bad\ninputs:\n  gpus: {type: integer}\n"
        "resources: [{kind: gpu, sku: \"aws/gpu/{gpu_type}\"}]\n"
        "driver: {type: process}\nlifecycle: {ttl: 4h, max_ttl: 1h, idle: {metric: gpu_util, below: 5}}\n")
    with pytest.raises(BundleError) as info:
        load_bundle(tmp_path)
    text = str(info.value)
    assert "bp.yaml:4: inputs.gpus.type" in text
    assert "bp.yaml:5: resources[0].sku: {gpu_type} names no input" in text
    assert "bp.yaml:6: driver.command" in text
    assert "bp.yaml:7: lifecycle.max_ttl" in text
    assert "lifecycle.idle.for" in text


def test_bad_inputs_name_the_blueprint_line_and_field() -> None:
    gpu = load_bundle(EXAMPLES).blueprint("gpu-finetune")
    assert gpu is not None
    with pytest.raises(InputError) as info:
        resolve_inputs(gpu, {"gpu_type": "V100", "gpus": "x"})
    text = str(info.value)
    assert "gpu.yaml:7: inputs.gpu_type: 'V100' is not allowed" in text
    assert "gpu.yaml:8: inputs.gpus: expected an integer" in text

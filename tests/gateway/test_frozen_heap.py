"""`costplane serve` freezes its start-up heap out of the cyclic collector's scans, and /metrics
shows it: a full collection no longer scans the bundle, the price catalogs and the modules."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.keys import create_key
from costplane.serving import BackgroundServer
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

from .conftest import gateway_config
from .processes import start_gateway, stop, write_config


def _samples(text: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def test_a_served_gateway_has_its_start_up_heap_frozen(tmp_path: Path) -> None:
    with BackgroundServer(create_app(SimulatorConfig())) as simulator:
        data = gateway_config(simulator.url, f"sqlite:///{tmp_path}/ledger.db", None)
        config = write_config(tmp_path / "costplane.yaml", data)
        setup = Application(parse_config(data, base=tmp_path))
        key, _ = create_key(setup.store, "gc", {"team": "ml"})
        setup.close()
        process, url = start_gateway(config, tmp_path / "gw.log")
        try:
            with httpx.Client(timeout=10) as client:
                for _ in range(200):  # enough garbage for young collections to run
                    response = client.post(url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                                           json={"model": "gpt-4o-mini", "max_tokens": 8,
                                                 "messages": [{"role": "user", "content": "ping"}]})
                    assert response.status_code == 200, response.text
                samples = _samples(client.get(url + "/metrics").text)
        finally:
            stop(process)
    # the application's long-lived objects (bundle, catalogs, routes, modules) are frozen
    assert samples["costplane_gc_frozen_objects"] > 50_000
    assert samples['python_gc_collections_total{generation="0"}'] > 0  # young collections still run
    for generation in ("0", "1", "2"):
        assert f'python_gc_objects_uncollectable_total{{generation="{generation}"}}' in samples

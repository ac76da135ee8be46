"""Runtime enforcement at scale and across a crash: 200 staggered TTLs; a `costplane serve` killed -9 mid-TTL."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import yaml

from costplane.attribution.context import Context
from costplane.gateway.keys import create_key
from costplane.ledger import open_store
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.lifecycle.drivers.process import process_state
from costplane.lifecycle.scheduler import Scheduler
from costplane.serving import free_port

from .helpers import make_core, wait_until

SLEEPER = """
kind: Blueprint
name: sleeper
resources: [{kind: instance, sku: aws/t3.micro}]
driver: {type: process, command: [sleep, "600"], grace: 1s}
lifecycle: {ttl: 8s, max_ttl: 1h, notice: 2s, accrue_every: 2s}
"""


def _torn_down_at(store: object, env_id: str) -> datetime | None:
    for t in store.environment_transitions(env_id):  # type: ignore[attr-defined]
        if t.to_state == EnvState.TORN_DOWN:
            ts: datetime = t.ts
            return ts
    return None


def test_200_staggered_ttls_all_enforced_within_2s(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    owner = Context(team="ml", owner="alice")
    envs = []
    for i in range(200):  # TTLs 2..6 s, launched over time: expiries spread over several seconds
        env = core.launch(owner, "noop-box", {}, ttl=2 + i % 5)
        assert isinstance(env, EnvironmentRecord)
        envs.append(env)
    scheduler = Scheduler(core)
    stop = threading.Event()

    def loop() -> None:  # the server's cadence: a tick every 0.5 s
        while not stop.is_set():
            scheduler.tick()
            stop.wait(0.5)

    runner = threading.Thread(target=loop, daemon=True)
    runner.start()
    try:
        done = wait_until(lambda: not core.store.list_environments(states=(EnvState.ACTIVE, EnvState.EXPIRING)),
                          20.0)
    finally:
        stop.set()
        runner.join(10)
        scheduler.close()
    assert done, "some environments were never torn down"
    lags = []
    for env in envs:
        ended = _torn_down_at(core.store, env.id)
        assert ended is not None
        current = core.store.get_environment(env.id)
        assert current is not None and (current.end_reason or "").startswith("ttl expired")
        lags.append((ended - current.expires_at).total_seconds())
    assert max(lags) <= 2.0, f"worst TTL lag {max(lags):.3f}s"
    assert min(lags) >= 0.0


def _start(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "costplane", "serve", "--config", str(config), "--port",
                                str(port), "--log-level", "warning"], stdout=log.open("ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/healthz"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"server did not start: {log.read_text()[-2000:]}")


def test_server_killed_mid_ttl_still_tears_down_on_time(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "sleeper.yaml").write_text(SLEEPER)
    config = tmp_path / "costplane.yaml"
    config.write_text(yaml.safe_dump({"store": f"sqlite:///{tmp_path}/crash.db", "bundle": str(bundle)}))
    store = open_store(f"sqlite:///{tmp_path}/crash.db")
    store.migrate()
    secret, _ = create_key(store, "crash", {"team": "ml", "owner": "alice"})
    port, log = free_port(), tmp_path / "serve.log"
    first = _start(config, port, log)
    second = None
    pid = 0
    try:
        response = httpx.post(f"http://127.0.0.1:{port}/v1/environments", json={"blueprint": "sleeper"},
                              headers={"authorization": f"Bearer {secret}"}, timeout=10)
        assert response.status_code == 201, response.text
        env_id = response.json()["id"]
        env = store.get_environment(env_id)
        assert env is not None and env.state == EnvState.ACTIVE
        pid = int(env.handle["pid"])
        time.sleep(1.0)
        first.kill()  # SIGKILL mid-TTL: no shutdown hook runs
        first.wait(5)
        assert process_state(pid) not in (None, "Z"), "the environment's process must outlive the server"
        second = _start(config, port, log)
        assert wait_until(lambda: _torn_down_at(store, env_id) is not None, 15.0)
        ended = _torn_down_at(store, env_id)
        after = store.get_environment(env_id)
        assert after is not None and ended is not None and (after.end_reason or "").startswith("ttl expired")
        lag = (ended - after.expires_at).total_seconds()
        assert 0.0 <= lag <= 2.0, f"torn down {lag:.2f}s after expiry"
        assert wait_until(lambda: process_state(pid) in (None, "Z", "X"), 3.0), "the process is still running"
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)
        if pid and process_state(pid) not in (None, "Z", "X"):
            subprocess.run(["kill", "-9", str(pid)], check=False)
        store.close()

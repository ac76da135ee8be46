"""kill -9 of the gateway under load, then a restart: every settled event is still there,
and the reservations the dead process held are released."""

from __future__ import annotations

import signal
import threading
import time
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


def test_kill_9_under_load_loses_no_settled_event(tmp_path: Path) -> None:
    # a slow upstream so that reservations are open when the gateway dies
    with BackgroundServer(create_app(SimulatorConfig(latency_ms=150))) as simulator:
        data = gateway_config(simulator.url, f"sqlite:///{tmp_path}/ledger.db", None, reservation_ttl="1s")
        config = write_config(tmp_path / "costplane.yaml", data)
        setup = Application(parse_config(data, base=tmp_path))
        key, _ = create_key(setup.store, "load", {"team": "ml"})
        setup.close()
        process, url = start_gateway(config, tmp_path / "gw.log")
        confirmed: list[str] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + 30

        def load() -> None:
            with httpx.Client(timeout=10) as client:
                while time.monotonic() < stop_at:
                    try:
                        response = client.post(url + "/v1/chat/completions",
                                               headers={"authorization": f"Bearer {key}"},
                                               json={"model": "gpt-4o-mini", "max_tokens": 20,
                                                     "messages": [{"role": "user", "content": "ping"}]})
                    except httpx.HTTPError:
                        return  # the gateway is gone
                    if response.status_code == 200:
                        with lock:
                            confirmed.append(response.headers["x-costplane-decision-id"])

        threads = [threading.Thread(target=load) for _ in range(8)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(confirmed) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        for thread in threads:
            thread.join(15)
        assert len(confirmed) >= 40, (len(confirmed), (tmp_path / "gw.log").read_text()[-2000:])

        restarted = Application(parse_config(data, base=tmp_path))
        recorded = {e.decision_id for e in restarted.store.list_events(limit=100_000)}
        missing = set(confirmed) - recorded
        assert not missing, f"{len(missing)} answered calls have no event"  # every answered call settled durably
        held = restarted.store.open_reservations()
        assert held >= 1, "8 clients were mid-call when the process died"
        time.sleep(1.1)  # past reservation_ttl: whatever the dead process held is stale now
        released = restarted.core.expire_reservations()
        assert released == held, (released, held)
        assert restarted.store.open_reservations() == 0
        # and the restarted gateway serves again
        process, url = start_gateway(config, tmp_path / "gw2.log")
        try:
            response = httpx.post(url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                                  json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
            assert response.status_code == 200
        finally:
            stop(process)
        restarted.close()

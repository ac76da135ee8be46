"""Shared harness of the issue-5 suites (tests/alerts, metrics, export): a webhook sink on
127.0.0.1, and the real server (create_server) in front of the real upstream simulator."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest

from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.keys import create_key
from costplane.server import create_server
from costplane.serving import BackgroundServer
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

__all__ = ["Served", "WebhookSink", "make_served", "simulator", "sink", "wait_for"]


class WebhookSink:
    """An HTTP server on 127.0.0.1 that records every JSON body POSTed to it; the first
    `fail_first` requests are answered 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.requests = 0
        lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with lock:
                    sink.requests += 1
                    failing = sink.requests <= sink.fail_first
                    if not failing:
                        sink.received.append(json.loads(body))
                self.send_response(500 if failing else 200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kinds(self) -> list[str]:
        return [str(body["costplane"]["kind"]) for body in list(self.received)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@dataclass
class Served:
    url: str
    app: Application
    servers: list[BackgroundServer] = field(default_factory=list)

    def key(self, **attributes: str) -> str:
        secret, _ = create_key(self.app.store, "test", attributes)
        return secret

    def openai(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=20)


@pytest.fixture(scope="module")
def simulator() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(SimulatorConfig())) as server:
        yield server


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    server = WebhookSink()
    yield server
    server.close()


@pytest.fixture
def make_served(tmp_path: Path, simulator: BackgroundServer) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def make(bundle: str | None = None, *, alerts: dict[str, Any] | None = None,
             store_url: str | None = None) -> Served:
        n = len(started)
        bundle_dir = None
        if bundle is not None:
            bundle_dir = tmp_path / f"bundle{n}"
            bundle_dir.mkdir()
            (bundle_dir / "bundle.yaml").write_text(textwrap.dedent(bundle))
        data: dict[str, Any] = {
            "store": store_url or f"sqlite:///{tmp_path}/v{n}.db",
            "bundle": str(bundle_dir) if bundle_dir else None,
            "providers": {"openai": {"type": "openai", "base_url": f"{simulator.url}/v1",
                                     "models": ["gpt-*", "text-embedding-*"]}},
        }
        if alerts is not None:
            data["alerts"] = alerts
        application = Application(parse_config(data, base=tmp_path))
        server = BackgroundServer(create_server(application))
        server.__enter__()
        served = Served(server.url, application, [server])
        started.append(served)
        return served

    yield make
    for served in started:
        for server in served.servers:
            server.__exit__(None, None, None)
        served.app.close()

"""An in-process `costplane serve` (gateway + environments API + scheduler) on a temp SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.keys import create_key
from costplane.server import create_server
from costplane.serving import BackgroundServer

from .helpers import BUNDLE

APPROVAL = """
---
kind: Policy
name: four-gpus-need-approval
on: environment.launch
when: request.gpu_count >= 4
effect: require_approval
reason: 4 or more GPUs need an approver
"""


@dataclass
class LiveServer:
    url: str
    app: Application

    def key(self, **attributes: str) -> str:
        secret, _ = create_key(self.app.store, "test", attributes)
        return secret


@contextmanager
def live_server(tmp: Path, bundle_text: str = BUNDLE + APPROVAL) -> Iterator[LiveServer]:
    bundle = tmp / "bundle"
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "all.yaml").write_text(bundle_text)
    application = Application(parse_config({"store": f"sqlite:///{tmp}/server.db", "bundle": str(bundle)}, base=tmp))
    try:
        with BackgroundServer(create_server(application)) as server:
            yield LiveServer(server.url, application)
    finally:
        application.close()

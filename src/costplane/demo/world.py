"""The demo's world: a fresh directory, the upstream simulator, the gateway and the keys.

`open_world` starts everything and always shuts it down again (also on Ctrl-C): the
servers run under uvicorn in background threads, each with a bounded stop.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

import costplane
from costplane.api.credentials import new_user
from costplane.app import Application
from costplane.config import parse_config
from costplane.demo.alerts import AlertLog
from costplane.gateway.keys import create_key
from costplane.server import create_server
from costplane.serving import BackgroundServer
from costplane.simulator import SimulatorConfig, create_app

__all__ = ["KEYS", "DemoWorld", "config_data", "default_bundle", "fresh_directory", "open_world"]

#: The virtual keys the demo mints: persona -> attributes bound to the key (never overridable).
KEYS: Mapping[str, Mapping[str, str]] = {
    "support-bot": {"team": "support", "tier": "production", "agent": "support-bot", "owner": "support-eng"},
    "kb-indexer": {"team": "support", "tier": "production", "pipeline": "kb-index", "owner": "support-eng"},
    "ml-experiments": {"team": "ml", "tier": "experiment", "project": "fraud", "owner": "ml-research"},
    "research-agent": {"team": "ml", "tier": "experiment", "agent": "research-agent", "owner": "ml-research"},
    "growth-campaigns": {"team": "growth", "tier": "production", "owner": "growth-marketing"},
    "explorer": {"team": "ml", "tier": "production", "owner": "you"},
}

#: dashboard logins of the demo: user -> (role, teams); passwords are generated and shown once
LOGINS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "finance": ("finance", ()),
    "ml-dev": ("developer", ("ml",)),
    "support-dev": ("developer", ("support",)),
}

#: Where the written costplane.yaml expects a hand-started simulator (`costplane simulate-upstream`).
SIMULATOR_PORT = 9001


def default_bundle() -> Path:
    """The repository's examples/bundle, found relative to the installed package."""
    return Path(costplane.__file__).resolve().parents[2] / "examples" / "bundle"


def fresh_directory(requested: Path | None, now: datetime | None = None) -> Path:
    """A new, empty demo directory: `requested`, or .costplane/demo-<timestamp> under the cwd."""
    if requested is None:
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
        requested = Path.cwd() / ".costplane" / f"demo-{stamp}"
        suffix = 1
        while requested.exists():
            suffix += 1
            requested = requested.with_name(f"demo-{stamp}-{suffix}")
    requested = requested.resolve()
    if requested.exists() and any(requested.iterdir()):
        raise FileExistsError(f"{requested} is not empty; the demo needs a fresh directory (another --dir)")
    requested.mkdir(parents=True, exist_ok=True)
    return requested


def config_data(upstream_url: str, store_url: str, bundle: Path | str) -> dict[str, Any]:
    """The costplane.yaml content of the demo: both providers point at the simulator."""
    return {
        "server": {"host": "127.0.0.1", "port": 8080},
        "store": store_url,
        "bundle": str(bundle),
        "providers": {
            "openai": {"type": "openai", "base_url": f"{upstream_url}/v1",
                       "models": ["gpt-*", "o*", "text-embedding-*"]},
            "anthropic": {"type": "anthropic", "base_url": f"{upstream_url}/v1", "models": ["claude-*"]},
        },
    }


def _write_config(directory: Path, bundle: Path) -> Path:
    """costplane.yaml for exploring after the demo: same store and bundle, simulator on 9001."""
    path = directory / "costplane.yaml"
    data = config_data(f"http://127.0.0.1:{SIMULATOR_PORT}", "sqlite:///costplane.db", bundle)
    header = (
        "# Written by `costplane demo`. Keep exploring what the demo recorded:\n"
        f"#   costplane simulate-upstream --port {SIMULATOR_PORT}   # the offline upstream\n"
        f"#   costplane serve --config {path}\n"
    )
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@dataclass(frozen=True, slots=True)
class DemoWorld:
    directory: Path
    bundle: Path
    config_path: Path
    db_path: Path
    application: Application
    simulator_url: str
    gateway_url: str
    keys: Mapping[str, str]  # persona -> secret (shown once)
    alerts: AlertLog
    logins: Mapping[str, str]  # dashboard user -> password (shown once)

    @property
    def dashboard_url(self) -> str:
        return f"{self.gateway_url}/ui/"


@contextlib.contextmanager
def open_world(directory: Path, bundle: Path, *, latency_ms: float, seed: int) -> Iterator[DemoWorld]:
    """Start simulator and gateway on free local ports; stop both (bounded) on the way out."""
    if not bundle.is_dir():
        raise FileNotFoundError(f"bundle directory {bundle} does not exist (use --bundle)")
    db_path = directory / "costplane.db"
    config_path = _write_config(directory, bundle)
    simulator = BackgroundServer(create_app(SimulatorConfig(latency_ms=latency_ms, seed=seed)))
    gateway: BackgroundServer | None = None
    application: Application | None = None
    try:
        simulator.start()
        config = parse_config(config_data(simulator.url, f"sqlite:///{db_path}", bundle), base=directory)
        alerts = AlertLog()  # every part's notifications, shown in the summary rather than logged under the live view
        application = Application(config, notifier=alerts)
        keys = {persona: create_key(application.store, f"demo-{persona}", attributes)[0]
                for persona, attributes in KEYS.items()}
        logins = {name: secrets.token_urlsafe(9) for name in LOGINS}
        for name, (role, teams) in LOGINS.items():
            new_user(application.store, name, role, teams, password=logins[name])
        # the whole server: gateway, /api/v1, the dashboard, environments, runs, alerts and metrics
        gateway = BackgroundServer(create_server(application))
        gateway.start()
        yield DemoWorld(directory, bundle, config_path, db_path, application, simulator.url, gateway.url,
                        keys, alerts, logins)
    finally:
        if gateway is not None:
            gateway.stop(timeout_s=5.0)
        simulator.stop(timeout_s=5.0)
        if application is not None:
            application.close()

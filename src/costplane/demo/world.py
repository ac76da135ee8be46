"""The demo's world: a fresh directory, the upstream simulator, the gateway and the keys.

`open_world` starts everything and always shuts it down again (also on Ctrl-C): the
servers run under uvicorn in background threads, each with a bounded stop.
"""

from __future__ import annotations

import contextlib
import os
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
from costplane.demo.vendors import AZURE_API_VERSION, AZURE_DEPLOYMENTS
from costplane.gateway.keys import create_key
from costplane.server import create_server
from costplane.serving import BackgroundServer
from costplane.simulator import SimulatorConfig, create_app
from costplane.simulator.bedrock_api import SIMULATOR_ACCESS_KEY_ID, SIMULATOR_SECRET_ACCESS_KEY

__all__ = ["KEYS", "SIMULATOR_CREDENTIALS", "DemoWorld", "config_data", "default_bundle", "fresh_directory",
           "open_world", "simulator_credentials"]

#: The virtual keys the demo mints: persona -> attributes bound to the key (never overridable).
KEYS: Mapping[str, Mapping[str, str]] = {
    "support-bot": {"team": "support", "tier": "production", "agent": "support-bot", "owner": "support-eng"},
    "kb-indexer": {"team": "support", "tier": "production", "pipeline": "kb-index", "owner": "support-eng"},
    "ml-experiments": {"team": "ml", "tier": "experiment", "project": "fraud", "owner": "ml-research"},
    "research-agent": {"team": "ml", "tier": "experiment", "agent": "research-agent", "owner": "ml-research"},
    "growth-campaigns": {"team": "growth", "tier": "production", "owner": "growth-marketing"},
    "concierge": {"team": "support", "tier": "production", "agent": "concierge", "owner": "support-eng"},
    "doc-pipeline": {"team": "ml", "tier": "experiment", "pipeline": "doc-enrich", "owner": "ml-research"},
    "claims-pipeline": {"team": "finance", "tier": "production", "pipeline": "claims-triage", "owner": "finance-ops"},
    "invoice-copilot": {"team": "finance", "tier": "production", "agent": "invoice-copilot", "owner": "finance-ops"},
    "explorer": {"team": "ml", "tier": "production", "owner": "you"},
}

#: Environment variables the demo's Bedrock provider signs with: the simulator's published credentials.
BEDROCK_KEY_ID_ENV = "COSTPLANE_DEMO_AWS_ACCESS_KEY_ID"
BEDROCK_SECRET_ENV = "COSTPLANE_DEMO_AWS_SECRET_ACCESS_KEY"
SIMULATOR_CREDENTIALS: Mapping[str, str] = {BEDROCK_KEY_ID_ENV: SIMULATOR_ACCESS_KEY_ID,
                                            BEDROCK_SECRET_ENV: SIMULATOR_SECRET_ACCESS_KEY}

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
    """The costplane.yaml content of the demo: every provider points at the simulator."""
    return {
        "server": {"host": "127.0.0.1", "port": 8080},
        "store": store_url,
        "bundle": str(bundle),
        "providers": {
            "openai": {"type": "openai", "base_url": f"{upstream_url}/v1",
                       "models": ["gpt-*", "o*", "text-embedding-*"]},
            "anthropic": {"type": "anthropic", "base_url": f"{upstream_url}/v1", "models": ["claude-*"]},
            "azure-openai": {"type": "azure-openai", "base_url": upstream_url, "api_version": AZURE_API_VERSION,
                             "deployments": dict(AZURE_DEPLOYMENTS), "models": []},
            "gemini": {"type": "gemini", "base_url": upstream_url, "models": ["gemini-*"]},
            "bedrock": {"type": "bedrock", "base_url": upstream_url, "region": "us-east-1",
                        "aws_access_key_id_env": BEDROCK_KEY_ID_ENV, "aws_secret_access_key_env": BEDROCK_SECRET_ENV,
                        "models": ["amazon.*", "*anthropic.*"]},
        },
    }


@contextlib.contextmanager
def simulator_credentials() -> Iterator[None]:
    """The simulator's published Bedrock credentials in the variables the Bedrock provider reads,
    for as long as the demo's gateway runs (restored afterwards)."""
    before = {name: os.environ.get(name) for name in SIMULATOR_CREDENTIALS}
    os.environ.update(SIMULATOR_CREDENTIALS)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _write_config(directory: Path, bundle: Path) -> Path:
    """costplane.yaml for exploring after the demo: same store and bundle, simulator on 9001."""
    path = directory / "costplane.yaml"
    data = config_data(f"http://127.0.0.1:{SIMULATOR_PORT}", "sqlite:///costplane.db", bundle)
    exports = " ".join(f"{name}='{value}'" for name, value in SIMULATOR_CREDENTIALS.items())
    header = (
        "# Written by `costplane demo`. Keep exploring what the demo recorded:\n"
        f"#   costplane simulate-upstream --port {SIMULATOR_PORT}   # the offline upstream\n"
        f"#   export {exports}   # the simulator's published Bedrock credentials\n"
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
    with simulator_credentials():  # the Bedrock provider signs with the simulator's credentials
        simulator = BackgroundServer(create_app(SimulatorConfig(latency_ms=latency_ms, seed=seed)))
        gateway: BackgroundServer | None = None
        application: Application | None = None
        try:
            simulator.start()
            config = parse_config(config_data(simulator.url, f"sqlite:///{db_path}", bundle), base=directory)
            alerts = AlertLog()  # every part's notifications, shown in the summary, not logged under the live view
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

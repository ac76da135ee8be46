"""`costplane.yaml`: server, store, bundle, gateway settings and upstream providers.

Every setting is declared once in `costplane.settings.SETTINGS` (path, type, default, range,
environment variable, meaning), which feeds the defaults and checks here, `costplane config show`
and docs/configuration.md. Errors name the file, the line and the field, and what was expected.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from costplane.otel.export_settings import TelemetrySettings, parse_telemetry
from costplane.pricing.config import PricingConfig, PricingConfigError
from costplane.reconcile.settings import ReconcileSettings, parse_reconcile
from costplane.serversettings import MetricsSettings, WebSettings, parse_metrics, parse_server
from costplane.settings import SECTIONS, SETTINGS, check, keys_of, reference_table, setting

__all__ = [
    "ALERT_KINDS",
    "DEFAULT_BASE_URLS",
    "FAMILY_OF_TYPE",
    "PROVIDER_TYPES",
    "SETTINGS",
    "TRANSLATABLE_FAMILIES",
    "AlertsConfig",
    "Config",
    "ConfigError",
    "GatewaySettings",
    "ProviderConfig",
    "WebhookConfig",
    "env_overrides",
    "load_config",
    "parse_config",
    "read_yaml",
    "settings_table",
]

PROVIDER_TYPES = ("openai", "anthropic", "openai-compatible", "azure-openai", "gemini", "bedrock")

#: The protocol family each provider type serves (`ProviderConfig.protocol`, `LlmRequest.protocol`):
#: an `openai` provider serves Chat Completions, Embeddings and Responses alike.
FAMILY_OF_TYPE: Mapping[str, str] = {
    "openai": "openai", "openai-compatible": "openai", "anthropic": "anthropic",
    "azure-openai": "azure-openai", "gemini": "gemini", "bedrock": "bedrock",
}
#: the protocol families a chat request can be translated between when a route names a model only
#: another family serves (the gateway's `translate` package)
TRANSLATABLE_FAMILIES = ("openai", "azure-openai", "anthropic", "gemini")
#: where a provider type is reached when its `base_url` is left out ({region}: the `region` field)
DEFAULT_BASE_URLS: Mapping[str, str] = {
    "gemini": "https://generativelanguage.googleapis.com",
    "bedrock": "https://bedrock-runtime.{region}.amazonaws.com",
}
#: genai-prices provider id used to price a type's models unless `pricing_provider` says otherwise
_DEFAULT_PRICING = {"openai": "openai", "anthropic": "anthropic", "azure-openai": "azure", "gemini": "google",
                    "bedrock": "aws"}
_TYPE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "azure-openai": ("api_version", "deployments"),
    "bedrock": ("region", "aws_access_key_id_env", "aws_secret_access_key_env", "aws_session_token_env"),
}
_COMMON_FIELDS = ("type", "base_url", "api_key_env", "models", "aliases", "pricing_provider", "company")


class ConfigError(ValueError):
    """costplane.yaml is invalid; the message names file:line, the field and what was expected."""


def settings_table() -> str:
    """Every setting as a Markdown table (docs/configuration.md embeds it; a test checks)."""
    return reference_table()


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    default_max_tokens: int = 4096
    default_max_tool_uses: int = 5  # max_uses set on a per-use-billed Anthropic server tool without one
    reservation_ttl: int = 600
    upstream_timeout: int = 120
    max_request_bytes: int = 4_194_304
    loop_threshold: int = 5
    loop_window: int = 600
    cache_ttl: int = 3600
    key_cache_seconds: int = 2  # accepted so older files load; unused (revocation is immediate)
    reload_interval: int = 2
    cache_purge_interval: int = 600  # seconds between deletions of expired response cache entries


@functools.lru_cache(maxsize=256)
def _matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled, case-sensitive matcher for a provider's glob patterns (the gateway asks per request)."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns) or r"(?!)")


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    type: str  # one of PROVIDER_TYPES
    base_url: str  # openai/anthropic types: ends in /v1; the others: the service root (no path)
    api_key_env: str | None = None  # the provider's key (Bedrock: a Bedrock API key, used instead of SigV4)
    models: tuple[str, ...] = ("*",)  # glob patterns of model names this provider serves
    aliases: Mapping[str, str] = field(default_factory=dict)
    pricing_provider: str | None = None  # genai-prices provider id used to price its models
    company: str | None = None  # the company FOCUS exports name (ServiceProviderName), e.g. "OpenAI"
    # azure-openai
    api_version: str | None = None  # sent upstream as ?api-version= (else the client's own)
    deployments: Mapping[str, str] = field(default_factory=dict)  # deployment name -> model (for pricing)
    # bedrock: SigV4 signing of upstream requests from these environment variables
    region: str | None = None
    aws_access_key_id_env: str | None = None
    aws_secret_access_key_env: str | None = None
    aws_session_token_env: str | None = None

    @property
    def protocol(self) -> str:
        """The protocol family this provider serves (FAMILY_OF_TYPE)."""
        return FAMILY_OF_TYPE.get(self.type, "openai")

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def aws_credentials(self) -> tuple[str, str, str | None] | None:
        """(access key id, secret access key, session token) from the configured environment
        variables, or None when either of the first two is unset."""
        key = os.environ.get(self.aws_access_key_id_env) if self.aws_access_key_id_env else None
        secret = os.environ.get(self.aws_secret_access_key_env) if self.aws_secret_access_key_env else None
        if not key or not secret:
            return None
        token = os.environ.get(self.aws_session_token_env) if self.aws_session_token_env else None
        return key, secret, token or None

    def serves(self, model: str) -> bool:
        return _matcher(self.models).match(model) is not None

    def resolve(self, model: str) -> str | None:
        """The model `model` names at this provider (after aliases and deployments), or None."""
        if model in self.aliases:
            return self.aliases[model]
        if model in self.deployments:
            return self.deployments[model]
        if model in self.deployments.values():  # a model by name: served by its deployment
            return model
        return model if self.serves(model) else None

    def deployment_for(self, model: str) -> str | None:
        """The Azure deployment serving `model`: a deployment of that name, else the first mapped to it."""
        if model in self.deployments:
            return model
        return next((name for name, target in self.deployments.items() if target == model), None)


#: kinds of alert a webhook can subscribe to (alerts.webhooks[].kinds); see docs/visibility.md
ALERT_KINDS = ("budget_threshold", "soft_budget_exceeded", "policy", "forecast_exhaustion", "anomaly", "slo_breach",
               "otlp_unpriced", "test", "reconcile_drift", "environment_expiring", "environment_idle",
               "unknown_price", "usage_over_bound")


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str
    kinds: tuple[str, ...] = ALERT_KINDS
    timeout: int = 10  # seconds per delivery attempt


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """alerts: webhooks (Slack-compatible JSON), delivery and forecast settings."""

    webhooks: tuple[WebhookConfig, ...] = ()
    retries: int = 3  # delivery attempts after the first one fails
    backlog: int = 1000  # alerts waiting for delivery; beyond it new alerts are dropped and logged
    forecast_interval: int = 300  # seconds between exhaustion forecasts of calendar budgets
    forecast_min_elapsed: int = 3600  # no forecast before this much of the period has passed
    policy_repeat: int = 3600  # a notify policy alerts at most once per this many seconds
    anomaly_interval: int = 3600  # seconds between spend anomaly scans of the latest complete days


@dataclass(frozen=True, slots=True)
class Config:
    path: Path | None
    host: str = "127.0.0.1"
    port: int = 8080
    store_url: str = "sqlite:///costplane.db"
    bundle: Path | None = None
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    providers: tuple[ProviderConfig, ...] = ()
    pricing: PricingConfig | None = None
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)  # costplane reconcile (docs/reconcile.md)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)  # gateway span export (docs/otlp.md)
    web: WebSettings = field(default_factory=WebSettings)  # server.public_url, allowed_hosts, login throttle
    metrics: MetricsSettings = field(default_factory=MetricsSettings)  # metrics.token_env: /metrics bearer token

    def provider_for(self, model: str, protocol: str) -> tuple[ProviderConfig, str] | None:
        """The first provider of protocol family `protocol` that serves `model` (after its aliases
        and, for Azure, its deployments)."""
        for provider in self.providers:
            if provider.protocol != protocol:
                continue
            resolved = provider.resolve(model)
            if resolved is not None:
                return provider, resolved
        return None

    def route_target(self, model: str, protocol: str) -> tuple[ProviderConfig, str] | None:
        """Where a request of family `protocol` routed to `model` goes: a provider of its own family,
        else (a chat request being translatable) the first provider of another translatable family."""
        served = self.provider_for(model, protocol)
        if served is not None or protocol not in TRANSLATABLE_FAMILIES:
            return served
        for provider in self.providers:
            if provider.protocol in TRANSLATABLE_FAMILIES and provider.protocol != protocol:
                resolved = provider.resolve(model)
                if resolved is not None:
                    return provider, resolved
        return None


def read_yaml(path: str | Path) -> tuple[Any, dict[str, int]]:
    """The parsed YAML of a configuration file and the line of every key (ConfigError naming file:line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from exc
    try:
        return yaml.safe_load(text) or {}, _line_map(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
    """The configuration in a file; `env` (e.g. os.environ) applies the settings' environment overrides."""
    path = Path(path)
    data, lines = read_yaml(path)
    return parse_config(data, source=str(path), lines=lines, base=path.parent, path=path, env=env)


def env_overrides(env: Mapping[str, str] | None) -> dict[str, str]:
    """Setting path -> the value of its environment variable, for those set (non-empty) in `env`."""
    if not env:
        return {}
    return {s.path: env[s.env] for s in SETTINGS if s.env and env.get(s.env)}


def parse_config(
    data: Any,
    *,
    source: str = "costplane.yaml",
    lines: Mapping[str, int] | None = None,
    base: Path | None = None,
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    errors = _Errors(source, lines or {})
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    errors.unknown("", data, SECTIONS)
    base = base or Path.cwd()
    overrides = env_overrides(env)

    server = data.get("server") or {}
    host, port = setting("server.host").default, setting("server.port").default
    web = WebSettings()
    if isinstance(server, Mapping):
        errors.unknown("server", server, keys_of("server"))
        host = str(server.get("host", host))
        port = errors.check("server.port", server.get("port", port))
        web, problems = parse_server(server)
        for where, message in problems:
            errors.add(where, message)
    else:
        errors.add("server", "expected a mapping with host and port")
    if "server.host" in overrides:
        host = overrides["server.host"]
    if "server.port" in overrides:
        raw_port = overrides["server.port"]
        port = errors.check(f"server.port (${setting('server.port').env})",
                            int(raw_port) if raw_port.strip().isdigit() else raw_port, "server.port")

    default_store = setting("store").default
    store = overrides.get("store", data.get("store", default_store))
    if isinstance(store, Mapping):
        store = store.get("url")
    if not isinstance(store, str) or not store.startswith(("sqlite:", "postgresql:", "postgres:")):
        errors.add("store", "expected a URL: sqlite:///path.db or postgresql://user@host:port/db")
        store = default_store
    elif store.startswith("sqlite:///") and not store.startswith("sqlite:////") and ":memory:" not in store:
        relative_to = Path.cwd() if "store" in overrides else base  # a variable's path is the shell's
        store = "sqlite:///" + str((relative_to / store[len("sqlite:///"):]).resolve())

    bundle = data.get("bundle")
    bundle_path = (base / str(bundle)).resolve() if bundle else None

    gateway = _gateway(data.get("gateway") or {}, errors)
    providers = _providers(data.get("providers") or {}, errors)
    pricing = None
    if data.get("pricing") is not None:
        try:
            pricing = PricingConfig.parse(data["pricing"], source=source, lines=lines)
        except PricingConfigError as exc:
            errors.messages.append(str(exc))
    alerts = _alerts(data.get("alerts") or {}, errors)
    reconcile, problems = parse_reconcile(data.get("reconcile"))
    for where, message in problems:
        errors.add(where, message)
    telemetry, problems = parse_telemetry(data.get("telemetry"))
    for where, message in problems:
        errors.add(where, message)
    metrics, problems = parse_metrics(data.get("metrics"))
    for where, message in problems:
        errors.add(where, message)
    _ledger(data.get("ledger"), base, env, errors)
    errors.raise_if_any()
    return Config(path, host, port, store, bundle_path, gateway, providers, pricing, alerts=alerts,
                  reconcile=reconcile, telemetry=telemetry, web=web, metrics=metrics)


def _ledger(raw: Any, base: Path, env: Mapping[str, str] | None, errors: _Errors) -> None:
    """Check the `ledger:` section when the file loads (the composition root reads it again at start-up)."""
    from costplane.ledger.open import parse_ledger  # late: the ledger imports the settings table

    try:
        parse_ledger(raw, base, env)
    except ConfigError as exc:
        where, _, message = str(exc).partition(": ")
        if message:
            errors.add(where, message)
        else:
            errors.add("ledger", where)


def _gateway(raw: Any, errors: _Errors) -> GatewaySettings:
    if not isinstance(raw, Mapping):
        errors.add("gateway", "expected a mapping of settings")
        return GatewaySettings()
    names = keys_of("gateway")
    errors.unknown("gateway", raw, names)
    values = {name: errors.check(f"gateway.{name}", raw.get(name, setting(f"gateway.{name}").default))
              for name in names}
    return GatewaySettings(**values)


def _providers(raw: Any, errors: _Errors) -> tuple[ProviderConfig, ...]:
    if not isinstance(raw, Mapping):
        errors.add("providers", "expected a mapping of provider name to {type, base_url, …}")
        return ()
    out: list[ProviderConfig] = []
    for name, spec in raw.items():
        where = f"providers.{name}"
        if not isinstance(spec, Mapping):
            errors.add(where, "expected a mapping with type and base_url")
            continue
        kind = spec.get("type")
        if kind not in PROVIDER_TYPES:
            errors.add(f"{where}.type", f"expected one of {', '.join(PROVIDER_TYPES)}, got {kind!r}")
            continue
        errors.unknown(where, spec, _COMMON_FIELDS + _TYPE_FIELDS.get(kind, ()))
        extra = _type_fields(kind, spec, where, errors)
        if extra is None:
            continue
        base_url = spec.get("base_url", DEFAULT_BASE_URLS.get(kind))
        if isinstance(base_url, str) and "{region}" in base_url:
            base_url = base_url.replace("{region}", str(extra.get("region")))
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            errors.add(f"{where}.base_url", f"expected an http(s) URL, got {base_url!r}")
            continue
        models = spec.get("models", ["*"])
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            errors.add(f"{where}.models", "expected a list of model name patterns such as ['gpt-*']")
            models = ["*"]
        aliases = spec.get("aliases") or {}
        if not isinstance(aliases, Mapping):
            errors.add(f"{where}.aliases", "expected a mapping of alias to model name")
            aliases = {}
        for env_field in ("api_key_env", "aws_access_key_id_env", "aws_secret_access_key_env",
                          "aws_session_token_env"):
            value = spec.get(env_field)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                errors.add(f"{where}.{env_field}", f"expected the name of an environment variable, got {value!r}")
        company = spec.get("company")
        if company is not None and (not isinstance(company, str) or not company.strip()):
            errors.add(f"{where}.company", f"expected the provider's company name such as 'OpenAI', got {company!r}")
            company = None
        out.append(ProviderConfig(
            name=str(name), type=str(kind), base_url=base_url.rstrip("/"),
            api_key_env=spec.get("api_key_env"), models=tuple(models),
            aliases={str(k): str(v) for k, v in aliases.items()},
            pricing_provider=spec.get("pricing_provider", _DEFAULT_PRICING.get(kind)),
            company=company.strip() if isinstance(company, str) else None,
            **extra,
        ))
    return tuple(out)


def _type_fields(kind: str, spec: Mapping[str, Any], where: str, errors: _Errors) -> dict[str, Any] | None:
    """The fields only `kind` has, checked; None when the provider cannot be used."""
    if kind == "azure-openai":
        version = spec.get("api_version")
        if version is not None and (not isinstance(version, str) or not version.strip()):
            errors.add(f"{where}.api_version", f"expected an Azure OpenAI API version such as '2024-10-21', "
                                               f"got {version!r}")
            return None
        deployments = spec.get("deployments") or {}
        if not isinstance(deployments, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) and k and v for k, v in deployments.items()):
            errors.add(f"{where}.deployments", "expected a mapping of deployment name to model name, "
                                               "such as {prod-gpt4o: gpt-4o}")
            return None
        return {"api_version": version, "deployments": dict(deployments)}
    if kind == "bedrock":
        region = spec.get("region")
        if not isinstance(region, str) or not region.strip() or " " in region:
            errors.add(f"{where}.region", f"expected an AWS region such as 'us-east-1', got {region!r}")
            return None
        signing = [spec.get(f) for f in ("aws_access_key_id_env", "aws_secret_access_key_env")]
        if (signing[0] is None) != (signing[1] is None):
            present = "aws_access_key_id_env" if signing[1] is None else "aws_secret_access_key_env"
            errors.add(f"{where}.{present}",
                       "set both aws_access_key_id_env and aws_secret_access_key_env (SigV4 needs both)")
            return None
        if signing[0] is None and spec.get("api_key_env") is None:
            errors.add(where, "expected aws_access_key_id_env and aws_secret_access_key_env (SigV4 signing) "
                              "or api_key_env (a Bedrock API key)")
            return None
        return {"region": region.strip(), "aws_access_key_id_env": signing[0],
                "aws_secret_access_key_env": signing[1], "aws_session_token_env": spec.get("aws_session_token_env")}
    return {}


def _alerts(raw: Any, errors: _Errors) -> AlertsConfig:
    """alerts: {webhooks: [{url, kinds, timeout}], retries, backlog, forecast_interval, …}."""
    if not isinstance(raw, Mapping):
        errors.add("alerts", "expected a mapping with webhooks: [{url: …, kinds: […]}]")
        return AlertsConfig()
    errors.unknown("alerts", raw, keys_of("alerts"))
    hooks: list[WebhookConfig] = []
    listed = raw.get("webhooks") or []
    if not isinstance(listed, list):
        errors.add("alerts.webhooks", "expected a list of {url: …, kinds: […]}")
        listed = []
    for index, spec in enumerate(listed):
        where = f"alerts.webhooks[{index}]"
        if not isinstance(spec, Mapping):
            errors.add(where, "expected a mapping with url and optional kinds, timeout")
            continue
        errors.unknown(where, spec, ("url", "kinds", "timeout"))
        url = spec.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            errors.add(f"{where}.url", f"expected an http(s) URL, got {url!r}")
            continue
        kinds = spec.get("kinds", list(ALERT_KINDS))
        if not isinstance(kinds, list) or not kinds or any(k not in ALERT_KINDS for k in kinds):
            errors.add(f"{where}.kinds", f"expected a non-empty list of {', '.join(ALERT_KINDS)}, got {kinds!r}")
            continue
        timeout = errors.integer(f"{where}.timeout", spec.get("timeout", 10), 1, 300)
        hooks.append(WebhookConfig(url, tuple(str(k) for k in kinds), timeout))
    values = {name: errors.check(f"alerts.{name}", raw.get(name, setting(f"alerts.{name}").default))
              for name in keys_of("alerts") if name != "webhooks"}
    return AlertsConfig(tuple(hooks), **values)


class _Errors:
    def __init__(self, source: str, lines: Mapping[str, int]) -> None:
        self.source = source
        self.lines = lines
        self.messages: list[str] = []

    def add(self, path: str, message: str) -> None:
        line = self.lines.get(path)
        where = f"{self.source}:{line}" if line else self.source
        self.messages.append(f"{where}: {path}: {message}")

    def unknown(self, path: str, mapping: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for key in mapping:
            if key not in allowed:
                self.add(f"{path}.{key}".lstrip("."), f"unknown setting; expected one of {', '.join(allowed)}")

    def integer(self, path: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.add(path, f"expected an integer from {low} to {high}, got {value!r}")
            return low
        return value

    def check(self, path: str, value: Any, declared: str | None = None) -> Any:
        """`value` of the declared setting at `path` (or `declared`), parsed and range-checked."""
        parsed, problem = check(setting(declared or path), value)
        if problem:
            self.add(path, problem)
        return parsed

    def raise_if_any(self) -> None:
        if self.messages:
            raise ConfigError("\n".join(self.messages))


def _line_map(text: str) -> dict[str, int]:
    """Dotted path of every mapping key -> its 1-based line, for error messages."""
    out: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                path = f"{prefix}.{key.value}" if prefix else str(key.value)
                out[path] = key.start_mark.line + 1
                walk(value, path)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                path = f"{prefix}[{index}]"
                out[path] = item.start_mark.line + 1
                walk(item, path)

    root = yaml.compose(text)
    if root is not None:
        walk(root, "")
    return out

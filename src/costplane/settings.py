"""Every setting of `costplane.yaml`, declared once.

`SETTINGS` is the one table behind the configuration loader's defaults, key lists and type/range
checks (`check`), `costplane config show` (the effective value of each setting and where it came
from) and the settings reference in docs/configuration.md (`reference_table`, kept true by a test).

A setting's `default` is written as it would be in the file (`"10m"`, `4096`, None = unset). Its
`attr` is where the loader puts the parsed value on `Config` (a dotted attribute path), so the
effective value can be shown. A setting with `env` is overridden by that environment variable when
the loader is given the environment (the `costplane` commands give it theirs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from costplane.ledger.windows import WindowError, parse_duration

__all__ = ["BEGIN", "END", "SECTIONS", "SETTINGS", "Setting", "check", "embed", "format_duration", "keys_of",
           "reference_table", "setting", "shown"]

_I32 = 2**31


@dataclass(frozen=True, slots=True)
class Setting:
    path: str  # dotted key in costplane.yaml, e.g. "gateway.default_max_tokens"
    type: str  # int | number | duration | text | url | origin | hosts | path | decimal | zone | envvar | secret
    #            | mapping | list
    default: Any  # as written in the file; None = unset
    description: str
    env: str | None = None  # environment variable that overrides the file
    minimum: int | float | None = None
    maximum: int | float | None = None
    attr: str | None = None  # dotted attribute of Config holding the parsed value
    secret: bool = False  # never printed by `config show`

    @property
    def section(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def key(self) -> str:
        return self.path.rsplit(".", 1)[-1]


def _s(path: str, type_: str, default: Any, description: str, *, env: str | None = None,
       minimum: float | None = None, maximum: float | None = None, attr: str | None = "", secret: bool = False
       ) -> Setting:
    return Setting(path, type_, default, description, env, minimum, maximum,
                   path if attr == "" else attr, secret)


SETTINGS: tuple[Setting, ...] = (
    # -- server ---------------------------------------------------------------------------------
    _s("server.host", "text", "127.0.0.1", "address `costplane serve` binds", env="COSTPLANE_HOST", attr="host"),
    _s("server.port", "int", 8080, "port `costplane serve` listens on", env="COSTPLANE_PORT", minimum=0,
       maximum=65535, attr="port"),
    _s("server.public_url", "origin", None, "the dashboard's public origin; dashboard POSTs must come from it (or an "
       "allowed host), and `Host` headers are checked (docs/dashboard.md)", attr="web.public_url"),
    _s("server.allowed_hosts", "hosts", [], "`Host` values the dashboard answers (`host`, `host:port`, `*.domain`); "
       "others get 400. Unset together with `public_url`: the request's own `Host` is the origin, as for a server "
       "on 127.0.0.1", attr="web.allowed_hosts"),
    _s("server.login_max_failures", "int", 5, "failed logins (per user name, and per client address) before logins "
       "are refused with 429", minimum=1, maximum=1000, attr="web.login_max_failures"),
    _s("server.login_window", "duration", "15m", "the sliding window those failures are counted in",
       attr="web.login_window"),
    # -- store and bundle -----------------------------------------------------------------------
    _s("store", "url", "sqlite:///costplane.db", "the ledger: `sqlite:///path.db` (relative to the file) or "
       "`postgresql://user@host:5432/db[?schema=name]`; also written `store: {url: …}`", env="COSTPLANE_STORE",
       attr="store_url"),
    _s("bundle", "path", None, "directory of policies and budgets, relative to the file (docs/policy.md)"),
    # -- gateway --------------------------------------------------------------------------------
    _s("gateway.default_max_tokens", "int", 4096, "max_tokens the gateway sets (and forwards) when neither the "
       "client nor a policy sets one", minimum=1, maximum=_I32),
    _s("gateway.default_max_tool_uses", "int", 5, "`max_uses` the gateway sets (and forwards) on an Anthropic server "
       "tool billed per use (web search) when the client sets none; the worst-case bound counts that many uses "
       "(docs/gateway.md)", minimum=1, maximum=_I32),
    _s("gateway.reservation_ttl", "duration", "10m", "an unsettled reservation is released after this long"),
    _s("gateway.upstream_timeout", "duration", "120s", "total time allowed for one upstream call"),
    _s("gateway.max_request_bytes", "int", 4_194_304, "largest request body accepted (413 above)", minimum=1,
       maximum=_I32),
    _s("gateway.loop_threshold", "int", 5, "the same normalised request this many times in one run within "
       "loop_window is a loop (429)", minimum=1, maximum=_I32),
    _s("gateway.loop_window", "duration", "10m", "window of the loop detector"),
    _s("gateway.cache_ttl", "duration", "1h", "lifetime of an exact-match response cache entry"),
    _s("gateway.cache_purge_interval", "duration", "10m", "how often expired response cache entries are deleted "
       "from the store (docs/gateway.md)"),
    _s("gateway.key_cache_seconds", "int", 2, "no effect; accepted so older files still load. A revoked key is "
       "refused by the very next request (docs/api.md)", minimum=1, maximum=_I32),
    _s("gateway.reload_interval", "duration", "2s", "how often the bundle directory is checked for changes"),
    # -- providers and pricing ------------------------------------------------------------------
    _s("providers", "mapping", {}, "upstream providers by name: `type`, `base_url`, `api_key_env`, `models`, "
       "`aliases`, `pricing_provider`, `company`; `azure-openai`: `api_version`, `deployments`; `bedrock`: "
       "`region`, `aws_access_key_id_env`, `aws_secret_access_key_env`, `aws_session_token_env` (see above)",
       attr=None),
    _s("pricing", "mapping", None, "price overrides, SKU prices and the unknown-price rule (docs/pricing.md)",
       attr=None),
    # -- alerts ---------------------------------------------------------------------------------
    _s("alerts.webhooks", "list", [], "webhooks (Slack-compatible JSON): `url`, `kinds`, `timeout` seconds "
       "(docs/visibility.md)", attr=None),
    _s("alerts.retries", "int", 3, "delivery attempts after the first one fails", minimum=0, maximum=20),
    _s("alerts.backlog", "int", 1000, "alerts waiting for delivery; beyond it new alerts are dropped and logged",
       minimum=1, maximum=1_000_000),
    _s("alerts.forecast_interval", "duration", "5m", "time between exhaustion forecasts of calendar budgets"),
    _s("alerts.forecast_min_elapsed", "duration", "1h", "no forecast before this much of the period has passed"),
    _s("alerts.policy_repeat", "duration", "1h", "a notify policy alerts at most once per this long"),
    _s("alerts.anomaly_interval", "duration", "1h", "time between spend anomaly scans of the latest complete days"),
    # -- reconcile ------------------------------------------------------------------------------
    _s("reconcile.drift_threshold_pct", "decimal", "5", "a reconciliation line alerts when its drift passes every "
       "threshold set (docs/reconcile.md)"),
    _s("reconcile.drift_threshold_usd", "decimal", "1.00", "drift threshold in exact USD"),
    _s("reconcile.timezone", "zone", "UTC", "IANA zone the reconciliation days are cut in"),
    _s("reconcile.projects", "mapping", {}, "bill project/workspace id -> costplane project (null: none)"),
    _s("reconcile.models", "mapping", {}, "bill model name -> ledger model name"),
    _s("reconcile.providers", "mapping", {}, "ledger provider -> bill provider"),
    # -- telemetry ------------------------------------------------------------------------------
    _s("telemetry.otlp_endpoint", "url", None, "OTLP/HTTP endpoint of the gateway's GenAI span export; unset: no "
       "export (`/v1/traces` is appended unless the path ends with it)"),
    _s("telemetry.headers", "mapping", {}, "headers sent with every export (not secrets)"),
    _s("telemetry.headers_env", "envvar", None, "environment variable holding `k=v,k2=v2` headers (secrets)"),
    _s("telemetry.service_name", "text", "costplane-gateway", "resource `service.name` of the spans"),
    _s("telemetry.queue_size", "int", 2048, "spans waiting for export; when full, new spans are dropped and counted",
       minimum=1, maximum=1_000_000),
    _s("telemetry.batch_size", "int", 512, "spans per export request", minimum=1, maximum=100_000),
    _s("telemetry.export_interval", "number", 1, "seconds a partial batch waits before it is sent", minimum=0.01,
       maximum=3600),
    _s("telemetry.timeout", "number", 10, "seconds per export request", minimum=0.1, maximum=600),
    # -- metrics --------------------------------------------------------------------------------
    _s("metrics.token_env", "envvar", None, "name of an environment variable holding the bearer token `/metrics` "
       "requires; unset or empty variable: every scrape is refused (401), never served openly"),
    _s("metrics.token", "secret", None, "the token itself (at least 16 characters); prefer `token_env` to keep the "
       "secret out of the file. Set one of the two, not both. Without `metrics:` `/metrics` is open",
       secret=True),
    # -- ledger ---------------------------------------------------------------------------------
    _s("ledger.leases", "text", "off", "`on`: lease-based budgets — each process admits requests against slices of "
       "hard budget headroom it holds (leases) without a store round trip, journals every settlement locally and "
       "applies them in batches; the hard limits stay exact on any number of processes (docs/store.md, leases)",
       env="COSTPLANE_LEASES", attr=None),
    _s("ledger.lease_ttl", "duration", "30s", "a lease not renewed this long (its process died) goes back to the pool",
       attr=None),
    _s("ledger.journal", "path", None, "directory of the processes' settlement journals (one host's processes share "
       "it); unset: `.costplane/journal` next to the file", env="COSTPLANE_JOURNAL", attr=None),
    _s("ledger.journal_fsync", "text", "off", "`on`: every journaled settlement is also flushed to disk (survives "
       "a power loss, not only a killed process)", attr=None),
)

#: top-level keys of costplane.yaml, in the order of the table
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(s.section for s in SETTINGS))
_BY_PATH = {s.path: s for s in SETTINGS}


def setting(path: str) -> Setting:
    """The setting at a dotted path (KeyError for an undeclared one)."""
    return _BY_PATH[path]


def keys_of(section: str) -> tuple[str, ...]:
    """The keys declared under a section (`gateway` -> default_max_tokens, …)."""
    return tuple(s.key for s in SETTINGS if s.section == section and s.path != section)


def format_duration(seconds: int) -> str:
    """600 -> '10m': the largest unit that divides the seconds (what parse_duration reads back)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _num(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def _bounds(s: Setting, kind: str) -> str:
    return f"expected {kind} from {_num(s.minimum)} to {_num(s.maximum)}"


def check(s: Setting, value: Any) -> tuple[Any, str | None]:
    """A scalar value of setting `s` (int, number, duration, text) parsed and range-checked:
    (parsed value, None), or (the parsed default, the problem) — the caller names file:line."""
    fallback = _parsed_default(s)
    if s.type == "int":
        low, high = int(s.minimum if s.minimum is not None else -_I32), int(s.maximum or _I32)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return fallback, f"expected an integer from {low} to {high}, got {value!r}"
        return value, None
    if s.type == "number":
        low_f, high_f = float(s.minimum or 0), float(s.maximum or _I32)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low_f <= value <= high_f:
            return fallback, f"{_bounds(s, 'a number')}, got {value!r}"
        return float(value), None
    if s.type == "duration":
        try:
            return parse_duration(str(value)), None
        except WindowError as exc:
            return fallback, str(exc)
    if s.type == "text":
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value):
            return fallback, f"expected a non-empty text, got {value!r}"
        return str(value), None
    raise ValueError(f"{s.path}: {s.type} settings are parsed by their own section parser")


def _parsed_default(s: Setting) -> Any:
    if s.type == "duration":
        return parse_duration(str(s.default))
    if s.type == "number":
        return float(s.default)
    return s.default


def shown(s: Setting, value: Any) -> str:
    """A value of `s` as it would be written in the file (durations as `10m`); `unset` for None."""
    if value is None:
        return "unset"
    if s.secret:
        return "(set)"
    if s.type == "duration" and isinstance(value, int):
        return format_duration(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal | int | str):
        return str(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value)


def _type_column(s: Setting) -> str:
    names = {"int": "integer", "number": "number", "duration": "duration", "text": "text", "url": "URL",
             "origin": "origin URL", "hosts": "list of hosts", "path": "path", "decimal": "exact number",
             "zone": "IANA zone", "envvar": "variable name", "secret": "text", "mapping": "mapping",
             "list": "list"}
    out = names[s.type]
    if s.minimum is not None and s.maximum is not None and s.maximum != _I32:
        out += f" {_num(s.minimum)}–{_num(s.maximum)}"
    elif s.minimum is not None:
        out += f" ≥ {_num(s.minimum)}"
    return out


def reference_table() -> str:
    """Every setting as a Markdown table (docs/configuration.md embeds it between markers)."""
    rows = ["| setting | type | default | env | meaning |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        default = "unset" if s.default is None else f"`{shown(s, s.default)}`"
        env = f"`{s.env}`" if s.env else ""
        rows.append(f"| `{s.path}` | {_type_column(s)} | {default} | {env} | {s.description} |")
    return "\n".join(rows)


#: docs/configuration.md holds the reference table between these lines
BEGIN, END = "<!-- settings-table:begin (generated from costplane.settings; a test keeps it true) -->", \
    "<!-- settings-table:end -->"


def embed(document: str) -> str:
    """`document` with the text between the markers replaced by the current reference table."""
    head, begin, rest = document.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"the document lacks the markers {BEGIN!r} … {END!r}")
    return f"{head}{BEGIN}\n{reference_table()}\n{END}{tail}"


if __name__ == "__main__":  # python -m costplane.settings docs/configuration.md: regenerate the table
    import sys
    from pathlib import Path

    for name in sys.argv[1:]:
        target = Path(name)
        target.write_text(embed(target.read_text(encoding="utf-8")), encoding="utf-8")

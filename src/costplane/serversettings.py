"""The dashboard's and /metrics' exposure settings of costplane.yaml.

```yaml
server:
  public_url: https://costplane.example.com   # the origin browsers use; the only origin a dashboard POST may come from
  allowed_hosts: [costplane.example.com]      # Host headers the dashboard answers (others: 400); "*.example.com" ok
  login_max_failures: 5                       # failed logins per user name, and per client address, within…
  login_window: 15m                           # …this window before further logins are refused (429)
metrics:
  token_env: COSTPLANE_METRICS_TOKEN          # /metrics needs "Authorization: Bearer <that value>"
  # token: "…"                                # or the token itself (prefer token_env: keep secrets out of files)
```

Without `public_url` and `allowed_hosts` a dashboard POST must come from the origin of the request's own
Host header (enough for a server on 127.0.0.1); with either set, the Host header is not trusted and only
the configured origins are accepted. Defaults and ranges are declared in `costplane.settings`.
`parse_server` and `parse_metrics` never raise: they return the
settings and the (field, message) problems, which the configuration loader reports with file:line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from costplane.settings import check, keys_of, setting

__all__ = ["SERVER_KEYS", "MetricsSettings", "WebSettings", "host_allowed", "origin_allowed", "parse_metrics",
           "parse_server"]

#: keys of `server:` parsed here (host and port are the configuration loader's); declared in costplane.settings
SERVER_KEYS = tuple(key for key in keys_of("server") if key not in ("host", "port"))
_HOST = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class WebSettings:
    public_url: str | None = None  # scheme://host[:port], no path
    allowed_hosts: tuple[str, ...] = ()  # lower-case host[:port] or *.suffix
    login_max_failures: int = 5
    login_window: int = 900  # seconds

    @property
    def configured(self) -> bool:
        return bool(self.public_url or self.allowed_hosts)


def host_allowed(settings: WebSettings, host: str) -> bool:
    """Whether a Host header (host[:port]) is one the dashboard answers; any host when none is configured."""
    allowed = list(settings.allowed_hosts)
    if settings.public_url:
        allowed.append(urlsplit(settings.public_url).netloc.lower())
    if not allowed:
        return True
    host = host.strip().lower()
    bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    for entry in allowed:
        if entry.startswith("*."):
            if bare.endswith(entry[1:]) and bare != entry[2:]:
                return True
        elif host == entry or (":" not in entry.lstrip("[").split("]")[-1] and bare == entry):
            return True
    return False


def origin_allowed(settings: WebSettings, source: str, host: str) -> bool:
    """Whether a state-changing dashboard request from `source` (its Origin, else Referer) is ours: the
    configured public origin or an http(s) origin on an allowed host; unconfigured, the request's own Host."""
    parts = urlsplit(source)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    if not settings.configured:
        return parts.netloc == host
    if settings.public_url and f"{parts.scheme}://{parts.netloc.lower()}" == settings.public_url:
        return True
    return bool(settings.allowed_hosts) and host_allowed(WebSettings(allowed_hosts=settings.allowed_hosts),
                                                         parts.netloc)


def parse_server(server: Mapping[str, Any]) -> tuple[WebSettings, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    public = server.get("public_url")
    public_url: str | None = None
    if public is not None:
        parts = urlsplit(str(public))
        if not isinstance(public, str) or parts.scheme not in ("http", "https") or not parts.netloc \
                or parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
            problems.append(("server.public_url", f"expected an origin such as https://costplane.example.com "
                                                  f"(scheme, host, optional port, no path), got {public!r}"))
        else:
            public_url = f"{parts.scheme}://{parts.netloc.lower()}"
    raw_hosts = server.get("allowed_hosts", [])
    hosts: list[str] = []
    if not isinstance(raw_hosts, list):
        problems.append(("server.allowed_hosts", f"expected a list of host names, got {raw_hosts!r}"))
    else:
        for index, host in enumerate(raw_hosts):
            if not isinstance(host, str) or not _HOST.match(host.strip()):
                problems.append((f"server.allowed_hosts[{index}]",
                                 f"expected a host name such as costplane.example.com, host:port or *.example.com, "
                                 f"got {host!r}"))
            else:
                hosts.append(host.strip().lower())
    values: list[Any] = []
    for key in ("login_max_failures", "login_window"):
        declared = setting(f"server.{key}")
        value, problem = check(declared, server.get(key, declared.default))
        if problem:
            problems.append((declared.path, problem))
        values.append(value)
    failures, window = values
    return WebSettings(public_url, tuple(hosts), failures, window), problems


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    token: str | None = None
    token_env: str | None = None

    @property
    def required(self) -> bool:
        return bool(self.token or self.token_env)

    def bearer(self) -> str | None:
        """The token /metrics requires, read now (so a rotated env value applies on restart); None = open.
        A `token_env` naming an unset or empty variable yields "" — /metrics then refuses every request."""
        if self.token_env:
            return os.environ.get(self.token_env, "")
        return self.token or None


def parse_metrics(raw: Any) -> tuple[MetricsSettings, list[tuple[str, str]]]:
    if raw is None:
        return MetricsSettings(), []
    if not isinstance(raw, Mapping):
        return MetricsSettings(), [("metrics", "expected a mapping with token_env (or token)")]
    problems = [(f"metrics.{key}", "unknown key; expected token_env or token") for key in raw
                if key not in ("token", "token_env")]
    token, env = raw.get("token"), raw.get("token_env")
    if token is not None and (not isinstance(token, str) or len(token) < 16):
        problems.append(("metrics.token", "expected a secret of at least 16 characters"))
        token = None
    if env is not None and (not isinstance(env, str) or not _ENV.match(env)):
        problems.append(("metrics.token_env", f"expected an environment variable name, got {env!r}"))
        env = None
    if token and env:
        problems.append(("metrics", "set token_env or token, not both"))
    return MetricsSettings(token, env), problems

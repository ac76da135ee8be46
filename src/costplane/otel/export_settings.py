"""`telemetry:` in costplane.yaml — the gateway's OTel GenAI span export (off unless an endpoint is set).

```yaml
telemetry:
  otlp_endpoint: http://collector:4318     # OTLP/HTTP; "/v1/traces" is appended unless the path has it
  headers: {x-tenant: finops}              # sent with every export (not secrets)
  headers_env: COSTPLANE_OTLP_HEADERS      # env var "k=v,k2=v2" (OTEL_EXPORTER_OTLP_HEADERS format), for secrets
  service_name: costplane-gateway          # resource service.name of the spans
  queue_size: 2048                         # spans waiting for export; beyond it new spans are dropped, counted
  batch_size: 512                          # spans per export request
  export_interval: 1                       # seconds between exports of a partial batch
  timeout: 10                              # seconds per export request
```

`parse_telemetry` never raises: it returns the settings and the (field, message) problems, which
the configuration loader reports with file:line like every other field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["TelemetrySettings", "parse_telemetry"]

_KEYS = ("otlp_endpoint", "headers", "headers_env", "service_name", "queue_size", "batch_size", "export_interval",
         "timeout")


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    otlp_endpoint: str | None = None  # the full traces URL (…/v1/traces); None = no export
    headers: Mapping[str, str] = field(default_factory=dict)
    headers_env: str | None = None
    service_name: str = "costplane-gateway"
    queue_size: int = 2048
    batch_size: int = 512
    export_interval: float = 1.0
    timeout: float = 10.0

    @property
    def enabled(self) -> bool:
        return self.otlp_endpoint is not None

    def all_headers(self) -> dict[str, str]:
        """`headers` plus those of the `headers_env` variable (read now, so a rotated secret is picked up)."""
        out = {"content-type": "application/x-protobuf", **self.headers}
        raw = os.environ.get(self.headers_env, "") if self.headers_env else ""
        for item in raw.split(","):
            name, sep, value = item.partition("=")
            if sep and name.strip():
                out[name.strip().lower()] = value.strip()
        return out


def _number(raw: Mapping[str, Any], name: str, default: float, low: float, high: float,
            problems: list[tuple[str, str]], integer: bool) -> float:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)) \
            or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        problems.append((f"telemetry.{name}", f"expected {kind} from {low:g} to {high:g}, got {value!r}"))
        return default
    return value


def parse_telemetry(raw: Any) -> tuple[TelemetrySettings, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    if raw is None:
        return TelemetrySettings(), problems
    if not isinstance(raw, Mapping):
        return TelemetrySettings(), [("telemetry", "expected a mapping with otlp_endpoint: http://…")]
    for name in raw:
        if name not in _KEYS:
            problems.append((f"telemetry.{name}", f"unknown setting; expected one of {', '.join(_KEYS)}"))
    endpoint = raw.get("otlp_endpoint")
    url: str | None = None
    if endpoint is not None:
        parts = urlsplit(str(endpoint))
        if not isinstance(endpoint, str) or parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(("telemetry.otlp_endpoint", f"expected an http(s) URL, got {endpoint!r}"))
        else:
            url = endpoint if parts.path.rstrip("/").endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"
    headers = raw.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(isinstance(v, str | int) for v in headers.values()):
        problems.append(("telemetry.headers", "expected a mapping of header name to text"))
        headers = {}
    headers_env = raw.get("headers_env")
    if headers_env is not None and (not isinstance(headers_env, str) or not headers_env):
        problems.append(("telemetry.headers_env", f"expected the name of an environment variable, got {headers_env!r}"))
        headers_env = None
    service = raw.get("service_name", "costplane-gateway")
    if not isinstance(service, str) or not service:
        problems.append(("telemetry.service_name", f"expected a non-empty text, got {service!r}"))
        service = "costplane-gateway"
    settings = TelemetrySettings(
        otlp_endpoint=url, headers={str(k).lower(): str(v) for k, v in headers.items()}, headers_env=headers_env,
        service_name=service,
        queue_size=int(_number(raw, "queue_size", 2048, 1, 1_000_000, problems, True)),
        batch_size=int(_number(raw, "batch_size", 512, 1, 100_000, problems, True)),
        export_interval=float(_number(raw, "export_interval", 1.0, 0.01, 3600, problems, False)),
        timeout=float(_number(raw, "timeout", 10.0, 0.1, 600, problems, False)),
    )
    return settings, problems

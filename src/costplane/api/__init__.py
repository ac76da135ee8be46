"""The HTTP APIs: the users' API under /api/v1 and the machine API under /v1 (environments, runs,
outcomes, SLOs, OTLP traces), served from one declarative route table that also generates the
OpenAPI 3.1 document, authenticated by `costplane.auth` (see docs/api.md)."""

from __future__ import annotations

from typing import Any

__all__ = ["api_routes"]


def __getattr__(name: str) -> Any:  # lazy: handler modules import `costplane.api.table` without the server
    if name == "api_routes":
        from costplane.api.service import api_routes

        return api_routes
    raise AttributeError(name)

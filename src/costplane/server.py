"""The whole server: the governed gateway plus every API and background job of the product.

`costplane serve` runs `create_server`. Each package that serves HTTP or runs on a schedule
contributes here, so the gateway module stays about the gateway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from costplane.alerts.service import alerts_parts
from costplane.api.service import api_routes, endpoints
from costplane.app import Application
from costplane.gateway.app import create_gateway
from costplane.gateway.cachepurge import cache_purge_jobs
from costplane.lifecycle.service import lifecycle_parts
from costplane.metrics.service import metrics_parts
from costplane.runs.service import runs_parts
from costplane.web import web_routes

__all__ = ["create_server"]


def create_server(application: Application) -> Starlette:
    """`application` is the composition root: its notifier (webhooks included), SLO gate, decision core
    and environment core are built once, in order, and handed to every part here; no part patches them."""
    routes: list[BaseRoute] = []
    background: list[tuple[float, Callable[[], Awaitable[object]]]] = []
    environments = application.environments  # ONE environment core: scheduler, /v1/environments and /api/v1
    env_routes, env_jobs = lifecycle_parts(application, environments)  # the environment scheduler
    routes += env_routes
    background += env_jobs
    run_routes, run_jobs = runs_parts(application)  # the economic SLO gate and job
    routes += run_routes
    background += run_jobs
    # ONE route table: /api/v1 (users' tokens) and /v1 machine API (keys: environments, runs, outcomes,
    # SLOs, OTLP traces), one auth module (costplane.auth), one scoping rule per route, one OpenAPI document
    table = endpoints(application, environments)
    routes += api_routes(application, table)
    routes += web_routes(application, table)  # the dashboard under /ui, calling the same table
    metrics = metrics_parts(application)  # Prometheus /metrics + gateway latency histograms
    routes += metrics.routes
    background += alerts_parts(application)  # webhook delivery, exhaustion forecasts, anomaly scans
    background += cache_purge_jobs(application)  # expired response cache entries (gateway/cachepurge.py)
    return metrics.install(create_gateway(application, extra_routes=routes, background=background))

"""What metrics add to the server: `GET /metrics` and the latency middleware of the gateway."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from costplane.app import Application
from costplane.metrics.collect import store_metrics
from costplane.metrics.exposition import CONTENT_TYPE, render
from costplane.metrics.latency import LatencyHistograms, LatencyMiddleware

__all__ = ["MetricsParts", "metrics_parts"]


class MetricsParts:
    """The /metrics route and the histograms its middleware fills; `install` wraps the server app."""

    def __init__(self, application: Application) -> None:
        self.application = application
        self.histograms = LatencyHistograms()
        self.routes: list[BaseRoute] = [Route("/metrics", self.metrics, methods=["GET"])]

    async def metrics(self, request: Request) -> Response:
        app = self.application
        bundle = app.bundle
        families = await asyncio.to_thread(store_metrics, app.store, list(bundle.budgets.values()), bundle.revision)
        return Response(render([*families, *self.histograms.families()]), media_type=CONTENT_TYPE)

    def install(self, server: Starlette) -> Starlette:
        server.add_middleware(LatencyMiddleware, histograms=self.histograms)
        return server


def metrics_parts(application: Application) -> MetricsParts:
    return MetricsParts(application)

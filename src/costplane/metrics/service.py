"""What metrics add to the server: `GET /metrics` and the latency middleware of the gateway.

With `metrics.token_env` (or `metrics.token`) in costplane.yaml, a scrape must send
`Authorization: Bearer <token>`; anything else is 401 (compared in constant time). A `token_env`
naming an unset or empty variable refuses every scrape rather than serving them openly.
"""

from __future__ import annotations

import asyncio
import hmac

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from costplane.app import Application
from costplane.metrics.collect import store_metrics
from costplane.metrics.exposition import CONTENT_TYPE, render
from costplane.metrics.latency import LatencyHistograms, LatencyMiddleware
from costplane.metrics.process import gc_families, store_families

__all__ = ["MetricsParts", "metrics_parts"]


class MetricsParts:
    """The /metrics route and the histograms its middleware fills; `install` wraps the server app."""

    def __init__(self, application: Application) -> None:
        self.application = application
        self.histograms = LatencyHistograms()
        self.routes: list[BaseRoute] = [Route("/metrics", self.metrics, methods=["GET"])]

    def _authorised(self, request: Request) -> bool:
        settings = self.application.config.metrics
        if not settings.required:
            return True
        expected = settings.bearer() or ""
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                                        expected.encode())

    async def metrics(self, request: Request) -> Response:
        if not self._authorised(request):
            return Response("/metrics needs Authorization: Bearer <metrics token> (metrics.token_env in "
                            "costplane.yaml)\n", status_code=401, media_type="text/plain",
                            headers={"www-authenticate": 'Bearer realm="costplane metrics"'})
        app = self.application
        bundle = app.bundle
        families = await asyncio.to_thread(store_metrics, app.store, list(bundle.budgets.values()), bundle.revision)
        return Response(render([*families, *self.histograms.families(), *gc_families(), *store_families(app.store)]),
                        media_type=CONTENT_TYPE)

    def install(self, server: Starlette) -> Starlette:
        server.add_middleware(LatencyMiddleware, histograms=self.histograms)
        return server


def metrics_parts(application: Application) -> MetricsParts:
    return MetricsParts(application)

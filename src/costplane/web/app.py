"""The dashboard's routes under /ui: login, pages, environment actions, live events and static files.

Pages are thin: each asks the /api/v1 route table for its data through `api.table.invoke`, as the
logged-in user, so the dashboard can never show more than that user's API would return.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from costplane.api.errors import ApiError
from costplane.api.principal import Principal
from costplane.api.redact import bundle_relative
from costplane.api.table import Endpoint, invoke
from costplane.app import Application
from costplane.serversettings import WebSettings, host_allowed, origin_allowed
from costplane.web.live import ChangeFeed
from costplane.web.render import PREFIX, Renderer
from costplane.web.session import COOKIE, SESSION_HOURS, end_session, principal_of, start_session
from costplane.web.throttle import LoginThrottle, Refusal
from costplane.web.timefmt import TZ_COOKIE, viewer_zone

__all__ = ["Page", "PageHandler", "web_routes"]


@dataclass(frozen=True, slots=True)
class Page:
    """What a page handler gets: the request, the logged-in user and a way to call the API as them."""

    request: Request
    principal: Principal
    application: Application
    table: Mapping[str, Endpoint]
    renderer: Renderer

    async def api(self, operation: str, query: Mapping[str, str] | None = None,
                  path: Mapping[str, str] | None = None, body: Any = None) -> dict[str, Any]:
        endpoint = self.table.get(operation)
        if endpoint is None:
            raise ApiError(404, "not_available", f"this server has no {operation!r} endpoint")
        return await invoke(endpoint, self.principal, query or {}, path or {}, body)

    def relative(self, text: str) -> str:
        """`text` naming bundle files relative to the bundle directory, with no server path."""
        return bundle_relative(text, (self.application.config.bundle, self.application.bundle.engine.bundle.root))

    @property
    def zone(self) -> tzinfo:
        """The viewer's time zone (the browser's, remembered in a cookie by the page script; UTC until known)."""
        return viewer_zone(self.request.cookies.get(TZ_COOKIE))

    def allows(self, operation: str) -> bool:
        endpoint = self.table.get(operation)
        return endpoint is not None and self.principal.role in endpoint.roles

    def render(self, template: str, *, title: str, active: str, status: int = 200, error: str | None = None,
               **values: Any) -> Response:
        return self.renderer.page(self.request, template, principal=self.principal,
                                  revision=self.application.bundle.revision, title=title, active=active,
                                  values=values, status=status, error=error)


PageHandler = Callable[[Page], Awaitable[Response]]


class _EventStream(StreamingResponse):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # the server is shutting down: an event stream simply ends and the browser reconnects
        with contextlib.suppress(asyncio.CancelledError):
            await super().__call__(scope, receive, send)


def _same_origin(request: Request, settings: WebSettings) -> bool:
    """State-changing requests must come from our own pages (the cookie is also SameSite=Strict): from the
    configured public origin or an allowed host, or (nothing configured) from the request's own Host."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return False
    return origin_allowed(settings, source, request.headers.get("host", ""))


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _retry_text(refusal: Refusal) -> str:
    minutes = -(-refusal.retry_after // 60)
    return (f"too many failed logins for {refusal.subject}: try again after "
            f"{refusal.retry_at.strftime('%H:%M')} UTC (in {minutes} minute{'s' if minutes != 1 else ''})")


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith(PREFIX + "/") and "//" not in target else PREFIX + "/"


def web_routes(application: Application, table: Sequence[Endpoint]) -> list[BaseRoute]:
    """The /ui routes, calling the API endpoints of `table`."""
    from costplane.web import envpages, pages, runpages  # page modules import Page from here

    renderer = Renderer()
    settings = application.config.web
    throttle = LoginThrottle(settings.login_max_failures, settings.login_window)
    by_operation = {e.operation_id: e for e in table}
    feed = ChangeFeed(application.store)
    store = application.store

    def guarded(handler: PageHandler, *, post: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not host_allowed(settings, request.headers.get("host", "")):
                return Response("unknown host: not one of server.allowed_hosts", status_code=400)
            principal = await run_in_threadpool(principal_of, application.auth, request)
            if principal is None:
                if post:
                    return Response("session expired: log in again", status_code=401)
                target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303)
            if post and not _same_origin(request, settings):
                return Response("cross-origin request refused", status_code=403)
            page = Page(request, principal, application, by_operation, renderer)
            try:
                return await handler(page)
            except ApiError as exc:
                status = exc.status if 400 <= exc.status < 500 else 400
                return page.render("message.html", title="Error", active="", status=status,
                                   error=page.relative(exc.message) + (f" (field: {exc.field})" if exc.field else ""))
            except ValueError as exc:  # as the API: a request the core refuses is the caller's to fix
                return page.render("message.html", title="Error", active="", status=400, error=page.relative(str(exc)))

        return endpoint

    async def login_form(request: Request) -> Response:
        if not host_allowed(settings, request.headers.get("host", "")):
            return Response("unknown host: not one of server.allowed_hosts", status_code=400)
        return renderer.bare("login.html", {"next": _safe_next(request.query_params.get("next")), "error": None})

    async def login(request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        target = _safe_next(str(form.get("next", "")))
        if not host_allowed(settings, request.headers.get("host", "")):
            return Response("unknown host: not one of server.allowed_hosts", status_code=400)
        if not _same_origin(request, settings):
            return renderer.bare("login.html", {"next": target, "error": "cross-origin login refused"}, 403)
        now = datetime.now(UTC)
        refusal = throttle.check(name, _client(request), now)
        if refusal is not None:
            refused = renderer.bare("login.html", {"next": target, "error": _retry_text(refusal)}, 429)
            refused.headers["retry-after"] = str(refusal.retry_after)
            return refused
        secret = await run_in_threadpool(start_session, store, name, password, now)
        if secret is None:
            throttle.failed(name, _client(request), now)
            return renderer.bare("login.html", {"next": target, "error": "unknown user or wrong password"}, 401)
        throttle.succeeded(name)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, secret, max_age=SESSION_HOURS * 3600, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https" or (settings.public_url or "").startswith("https:"),
                            path="/")
        return response

    async def logout(page: Page) -> Response:
        await run_in_threadpool(end_session, store, page.principal)
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def events(page: Page) -> Response:
        return _EventStream(feed.stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    async def root(request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    routes: list[BaseRoute] = [
        Route(PREFIX, root),
        Route(f"{PREFIX}/login", login_form, methods=["GET"]),
        Route(f"{PREFIX}/login", login, methods=["POST"]),
        Route(f"{PREFIX}/logout", guarded(logout, post=True), methods=["POST"]),
        Route(f"{PREFIX}/events", guarded(events)),
        Mount(f"{PREFIX}/static", app=StaticFiles(packages=[("costplane.web", "static")]), name="web-static"),
    ]
    for path, handler, methods in (*pages.PAGES, *envpages.PAGES, *runpages.PAGES):
        routes.append(Route(PREFIX + path, guarded(handler, post="POST" in methods), methods=list(methods)))
    return routes

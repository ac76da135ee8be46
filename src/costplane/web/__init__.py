"""The dashboard: server-rendered pages under /ui, role-scoped through the /api/v1 route table,
with live updates by server-sent events. No CDN: htmx is vendored under static/vendor."""

from costplane.web.app import web_routes

__all__ = ["web_routes"]

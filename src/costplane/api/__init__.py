"""The HTTP API under /api/v1 (issue 5): users, roles, bearer API tokens, spend, budgets,
decisions and keys, served from one declarative route table that also generates the
OpenAPI 3.1 document (see docs/api.md)."""

from costplane.api.service import api_routes

__all__ = ["api_routes"]

"""Who and what caused a cost: the Context and how a request's Context is resolved."""

from costplane.attribution.context import DIMENSIONS, Context, InvalidAttribute
from costplane.attribution.resolve import AttributionConflict, resolve_context

__all__ = ["DIMENSIONS", "AttributionConflict", "Context", "InvalidAttribute", "resolve_context"]

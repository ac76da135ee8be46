"""Cost events as FOCUS 1.2 or 1.3 rows (FinOps Open Cost and Usage Specification).

Each event becomes one row per charge line (focus_lines.py): an LLM call one row per token
type, an environment accrual one row per SKU, so ListCost = ListUnitPrice × PricingQuantity
holds on every row. costplane charges list prices without negotiated discounts:
ContractedUnitPrice = ListUnitPrice, ContractedCost = ListCost, and the PricingCurrency…
columns equal the USD ones (pricing and billing currency are both USD). BilledCost =
EffectiveCost in whole nano-USD, adding up over an event's rows to exactly its ledger cost.
Companies are named (focus_names.py), never the costplane.yaml key (that is x_ProviderKey).
Event-level facts (token counts, saved cost, latency) sit on the event's first row
(x_LineIndex 0) and are null on its other rows, so sums over the export stay right.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costplane.attribution.context import DIMENSIONS
from costplane.export.focus_columns import VERSIONS, X_COLUMNS, columns_for
from costplane.export.focus_lines import ChargeLine, Environments, charge_lines, environment_id
from costplane.export.focus_names import Companies
from costplane.ledger.envtypes import EnvironmentRecord
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent
from costplane.money import format_usd

__all__ = ["FOCUS_COLUMNS", "X_COLUMNS", "FocusExporter", "decimal_text", "focus_row", "iter_events",
           "store_environments"]

#: the FOCUS 1.2 columns (kept for callers of the 1.2-only exporter)
FOCUS_COLUMNS = VERSIONS["1.2"]

_X_DIMENSIONS = tuple("x_" + name.capitalize() for name in DIMENSIONS)
_GENERATIVE = ("llm", "cache_hit")
_COMPUTE = ("environment", "gpu", "compute")
_RESOURCES = ("gpu", "compute", "storage", "egress")
#: kind -> (ServiceCategory, ServiceSubcategory, ResourceType)
_SERVICE: Mapping[str, tuple[str, str, str]] = {
    "llm": ("AI and Machine Learning", "Generative AI", "Model"),
    "cache_hit": ("AI and Machine Learning", "Generative AI", "Model"),
    "tool": ("AI and Machine Learning", "Other (AI and Machine Learning)", "Tool"),
    "environment": ("Compute", "Virtual Machines", "Environment"),
    "gpu": ("Compute", "Virtual Machines", "GPU job"),
    "compute": ("Compute", "Virtual Machines", "Compute job"),
    "storage": ("Storage", "Other (Storage)", "Storage"),
    "egress": ("Networking", "Other (Networking)", "Data transfer"),
}  # fmt: skip
_OTHER = ("Other", "Other (Other)", "Other")
#: event-level facts, on the event's first row only (so sums over the export stay right)
_FIRST_ROW_ONLY = ("x_InputTokens", "x_OutputTokens", "x_CacheReadTokens", "x_CacheWriteTokens",
                   "x_ReasoningTokens", "x_SavedCost", "x_LatencyMs")


def decimal_text(value: object) -> str:
    """A Decimal as plain positional text, no exponent, no trailing zeros: 0.150000 -> '0.15'."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    text = f"{number:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(at: datetime) -> tuple[datetime, datetime]:
    start = at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def _period(event: CostEvent, line: ChargeLine) -> tuple[datetime, datetime]:
    """[start, end) of the charge in whole UTC seconds: the call's (or the running time's) span, at least 1 s."""
    end = event.ts.astimezone(UTC)
    span = (timedelta(microseconds=int(line.span_seconds * 1_000_000)) if line.span_seconds is not None
            else timedelta(milliseconds=max(0, event.latency_ms)))
    start = (end - span).replace(microsecond=0)
    end = end + timedelta(microseconds=(1_000_000 - end.microsecond) % 1_000_000)
    return start, max(start + timedelta(seconds=1), end)


def _price_details(line: ChargeLine) -> str:
    """SkuPriceDetails: x_ properties only; the numeric one is per one PricingUnit (= ListUnitPrice);
    the price conditions (service tier, batch processing) as x_ServiceTier, x_Processing, …"""
    conditions = "".join(f',{json.dumps("x_" + _camel(key))}:{json.dumps(value)}' for key, value in line.conditions)
    return (f'{{"x_CostBasis":{json.dumps(line.basis)},"x_PricedUnit":{json.dumps(line.price_key)}{conditions},'
            f'"x_UnitListPrice":{decimal_text(line.unit_price)}}}')


def _camel(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


class FocusExporter:
    """Turns cost events into rows of one FOCUS version (every value a string or None)."""

    def __init__(self, version: str = "1.3", companies: Companies | None = None,
                 environments: Environments | None = None) -> None:
        self.columns = columns_for(version)
        self.version = version
        self.companies = companies or Companies({})
        self.environments = environments
        self._seen_names: dict[tuple[str, str, bool], tuple[str, str, str]] = {}

    def rows(self, event: CostEvent) -> Iterator[dict[str, str | None]]:
        lines = charge_lines(event, self.environments)
        shared = self._event_columns(event)
        for index, line in enumerate(lines):
            row = dict(shared)
            row.update(self._line_columns(event, line, index))
            if index:  # event-level facts on the first row only
                row.update(dict.fromkeys(_FIRST_ROW_ONLY))
            yield {column: row.get(column) for column in self.columns}

    def _names(self, event: CostEvent) -> tuple[str, str, str]:
        """(provider company, publisher, service name), remembered per (provider, model, kind)."""
        key = (event.provider, event.model, event.kind in _COMPUTE)
        found = self._seen_names.get(key)
        if found is None:
            names, compute = self.companies, key[2]
            found = (names.provider(event.provider, event.model),
                     names.publisher(event.provider, event.model, compute),
                     names.service(event.provider, event.model, compute))
            if len(self._seen_names) < 10_000:  # bounded: distinct (provider, model) pairs are few
                self._seen_names[key] = found
        return found

    def _event_columns(self, event: CostEvent) -> dict[str, str | None]:
        """The columns every row of an event shares."""
        ctx, usage = event.context, event.usage
        provider, publisher, service = self._names(event)
        category, subcategory, resource_type = _SERVICE.get(event.kind, _OTHER)
        period_start, period_end = _month(event.ts)
        dims = ctx.dimensions()
        row: dict[str, str | None] = {
            "BillingAccountId": ctx.org or "default", "BillingAccountName": ctx.org or "default",
            "BillingAccountType": "Organization", "BillingCurrency": "USD", "PricingCurrency": "USD",
            "BillingPeriodStart": _iso(period_start), "BillingPeriodEnd": _iso(period_end),
            "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based", "PricingCategory": "Standard",
            "ProviderName": provider, "PublisherName": publisher, "InvoiceIssuerName": provider,
            "ServiceProviderName": provider, "HostProviderName": provider,
            "ResourceType": resource_type, "ServiceCategory": category, "ServiceSubcategory": subcategory,
            "ServiceName": service,
            "SubAccountId": ctx.team, "SubAccountName": ctx.team, "SubAccountType": "Team" if ctx.team else None,
            "Tags": json.dumps({**dims, **dict(ctx.tags)}, sort_keys=True, separators=(",", ":")),
            "x_ProviderKey": event.provider, "x_Model": event.model, "x_KeyId": ctx.key_id, "x_EventId": event.id,
            "x_DecisionId": event.decision_id, "x_Kind": event.kind, "x_Endpoint": event.endpoint or None,
            "x_Status": event.status, "x_RequestedModel": event.requested_model,
            "x_InputTokens": str(usage.input_tokens), "x_OutputTokens": str(usage.output_tokens),
            "x_CacheReadTokens": str(usage.cache_read_tokens), "x_CacheWriteTokens": str(usage.cache_write_tokens),
            "x_ReasoningTokens": str(usage.reasoning_tokens), "x_SavedCost": format_usd(event.saved_nano),
            "x_PriceFlagged": "true" if event.price_flagged else "false", "x_LatencyMs": str(event.latency_ms),
        }
        for name, column in zip(DIMENSIONS, _X_DIMENSIONS, strict=True):
            row[column] = dims.get(name)
        return row

    def _line_columns(self, event: CostEvent, line: ChargeLine, index: int) -> dict[str, str | None]:
        """The columns of one charge line."""
        start, end = _period(event, line)
        sku = line.sku or (f"tool/{event.model}" if event.kind == "tool" else f"{event.provider}/{event.model}")
        resource = event.kind in _RESOURCES
        served = "".join(f"[{key}={value}]" for key, value in line.conditions)
        unit_price, list_cost = decimal_text(line.unit_price), decimal_text(line.list_cost)
        billed = format_usd(line.billed_nano)
        env_id = environment_id(event) if event.kind == "environment" else None
        what = line.meter.lower() if line.basis == "unit_prices" else "call"
        name = event.endpoint.split("/", 1)[-1] if env_id or (resource and event.endpoint) else event.model
        return {
            "BilledCost": billed, "EffectiveCost": billed, "PricingCurrencyEffectiveCost": billed,
            "ListCost": list_cost, "ContractedCost": list_cost,
            "ListUnitPrice": unit_price, "ContractedUnitPrice": unit_price,
            "PricingCurrencyListUnitPrice": unit_price, "PricingCurrencyContractedUnitPrice": unit_price,
            "ChargePeriodStart": _iso(start), "ChargePeriodEnd": _iso(end),
            "ChargeDescription": f"{line.sku or event.model} {what} ({event.endpoint or event.kind})",
            "ConsumedQuantity": decimal_text(line.consumed), "ConsumedUnit": line.consumed_unit,
            "PricingQuantity": decimal_text(line.quantity), "PricingUnit": line.unit,
            "ResourceId": env_id or (event.model if resource else sku),
            "ResourceName": name,
            "SkuId": sku, "SkuMeter": line.meter,
            "SkuPriceId": f"{sku}/{line.price_key}{served}@{unit_price} USD/{line.unit}",
            "SkuPriceDetails": _price_details(line), "x_LineIndex": str(index), "x_CostBasis": line.basis,
        }


def focus_row(event: CostEvent, version: str = "1.2") -> dict[str, str | None]:
    """The first row of an event (kept for callers that want one row per event)."""
    return next(FocusExporter(version).rows(event))


def store_environments(store: Store) -> Environments:
    """An environment lookup over `store`, remembering what it read (one read per environment)."""
    seen: dict[str, EnvironmentRecord | None] = {}

    def lookup(env_id: str) -> EnvironmentRecord | None:
        if env_id not in seen:
            seen[env_id] = store.get_environment(env_id)
        return seen[env_id]

    return lookup


def iter_events(store: Store, since: datetime | None, until: datetime | None,
                batch: int = 5000) -> Iterator[CostEvent]:
    """Every event with since <= ts < until, oldest first, read in pages (bounded memory)."""
    after: tuple[datetime, str] | None = None
    while True:
        page = store.events_page(since=since, until=until, after=after, limit=batch)
        yield from page
        if len(page) < batch:
            return
        after = (page[-1].ts, page[-1].id)

"""`Catalog.describe`: the effective price of a model, its history and what is not metered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from costplane.pricing import genai
from costplane.pricing.genai import NotMetered
from costplane.pricing.history import PriceRule
from costplane.pricing.types import PriceSheet, UnknownPrice

if TYPE_CHECKING:
    from costplane.pricing.catalog import Catalog

__all__ = ["HistoryItem", "PriceDetail", "describe"]


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One price the model has had or will have; `active` marks the one in effect at `at`."""

    condition: str  # "always", "from 2026-03-13", "daily 00:30-16:30 UTC"
    sheet: PriceSheet | None
    source: str  # "genai-prices" | "override"
    active: bool
    notes: tuple[str, ...] = ()
    override_path: str | None = None  # e.g. pricing.overrides[2]


@dataclass(frozen=True, slots=True)
class PriceDetail:
    model: str  # as asked
    provider: str | None  # as asked
    matched_model: str  # genai-prices id, or the model name for a private model
    matched_provider: str | None
    name: str | None
    at: datetime
    sheet: PriceSheet | None  # in effect at `at`; None: the unknown-price rule applies
    source: str | None
    from_override: bool
    history: tuple[HistoryItem, ...]
    not_metered: tuple[NotMetered, ...]
    variants: tuple[str, ...]  # genai-prices request variants (batch, service tier), not applied
    notes: tuple[str, ...]
    data_version: str
    unknown_price: str  # the catalog's rule: deny | charge


def describe(catalog: Catalog, model: str, provider: str | None, at: datetime | None) -> PriceDetail:
    when = datetime.now(UTC) if at is None else (at if at.tzinfo is not None else at.replace(tzinfo=UTC))
    history = catalog.history(model, provider)
    if not history.known:
        raise UnknownPrice(model, provider)
    current = history.rule_at(when)
    overrides = sorted((r for r in history.rules if r.override is not None),
                       key=lambda r: (r.start is not None, r.start, r.override.index if r.override else 0))
    genai_rules = [r for r in reversed(history.rules) if r.override is None]
    items = tuple(_item(rule, rule is current) for rule in [*genai_rules, *overrides])
    info = history.info
    metered_rule = next((r for r in history.rules if r.override is None and r.active(when)), history.fallback)
    return PriceDetail(
        model=model, provider=provider, matched_model=history.model, matched_provider=history.provider,
        name=info.name if info is not None else None, at=when,
        sheet=current.sheet if current is not None else None,
        source=current.source if current is not None else None,
        from_override=current is not None and current.override is not None,
        history=items,
        not_metered=metered_rule.not_metered if metered_rule is not None else (),
        variants=genai.variant_labels(info) if info is not None else (),
        notes=current.notes if current is not None else (),
        data_version=catalog.data_version,
        unknown_price=catalog.config.unknown_price.action,
    )


def _item(rule: PriceRule, active: bool) -> HistoryItem:
    path = rule.override.path if rule.override is not None else None
    return HistoryItem(rule.condition, rule.sheet, rule.source, active, rule.notes, path)

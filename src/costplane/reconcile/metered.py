"""The ledger's side: metered spend per day × provider × model × project, over the periods a bill covers.

Read through `Store.spend_windows` (one statement per 50 windows, from the spend rollups where they
apply): one window per distinct covered period (a whole day of the report's zone for daily bills, the
merged hours of hourly ones), grouped by provider, model and project; a window's rows count only for
the providers whose bill covers it. Ledger provider names are mapped to the bill's provider keys (see
`normalize`), model names normalised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from costplane.config import ProviderConfig
from costplane.ledger.store import Store
from costplane.money import nano_to_decimal
from costplane.reconcile.clock import DayClock
from costplane.reconcile.normalize import canonical_provider, normalize_model
from costplane.reconcile.settings import NO_PROJECT, ReconcileSettings

__all__ = ["MeteredLine", "ledger_provider_map", "read_metered"]


@dataclass(frozen=True, slots=True)
class MeteredLine:
    day: date
    provider: str
    model: str
    project: str  # NO_PROJECT ("") for events without one
    cost: Decimal
    input_tokens: int
    output_tokens: int
    events: int


def ledger_provider_map(providers: Iterable[ProviderConfig], settings: ReconcileSettings) -> dict[str, str]:
    """Ledger provider name -> bill provider: `reconcile.providers` first, then the costplane.yaml provider
    of that name — its `company` when set, else its type (an openai-compatible one by its pricing provider)."""
    out: dict[str, str] = {}
    for provider in providers:
        billed = provider.type if provider.type != "openai-compatible" else (provider.pricing_provider or provider.name)
        out[provider.name] = provider.company or billed
    out.update(settings.providers)
    return out


def read_metered(store: Store, covered: Mapping[str, Mapping[date, Iterable[tuple[datetime, datetime]]]],
                 clock: DayClock, settings: ReconcileSettings, provider_map: Mapping[str, str]) -> list[MeteredLine]:
    """Metered lines of the covered periods: provider -> day -> [start, end) periods, each within its day."""
    owners: dict[tuple[datetime, datetime], tuple[date, set[str]]] = {}
    for provider, days in covered.items():
        for day, periods in days.items():
            for period in periods:
                owners.setdefault(period, (day, set()))[1].add(provider)
    windows = sorted(owners)
    if not windows:
        return []
    per_window = store.spend_windows(windows, group_by=("provider", "model", "project"))
    merged: dict[tuple[date, str, str, str], list[int]] = {}
    for window, rows in zip(windows, per_window, strict=True):
        day, providers = owners[window]
        for row in rows:
            raw_provider = str(row.group.get("provider") or "")
            provider = canonical_provider(provider_map.get(raw_provider, raw_provider))
            if provider not in providers:
                continue  # another provider's bill covers this period, not this one's
            model = normalize_model(str(row.group.get("model") or ""), settings.models)
            project = row.group.get("project") or NO_PROJECT
            sums = merged.setdefault((day, provider, model, project), [0, 0, 0, 0])
            sums[0] += row.cost_nano
            sums[1] += row.input_tokens
            sums[2] += row.output_tokens
            sums[3] += row.events
    return [MeteredLine(day, provider, model, project, nano_to_decimal(s[0]), s[1], s[2], s[3])
            for (day, provider, model, project), s in sorted(merged.items())]

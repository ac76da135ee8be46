"""A ledger with known metered spend, and the settings the hand-written bills need.

Days 2026-11-02 and 2026-11-03 (UTC). The bills in data/ match this ledger line for line except one
planted drift: Anthropic billed $4.375 for claude-sonnet-4-5 in the support workspace on 2026-11-03,
where costplane metered $4.00.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from costplane.attribution.context import Context
from costplane.config import ProviderConfig
from costplane.ledger import Store
from costplane.ledger.types import CostEvent
from costplane.pricing.types import TokenUsage
from costplane.reconcile.settings import ReconcileSettings

__all__ = ["DATA", "PROVIDERS", "SETTINGS", "seed"]

DATA = Path(__file__).parent / "data"
SETTINGS = ReconcileSettings(drift_threshold_pct=Decimal(5), drift_threshold_usd=Decimal("0.10"),
                             projects={"proj_search": "search", "wrkspc_01Support": "support", "default": ""})
#: the ledger names Anthropic "claude-prod" (its costplane.yaml provider); the type maps it to the bill
PROVIDERS = (ProviderConfig("openai", "openai", "https://api.openai.com/v1"),
             ProviderConfig("claude-prod", "anthropic", "https://api.anthropic.com"))

_EVENTS = [  # id, time, provider, model, project, USD, input, output, cache read, cache write
    ("e1", "2026-11-02T10:00:00", "openai", "gpt-4o", "search", "0.75", 1000, 200, 0, 0),
    ("e2", "2026-11-02T15:00:00", "openai", "gpt-4o-2024-08-06", "search", "0.50", 500, 100, 0, 0),
    ("e3", "2026-11-02T12:00:00", "openai", "gpt-4o-mini", None, "0.30", 3000, 500, 1024, 0),
    ("e4", "2026-11-03T09:00:00", "openai", "gpt-4o", "search", "2.00", 2000, 600, 0, 0),
    ("e5", "2026-11-02T08:00:00", "claude-prod", "claude-sonnet-4-5", "support", "3.00", 2000, 400, 500, 500),
    ("e6", "2026-11-03T23:30:00", "claude-prod", "claude-sonnet-4-5", "support", "4.00", 1000, 100, 0, 0),
    ("e7", "2026-11-03T11:00:00", "claude-prod", "claude-haiku-4-5", "support", "0.10", 800, 50, 0, 0),
    ("e8", "2026-11-05T11:00:00", "openai", "gpt-4o", "search", "9.99", 100, 10, 0, 0),  # no bill covers it
]


Row = tuple[str, str, str, str, str | None, str, int, int, int, int]


def seed(store: Store, extra: list[Row] | None = None) -> None:
    for eid, ts, provider, model, project, usd, inp, out, cread, cwrite in [*_EVENTS, *(extra or [])]:
        store.record_event(CostEvent(
            id=eid, ts=datetime.fromisoformat(ts).replace(tzinfo=UTC), context=Context(project=project),
            provider=provider, model=model, cost_nano=int(Decimal(usd) * 1_000_000_000),
            usage=TokenUsage(input_tokens=inp, output_tokens=out, cache_read_tokens=cread, cache_write_tokens=cwrite)))

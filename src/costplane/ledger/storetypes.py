"""Values and errors every store contract shares (re-exported by `ledger/store.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = ["CachedResponse", "SpendRow", "StoreError", "StoreUnavailable"]


class StoreError(RuntimeError):
    """A store operation failed for a reason the caller should report."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or is locked past its timeout (fail-closed territory)."""


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One group of a spend breakdown."""

    group: Mapping[str, str | None]  # dimension -> value (None = unset)
    bucket: datetime | None  # start of the time bucket, None when not bucketed
    cost_nano: int
    saved_nano: int
    events: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class CachedResponse:
    request_hash: str
    body: bytes
    content_type: str
    model: str
    provider: str
    cost_nano: int  # what the original call cost; a hit saves this much
    usage_json: str
    created_at: datetime
    expires_at: datetime

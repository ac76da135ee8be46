"""What a detector reports: evidence, the affected scope, the saving, and the YAML that acts on it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from costplane.config import Config
from costplane.money import format_usd
from costplane.pricing.catalog import Catalog

__all__ = ["MONTH_SECONDS", "DetectorInput", "Finding", "cel_string", "monthly", "policy_name"]

MONTH_SECONDS = 30 * 86400
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def monthly(observed_nano: int, window_seconds: int) -> int:
    """Scale a saving observed over `window_seconds` to 30 days (integer nano-USD, half-up)."""
    return (observed_nano * MONTH_SECONDS * 2 + window_seconds) // (2 * window_seconds)


def cel_string(value: str) -> str:
    """A CEL string literal (JSON escaping is valid CEL)."""
    return json.dumps(value)


def policy_name(*parts: str) -> str:
    """A valid bundle name (1-128 of letters, digits and ._-) built from `parts`."""
    return _NAME_CHARS.sub("-", "-".join(parts)).strip("-")[:128] or "recommendation"


@dataclass(frozen=True, slots=True)
class DetectorInput:
    """What every detector may use besides the history: prices and the gateway's configuration."""

    config: Config
    catalog: Catalog


@dataclass(frozen=True, slots=True)
class Finding:
    detector: str  # model_oversizing | cache_opportunity | …
    title: str
    scope: Mapping[str, str]  # the affected context: {"team": …, "agent": …}
    evidence: Mapping[str, Any]
    observed_saving_nano: int  # over the analysed window
    monthly_saving_nano: int  # scaled to 30 days
    document: str  # the Policy/Budget YAML that would act on it (validates with load_bundle)

    def to_json(self) -> dict[str, Any]:
        return {
            "detector": self.detector, "title": self.title, "scope": dict(self.scope),
            "evidence": dict(self.evidence),
            "observed_saving_nano": self.observed_saving_nano,
            "monthly_saving_nano": self.monthly_saving_nano,
            "monthly_saving_usd": format_usd(self.monthly_saving_nano),
            "document": self.document,
        }


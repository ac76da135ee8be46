"""The shipped per-provider SKU tables (``data/skus-<provider>.csv.gz``), read only when a SKU of that provider
is looked up, and the region rules: names normalised, the nearest priced region by geography.

A table is a gzipped CSV: three comment lines (``# source:``, ``# as_of:``, ``# default_region:``), a header
``type,gpu_type,gpu_count,vcpus,memory_gib,<region>…`` (GCP adds ``<region>:spot`` columns), then one row per
instance type with the exact USD-per-hour text of each region that prices it (empty: not priced there).
`costplane skus refresh --from DIR` (pricing/skubuild.py) writes them.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from difflib import SequenceMatcher
from importlib import resources

__all__ = ["CLOUD_PROVIDERS", "CloudTable", "load_table", "nearest_region", "normalise_region"]

CLOUD_PROVIDERS = ("aws", "azure", "gcp")


@dataclass(frozen=True, slots=True)
class CloudTable:
    """One provider's instance types × regions, as shipped."""

    provider: str
    source: str
    as_of: date
    default_region: str
    columns: dict[str, int]  # region column ("us-central1", "us-central1:spot") -> index in a row
    rows: dict[str, tuple[str, ...]]  # lower-cased type -> the row's fields

    def find(self, instance_type: str) -> tuple[str, ...] | None:
        return self.rows.get(instance_type.strip().lower())

    def price(self, row: Sequence[str], region: str, spot: bool = False) -> Decimal | None:
        index = self.columns.get(f"{region}:spot" if spot else region)
        if index is None or index >= len(row) or not row[index]:
            return None
        return Decimal(row[index])

    def priced_regions(self, row: Sequence[str], spot: bool = False) -> list[str]:
        """Regions with a price for this row (on-demand, or Spot when `spot`)."""
        out = []
        for column, index in self.columns.items():
            name, _, kind = column.partition(":")
            if (kind == "spot") == spot and index < len(row) and row[index]:
                out.append(name)
        return out

    def regions(self) -> list[str]:
        return sorted({c.split(":")[0] for c in self.columns})

    def types(self) -> list[str]:
        return sorted(row[0] for row in self.rows.values())


def _parse(provider: str, blob: bytes) -> CloudTable:
    text = gzip.decompress(blob).decode("utf-8")
    meta: dict[str, str] = {}
    lines = text.splitlines()
    start = 0
    while start < len(lines) and lines[start].startswith("#"):
        key, _, value = lines[start][1:].partition(":")
        meta[key.strip()] = value.strip()
        start += 1
    reader = csv.reader(lines[start:])
    header = next(reader)
    columns = {name: index for index, name in enumerate(header) if index >= 5}
    rows = {row[0].lower(): tuple(row) for row in reader if row}
    return CloudTable(provider, meta["source"], date.fromisoformat(meta["as_of"]), meta["default_region"],
                      columns, rows)


def load_table(provider: str) -> CloudTable | None:
    """The shipped table of `provider` (aws, azure, gcp); None for any other provider."""
    if provider not in CLOUD_PROVIDERS:
        return None
    name = f"data/skus-{provider}.csv.gz"
    try:
        blob = resources.files("costplane").joinpath(name).read_bytes()
    except FileNotFoundError:
        return None
    try:
        return _parse(provider, blob)
    except (KeyError, ValueError, StopIteration, OSError, csv.Error) as exc:  # a broken shipped file is a bug
        raise RuntimeError(f"costplane/{name}: {exc}") from exc


_AWS_ZONE = re.compile(r"^([a-z]{2}(?:-gov)?-[a-z]+-\d+)[a-z]$")
_GCP_ZONE = re.compile(r"^([a-z]+-[a-z]+\d+)-[a-z]$")


def normalise_region(provider: str, region: str | None) -> str:
    """A region name as the tables spell it: Azure display names (``West Europe``) to ``westeurope``,
    GCP zones (``us-central1-a``) and AWS availability zones (``us-east-1a``) to their region."""
    if not region:
        return ""
    name = region.strip().lower()
    if provider == "azure":
        return re.sub(r"[\s_-]+", "", name)
    if provider == "gcp":
        match = _GCP_ZONE.match(name)
        return match.group(1) if match else name
    if provider == "aws":
        match = _AWS_ZONE.match(name)
        return match.group(1) if match else name
    return name


def nearest_region(region: str, priced: Iterable[str], default: str) -> str | None:
    """The priced region nearest to `region` by geography, as the names say it: the longest shared run of
    characters (``europe-west10`` → ``europe-west1``, ``westeurope`` → ``northeurope``, ``eu-west-3`` →
    ``eu-west-1``), ties to the provider's default region, then alphabetically. None if nothing is priced."""
    candidates = sorted(set(priced))
    if not candidates:
        return None

    def score(candidate: str) -> tuple[int, int, str]:
        match = SequenceMatcher(None, region, candidate, autojunk=False).find_longest_match()
        return (-match.size, 0 if candidate == default else 1, candidate)

    return min(candidates, key=score)

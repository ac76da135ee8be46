"""Derive costplane's shipped SKU tables from public cloud price files (`costplane skus refresh --from DIR`).

Inputs (see docs/pricing.md, "Refreshing the SKU table"), all Apache-2.0 public data:

* ``aws_ec2_ondemand_linux_karpenter.csv`` — Region, InstanceType, OnDemandUSDPerHour;
* ``azure_vm_ondemand_linux_karpenter.csv`` — Region, ArmSkuName, OnDemandUSDPerHour;
* ``gcp_compute_instances_cyclenerd.csv`` — MachineType, Region, vCPUs, MemoryGB, AcceleratorType,
  AcceleratorCount, …, HourUSD, HourSpotUSD, ….

Outputs, written to ``src/costplane/data/`` (or any directory):

* ``skus-<provider>.csv.gz`` — one row per instance type, one column per priced region (GCP also
  ``<region>:spot``); comment lines give the source, the as-of date and the default region;
* ``skus.csv`` — one GPU's share of a GPU machine (``aws/gpu/H100`` = ``aws/p5.48xlarge`` / 8),
  derived from the default region's row.

Prices are copied as the exact decimal text of the source (trailing zeros dropped), never
through a float. GPU counts of AWS and Azure types come from the hardware table below (the
price files carry no hardware facts); GCP's come from the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

__all__ = ["PROVIDERS", "SOURCES", "BuildError", "BuildReport", "build_tables", "gpu_of"]


@dataclass(frozen=True, slots=True)
class _Source:
    file: str
    source: str
    as_of: str
    default_region: str


#: provider -> where its figures come from (the as-of date is the upstream file's own generation date)
SOURCES: Mapping[str, _Source] = {
    "aws": _Source("aws_ec2_ondemand_linux_karpenter.csv",
                   "AWS Price List API, EC2 on-demand Linux shared tenancy, via aws/karpenter-provider-aws "
                   "zz_generated.pricing_aws.go @6fc13b52 (Apache-2.0)", "2026-07-20", "us-east-1"),
    "azure": _Source("azure_vm_ondemand_linux_karpenter.csv",
                     "Azure Retail Prices API, Virtual Machines pay-as-you-go Linux, via "
                     "Azure/karpenter-provider-azure zz_generated.pricing.go @2b431da1 (Apache-2.0)", "2026-06-18",
                     "eastus"),
    "gcp": _Source("gcp_compute_instances_cyclenerd.csv",
                   "Google Cloud Billing Catalog, Compute Engine on-demand and Spot, via "
                   "Cyclenerd/google-cloud-pricing-cost-calculator pricing.yml @fd66b26f (Apache-2.0)", "2026-07-30",
                   "us-central1"),
}
PROVIDERS = tuple(SOURCES)

# AWS accelerator hardware: family -> (accelerator, {size: count}); "*" is every other size of the family.
_AWS_GPUS: Mapping[str, tuple[str, Mapping[str, int]]] = {
    "p6-b300": ("B300", {"*": 8}), "p6-b200": ("B200", {"*": 8}), "p5en": ("H200", {"*": 8}),
    "p5": ("H100", {"48xlarge": 8, "4xlarge": 1}), "p4de": ("A100-80GB", {"*": 8}), "p4d": ("A100-40GB", {"*": 8}),
    "p3dn": ("V100-32GB", {"*": 8}), "p3": ("V100", {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8}),
    "p2": ("K80", {"xlarge": 1, "8xlarge": 8, "16xlarge": 16}),
    "g6e": ("L40S", {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8, "*": 1}),
    "g6": ("L4", {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8, "*": 1}),
    "g5": ("A10G", {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8, "*": 1}),
    "g5g": ("T4G", {"16xlarge": 2, "metal": 2, "*": 1}),
    "g4dn": ("T4", {"12xlarge": 4, "metal": 8, "*": 1}), "g4ad": ("V520", {"16xlarge": 4, "*": 1}),
    "g3": ("M60", {"4xlarge": 1, "8xlarge": 2, "16xlarge": 4}), "g3s": ("M60", {"*": 1}),
    "g7e": ("RTX-PRO-6000", {"12xlarge": 2, "24xlarge": 4, "48xlarge": 8, "*": 1}),
    "trn2": ("Trainium2", {"*": 16}), "trn1n": ("Trainium", {"*": 16}),
    "trn1": ("Trainium", {"2xlarge": 1, "32xlarge": 16}),
    "inf2": ("Inferentia2", {"xlarge": 1, "8xlarge": 1, "24xlarge": 6, "48xlarge": 12}),
    "inf1": ("Inferentia", {"xlarge": 1, "2xlarge": 1, "6xlarge": 4, "24xlarge": 16}),
    "dl1": ("Gaudi", {"*": 8}),
}  # fmt: skip

# Azure N-series: (pattern on the size name, accelerator, count or None = max(1, vCPUs // divisor))
_AZURE_GPUS: tuple[tuple[str, str, int | None, int], ...] = (
    (r"Standard_NC(\d+)ads_A100_v4", "A100-80GB", None, 24),
    (r"Standard_ND96am(s|sr)_A100_v4", "A100-80GB", 8, 1),
    (r"Standard_ND96asr(_A100)?_v4", "A100-40GB", 8, 1),
    (r"Standard_ND96is\w*_H100_v5", "H100", 8, 1),
    (r"Standard_ND96isr_H200_v5", "H200", 8, 1),
    (r"Standard_ND96isr?_MI300X_v5", "MI300X", 8, 1),
    (r"Standard_ND128isrf?_NDR_GB200_v6", "GB200", 4, 1),
    (r"Standard_NCC?(\d+)ad(i)?s_H100_v5", "H100-NVL", None, 40),
    (r"Standard_NC(\d+)as_T4_v3", "T4", None, 16),
    (r"Standard_NC(\d+)r?s_v3", "V100", None, 6),
    (r"Standard_ND40r?s_v2", "V100-32GB", 8, 1),
    (r"Standard_NV(36|72)adm?s_A10_v5", "A10", None, 36),
    (r"Standard_NV(\d+)s_v3", "M60", None, 12),
)

_GCP_GPUS = {"a100": "A100-40GB", "a100-80gb": "A100-80GB", "h100-80gb": "H100", "h100-80gb-mega": "H100-MEGA",
             "l4": "L4", "rtx6000": "RTX-PRO-6000"}

#: GPU share rows of skus.csv: (provider, accelerator, machine type it is derived from)
_GPU_SHARES: tuple[tuple[str, str, str], ...] = (
    ("aws", "B300", "p6-b300.48xlarge"), ("aws", "B200", "p6-b200.48xlarge"), ("aws", "H200", "p5en.48xlarge"),
    ("aws", "H100", "p5.48xlarge"), ("aws", "A100-80GB", "p4de.24xlarge"), ("aws", "A100-40GB", "p4d.24xlarge"),
    ("aws", "L40S", "g6e.xlarge"), ("aws", "L4", "g6.xlarge"), ("aws", "A10G", "g5.xlarge"),
    ("aws", "T4", "g4dn.xlarge"), ("aws", "V100", "p3.2xlarge"), ("aws", "Trainium", "trn1.2xlarge"),
    ("aws", "Inferentia2", "inf2.xlarge"),
    ("gcp", "H100-MEGA", "a3-megagpu-8g"), ("gcp", "H100", "a3-highgpu-8g"), ("gcp", "A100-80GB", "a2-ultragpu-1g"),
    ("gcp", "A100-40GB", "a2-highgpu-1g"), ("gcp", "L4", "g2-standard-4"),
    ("azure", "H200", "Standard_ND96isr_H200_v5"), ("azure", "H100", "Standard_ND96isr_H100_v5"),
    ("azure", "A100-80GB", "Standard_NC24ads_A100_v4"), ("azure", "A100-40GB", "Standard_ND96asr_v4"),
    ("azure", "A10", "Standard_NV36ads_A10_v5"), ("azure", "T4", "Standard_NC4as_T4_v3"),
    ("azure", "V100", "Standard_NC6s_v3"), ("azure", "MI300X", "Standard_ND96isr_MI300X_v5"),
)  # fmt: skip


class BuildError(ValueError):
    """A source file is missing or malformed; the message names the file and line."""


@dataclass(slots=True)
class _Row:
    gpu_type: str = ""
    gpu_count: int = 0
    vcpus: str = ""
    memory_gib: str = ""
    prices: dict[str, str] = field(default_factory=dict)  # region column -> exact USD/hour text


@dataclass(frozen=True, slots=True)
class BuildReport:
    written: tuple[tuple[str, int], ...]  # (file name, bytes)
    types: Mapping[str, int]  # provider -> instance types
    regions: Mapping[str, int]  # provider -> priced regions
    prices: Mapping[str, int]  # provider -> priced (type, region) cells


def gpu_of(provider: str, instance_type: str, vcpus: int | None = None) -> tuple[str, int]:
    """(accelerator, count) of an AWS or Azure instance type from the hardware table; ("", 0) if none."""
    if provider == "aws":
        family, _, size = instance_type.partition(".")
        spec = _AWS_GPUS.get(family)
        if spec is None:
            return "", 0
        per_size = spec[1].get(size, spec[1].get("*", 0))
        return (spec[0], per_size) if per_size else ("", 0)
    if provider == "azure":
        for pattern, gpu, fixed, divisor in _AZURE_GPUS:
            if re.fullmatch(pattern, instance_type) is None:
                continue
            if fixed is not None:
                return gpu, fixed
            digits = re.search(r"\d+", instance_type[len("Standard_"):])
            return (gpu, max(1, int(digits.group()) // divisor)) if digits else ("", 0)
    return "", 0


def _price(text: str, where: str) -> str:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise BuildError(f"{where}: not a decimal price: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise BuildError(f"{where}: not a non-negative price: {text!r}")
    return format(value.normalize(), "f") if value else "0"


def _read(path: Path, columns: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in columns if c not in (reader.fieldnames or ())]
    if missing:
        raise BuildError(f"{path}:1: missing column(s) {', '.join(missing)}")
    return list(enumerate(reader, start=2))


def _rows(provider: str, path: Path) -> dict[str, _Row]:
    out: dict[str, _Row] = {}
    if provider == "gcp":
        for line, rec in _read(path, ("MachineType", "Region", "vCPUs", "MemoryGB", "AcceleratorType",
                                      "AcceleratorCount", "HourUSD", "HourSpotUSD")):
            where = f"{path}:{line}"
            row = out.setdefault(rec["MachineType"].strip(), _Row())
            vcpus = rec["vCPUs"].strip()
            row.vcpus = vcpus if vcpus.isdigit() else row.vcpus
            row.memory_gib = _price(rec["MemoryGB"], where) if rec["MemoryGB"].strip() else row.memory_gib
            accel = rec["AcceleratorType"].strip()
            count = rec["AcceleratorCount"].strip()
            if accel and count.isdigit() and int(count) > 0:  # fractional shares (g4 slices) carry no count
                row.gpu_type = _GCP_GPUS.get(accel, accel.upper())
                row.gpu_count = int(count)
            region = rec["Region"].strip()
            if rec["HourUSD"].strip():
                row.prices[region] = _price(rec["HourUSD"], where)
            if rec["HourSpotUSD"].strip():
                row.prices[f"{region}:spot"] = _price(rec["HourSpotUSD"], where)
        return out
    name = "InstanceType" if provider == "aws" else "ArmSkuName"
    for line, rec in _read(path, ("Region", name, "OnDemandUSDPerHour")):
        sku = rec[name].strip()
        if not sku or sku.startswith("ARM_SKU_NAME"):
            continue
        row = out.setdefault(sku, _Row())
        row.prices[rec["Region"].strip()] = _price(rec["OnDemandUSDPerHour"], f"{path}:{line}")
    for sku, row in out.items():
        row.gpu_type, row.gpu_count = gpu_of(provider, sku)
    return out


def _table(provider: str, rows: Mapping[str, _Row], src: _Source) -> tuple[bytes, int, int]:
    columns = sorted({c for r in rows.values() for c in r.prices},
                     key=lambda c: (c.split(":")[0] != src.default_region, c))
    buf = io.StringIO()
    buf.write(f"# source: {src.source}\n# as_of: {src.as_of}\n# default_region: {src.default_region}\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["type", "gpu_type", "gpu_count", "vcpus", "memory_gib", *columns])
    cells = 0
    for sku in sorted(rows):
        row = rows[sku]
        cells += len(row.prices)
        writer.writerow([sku, row.gpu_type, row.gpu_count or "", row.vcpus, row.memory_gib,
                         *(row.prices.get(c, "") for c in columns)])
    regions = len({c.split(":")[0] for c in columns})
    return gzip.compress(buf.getvalue().encode("utf-8"), compresslevel=9, mtime=0), regions, cells


def _shares(tables: Mapping[str, Mapping[str, _Row]], sources: Mapping[str, _Source]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["sku", "provider", "hourly_usd", "gpu_type", "gpu_count", "vcpus", "memory_gib", "source",
                     "as_of"])
    for provider, gpu, machine in _GPU_SHARES:
        row = tables.get(provider, {}).get(machine)
        src = sources[provider]
        price = row.prices.get(src.default_region) if row is not None else None
        if row is None or price is None or row.gpu_count <= 0:
            continue
        share = Decimal(price) / row.gpu_count
        per = f" / {row.gpu_count}" if row.gpu_count > 1 else ""
        writer.writerow([f"{provider}/gpu/{gpu}", provider, format(share.normalize(), "f"), gpu, 1, "", "",
                         f"derived: {provider}/{machine}{per}", src.as_of])
    return buf.getvalue()


def build_tables(source_dir: Path, out_dir: Path, as_of: Mapping[str, str] | None = None) -> BuildReport:
    """Read the public price files in `source_dir` and write the shipped tables into `out_dir`; `as_of` gives a
    provider's data date when the files are newer than the ones described in SOURCES (YYYY-MM-DD)."""
    sources = dict(SOURCES)
    for provider, when in (as_of or {}).items():
        if provider not in sources or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", when):
            raise BuildError(f"as_of: expected aws|azure|gcp=YYYY-MM-DD, got {provider}={when}")
        sources[provider] = replace(sources[provider], as_of=when)
    tables = {p: _rows(p, source_dir / s.file) for p, s in sources.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, int]] = []
    regions: dict[str, int] = {}
    cells: dict[str, int] = {}
    for provider, rows in tables.items():
        data, regions[provider], cells[provider] = _table(provider, rows, sources[provider])
        name = f"skus-{provider}.csv.gz"
        (out_dir / name).write_bytes(data)
        written.append((name, len(data)))
    shares = _shares(tables, sources).encode("utf-8")
    (out_dir / "skus.csv").write_bytes(shares)
    written.append(("skus.csv", len(shares)))
    return BuildReport(tuple(written), {p: len(r) for p, r in tables.items()}, regions, cells)

"""Price planned VM resources from the SKU table: hourly and monthly (hourly × 730), exact nano-USD.

* `aws_instance`: `aws/<instance_type>`;
* `google_compute_instance`: `gcp/<machine_type>`, plus `gcp/gpu/<TYPE>` × count for each
  `guest_accelerator` — unless the machine type already includes its GPUs (A2/A3/G2);
* `azurerm_linux_virtual_machine`: `azure/<size>`.

A type with no known price is reported as such (`unknown`), never priced $0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from costplane.iac.plan import PlannedResource
from costplane.pricing.skus import SkuCatalog, UnknownSku

__all__ = ["HOURS_PER_MONTH", "PRICED_TYPES", "PricedResource", "gcp_gpu_type", "price_resource"]

HOURS_PER_MONTH = 730

#: terraform resource type -> (provider prefix in the SKU table, attribute holding the machine type, tags attribute)
PRICED_TYPES: Mapping[str, tuple[str, str, str]] = {
    "aws_instance": ("aws", "instance_type", "tags"),
    "google_compute_instance": ("gcp", "machine_type", "labels"),
    "azurerm_linux_virtual_machine": ("azure", "size", "tags"),
}

_GCP_GPUS = {
    "nvidia-tesla-t4": "T4", "nvidia-tesla-v100": "V100", "nvidia-tesla-p4": "P4", "nvidia-tesla-a100": "A100-40GB",
    "nvidia-a100-80gb": "A100-80GB", "nvidia-l4": "L4", "nvidia-h100-80gb": "H100",
}  # fmt: skip


def gcp_gpu_type(accelerator: str) -> str:
    """The SKU table's GPU type of a GCP accelerator type (a name or an acceleratorTypes/… URL)."""
    name = accelerator.rsplit("/", 1)[-1].lower()
    return _GCP_GPUS.get(name, name)


@dataclass(frozen=True, slots=True)
class PricedResource:
    resource: PlannedResource
    provider: str  # aws | gcp | azure
    instance_type: str
    skus: tuple[str, ...]
    gpu_type: str
    gpu_count: int
    hourly_nano: int
    tags: Mapping[str, str]
    unknown: str | None = None  # why no price is known (then hourly_nano is 0 and must not be trusted)

    @property
    def monthly_nano(self) -> int:
        return self.hourly_nano * HOURS_PER_MONTH


def _tags(values: Mapping[str, Any], attribute: str) -> dict[str, str]:
    raw = values.get(attribute) or values.get(f"{attribute}_all") or {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def price_resource(resource: PlannedResource, catalog: SkuCatalog, at: datetime | None = None) -> PricedResource | None:
    """The price of one planned resource; None when its type is not a priced VM type."""
    kind = PRICED_TYPES.get(resource.type)
    if kind is None:
        return None
    provider, attribute, tags_attribute = kind
    values = resource.values
    tags = _tags(values, tags_attribute)
    machine = values.get(attribute)
    if not isinstance(machine, str) or not machine:
        why = "known only after apply" if attribute in resource.unknown else "missing"
        return PricedResource(resource, provider, "", (), "", 0, 0, tags,
                              unknown=f"{attribute} is {why}: cannot price {resource.address}")
    sku = f"{provider}/{machine.rsplit('/', 1)[-1]}"
    skus = [sku]
    try:
        price = catalog.lookup(sku, at)
    except UnknownSku as exc:
        return PricedResource(resource, provider, machine, (sku,), "", 0, 0, tags, unknown=str(exc))
    hourly = price.hourly_nano()
    gpu_type, gpu_count = price.gpu_type or "", price.gpu_count
    if provider == "gcp":
        accelerators = values.get("guest_accelerator") or []
        for accelerator in accelerators if isinstance(accelerators, list) else []:
            if not isinstance(accelerator, Mapping):
                continue
            count = int(accelerator.get("count") or 0)
            kind_name = gcp_gpu_type(str(accelerator.get("type") or ""))
            if count <= 0 or price.gpu_count:  # A2/A3/G2 machine types include their GPUs
                continue
            gpu_sku = f"gcp/gpu/{kind_name}"
            skus.append(gpu_sku)
            try:
                hourly += catalog.lookup(gpu_sku, at).hourly_nano(count)
            except UnknownSku as exc:
                return PricedResource(resource, provider, machine, tuple(skus), kind_name, count, 0, tags,
                                      unknown=str(exc))
            gpu_type, gpu_count = kind_name, gpu_count + count
    return PricedResource(resource, provider, machine, tuple(skus), gpu_type, gpu_count, hourly, tags)

"""Price the compute a terraform plan creates: machine type × node count, in the resource's region, exact nano-USD.

What each resource type creates is read by iac/shapes.py (instances, auto-scaling and managed instance groups,
EKS/GKE/AKS node pools, VM scale sets). A group's machine type comes from the template it uses (launch
template or configuration, instance template), found through the configuration's references, then by name,
then as the plan's only template of that kind. The region is the resource's own (zone, location), else that of
a resource it references (a node pool's cluster), else its provider configuration's, else `default_regions`
(``--region``), else the provider's default region — flagged estimated and said so in a note.

Hourly figures are for the desired node count; `max_hourly_nano` for the maximum. Monthly = hourly × 730 (as
Infracost). GCP guest accelerators attached to a machine without bundled GPUs add ``gcp/gpu/<TYPE>`` × count.
Anything that creates compute and cannot be priced carries `unknown` (the reason) — never $0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from costplane.iac.plan import PlannedResource
from costplane.iac.refs import config_address
from costplane.iac.shapes import COMPUTE_TYPES, MIG_UNSIZED, TEMPLATE_TYPES, UNPRICED_COMPUTE, Shape, shapes_of
from costplane.pricing.skus import SkuCatalog, UnknownSku

__all__ = ["HOURS_PER_MONTH", "PRICED_TYPES", "PlanPricing", "PricedResource", "gcp_gpu_type", "price_plan",
           "price_resource"]

HOURS_PER_MONTH = 730

#: every resource type the gate prices (or reports as unpriceable compute)
PRICED_TYPES = frozenset(COMPUTE_TYPES) | UNPRICED_COMPUTE

_GCP_GPUS = {
    "nvidia-tesla-t4": "T4", "nvidia-tesla-v100": "V100", "nvidia-tesla-p4": "P4", "nvidia-tesla-p100": "P100",
    "nvidia-tesla-a100": "A100-40GB", "nvidia-a100-80gb": "A100-80GB", "nvidia-l4": "L4", "nvidia-h100-80gb": "H100",
    "nvidia-h100-mega-80gb": "H100-MEGA", "nvidia-h200-141gb": "H200", "nvidia-b200": "B200",
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
    gpu_count: int  # GPUs across the desired nodes
    hourly_nano: int  # desired nodes
    tags: Mapping[str, str]
    unknown: str | None = None  # why no price is known (then the figures are 0 and must not be trusted)
    region: str = ""
    node_count: int = 1
    min_nodes: int = 1
    max_nodes: int = 1
    max_hourly_nano: int = 0
    estimated: bool = False
    spot: bool = False
    notes: tuple[str, ...] = ()

    @property
    def monthly_nano(self) -> int:
        return self.hourly_nano * HOURS_PER_MONTH

    @property
    def max_monthly_nano(self) -> int:
        return self.max_hourly_nano * HOURS_PER_MONTH


@dataclass(frozen=True, slots=True)
class PlanPricing:
    priced: tuple[PricedResource, ...]
    skipped: tuple[str, ...]  # addresses of resources that create no compute
    templates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # template -> groups priced with it


class _Plan:
    def __init__(self, resources: Sequence[PlannedResource]) -> None:
        self.by_address = {config_address(r.address): r for r in resources}
        self.by_type: dict[str, list[PlannedResource]] = {}
        for r in resources:
            self.by_type.setdefault(r.type, []).append(r)
        self.used: dict[str, list[str]] = {}

    def template(self, resource: PlannedResource, shape: Shape) -> tuple[PlannedResource | None, str]:
        candidates = [t for kind in shape.template_types for t in self.by_type.get(kind, [])]
        kinds = " or ".join(shape.template_types)
        chosen = [t for t in candidates if config_address(t.address) in resource.references]
        how = "referenced"
        if not chosen and shape.template_name:
            chosen = [t for t in candidates if shape.template_name in (str(t.values.get("name") or ""),
                                                                       str(t.values.get("id") or ""))]
            how = "by name"
        if not chosen and len(candidates) == 1:
            chosen, how = candidates, f"the plan's only {candidates[0].type}"
        if len(chosen) != 1:
            why = "several match" if chosen else "none is in this plan (defined elsewhere or known only after apply)"
            return None, f"cannot tell which {kinds} {resource.address} uses: {why}"
        self.used.setdefault(chosen[0].address, []).append(resource.address)
        return chosen[0], how

    def autoscaled(self, resource: PlannedResource, shape: Shape) -> Shape:
        """A managed instance group without target_size, sized by the autoscaler that targets it."""
        target = config_address(resource.address)
        for kind in ("google_compute_autoscaler", "google_compute_region_autoscaler"):
            for scaler in self.by_type.get(kind, []):
                points = target in scaler.references or _str_name(scaler.values.get("target")) == str(
                    resource.values.get("name") or "\0")
                policy = scaler.values.get("autoscaling_policy")
                first = policy[0] if isinstance(policy, list) and policy and isinstance(policy[0], Mapping) else {}
                lo, hi = first.get("min_replicas"), first.get("max_replicas")
                if points and isinstance(lo, int) and isinstance(hi, int):
                    notes = tuple(n for n in shape.notes if n != MIG_UNSIZED)
                    return replace(shape, desired=lo, minimum=lo, maximum=hi,
                                   notes=(*notes, f"sized by {scaler.address} (min_replicas..max_replicas)"))
        return shape

    def referenced_region(self, resource: PlannedResource, provider: str) -> str:
        for ref in sorted(resource.references):
            other = self.by_address.get(ref)
            if other is None:
                continue
            for key in ("location", "region", "zone"):
                value = other.values.get(key)
                if isinstance(value, str) and value:
                    return value
        return ""


def _str_name(value: object) -> str:
    return value.rsplit("/", 1)[-1] if isinstance(value, str) else ""


def _resolve(resource: PlannedResource, shape: Shape, plan: _Plan) -> Shape:
    if MIG_UNSIZED in shape.notes:
        shape = plan.autoscaled(resource, shape)
    if not shape.template_types or shape.machine or shape.unknown:
        return shape
    template, how = plan.template(resource, shape)
    if template is None:
        return replace(shape, unknown=how)
    [base] = TEMPLATE_TYPES[template.type](template.values)
    if not base.machine:
        why = "known only after apply" if "instance_type" in template.unknown or "machine_type" in template.unknown \
            else "missing"
        return replace(shape, unknown=f"the machine type of {template.address} is {why}")
    return replace(shape, machine=base.machine, region=shape.region or base.region, spot=shape.spot or base.spot,
                   accelerators=shape.accelerators or base.accelerators, tags={**base.tags, **shape.tags},
                   notes=(*shape.notes, f"machine type from {template.address} ({how})"))


def _price_shape(resource: PlannedResource, shape: Shape, plan: _Plan, catalog: SkuCatalog, at: datetime | None,
                 default_regions: Mapping[str, str]) -> tuple[Shape, int, list[str], str, int, str, bool, str | None]:
    """(shape, hourly per node, skus, gpu type, gpus per node, region, estimated, unknown reason)."""
    shape = _resolve(resource, shape, plan)
    if shape.unknown:
        return shape, 0, [], "", 0, shape.region, False, shape.unknown
    if not shape.machine:
        why = "known only after apply" if shape.machine_attribute in resource.unknown else "missing"
        return shape, 0, [], "", 0, shape.region, False, f"{shape.machine_attribute} is {why}: cannot price it"
    region = shape.region or plan.referenced_region(resource, shape.provider) or resource.region
    estimated = False
    notes = list(shape.notes)
    if not region:
        region = default_regions.get(shape.provider, "")
        if not region:
            table = catalog.table(shape.provider)
            region = table.default_region if table is not None else ""
            estimated = True
            notes.append(f"the plan does not say the region: priced in {region} (pass --region to choose)")
    shape = replace(shape, notes=tuple(notes))
    sku = f"azure/windows/{shape.machine}" if shape.windows else f"{shape.provider}/{shape.machine}"
    try:
        price = catalog.lookup(sku, at, region=region, spot=shape.spot)
    except UnknownSku as exc:
        reason = str(exc)
        if shape.windows:
            reason = (f"Windows VM {shape.machine}: the Azure price data is Linux pay-as-you-go only; declare "
                      f"{sku} (or {sku}@<region>) under pricing.skus in costplane.yaml")
        return shape, 0, [sku], "", 0, region, estimated, reason
    hourly, skus = price.hourly_nano(), [sku]
    gpu_type, gpus = price.gpu_type or "", price.gpu_count
    for accelerator, count in shape.accelerators if not price.gpu_count else ():  # A2/A3/G2 bundle their GPUs
        kind = gcp_gpu_type(accelerator)
        gpu_sku = f"gcp/gpu/{kind}"
        skus.append(gpu_sku)
        try:
            hourly += catalog.lookup(gpu_sku, at, region=region).hourly_nano(count)
        except UnknownSku as exc:
            return shape, 0, skus, kind, count, price.region or region, estimated, (
                f"{exc} (GPUs attached to N1 machines are not in the public price data)")
        gpu_type, gpus = kind, gpus + count
    return shape, hourly, skus, gpu_type, gpus, price.region or region, estimated or price.estimated, None


def price_resource(resource: PlannedResource, catalog: SkuCatalog, at: datetime | None = None,
                   plan: Sequence[PlannedResource] = (),
                   default_regions: Mapping[str, str] | None = None) -> PricedResource | None:
    """The price of one planned resource (`plan`: the whole plan, for templates and referenced clusters); None
    when its type creates no compute."""
    shapes = shapes_of(resource.type, resource.values)
    if not shapes:
        return None
    return _combine(resource, shapes, _Plan(plan or [resource]), catalog, at, default_regions or {})


def _combine(resource: PlannedResource, shapes: Sequence[Shape], plan: _Plan, catalog: SkuCatalog,
             at: datetime | None, default_regions: Mapping[str, str]) -> PricedResource:
    provider = shapes[0].provider
    hourly = max_hourly = gpus = nodes = lo = hi = 0
    skus: list[str] = []
    machines: list[str] = []
    gpu_type, region, unknown = "", "", None
    estimated = spot = False
    notes: list[str] = []
    tags: dict[str, str] = {}
    for raw in shapes:
        shape, per_node, shape_skus, kind, per_gpus, where, guessed, why = _price_shape(
            resource, raw, plan, catalog, at, default_regions)
        label = f"{shape.label}: " if shape.label else ""
        tags.update(shape.tags)
        skus += [s for s in shape_skus if s not in skus]
        machines.append(shape.machine)
        region = region or where
        notes += [label + n for n in shape.notes]
        if why is not None and unknown is None:
            unknown = label + why
        hourly += per_node * shape.desired
        max_hourly += per_node * shape.maximum
        gpus += per_gpus * shape.desired
        gpu_type = gpu_type or kind
        nodes, lo, hi = nodes + shape.desired, lo + shape.minimum, hi + shape.maximum
        estimated, spot = estimated or guessed, spot or shape.spot
    if unknown is not None:
        hourly = max_hourly = 0
    return PricedResource(resource, provider, ", ".join(dict.fromkeys(m for m in machines if m)), tuple(skus),
                          gpu_type, gpus, hourly, tags, unknown, region, nodes, lo, hi, max_hourly, estimated, spot,
                          tuple(notes))


def price_plan(resources: Sequence[PlannedResource], catalog: SkuCatalog, at: datetime | None = None,
               default_regions: Mapping[str, str] | None = None) -> PlanPricing:
    """Price every compute resource of a plan; templates are priced through the groups that use them."""
    plan = _Plan(resources)
    priced: list[PricedResource] = []
    skipped: list[str] = []
    for resource in resources:
        shapes = shapes_of(resource.type, resource.values)
        if not shapes:  # creates no compute (or none that lasts: a GKE cluster without its default pool)
            skipped.append(resource.address)
            continue
        priced.append(_combine(resource, shapes, plan, catalog, at, default_regions or {}))
    templates = {address: tuple(users) for address, users in plan.used.items()}
    return PlanPricing(tuple(priced), tuple(a for a in skipped if a not in templates), templates)

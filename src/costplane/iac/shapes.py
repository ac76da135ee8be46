"""What compute a planned resource creates: machine type, node counts (min/desired/max), region, Spot, OS and
attached accelerators — read from its planned values, one `Shape` per group of identical machines.

Templates (launch templates, launch configurations, instance templates) create nothing by themselves; the
groups that use them are priced with the template's machine type (`TEMPLATE_TYPES`, resolved in iac/price.py).
Resource types that create compute but that costplane cannot price are in `UNPRICED_COMPUTE`: they are reported
as unknown prices, never left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["COMPUTE_TYPES", "MIG_UNSIZED", "TEMPLATE_TYPES", "UNPRICED_COMPUTE", "Shape", "shapes_of"]

MIG_UNSIZED = "target_size not set and no autoscaler in the plan: 1 instance shown"


@dataclass(frozen=True, slots=True)
class Shape:
    provider: str  # aws | gcp | azure
    machine: str  # instance type / machine type / VM size ("" when the plan does not say)
    machine_attribute: str  # where it is read from, for messages
    region: str = ""
    desired: int = 1
    minimum: int = 1
    maximum: int = 1
    spot: bool = False
    windows: bool = False
    accelerators: tuple[tuple[str, int], ...] = ()  # (GCP accelerator type, count per machine)
    template_types: tuple[str, ...] = ()  # resolve the machine type from a referenced template of these types
    template_name: str = ""  # the template's name or id as the group's values give it, when known
    label: str = ""  # which pool of a resource with several ("default_node_pool", "node_pool[1]")
    notes: tuple[str, ...] = ()
    unknown: str | None = None  # why this compute cannot be priced
    tags: Mapping[str, str] = field(default_factory=dict)


def _first(values: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    block = values.get(key)
    if isinstance(block, list) and block and isinstance(block[0], Mapping):
        return block[0]
    return block if isinstance(block, Mapping) else {}


def _int(value: Any, default: int | None = None) -> int | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return default


def _str(value: Any) -> str:
    return value.rsplit("/", 1)[-1] if isinstance(value, str) else ""


def _tags(values: Mapping[str, Any], *keys: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in keys:
        raw = values.get(key)
        if isinstance(raw, Mapping):
            out.update({str(k): str(v) for k, v in raw.items()})
        elif isinstance(raw, list):  # aws_autoscaling_group `tag` blocks
            out.update({str(t["key"]): str(t.get("value", "")) for t in raw if isinstance(t, Mapping) and "key" in t})
    return out


def _counts(desired: int | None, minimum: int | None, maximum: int | None) -> tuple[int, int, int]:
    d = desired if desired is not None else (minimum if minimum is not None else 1)
    lo = minimum if minimum is not None else d
    hi = maximum if maximum is not None else max(d, lo)
    return d, lo, hi


# --- AWS -------------------------------------------------------------------------------------------------------------

_LT = ("aws_launch_template",)


def _aws_instance(v: Mapping[str, Any]) -> list[Shape]:
    market = _first(v, "instance_market_options").get("market_type")
    template = _first(v, "launch_template")
    return [Shape("aws", _str(v.get("instance_type")), "instance_type", str(v.get("availability_zone") or ""),
                  spot=market == "spot", template_types=_LT if template else (),
                  template_name=str(template.get("name") or template.get("id") or ""), tags=_tags(v, "tags"))]


def _aws_template(v: Mapping[str, Any]) -> list[Shape]:
    market = _first(v, "instance_market_options").get("market_type")
    return [Shape("aws", _str(v.get("instance_type")), "instance_type", spot=market == "spot" or bool(
        v.get("spot_price")), tags=_tags(v, "tags"))]


def _aws_asg(v: Mapping[str, Any]) -> list[Shape]:
    d, lo, hi = _counts(_int(v.get("desired_capacity")), _int(v.get("min_size")), _int(v.get("max_size")))
    lt = _first(v, "launch_template")
    mixed = _first(_first(v, "mixed_instances_policy"), "launch_template")
    notes: tuple[str, ...] = ()
    machine = ""
    if mixed:
        lt = _first(mixed, "launch_template_specification")
        overrides = [o for o in mixed.get("override") or [] if isinstance(o, Mapping) and o.get("instance_type")]
        if overrides:
            machine = str(overrides[0]["instance_type"])
            notes = (f"mixed instances: priced as the first override, {machine}",)
    if lt:
        types: tuple[str, ...] = _LT
        name = str(lt.get("name") or lt.get("id") or "")
    else:
        types, name = ("aws_launch_configuration",), str(v.get("launch_configuration") or "")
    return [Shape("aws", machine, "launch template instance_type", desired=d, minimum=lo, maximum=hi,
                  template_types=() if machine else types, template_name=name, notes=notes,
                  tags=_tags(v, "tag", "tags"))]


def _aws_eks(v: Mapping[str, Any]) -> list[Shape]:
    scaling = _first(v, "scaling_config")
    d, lo, hi = _counts(_int(scaling.get("desired_size")), _int(scaling.get("min_size")),
                        _int(scaling.get("max_size")))
    types = v.get("instance_types")
    lt = _first(v, "launch_template")
    machine = str(types[0]) if isinstance(types, list) and types else ""
    notes: tuple[str, ...] = ()
    if not machine and not lt:
        machine, notes = "t3.medium", ("instance_types not set: EKS's default t3.medium",)
    return [Shape("aws", machine, "instance_types", desired=d, minimum=lo, maximum=hi,
                  spot=str(v.get("capacity_type") or "").upper() == "SPOT",
                  template_types=_LT if lt and not machine else (),
                  template_name=str(lt.get("name") or lt.get("id") or ""), notes=notes, tags=_tags(v, "tags"))]


# --- GCP -------------------------------------------------------------------------------------------------------------

_GCP_TEMPLATES = ("google_compute_instance_template", "google_compute_region_instance_template")


def _accelerators(v: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    out = []
    for item in v.get("guest_accelerator") or []:
        if isinstance(item, Mapping) and (_int(item.get("count"), 0) or 0) > 0:
            out.append((_str(item.get("type")), _int(item.get("count"), 0) or 0))
    return tuple(out)


def _gcp_spot(v: Mapping[str, Any]) -> bool:
    sched = _first(v, "scheduling")
    return bool(sched.get("preemptible")) or str(sched.get("provisioning_model") or "").upper() == "SPOT" or bool(
        v.get("spot")) or bool(v.get("preemptible"))


def _gcp_instance(v: Mapping[str, Any]) -> list[Shape]:
    return [Shape("gcp", _str(v.get("machine_type")), "machine_type", str(v.get("zone") or ""),
                  spot=_gcp_spot(v), accelerators=_accelerators(v), tags=_tags(v, "labels"))]


def _gcp_template(v: Mapping[str, Any]) -> list[Shape]:
    return [Shape("gcp", _str(v.get("machine_type")), "machine_type", str(v.get("region") or ""),
                  spot=_gcp_spot(v), accelerators=_accelerators(v), tags=_tags(v, "labels"))]


def _gcp_from_template(v: Mapping[str, Any]) -> list[Shape]:
    machine = _str(v.get("machine_type"))
    return [Shape("gcp", machine, "machine_type", str(v.get("zone") or ""), spot=_gcp_spot(v),
                  accelerators=_accelerators(v), template_types=() if machine else _GCP_TEMPLATES,
                  template_name=_str(v.get("source_instance_template")), tags=_tags(v, "labels"))]


def _gcp_mig(v: Mapping[str, Any]) -> list[Shape]:
    size = _int(v.get("target_size"))
    version = _first(v, "version")
    d, lo, hi = _counts(size, size, size)
    notes = () if size is not None else (MIG_UNSIZED,)
    return [Shape("gcp", "", "instance template machine_type", str(v.get("zone") or v.get("region") or ""),
                  desired=d, minimum=lo, maximum=hi, template_types=_GCP_TEMPLATES,
                  template_name=_str(version.get("instance_template") or v.get("instance_template")), notes=notes)]


def _gke_pool(pool: Mapping[str, Any], location: str, zones: int, label: str, default_count: int) -> Shape:
    config = _first(pool, "node_config")
    machine = _str(config.get("machine_type"))
    notes: list[str] = []
    if not machine:
        machine = "e2-medium"
        notes.append("node_config.machine_type not set: GKE's default e2-medium")
    locations = pool.get("node_locations")
    if isinstance(locations, list) and locations:
        zones = len(locations)
        location = location or str(locations[0])
    auto = _first(pool, "autoscaling")
    per_zone = _int(pool.get("node_count"), _int(pool.get("initial_node_count"), default_count))
    total_min, total_max = _int(auto.get("total_min_node_count")), _int(auto.get("total_max_node_count"))
    per_min, per_max = (_int(auto.get(k), 0) or 0 for k in ("min_node_count", "max_node_count"))
    lo = total_min if total_min is not None else (per_min * zones if auto else None)
    hi = total_max if total_max is not None else (per_max * zones if auto else None)
    d, lo2, hi2 = _counts((per_zone or 0) * zones, lo, hi)
    if zones > 1:
        notes.append(f"{per_zone} node(s) per zone × {zones} zones")
    return Shape("gcp", machine, "node_config.machine_type", location, desired=d, minimum=lo2, maximum=hi2,
                 spot=_gcp_spot(config), accelerators=_accelerators(config), label=label, notes=tuple(notes),
                 tags=_tags(config, "labels", "resource_labels"))


def _zones(location: str) -> int:
    return 1 if location.count("-") >= 2 else 3  # a zone (us-central1-a) or a region (3 zones by default)


def _gke_node_pool(v: Mapping[str, Any]) -> list[Shape]:
    location = str(v.get("location") or "")
    return [_gke_pool(v, location, _zones(location) if location else 1, "", 1)]


def _gke_cluster(v: Mapping[str, Any]) -> list[Shape]:
    location = str(v.get("location") or v.get("zone") or v.get("region") or "")
    if v.get("enable_autopilot"):
        return [Shape("gcp", "", "enable_autopilot", location, unknown="a GKE Autopilot cluster bills per pod "
                      "resource request, which the plan does not say; costplane cannot price it")]
    zones = _zones(location) if location else 1
    cluster_zones = v.get("node_locations")
    if isinstance(cluster_zones, list) and cluster_zones:
        zones = len(cluster_zones) + (1 if location.count("-") >= 2 and location not in cluster_zones else 0)
    out = []
    if not v.get("remove_default_node_pool"):
        out.append(_gke_pool({"node_config": v.get("node_config"), "initial_node_count":
                              _int(v.get("initial_node_count"), 1)}, location, zones, "default pool", 1))
    for index, pool in enumerate(v.get("node_pool") or []):
        if isinstance(pool, Mapping):
            out.append(_gke_pool(pool, location, zones, f"node_pool[{index}]", 1))
    return out


# --- Azure -----------------------------------------------------------------------------------------------------------

def _az_spot(v: Mapping[str, Any]) -> bool:
    return str(v.get("priority") or "").lower() == "spot"


def _az_vm(windows: bool) -> Callable[[Mapping[str, Any]], list[Shape]]:
    def read(v: Mapping[str, Any]) -> list[Shape]:
        return [Shape("azure", _str(v.get("size")), "size", str(v.get("location") or ""), spot=_az_spot(v),
                      windows=windows, tags=_tags(v, "tags"))]
    return read


def _az_legacy_vm(v: Mapping[str, Any]) -> list[Shape]:
    disk = _first(v, "storage_os_disk")
    image = _first(v, "storage_image_reference")
    windows = bool(v.get("os_profile_windows_config")) or str(disk.get("os_type") or "").lower() == "windows" or (
        "windows" in str(image.get("offer") or "").lower())
    return [Shape("azure", _str(v.get("vm_size")), "vm_size", str(v.get("location") or ""), windows=windows,
                  tags=_tags(v, "tags"))]


def _az_vmss(windows: bool, sku_key: str) -> Callable[[Mapping[str, Any]], list[Shape]]:
    def read(v: Mapping[str, Any]) -> list[Shape]:
        n = _int(v.get("instances"), 0) or 0
        return [Shape("azure", _str(v.get(sku_key)), sku_key, str(v.get("location") or ""), desired=n, minimum=n,
                      maximum=n, spot=_az_spot(v), windows=windows, tags=_tags(v, "tags"))]
    return read


def _az_legacy_vmss(v: Mapping[str, Any]) -> list[Shape]:
    sku = _first(v, "sku")
    n = _int(sku.get("capacity"), 0) or 0
    windows = bool(v.get("os_profile_windows_config"))
    return [Shape("azure", _str(sku.get("name")), "sku.name", str(v.get("location") or ""), desired=n, minimum=n,
                  maximum=n, spot=_az_spot(v), windows=windows, tags=_tags(v, "tags"))]


def _aks_pool(pool: Mapping[str, Any], location: str, label: str) -> Shape:
    d, lo, hi = _counts(_int(pool.get("node_count")), _int(pool.get("min_count")), _int(pool.get("max_count")))
    return Shape("azure", _str(pool.get("vm_size")), "vm_size", location, desired=d, minimum=lo, maximum=hi,
                 spot=_az_spot(pool), windows=str(pool.get("os_type") or "").lower() == "windows", label=label,
                 tags=_tags(pool, "tags"))


def _aks_cluster(v: Mapping[str, Any]) -> list[Shape]:
    shape = _aks_pool(_first(v, "default_node_pool"), str(v.get("location") or ""), "default_node_pool")
    return [replace(shape, tags={**_tags(v, "tags"), **shape.tags})]


def _aks_node_pool(v: Mapping[str, Any]) -> list[Shape]:
    return [_aks_pool(v, "", "")]


COMPUTE_TYPES: Mapping[str, Callable[[Mapping[str, Any]], list[Shape]]] = {
    "aws_instance": _aws_instance,
    "aws_autoscaling_group": _aws_asg,
    "aws_eks_node_group": _aws_eks,
    "google_compute_instance": _gcp_instance,
    "google_compute_instance_from_template": _gcp_from_template,
    "google_compute_instance_group_manager": _gcp_mig,
    "google_compute_region_instance_group_manager": _gcp_mig,
    "google_container_node_pool": _gke_node_pool,
    "google_container_cluster": _gke_cluster,
    "azurerm_linux_virtual_machine": _az_vm(False),
    "azurerm_windows_virtual_machine": _az_vm(True),
    "azurerm_virtual_machine": _az_legacy_vm,
    "azurerm_linux_virtual_machine_scale_set": _az_vmss(False, "sku"),
    "azurerm_windows_virtual_machine_scale_set": _az_vmss(True, "sku"),
    "azurerm_orchestrated_virtual_machine_scale_set": _az_vmss(False, "sku_name"),
    "azurerm_virtual_machine_scale_set": _az_legacy_vmss,
    "azurerm_kubernetes_cluster": _aks_cluster,
    "azurerm_kubernetes_cluster_node_pool": _aks_node_pool,
}

TEMPLATE_TYPES: Mapping[str, Callable[[Mapping[str, Any]], list[Shape]]] = {
    "aws_launch_template": _aws_template,
    "aws_launch_configuration": _aws_template,
    "google_compute_instance_template": _gcp_template,
    "google_compute_region_instance_template": _gcp_template,
}

#: resource types that create compute costplane does not price: reported as unknown prices
UNPRICED_COMPUTE = frozenset({
    "aws_spot_instance_request", "aws_spot_fleet_request", "aws_ec2_fleet", "aws_emr_cluster", "aws_emr_instance_group",
    "aws_batch_compute_environment", "aws_sagemaker_notebook_instance", "aws_sagemaker_endpoint",
    "aws_lightsail_instance", "aws_gamelift_fleet",
    "google_notebooks_instance", "google_workbench_instance", "google_dataproc_cluster", "google_tpu_node",
    "google_tpu_v2_vm", "azurerm_batch_pool", "azurerm_machine_learning_compute_cluster",
    "azurerm_machine_learning_compute_instance", "azurerm_container_group", "azurerm_dedicated_host",
})  # fmt: skip


def shapes_of(resource_type: str, values: Mapping[str, Any]) -> Sequence[Shape] | None:
    """The compute a resource of this type creates; None when the type creates no priced compute."""
    read = COMPUTE_TYPES.get(resource_type)
    if read is not None:
        return read(values)
    if resource_type in UNPRICED_COMPUTE:
        provider = {"aws": "aws", "google": "gcp", "azurerm": "azure"}.get(resource_type.split("_", 1)[0], "")
        return [Shape(provider, "", "", unknown=f"{resource_type} creates compute that costplane does not price")]
    return None

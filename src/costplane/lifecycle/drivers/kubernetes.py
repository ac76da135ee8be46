"""The `kubernetes` driver: a Job or Deployment with cost labels, TTL annotations and GPU limits.

`render(spec)` builds the manifest (tested without a cluster). `apply`/`teardown` use the
official `kubernetes` client (optional extra: `pip install costplane[kubernetes]`), imported
only when a manifest is actually applied, with the kubeconfig named in costplane.yaml's
environment or the in-cluster configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from costplane.lifecycle.drivers.base import DriverError, LaunchSpec, context_env

__all__ = ["KubernetesDriver", "render"]

_LABEL = re.compile(r"[^A-Za-z0-9._-]")
PREFIX = "costplane.io"


def _label(value: str) -> str:
    cleaned = _LABEL.sub("-", value)[:63].strip("-._")
    return cleaned or "none"


def render(spec: LaunchSpec) -> dict[str, Any]:
    """The Job (default) or Deployment manifest of one environment."""
    drv = spec.driver
    workload = str(drv.get("workload") or "Job")
    name = f"cp-{spec.environment_id.removeprefix('env_')[:40]}".lower()
    labels = {f"{PREFIX}/environment": _label(spec.environment_id), f"{PREFIX}/blueprint": _label(spec.blueprint)}
    for dimension, value in spec.context.dimensions().items():
        labels[f"{PREFIX}/{dimension}"] = _label(value)
    for tag, value in spec.context.tags.items():
        labels[f"{PREFIX}/{_label(tag.replace('_', '-'))}"] = _label(value)
    annotations = {f"{PREFIX}/expires-at": spec.expires_at.isoformat(),
                   f"{PREFIX}/ttl-seconds": str(spec.ttl_seconds)}
    gpus = sum(int(r.get("count", 0)) for r in spec.resources if r.get("kind") == "gpu")
    container: dict[str, Any] = {
        "name": "main", "image": str(drv["image"]),
        "env": [{"name": k, "value": v} for k, v in sorted({**{str(a): str(b) for a, b in
                                                                dict(drv.get("env") or {}).items()},
                                                             **context_env(spec)}.items())],
    }
    if drv.get("command"):
        container["command"] = [str(c) for c in drv["command"]]
    if gpus:
        resource = str(drv.get("gpu_resource") or "nvidia.com/gpu")
        container["resources"] = {"limits": {resource: gpus}, "requests": {resource: gpus}}
    pod: dict[str, Any] = {"metadata": {"labels": labels, "annotations": annotations},
           "spec": {"containers": [container], "restartPolicy": "Never" if workload == "Job" else "Always"}}
    metadata = {"name": name, "namespace": str(drv.get("namespace") or "default"), "labels": labels,
                "annotations": annotations}
    if workload == "Deployment":
        selector = {f"{PREFIX}/environment": labels[f"{PREFIX}/environment"]}
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
                "spec": {"replicas": 1, "selector": {"matchLabels": selector}, "template": pod}}
    pod["spec"]["activeDeadlineSeconds"] = spec.ttl_seconds  # the cluster enforces the TTL too
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": spec.ttl_seconds, "template": pod}}


class KubernetesDriver:
    name = "kubernetes"

    def __init__(self, kubeconfig: str | None = None) -> None:
        self.kubeconfig = kubeconfig

    def _client(self) -> Any:
        try:
            import kubernetes  # type: ignore[import-not-found]
        except ImportError as exc:
            raise DriverError("the kubernetes driver needs the `kubernetes` package "
                              "(pip install 'costplane[kubernetes]')") from exc
        client: Any = kubernetes
        try:
            if self.kubeconfig:
                client.config.load_kube_config(config_file=self.kubeconfig)
            else:
                client.config.load_incluster_config()
        except Exception as exc:
            raise DriverError(f"no Kubernetes cluster configured: {exc}") from exc
        return client.client

    def apply(self, spec: LaunchSpec) -> dict[str, Any]:
        manifest = render(spec)
        api = self._client()
        namespace, kind = manifest["metadata"]["namespace"], manifest["kind"]
        try:
            if kind == "Job":
                api.BatchV1Api().create_namespaced_job(namespace, manifest)
            else:
                api.AppsV1Api().create_namespaced_deployment(namespace, manifest)
        except Exception as exc:
            raise DriverError(f"creating {kind} {manifest['metadata']['name']} failed: {exc}") from exc
        return {"driver": "kubernetes", "kind": kind, "name": manifest["metadata"]["name"], "namespace": namespace}

    def teardown(self, handle: Mapping[str, Any], grace: float) -> None:
        api = self._client()
        name, namespace = str(handle["name"]), str(handle["namespace"])
        try:
            if handle["kind"] == "Job":
                api.BatchV1Api().delete_namespaced_job(name, namespace, propagation_policy="Foreground",
                                                       grace_period_seconds=int(grace))
            else:
                api.AppsV1Api().delete_namespaced_deployment(name, namespace, grace_period_seconds=int(grace))
        except Exception as exc:
            if getattr(exc, "status", None) != 404:  # already gone is fine
                raise DriverError(f"deleting {handle['kind']} {name} failed: {exc}") from exc

    def alive(self, handle: Mapping[str, Any]) -> bool:
        return True

    def metrics(self, handle: Mapping[str, Any]) -> dict[str, float]:
        return {}

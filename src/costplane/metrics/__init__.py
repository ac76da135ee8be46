"""Prometheus `/metrics`: spend, budgets, decisions and reservations read from the store
(so every replica reports the same numbers), and per-process gateway latency histograms."""

from __future__ import annotations

from costplane.metrics.collect import TOP_N, store_metrics
from costplane.metrics.exposition import Family, render
from costplane.metrics.latency import LatencyHistograms, LatencyMiddleware
from costplane.metrics.service import metrics_parts

__all__ = ["TOP_N", "Family", "LatencyHistograms", "LatencyMiddleware", "metrics_parts", "render", "store_metrics"]

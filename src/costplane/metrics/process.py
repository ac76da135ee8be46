"""Per-process metric families of the Python runtime: the cyclic garbage collector.

A serving process freezes its start-up heap (`serving.freeze_heap`), so full collections no longer
scan the bundle, the price catalogs and the modules; these families show whether that holds in a
running replica (a frozen count near zero, or full collections climbing with the request count,
mean the pauses are back). The first three use the names Prometheus' own Python client gives them.
"""

from __future__ import annotations

import gc

from costplane.metrics.exposition import Family

__all__ = ["gc_families"]


def gc_families() -> list[Family]:
    collections = Family("python_gc_collections_total", "counter",
                         "Collections of the cyclic garbage collector by generation (per process)")
    collected = Family("python_gc_objects_collected_total", "counter",
                       "Objects the cyclic garbage collector freed by generation (per process)")
    uncollectable = Family("python_gc_objects_uncollectable_total", "counter",
                           "Uncollectable objects the cyclic garbage collector found by generation (per process)")
    for generation, stats in enumerate(gc.get_stats()):
        collections.add(int(stats.get("collections", 0)), generation=str(generation))
        collected.add(int(stats.get("collected", 0)), generation=str(generation))
        uncollectable.add(int(stats.get("uncollectable", 0)), generation=str(generation))
    frozen = Family("costplane_gc_frozen_objects", "gauge",
                    "Objects frozen out of the collector's scans at start-up (per process)")
    frozen.add(gc.get_freeze_count())
    return [collections, collected, uncollectable, frozen]

"""Per-process metric families: the Python runtime's cyclic garbage collector, the store's round trips.

A serving process freezes its start-up heap (`serving.freeze_heap`), so full collections no longer
scan the bundle, the price catalogs and the modules; these families show whether that holds in a
running replica (a frozen count near zero, or full collections climbing with the request count,
mean the pauses are back). The first three use the names Prometheus' own Python client gives them.
"""

from __future__ import annotations

import gc

from costplane.metrics.exposition import Family

__all__ = ["gc_families", "store_families"]


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


def store_families(store: object) -> list[Family]:
    """The transactions a networked store ran from this process (PostgreSQL; none for SQLite, whose
    calls are in-process): with leases on and the loop filter, far fewer than one per request."""
    count = getattr(store, "transactions", None)
    if not isinstance(count, int):
        return []
    family = Family("costplane_store_transactions_total", "counter",
                    "Transactions (each at least one round trip) this process ran on the PostgreSQL store")
    family.add(count)
    return [family]

"""`costplane rollups rebuild`: recompute the spend rollups (schema v8) from the cost events.

The triggers keep the rollups exact on every write, so this is for repair and for bulk loads
that dropped the triggers. It runs in one transaction; on PostgreSQL writers of cost events
wait for it (they are not lost, but a long rebuild can make them time out: run it off-peak).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from costplane.cli.common import CONFIG_OPTION, console, fail, load

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Spend rollups behind the visibility API: rebuild.")


@app.command()
def rebuild(config: Path | None = CONFIG_OPTION) -> None:
    """Recompute spend_hourly and spend_daily from cost_events (one transaction)."""
    from costplane.ledger.open import open_store
    from costplane.ledger.store import StoreError

    try:
        store = open_store(load(config).store_url)
    except StoreError as exc:
        fail(str(exc))
    try:
        store.migrate()
        started = time.perf_counter()
        counts = store.rebuild_rollups()
    except StoreError as exc:
        fail(str(exc))
    finally:
        store.close()
    took = time.perf_counter() - started
    console.print(f"rebuilt spend rollups in {took:.1f} s: " + ", ".join(f"{t} {n} rows" for t, n in counts.items()),
                  highlight=False)

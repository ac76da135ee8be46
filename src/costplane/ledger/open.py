"""`open_store(url)`: the one way the rest of costplane gets a store from configuration.

* `sqlite:///relative/path.db` — a path relative to the working directory;
  `sqlite:////abs/path.db` — an absolute path. Query parameters:
  `synchronous=NORMAL|FULL` (FULL fsyncs every commit: survives power loss),
  `busy_timeout=<ms>` (default 5000), `checkpoint_interval=<s>` (background WAL
  checkpoints, default 1.0; 0 = SQLite's automatic checkpoints).
* `postgresql://user@host:5432/db` or `postgres://…` — any libpq URL, plus
  `schema=<name>` (search_path) and `lock_timeout=<ms>` (default 5000).

The store is returned un-migrated; call `store.migrate()` (idempotent) at start-up.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

from costplane.ledger.postgres import PostgresStore, redact_url
from costplane.ledger.sqlite import SqliteStore
from costplane.ledger.store import Store

__all__ = ["open_store"]

_SQLITE_PARAMS = ("synchronous", "busy_timeout", "checkpoint_interval")


def open_store(url: str) -> Store:
    """Open the store named by `url` (see the module docstring); ValueError for anything else."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        return _open_sqlite(url)
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(url)
    raise ValueError(
        f"unsupported store URL {redact_url(url)!r}: expected sqlite:///path/to/costplane.db "
        "or postgresql://user@host:5432/database"
    )


def _open_sqlite(url: str) -> SqliteStore:
    if not url.lower().startswith("sqlite:///"):
        raise ValueError(
            f"invalid SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    parts = urlsplit(url)
    path = unquote(parts.path[1:])  # "sqlite:///x.db" -> path "/x.db" -> "x.db"; "sqlite:////a" -> "/a"
    if not path or path == ":memory:":
        raise ValueError(f"invalid SQLite URL {url!r}: a database file path is required (not :memory:)")
    params = dict(parse_qsl(parts.query))
    unknown = sorted(set(params) - set(_SQLITE_PARAMS))
    if unknown:
        raise ValueError(
            f"unknown SQLite URL parameter(s) {', '.join(unknown)}; known: {', '.join(_SQLITE_PARAMS)}"
        )
    try:
        busy = int(params.get("busy_timeout", "5000"))
        interval = float(params.get("checkpoint_interval", "1.0"))
    except ValueError:
        raise ValueError(
            f"busy_timeout (ms) and checkpoint_interval (s) must be numbers in {url!r}"
        ) from None
    sync = params.get("synchronous", "NORMAL").upper()
    if sync not in ("NORMAL", "FULL", "EXTRA", "OFF"):
        raise ValueError(f"synchronous must be NORMAL or FULL in {url!r}, got {sync!r}")
    return SqliteStore(path, synchronous=sync, busy_timeout_ms=busy, checkpoint_interval=interval, url=url)

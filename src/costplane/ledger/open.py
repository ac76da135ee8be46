"""`open_store(url)`: the one way the rest of costplane gets a store from configuration.

* `sqlite:///relative/path.db` — a path relative to the working directory;
  `sqlite:////abs/path.db` — an absolute path. Query parameters:
  `synchronous=NORMAL|FULL` (FULL fsyncs every commit: survives power loss),
  `busy_timeout=<ms>` (default 5000), `checkpoint_interval=<s>` (background WAL
  checkpoints, default 1.0; 0 = SQLite's automatic checkpoints).
* `postgresql://user@host:5432/db` or `postgres://…` — any libpq URL, plus
  `schema=<name>` (search_path) and `lock_timeout=<ms>` (default 5000).

The store is returned un-migrated; call `store.migrate()` (idempotent) at start-up.

`open_budget_ledger(config, store)`: the decision core's `BudgetLedger` — the store itself, or, with
`ledger.leases: on`, a `LeasedLedger` over it (ledger/leases.py) whose journal of earlier runs has
been replayed; on PostgreSQL either one behind a `LoopIndexedLedger` (ledger/loopindex.py: the loop
guard's filter). `close_budget_ledger` closes what it opened. The `ledger:` section of the file is
read by `ledger_settings` (every key checked, a bad value is a `ConfigError` naming it).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from costplane.ledger.base import SqlStore
from costplane.ledger.contracts import BudgetLedger
from costplane.ledger.leases import LeasedLedger, LeaseSettings
from costplane.ledger.loopfeed import LOOP_FEED_VERSION, LoopFeed
from costplane.ledger.loopfilter import LoopFilter
from costplane.ledger.loopindex import LoopIndexedLedger
from costplane.ledger.looppoll import PollingLoopFeed
from costplane.ledger.postgres import PostgresStore, redact_url
from costplane.ledger.sqlite import SqliteStore
from costplane.ledger.store import Store
from costplane.ledger.windows import WindowError, parse_duration

if TYPE_CHECKING:  # costplane.config imports the settings table, which imports the ledger
    from costplane.config import Config

__all__ = ["LEASE_KEYS", "close_budget_ledger", "grouped_writes", "ledger_settings", "open_budget_ledger", "open_store",
           "parse_ledger"]

#: the schema version of the lease table
LEASES_VERSION = 16
#: the keys of the `ledger:` section (settings.py declares them)
LEASE_KEYS: tuple[str, ...] = ("leases", "lease_ttl", "journal", "journal_fsync")
_ON, _OFF = ("on", "true", "yes", "1"), ("off", "false", "no", "0")

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


def _config_error(message: str) -> Exception:
    from costplane.config import ConfigError  # late: costplane.config imports the ledger

    return ConfigError(message)


def _switch(name: str, value: Any) -> bool:
    text = str(value).strip().lower() if not isinstance(value, bool) else ("on" if value else "off")
    if text in _ON:
        return True
    if text in _OFF:
        return False
    raise _config_error(f"ledger.{name}: expected on or off, got {value!r}")


def parse_ledger(raw: Any, base: Path, env: Mapping[str, str] | None = None) -> LeaseSettings:
    """The `ledger:` section (a mapping, or None) as `LeaseSettings`; `base`: the file's directory
    (relative journal paths); `env`: COSTPLANE_LEASES / COSTPLANE_JOURNAL override the file."""
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise _config_error("ledger: expected a mapping (leases, lease_ttl, journal, journal_fsync)")
    unknown = sorted(str(k) for k in raw if k not in LEASE_KEYS)
    if unknown:
        raise _config_error(f"ledger.{unknown[0]}: unknown setting (known: {', '.join(LEASE_KEYS)})")
    env = env or {}
    enabled = _switch("leases", env.get("COSTPLANE_LEASES") or raw.get("leases", "off"))
    try:
        ttl = parse_duration(str(raw.get("lease_ttl", "30s")))
    except WindowError as exc:
        raise _config_error(f"ledger.lease_ttl: {exc}") from None
    if not 2 <= ttl <= 3600:
        raise _config_error(f"ledger.lease_ttl: expected 2s to 1h, got {raw.get('lease_ttl')!r}")
    journal = env.get("COSTPLANE_JOURNAL") or raw.get("journal")
    if journal is not None and (not isinstance(journal, str) or not journal.strip()):
        raise _config_error(f"ledger.journal: expected a directory path, got {journal!r}")
    directory = Path(journal) if journal else Path(".costplane") / "journal"
    if not directory.is_absolute():
        directory = (Path.cwd() if env.get("COSTPLANE_JOURNAL") else base) / directory
    return LeaseSettings(enabled=enabled, ttl_seconds=ttl, journal_dir=directory.resolve(),
                         fsync=_switch("journal_fsync", raw.get("journal_fsync", "off")))


def ledger_settings(config: Config, env: Mapping[str, str] | None = None) -> LeaseSettings:
    """The `ledger:` section of the configuration's file (defaults without a file)."""
    from costplane.config import read_yaml

    env = dict(os.environ) if env is None else env
    if config.path is None:
        return parse_ledger(None, Path.cwd(), env)
    data, _ = read_yaml(config.path)
    return parse_ledger(data.get("ledger") if isinstance(data, Mapping) else None, config.path.parent, env)


def open_budget_ledger(config: Config, store: Store, settings: LeaseSettings | None = None) -> BudgetLedger:
    """The decision core's view of the budget counters: `store` itself, or with leases on (and a SQL
    store) a `LeasedLedger` over it, the journals of stopped processes already replayed. Journals
    live in a subdirectory of `ledger.journal` named after the store (a hash of its URL without
    password), so a directory shared by two stores never replays one's journal into the other. On
    PostgreSQL (schema v18) the ledger is wrapped in a `LoopIndexedLedger`. The caller closes it
    with `close_budget_ledger` (a `LeasedLedger` gives its leases back) before the store."""
    settings = ledger_settings(config) if settings is None else settings
    if not isinstance(store, SqlStore):
        if settings.enabled:
            raise _config_error("ledger.leases: lease-based budgets need the SQLite or PostgreSQL store")
        return store
    # one subdirectory per store: a journal is only ever replayed into the store it was written for
    store_key = hashlib.sha256(redact_url(str(store.url)).encode()).hexdigest()[:16]
    directory = settings.journal_dir / store_key
    if settings.enabled:
        ledger = LeasedLedger(store, replace(settings, journal_dir=directory))
        ledger.recover()
        return _loop_indexed(config, store, ledger)
    # leases off, perhaps after they were on: what stopped processes journaled is applied first,
    # then the leases past their expiry end — nothing stays held by a process that will not return
    if directory.is_dir() or (store.schema_version() >= LEASES_VERSION and store.leases_held()):
        sweeper = LeasedLedger(store, replace(settings, journal_dir=directory))
        sweeper.recover()
        sweeper.close()
        store.expire_leases(datetime.now(UTC))
    return _loop_indexed(config, store, store)


def _loop_indexed(config: Config, store: SqlStore, ledger: BudgetLedger) -> BudgetLedger:
    """`ledger` with the loop guard's filter in front of its loop counts, fed by the store: PostgreSQL's
    notifications (schema v18; `ledger` itself before it), SQLite's table tail."""
    loops = LoopFilter(config.gateway.loop_window)
    if isinstance(store, PostgresStore):
        return LoopIndexedLedger(ledger, LoopFeed(store, loops)) if store.schema_version() >= LOOP_FEED_VERSION \
            else ledger
    if isinstance(store, SqliteStore):
        return LoopIndexedLedger(ledger, PollingLoopFeed(store, loops))
    return ledger


def grouped_writes(ledger: BudgetLedger) -> Callable[[], AbstractContextManager[None]]:
    """What groups the journal writes of one batch of calls (a lease ledger's `grouped`, behind the
    loop filter or not); nothing to group for any other ledger."""
    inner = ledger.inner if isinstance(ledger, LoopIndexedLedger) else ledger
    return inner.grouped if isinstance(inner, LeasedLedger) else nullcontext


def close_budget_ledger(ledger: BudgetLedger) -> None:
    """Close what `open_budget_ledger` opened over the store (the store itself stays open): apply a
    lease ledger's journal and give its leases back, stop the loop filter's feed."""
    if isinstance(ledger, (LeasedLedger, LoopIndexedLedger)):
        ledger.close()

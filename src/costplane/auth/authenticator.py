"""The one authentication path of the server: a presented secret -> a `Principal`.

Costplane virtual keys (`cpk_…`, `Authorization: Bearer` or `x-api-key`), users' API tokens
(`cpt_…`, bearer) and dashboard sessions (an API token carried by the session cookie) are all
resolved here. The application builds ONE `Authenticator` (one cache), which the gateway, the
machine API, the users' API, the OTLP receiver and the dashboard share.

Revocation is immediate. The store keeps a credential generation that grows by one in the very
transaction that revokes a key, revokes a token or session, or disables a user (schema v12).
Every resolution uses a generation whose read started at most `CREDENTIAL_TRUST_SECONDS`
(0.2 s) before the resolution did — reading it again (one primary-key read of a one-row table)
once the last read is older — and drops the whole cache when it moved; callers that need a new
read share one, but only one that started after they arrived. An entry is only ever used under
the generation it was loaded at. A revocation returns only once the trust window has passed since
its commit (the store waits), so the request after a revocation returned is refused — on this
process and on every other process sharing the store, SQLite or PostgreSQL. Under load the
generation costs one store read per process per 0.2 s instead of one per request. Expiry is
checked on every use. Unknown secrets are never cached (a flood of guesses cannot evict).

`cached_key` answers from the cache alone, for a caller that confirms with `key` before it acts:
the gateway reads and checks a governed call with it, then confirms the key in the same store step
that admits the call (and before any error answer), which saves a thread hand-off per call.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from costplane.auth.principal import Principal, key_principal
from costplane.ledger.contracts_admin import CREDENTIAL_TRUST_SECONDS
from costplane.ledger.store import Store
from costplane.ledger.types import KeyRecord
from costplane.ledger.usertypes import ApiTokenRecord, UserRecord

__all__ = ["KEY_PREFIX", "TOKEN_PREFIX", "Authenticator", "hash_secret", "request_secret"]

KEY_PREFIX = "cpk_"
TOKEN_PREFIX = "cpt_"
MAX_ENTRIES = 10_000


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def request_secret(headers: Any) -> str:
    """The secret a request presents: `Authorization: Bearer <secret>`, else `x-api-key`."""
    header = str(headers.get("authorization", "") or "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return str(headers.get("x-api-key", "") or "").strip()


@dataclass(frozen=True, slots=True)
class _Entry:
    generation: int
    key: KeyRecord | None = None
    user: UserRecord | None = None
    token: ApiTokenRecord | None = None


class Authenticator:
    """Secret -> principal (or key record) for one store, with the revocation-exact cache."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 max_entries: int = MAX_ENTRIES, *, trust: float = CREDENTIAL_TRUST_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """`trust`: how long a generation read is relied on from the start of its read (at most the
        store's `CREDENTIAL_TRUST_SECONDS`, which its revocations wait for; 0 reads on every call)."""
        if not 0 <= trust <= CREDENTIAL_TRUST_SECONDS:
            raise ValueError(f"trust: expected 0 to {CREDENTIAL_TRUST_SECONDS} seconds, got {trust!r}")
        self._store = store
        self._clock = clock
        self._trust = trust
        self._monotonic = monotonic
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._generation = -1
        self.loads = 0  # store look-ups of credentials (cache misses), for tests and measurements
        self._reads = threading.Condition(threading.Lock())  # the single-flight generation read
        self._reading = False
        self._reads_started = 0
        self._reads_done = 0
        self._read_value = -1
        self._read_started = float("-inf")  # when the read of `_read_value` started (monotonic)
        self.generation_reads = 0  # store reads of the generation, for tests and measurements

    # -- the cache ----------------------------------------------------------------------------
    def _read_generation(self) -> int:
        """The credential generation as of a read that started at most `trust` seconds before this
        call did, else as of a new read that STARTED after this call did: concurrent callers share one
        read (single flight), never one that was already under way when they arrived. A revocation
        returns `CREDENTIAL_TRUST_SECONDS` after its commit, so a request that arrives after it
        returned always sees it."""
        with self._reads:
            if self._monotonic() - self._read_started < self._trust:  # a read that started recently enough
                return self._read_value
            wanted = self._reads_started + 1  # the first read that may start from now on
            while self._reads_done < wanted:
                if self._reading:
                    self._reads.wait()
                    continue
                self._reading = True
                self._reads_started += 1
                number = self._reads_started
                self._reads.release()
                started = self._monotonic()  # taken before the read is sent: what the trust counts from
                try:
                    self.generation_reads += 1
                    value = self._store.credentials_generation()
                except BaseException:
                    self._reads.acquire()
                    self._reading = False
                    self._reads.notify_all()  # a waiter takes over the read
                    raise
                self._reads.acquire()
                self._reading = False
                self._reads_done, self._read_value, self._read_started = number, value, started
                self._reads.notify_all()
            return self._read_value

    def _current(self) -> int:
        generation = self._read_generation()
        with self._lock:
            if generation != self._generation:
                self._entries.clear()
                self._generation = generation
        return generation

    def _remember(self, digest: str, entry: _Entry) -> None:
        with self._lock:
            if entry.generation != self._generation:
                return  # loaded under a generation that has since moved: never cache it
            if len(self._entries) >= self._max:
                self._entries.pop(next(iter(self._entries)))
            self._entries[digest] = entry

    def invalidate(self) -> None:
        """Drop every cached credential (the next resolution reloads from the store)."""
        with self._lock:
            self._entries.clear()
            self._generation = -1
        with self._reads:
            self._read_started = float("-inf")

    def _entry(self, secret: str) -> _Entry | None:
        if not (secret.startswith(KEY_PREFIX) or secret.startswith(TOKEN_PREFIX)):
            return None
        digest = hash_secret(secret)
        generation = self._current()
        with self._lock:
            hit = self._entries.get(digest)
        if hit is not None and hit.generation == generation:
            return hit
        self.loads += 1
        if secret.startswith(KEY_PREFIX):
            key = self._store.key_by_hash(digest)
            if key is None or not hmac.compare_digest(key.secret_hash, digest):
                return None
            entry = _Entry(generation, key=key)
        else:
            token = self._store.api_token_by_hash(digest)
            if token is None or not hmac.compare_digest(token.secret_hash, digest):
                return None
            user = self._store.get_user(token.user_id)
            if user is None:
                return None
            entry = _Entry(generation, user=user, token=token)
        self._remember(digest, entry)
        return entry

    # -- resolutions ---------------------------------------------------------------------------
    def key(self, secret: str) -> KeyRecord | None:
        """The usable (not revoked, not expired) virtual key behind a `cpk_` secret, or None."""
        entry = self._entry(secret) if secret.startswith(KEY_PREFIX) else None
        if entry is None or entry.key is None or not entry.key.usable(self._clock()):
            return None
        return entry.key

    def cached_key(self, secret: str) -> KeyRecord | None:
        """The usable key behind a `cpk_` secret as this cache last saw it — no store read — or None
        when it is not cached under the last generation read. NOT revocation-exact by itself: a
        caller that acts on it confirms it with `key` (a generation read in the trust window) before it answers
        the request or spends on it (the gateway does so in the store step that admits the call)."""
        if not secret.startswith(KEY_PREFIX):
            return None
        digest = hash_secret(secret)
        with self._lock:
            hit = self._entries.get(digest)
            generation = self._generation
        if hit is None or hit.generation != generation or hit.key is None or not hit.key.usable(self._clock()):
            return None
        return hit.key

    def principal(self, secret: str, kind: str = "token") -> Principal | None:
        """The principal of a key or an API token (`kind` = token | session), or None when the
        secret is unknown, revoked or expired, or its user is disabled."""
        entry = self._entry(secret)
        if entry is None:
            return None
        now = self._clock()
        if entry.key is not None:
            return key_principal(entry.key) if entry.key.usable(now) else None
        if entry.user is None or entry.token is None or not entry.user.active or not entry.token.usable(now):
            return None
        return Principal(entry.user, entry.token.id, kind)

    def session(self, secret: str) -> Principal | None:
        """The principal of a dashboard session cookie (an API token; never a key)."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        return self.principal(secret, "session")

    def token_user(self, secret: str) -> tuple[UserRecord, ApiTokenRecord] | None:
        """The active user and usable token behind a `cpt_` secret (for callers that need the records)."""
        entry = self._entry(secret) if secret.startswith(TOKEN_PREFIX) else None
        if entry is None or entry.user is None or entry.token is None:
            return None
        if not entry.user.active or not entry.token.usable(self._clock()):
            return None
        return entry.user, entry.token

"""The credential generation read is single-flight: callers that arrive together, once the last read
is past the trust window, share one store read, but never a read that was already under way when
they arrived. The authenticators here trust no read (`trust=0`), so that every call needs one: what
a window of 0.2 s adds is tested in test_generation_trust.py."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from costplane.auth import Authenticator
from costplane.gateway.keys import create_key
from costplane.ledger.sqlite import SqliteStore


class SlowGenerationStore(SqliteStore):
    """The SQLite store whose generation read takes a while, and can be held at a gate."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads = 0
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def credentials_generation(self) -> int:
        value = super().credentials_generation()  # read first: what the read returns is fixed here
        self.reads += 1
        self.entered.set()
        self.gate.wait(10)
        return value


def _store(tmp_path: Path) -> SlowGenerationStore:
    store = SlowGenerationStore(tmp_path / "auth.db")
    store.migrate()
    return store


def test_concurrent_callers_share_reads(tmp_path: Path) -> None:
    store = _store(tmp_path)
    secret, record = create_key(store, "k", {"team": "alpha"})
    auth = Authenticator(store, trust=0)
    assert auth.key(secret) is not None
    store.reads = 0
    store.gate.clear()
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(auth.key(secret))) for _ in range(8)]
    threads[0].start()
    assert store.entered.wait(5)  # the first caller's read is under way; the other seven arrive now
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.2)  # let them reach the wait (a straggler would only cost one more read)
    store.gate.set()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8 and all(r is not None and r.id == record.id for r in results)  # type: ignore[attr-defined]
    # the first read, then one read shared by the seven that came after it started (without
    # sharing: eight)
    assert 2 <= store.reads <= 3
    store.close()


def test_a_read_under_way_before_the_revocation_is_not_shared(tmp_path: Path) -> None:
    store = _store(tmp_path)
    secret, record = create_key(store, "k", {"team": "alpha"})
    auth = Authenticator(store, trust=0)
    assert auth.key(secret) is not None  # cached
    store.entered.clear()
    store.gate.clear()
    early: list[object] = []
    first = threading.Thread(target=lambda: early.append(auth.key(secret)))
    first.start()
    assert store.entered.wait(5)  # a read of the old generation is under way...
    assert store.revoke_key(record.id, datetime.now(UTC))  # ...when the revocation commits
    late: list[object] = []
    second = threading.Thread(target=lambda: late.append(auth.key(secret)))
    second.start()  # arrives after the commit: must not use the read that started before it
    store.gate.set()
    first.join(10)
    second.join(10)
    assert early and early[0] is not None  # arrived before the revocation: may still pass
    assert late == [None]
    assert store.reads >= 2
    store.close()

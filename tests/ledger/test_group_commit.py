"""Group commit on SQLite: the store calls of concurrent requests share one transaction (one
savepoint each) and one COMMIT — and the lease journal's records of the batch one `write`; each
caller is answered only after both."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_helpers import claim, event, reserve

from costplane.ledger import BudgetClaim
from costplane.ledger.executor import StoreExecutor
from costplane.ledger.sqlite import SqliteStore
from costplane.ledger.store import StoreError, StoreUnavailable


class CountingStore(SqliteStore):
    """The SQLite store, counting the group-commit blocks it was asked for."""

    batches = 0

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self.batches += 1
        with super().batch():
            yield


def _store(tmp_path: Path) -> CountingStore:
    store = CountingStore(tmp_path / "g.db")
    store.migrate()
    return store


def test_a_failing_write_is_undone_alone_and_the_others_commit(tmp_path: Path) -> None:
    store = _store(tmp_path)
    hard = claim(budget="g", amount=10, limit_nano=1_000)
    with store.batch():
        first, ok1 = reserve(store, [hard])
        with pytest.raises(StoreError, match="unknown reservation"):
            store.settle("res_missing", event(5))
        _, ok2 = reserve(store, [hard])
        store.settle(first.id, event(7, rid=first.id))
    assert ok1.ok and ok2.ok
    other = SqliteStore(tmp_path / "g.db")  # another connection sees the committed batch
    [state] = other.claim_states([hard])
    assert (state.spent_nano, state.reserved_nano, state.calls) == (7, 10, 2)
    assert other.count_events() == 1
    other.close()
    store.close()


def test_nothing_is_visible_to_another_connection_before_the_block_ends(tmp_path: Path) -> None:
    store = _store(tmp_path)
    other = SqliteStore(tmp_path / "g.db")
    with store.batch():
        res, _ = reserve(store, [claim(budget="g", amount=10)])
        store.settle(res.id, event(3, rid=res.id))
        assert store.count_events() == 1  # the batch's own connection reads its writes
        assert other.count_events() == 0
    assert other.count_events() == 1
    other.close()
    store.close()


def test_a_failed_commit_fails_every_call_of_the_batch_and_keeps_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.batch():  # a deferred foreign key makes the COMMIT itself fail
        store._write(lambda tx: tx.exec("CREATE TABLE parent (id TEXT PRIMARY KEY)"))
        store._write(lambda tx: tx.exec(
            "CREATE TABLE child (pid TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"))
    executor = StoreExecutor(store)
    store._conn().execute("PRAGMA foreign_keys = ON")  # the event loop thread's connection

    async def main() -> list[object]:
        with executor.request(), executor.request():
            outcomes: list[object] = await asyncio.gather(
                executor.run(lambda: reserve(store, [claim(budget="g", amount=10)])[1].ok),
                executor.run(store._write, lambda tx: tx.exec("INSERT INTO child (pid) VALUES ('nobody')")),
                executor.run(store.record_event, event(5), ()),
                return_exceptions=True,
            )
            return outcomes

    results = asyncio.run(main())
    assert store.batches >= 2
    assert all(isinstance(r, StoreUnavailable) and "COMMIT failed" in str(r) for r in results), results
    assert store.count_events() == 0 and store.open_reservations() == 0
    # the store is usable afterwards: the lock and the transaction were given back
    assert reserve(store, [claim(budget="g", amount=10)])[1].ok
    executor.close()
    store.close()


def test_concurrent_requests_share_one_commit_and_each_gets_its_own_answer(tmp_path: Path) -> None:
    store = _store(tmp_path)
    executor = StoreExecutor(store)
    hard = claim(budget="g", amount=10, limit_nano=200)  # room for 20 of the 30

    async def one(i: int) -> tuple[bool, int]:
        return await executor.run(_sync_call, store, hard, i)

    async def main() -> list[tuple[bool, int]]:
        with executor.request(), executor.request():
            return await asyncio.gather(*(one(i) for i in range(30)))

    results = asyncio.run(main())
    assert [i for _, i in results] == list(range(30))  # each caller got its own call's answer
    assert sum(ok for ok, _ in results) == 20
    assert store.batches == 1  # all thirty arrived in one turn of the loop
    [state] = store.claim_states([hard])
    assert (state.spent_nano, state.reserved_nano, state.calls) == (200, 0, 20)
    executor.close()
    store.close()


def _sync_call(store: SqliteStore, hard: BudgetClaim, i: int) -> tuple[bool, int]:
    res, result = reserve(store, [hard])
    if not result.ok:
        return False, i
    store.settle(res.id, event(10, rid=res.id))
    return True, i


def test_a_request_alone_is_not_deferred(tmp_path: Path) -> None:
    store = _store(tmp_path)
    executor = StoreExecutor(store)

    async def main() -> int:
        with executor.request():
            return await executor.run(store.count_events)

    assert asyncio.run(main()) == 0
    assert store.batches == 0
    executor.close()
    store.close()


def test_a_batch_s_journal_records_are_written_once_before_any_caller_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from costplane.ledger.journal import Journal, read_segment

    store = _store(tmp_path)
    journal = Journal(tmp_path / "journal", "p-group")
    writes: list[int] = []
    original = os.write

    def counting(fd: int, data: bytes | memoryview) -> int:
        writes.append(len(data))
        return original(fd, data)

    executor = StoreExecutor(store, grouped=journal.grouped)
    seen_by_callers: list[int] = []

    def settle(i: int) -> int:
        journal.append({"call": i})
        return i

    async def one(i: int) -> int:
        got = await executor.run(settle, i)
        written = sorted((tmp_path / "journal").glob("*.log"))  # the caller resumes once its record is there
        seen_by_callers.append(sum(len(read_segment(segment)) for segment in written))
        return got

    async def main() -> list[int]:
        with executor.request(), executor.request():
            return await asyncio.gather(*(one(i) for i in range(20)))

    monkeypatch.setattr(os, "write", counting)
    assert asyncio.run(main()) == list(range(20))
    assert len(writes) == 1 and store.batches == 1  # twenty records, one write, one batch
    assert min(seen_by_callers) == 20
    with journal.grouped():  # fsync off, nothing appended: nothing written
        pass
    assert len(writes) == 1
    executor.close()
    store.close()


def test_a_journal_that_cannot_be_written_fails_every_call_of_the_batch(tmp_path: Path) -> None:
    store = _store(tmp_path)

    @contextlib.contextmanager
    def broken() -> Iterator[None]:
        yield
        raise OSError(28, "No space left on device")

    executor = StoreExecutor(store, grouped=broken)

    async def main() -> list[object]:
        with executor.request(), executor.request():
            return await asyncio.gather(*(executor.run(store.count_events) for _ in range(5)),
                                        return_exceptions=True)

    answers = asyncio.run(main())
    assert all(isinstance(a, StoreError) and "journal could not be written" in str(a) for a in answers)
    executor.close()
    store.close()


def test_grouped_journal_records_wait_for_the_block_unless_fsync_is_on(tmp_path: Path) -> None:
    from costplane.ledger.journal import Journal, read_segment

    def on_disk(directory: Path) -> int:
        return sum(len(read_segment(segment)) for segment in directory.glob("*.log"))

    journal = Journal(tmp_path / "plain", "p-plain")
    with journal.grouped():
        journal.append({"n": 1})
        with journal.grouped():  # an inner block changes nothing
            journal.append({"n": 2})
        assert on_disk(tmp_path / "plain") == 0
    assert on_disk(tmp_path / "plain") == 2
    with pytest.raises(RuntimeError), journal.grouped():
        journal.append({"n": 3})
        raise RuntimeError("the batch failed after the settlement was made")
    assert on_disk(tmp_path / "plain") == 3  # written all the same: its settlement was made
    synced = Journal(tmp_path / "synced", "p-synced", fsync=True)
    with synced.grouped():
        synced.sync(synced.append({"n": 1}))  # fsync on: the record is written (and synced) at once
        assert on_disk(tmp_path / "synced") == 1

"""The local durable journal of lease-based budgets: settlements written before the response completes.

One journal per serving process, in a directory shared by the processes of one host:

* `<owner>.lock` — held (`flock`, exclusive) for the whole life of the process. The kernel drops the
  lock when the process dies, kill -9 included, so "this lock can be taken" means "its owner is
  dead": another process (or the next start) replays that journal. A live journal is never
  replayed by anyone else.
* `<owner>.<n>.log` — segments of JSON lines, one record per line, each written with ONE `write`
  call on an `O_APPEND` descriptor before the settlement returns. A write that returned is in the
  kernel's page cache: it survives kill -9 of the process (not a power loss, unless `fsync` is on:
  then the settlement also waits for `sync(seq)`, a group commit — one `fdatasync` covers every
  record written before it, whichever thread runs it).

Inside `grouped()` (fsync off), the records a thread appends are written together when the block
ends, with one `write`: the gateway's executor wraps the calls of one turn of the event loop in it
(the same turn whose store writes share one COMMIT), and their callers resume only after it — so a
response still never leaves before its record is written, and concurrent settlements pay for one
system call, not one each (docs/performance.md). A record can then reach a later segment than the
batch that applied it: replaying it is harmless, as below.

The background writer seals the current segment (`rotate`: later appends go to a new one),
applies the sealed segment's records to the shared store in one transaction, then deletes it
(`discard`). A crash between applying and deleting replays records already applied: harmless,
every event is inserted once by id. A torn last line (a write cut short) is skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Journal", "Orphan", "orphans"]


class Journal:
    """The journal of one process (`owner`), in `directory`."""

    def __init__(self, directory: Path, owner: str, *, fsync: bool = False) -> None:
        self.directory = Path(directory)
        self.owner = owner
        self.fsync = fsync
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / f"{owner}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise
        self._mutex = threading.Lock()  # writes and rotation
        self._syncing = threading.Lock()  # one fdatasync at a time (taken before _mutex)
        self._appended = 0  # records written so far
        self._synced = 0  # records known to be on disk (fsync on)
        self._seq = 0
        self._fd = -1
        self._grouped = threading.local()  # .lines: the records a `grouped()` block holds back
        self._current: Path | None = None
        self._written = 0  # records in the current segment

    def _open_segment(self) -> None:
        self._seq += 1
        self._current = self.directory / f"{self.owner}.{self._seq:09d}.log"
        self._fd = os.open(self._current, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        self._written = 0

    def append(self, record: Mapping[str, Any]) -> int:
        """Write one record (one `write` call); it survives kill -9 once this returns — or, inside
        `grouped()`, once that block has ended. Returns its sequence number, for `sync`."""
        line = orjson.dumps(record) + b"\n"
        held: list[bytes] | None = getattr(self._grouped, "lines", None)
        if held is not None:
            held.append(line)
            with self._mutex:
                self._appended += 1
                return self._appended
        with self._mutex:
            self._appended += 1
            self._write(line, 1)
            return self._appended

    def _write(self, data: bytes, records: int) -> None:
        """Under `_mutex`: `data` (whole lines) at the end of the current segment, one `write`."""
        if self._fd < 0:
            self._open_segment()
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self._written += records

    @contextlib.contextmanager
    def grouped(self) -> Iterator[None]:
        """The records this thread appends in the block are written together when it ends (even
        when it raises: they belong to settlements already made). With `fsync` on, or inside an
        outer block, appends are written as without it."""
        if self.fsync or getattr(self._grouped, "lines", None) is not None:
            yield
            return
        lines: list[bytes] = []
        self._grouped.lines = lines
        try:
            yield
        finally:
            self._grouped.lines = None
            if lines:
                with self._mutex:
                    self._write(b"".join(lines), len(lines))

    def sync(self, seq: int) -> None:
        """With `fsync` on: return once record `seq` is on disk (one `fdatasync` for every record
        appended before it: concurrent settlements share it). Off: nothing to do."""
        if not self.fsync or self._synced >= seq:
            return
        with self._syncing:
            if self._synced >= seq:
                return
            with self._mutex:
                fd, upto = self._fd, self._appended
            if fd >= 0:
                os.fdatasync(fd)  # rotation waits for this lock, so the descriptor stays open
            self._synced = max(self._synced, upto)

    def rotate(self) -> Path | None:
        """Seal the current segment (later appends open a new one); None when it holds nothing."""
        with self._syncing, self._mutex:
            if self._fd < 0 or self._written == 0:
                return None
            if self.fsync:  # what the segment holds is on disk before its descriptor goes
                os.fdatasync(self._fd)
                self._synced = self._appended
            os.close(self._fd)
            sealed, self._fd, self._current = self._current, -1, None
            return sealed

    @staticmethod
    def discard(segment: Path) -> None:
        """A sealed segment whose records are applied to the store."""
        with contextlib.suppress(FileNotFoundError):
            segment.unlink()

    def close(self) -> None:
        """Release the lock (after the last segment was applied and discarded: nothing to replay)."""
        with self._mutex:
            if self._fd >= 0:
                os.close(self._fd)
                if self._written == 0 and self._current is not None:
                    self._current.unlink(missing_ok=True)
                self._fd = -1
            if self._lock_fd >= 0:
                if not any(self.directory.glob(f"{self.owner}.*.log")):
                    (self.directory / f"{self.owner}.lock").unlink(missing_ok=True)
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = -1


def read_segment(segment: Path) -> list[dict[str, Any]]:
    """The records of a segment, a torn last line skipped."""
    out: list[dict[str, Any]] = []
    for line in segment.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a write cut short by the crash: the settlement never returned
        if isinstance(record, dict):
            out.append(record)
    return out


class Orphan:
    """The journal of a dead process, locked by the caller until `close`."""

    def __init__(self, directory: Path, owner: str, fd: int) -> None:
        self.directory = directory
        self.owner = owner
        self._fd = fd

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"{self.owner}.*.log"))

    def close(self, *, done: bool) -> None:
        """Release it; `done`: every segment was applied (and discarded), so the lock file goes too."""
        if done:
            (self.directory / f"{self.owner}.lock").unlink(missing_ok=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def orphans(directory: Path, *, skip: str = "") -> Iterator[Orphan]:
    """The journals in `directory` whose owner is dead (their lock can be taken), each locked."""
    if not directory.is_dir():
        return
    owners = {p.name.split(".", 1)[0] for p in directory.glob("*.lock")}
    owners |= {p.name.split(".", 1)[0] for p in directory.glob("*.log")}
    for owner in sorted(owners - {skip}):
        try:
            fd = os.open(directory / f"{owner}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # alive (or being replayed by another process)
            os.close(fd)
            continue
        yield Orphan(directory, owner, fd)

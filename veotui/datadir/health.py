"""Whether the data directory's disk accepts writes, and a small reserve for emergencies.

A write that fails because the disk is full (or read-only, or failing) marks the storage
*degraded*: the engine keeps running, refuses what it cannot record with a sentence, and the
scheduler probes the disk with backoff until it accepts writes again. The reserve is a file
of a few hundred kilobytes kept in the data directory; a delete on a full disk drops it so
SQLite has the room to record the delete, and it is written again when space returns (which
is also the test that space has returned).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from veotui.core.errors import DownloadFailed, StorageUnavailable
from veotui.core.job import isoformat, parse_time, utcnow

log = logging.getLogger(__name__)

OK = "ok"
FULL = "full"
READ_ONLY = "read_only"
#: The check run after start found the database damaged; it stays so until a restart.
DAMAGED = "damaged"
#: The store's database server cannot be reached (PostgreSQL); veotui reconnects by itself.
UNAVAILABLE = "unavailable"
LABELS = {
    OK: "ok",
    FULL: "storage full",
    READ_ONLY: "storage read-only",
    DAMAGED: "storage damaged",
    UNAVAILABLE: "storage database unreachable",
}

RESERVE_NAME = "veotui.reserve"
RESERVE_BYTES = 256 * 1024
#: Free space below which the disk does not count as writable again (SQLite may still fit a
#: commit into its journal's slack, which says nothing about the next one).
MIN_FREE_BYTES = 64 * 1024

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY_ERRNOS = {errno.EROFS}
# SQLite's primary result codes (the low byte of an extended code).
#: What a database driver's error reader may answer beside FULL and READ_ONLY: a write was
#: refused without saying why (read-only, an I/O error); on a nearly full disk, the space.
REFUSED = "refused"
#: Reads a database driver's error as FULL, READ_ONLY or REFUSED, or None when it is not a
#: refused write. The store teaches its guard its driver's errors, so this module imports none.
ErrorReader = Callable[[BaseException], str | None]


@dataclass(frozen=True)
class StorageState:
    state: str = OK
    reason: str | None = None
    since: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.state == OK

    @property
    def label(self) -> str:
        """What the TUI header shows: "storage full" or "storage read-only"."""
        return LABELS.get(self.state, self.state)

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "reason": self.reason, "since": isoformat(self.since)}

    @classmethod
    def from_dict(cls, data: Any) -> StorageState:
        if not isinstance(data, dict):
            return cls()
        return cls(state=str(data.get("state") or OK), reason=data.get("reason"), since=parse_time(data.get("since")))


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path``."""
    for candidate in (path, *path.parents):
        try:
            stats = os.statvfs(candidate)
        except OSError:
            continue
        # root may use the blocks a filesystem keeps back from everyone else
        available = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail
        return available * stats.f_frsize
    return None


def format_bytes(count: int | float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def disk_full_error(exc: BaseException | None) -> OSError | None:
    """The out-of-space ``OSError`` behind ``exc`` (itself, or a cause), if there is one."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def save_failed(target: Path, exc: OSError, needed: int | None = None) -> DownloadFailed:
    """A download that could not be written, in a sentence (never the temporary name)."""
    where = f"cannot save {target.name} in {target.parent}"
    if exc.errno not in _FULL_ERRNOS:
        return DownloadFailed(f"{where}: {exc.strerror or exc}")
    free = free_bytes(target.parent)
    facts = [f"{format_bytes(free)} free"] if free is not None else []
    if needed:
        facts.append(f"it needs {format_bytes(needed)}")
    detail = f" ({'; '.join(facts)})" if facts else ""
    return DownloadFailed(f"{where}: the disk is full{detail}. Free some space there or choose another folder")


def classify(exc: BaseException, where: Path, readers: Iterable[ErrorReader] = ()) -> str | None:
    """FULL or READ_ONLY when ``exc`` is a write the disk refused; None for anything else."""
    state = next((found for found in (read(exc) for read in readers) if found is not None), None)
    if state is None and isinstance(exc, OSError):
        if exc.errno in _FULL_ERRNOS:
            state = FULL
        elif exc.errno in _READ_ONLY_ERRNOS:
            state = READ_ONLY
    if state == REFUSED:
        # A failing write on a disk that is nearly full is most likely the space.
        free = free_bytes(where)
        return FULL if free is not None and free < RESERVE_BYTES else READ_ONLY
    return state


class StorageGuard:
    """The storage state of one data directory, its reserve file, and who to tell."""

    def __init__(self, data_dir: Path, reserve_bytes: int = RESERVE_BYTES) -> None:
        self.data_dir = data_dir
        self.reserve = data_dir / RESERVE_NAME
        self.reserve_bytes = reserve_bytes
        self.state = StorageState()
        self._listeners: list[Callable[[StorageState], None]] = []
        self._readers: list[ErrorReader] = []

    def add_listener(self, listener: Callable[[StorageState], None]) -> None:
        """Called whenever the state changes (degraded, reason changed, recovered)."""
        self._listeners.append(listener)

    def add_error_reader(self, reader: ErrorReader) -> None:
        """How to tell a refused write in a database driver's errors (once per reader)."""
        if reader not in self._readers:
            self._readers.append(reader)

    @property
    def ok(self) -> bool:
        return self.state.ok

    def describe(self, state: str, doing: str, exc: BaseException | None = None) -> str:
        if state == FULL:
            free = free_bytes(self.data_dir)
            left = f" ({format_bytes(free)} free)" if free is not None else ""
            return (
                f"the disk holding {self.data_dir} is full{left}: veotui could not {doing}. "
                "Free some space there (or delete finished jobs); veotui carries on by itself"
            )
        cause = getattr(exc, "strerror", None) or (str(exc) if exc is not None else "refused")
        return (
            f"veotui cannot write to {self.data_dir} ({cause}), so it could not {doing}. "
            "Check the disk and its permissions; veotui carries on by itself once it can write"
        )

    def error(self, exc: BaseException, doing: str) -> StorageUnavailable | None:
        """``exc`` as a :class:`StorageUnavailable` (and the state degraded), or None when
        it is not a storage fault."""
        state = classify(exc, self.data_dir, self._readers)
        if state is None:
            return None
        failure = StorageUnavailable(self.describe(state, doing, exc), state)
        self.degrade(state, failure.message)
        return failure

    def unavailable(self) -> StorageUnavailable:
        """The error for an action refused while degraded."""
        return StorageUnavailable(self.state.reason or "the data directory cannot be written", self.state.state)

    def degrade(self, state: str, reason: str) -> None:
        if self.state.state in (state, DAMAGED):
            return  # keep the first reason: the probes that follow say less
        if self.state.ok:
            log.warning("storage degraded: %s", reason)
        self._set(StorageState(state, reason, self.state.since or utcnow()))

    def recovered(self) -> None:
        if self.state.ok or self.state.state == DAMAGED:
            return  # a writable disk does not mend a damaged database
        log.warning("storage writable again (%s)", self.data_dir)
        self._set(StorageState())

    def _set(self, state: StorageState) -> None:
        self.state = state
        for listener in tuple(self._listeners):
            listener(state)

    # -- the reserve ----------------------------------------------------------------------

    def ensure_reserve(self) -> None:
        """Write the reserve if it is missing or short; raises ``OSError`` (nothing left
        behind) when the disk has not that much room, or too little beside it."""
        try:
            present = self.reserve.stat().st_size >= self.reserve_bytes
        except FileNotFoundError:
            present = False
        free = free_bytes(self.data_dir)
        if present and (free is None or free >= MIN_FREE_BYTES):
            return
        if present:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        temp = self.reserve.with_name(self.reserve.name + ".new")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                chunk = memoryview(b"\0" * 65536)
                left = self.reserve_bytes
                while left > 0:  # a short write means the disk ran out: the next one raises
                    left -= os.write(fd, chunk[: min(left, len(chunk))])
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, self.reserve)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def release_reserve(self) -> bool:
        """Drop the reserve; True if it freed anything."""
        try:
            self.reserve.unlink()
        except FileNotFoundError:
            return False
        log.warning("dropped the storage reserve %s to record a delete on a full disk", self.reserve)
        return True

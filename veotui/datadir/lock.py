"""One process owns a data directory: an ``flock`` on a side file, held for the process's
life. The kernel drops it the instant the holder dies, so a stale lock frees itself."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from veotui.core.errors import DataDirBusy
from veotui.datadir.paths import os_problem, prepare
from veotui.datadir.privacy import PRIVATE_FILE

LOCK_NAME = "veotui.lock"


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, url: str | None = None) -> None:
        prepare(self.data_dir)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        except OSError as exc:
            raise os_problem(self.data_dir, exc, "cannot be written") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise _busy(self.data_dir, holder) from None
        self._fd = fd
        self.describe(url)

    def describe(self, url: str | None) -> None:
        """Record who holds the lock (and the URL it serves) for a refused second process."""
        if self._fd is None:
            return
        info = json.dumps({"pid": os.getpid(), "url": url}).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, info, 0)

    def holder(self) -> str | None:
        """Who holds the directory, as a sentence; None if nobody does. Takes no lock."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None  # no lock file: nobody ever held it, or it cannot be read
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return str(_busy(self.data_dir, _read_holder(fd)))
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return holder if isinstance(holder, dict) else {}
    except (ValueError, OSError):
        return {}


def _busy(data_dir: Path, holder: dict[str, Any]) -> DataDirBusy:
    pid, url = holder.get("pid"), holder.get("url")
    who = f"veotui process {pid}" if pid else "another veotui process"
    if url:
        hint = f"it serves {url}; attach with: veotui --remote {url}"
    else:
        hint = "quit it first, or use another directory with --data-dir"
    return DataDirBusy(f"data directory {data_dir} is in use by {who}; {hint}", pid=pid, url=url)

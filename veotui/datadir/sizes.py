"""The data directory's size, measured in the background (``/metrics`` and the TUI read it)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


class DirSize:
    """The data directory's size, refreshed in a background thread when older than ``ttl``:
    a reader never waits for a walk of the tree (the first one sees 0 until it is done)."""

    def __init__(self, root: Path, ttl: float = 30.0) -> None:
        self.root = root
        self.ttl = ttl
        self._bytes = 0
        self._at: float | None = None
        self._lock = threading.Lock()
        self._walking = False

    def value(self) -> int:
        self._refresh_if_stale()
        return self._bytes

    def refresh_now(self) -> int:
        self._bytes = directory_bytes(self.root)
        self._at = time.monotonic()
        return self._bytes

    def _refresh_if_stale(self) -> None:
        with self._lock:
            fresh = self._at is not None and time.monotonic() - self._at < self.ttl
            if fresh or self._walking:
                return
            self._walking = True

        def walk() -> None:
            try:
                self.refresh_now()
            finally:
                self._walking = False

        threading.Thread(target=walk, name="veotui-dir-size", daemon=True).start()


def directory_bytes(root: Path) -> int:
    total = 0
    stack = [str(root)]
    while stack:
        path = stack.pop()
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total

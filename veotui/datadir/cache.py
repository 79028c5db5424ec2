"""The data directory as a bounded cache of job files, when the bucket is their home (a fleet
without a shared directory).

A job's folder is the unit: its last use is the folder's modification time (touched at every
use, and changed by every file written in it), so the order survives a restart with nothing
else to keep. Once the folders pass ``max_bytes`` the least recently used go first; a folder
used within the last ``grace`` seconds (a download may be streaming from it) and the folders
of the jobs this server runs are never evicted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from veotui.datadir.files import JobFiles
from veotui.logs import event

log = logging.getLogger(__name__)
#: A folder used this recently may be serving a download: it is not evicted.
IN_USE_SECONDS = 60.0


@dataclass(frozen=True)
class CachedJob:
    job_id: str
    size: int
    last_used: float


class JobCache:
    def __init__(
        self,
        files: JobFiles,
        max_bytes: int,
        *,
        busy: Callable[[], Collection[str]] = frozenset,
        grace: float = IN_USE_SECONDS,
    ) -> None:
        self.files = files
        self.max_bytes = max_bytes
        #: The jobs this server runs now: their folders stay whatever their age.
        self.busy = busy
        self.grace = grace
        self._trimming = threading.Lock()

    def touch(self, job_id: str) -> None:
        """The job's files were just used."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.files.folder(job_id))

    def jobs(self) -> list[CachedJob]:
        """Every cached job folder, least recently used first."""
        found = []
        for job_id in self.files.job_ids_on_disk():
            folder = self.files.folder(job_id)
            try:
                found.append(CachedJob(job_id, _size(folder), folder.stat().st_mtime))
            except FileNotFoundError:
                continue  # evicted or deleted meanwhile
        return sorted(found, key=lambda cached: cached.last_used)

    def size(self) -> int:
        return sum(cached.size for cached in self.jobs())

    def trim(self) -> list[str]:
        """Evict the least recently used folders until the cache fits ``max_bytes``; the ids
        evicted. Blocking (it walks the folders): call it in a worker thread."""
        with self._trimming:
            cached = self.jobs()
            total = sum(job.size for job in cached)
            if total <= self.max_bytes:
                return []
            keep = set(self.busy())
            recent = time.time() - self.grace
            evicted = []
            for job in cached:
                if total <= self.max_bytes:
                    break
                if job.job_id in keep or job.last_used > recent:
                    continue
                self.files.remove(job.job_id)
                total -= job.size
                evicted.append(job.job_id)
            if evicted:
                event(
                    log,
                    logging.INFO,
                    "cache.evicted",
                    "the cache passed %d bytes: evicted the files of %d job(s), least recently used first",
                    self.max_bytes,
                    len(evicted),
                    evicted=evicted,
                    cache_bytes=total,
                    cache_max_bytes=self.max_bytes,
                )
            return evicted


def _size(folder: Path) -> int:
    total = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total

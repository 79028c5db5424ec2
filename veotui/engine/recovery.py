"""Putting every job back where it stands after a stop or a crash, and, in a fleet of servers
sharing one PostgreSQL store (docs/fleet.md), the heartbeat, take-over and leadership.

- A job found processing at start resumes on this server; more than the slots allow go back
  to the queue's front, keeping their operation.
- In a fleet the slots are the fleet's. This server runs the jobs it claimed or took over,
  renews their leases with its heartbeat, takes over the jobs whose lease ran out, and stops
  running a job another server took from it.
- The once-only work (the start-up sweep of unknown folders, auto-delete, cloud clean-ups
  left pending) is done by a server alone, or by the fleet's oldest live server: its leader.
- Without a shared directory (the bucket holds the job files) each server's directory is its
  own cache: each sweeps it at start and every minute, and drops a job's files the moment it
  hears the job was deleted on any server.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time

import anyio

from veotui.core.errors import StorageUnavailable
from veotui.core.job import Change, Job, Status
from veotui.datadir.files import JobFiles
from veotui.engine.slots import Slots
from veotui.engine.storage import StorageWatch
from veotui.engine.upkeep import AutoDelete, Cleanup
from veotui.logs import event
from veotui.store.fleet import fleet_of
from veotui.store.jobs import JobStore

log = logging.getLogger(__name__)
#: In a fleet the start-up sweep leaves alone what changed this recently: another server
#: may be writing it (a job's folder is made just before its row).
FLEET_SWEEP_GRACE_SECONDS = 15 * 60.0
#: Without a shared directory: how often a server sweeps its own cache of deleted jobs' files
#: (a deletion heard while the database was away), sparing what changed this recently (a
#: submit in progress makes its folder just before its row).
CACHE_SWEEP_SECONDS = 60.0


class Recovery:
    """Puts the jobs back at start; in a fleet, keeps this server's leases and its part in the
    fleet's once-only work."""

    def __init__(
        self,
        store: JobStore,
        files: JobFiles,
        max_concurrent: int,
        generator_name: str,
        storage: StorageWatch,
        slots: Slots,
        cleanup: Cleanup,
        auto_delete: AutoDelete,
    ) -> None:
        self.store = store
        self.files = files
        self.max_concurrent = max_concurrent
        self.generator_name = generator_name
        self.storage = storage
        self.slots = slots
        self.cleanup = cleanup
        self.auto_delete = auto_delete
        #: The store shared by a fleet of servers, or None (SQLite: this server alone).
        self.fleet = fleet_of(store)
        #: Whether this server does the once-only work (auto-delete, pending clean-ups).
        self.leader = self.fleet is None
        #: Without a shared directory: the bucket's files, this server's directory their cache.
        self.bucket_files = cleanup.bucket_files
        self._swept_at = 0.0

    # -- at start -------------------------------------------------------------------------

    def recover(self) -> None:
        """Put every job back where it stands after a stop or a crash."""
        if self.fleet is not None:
            self._recover_in_fleet()
            return
        removed = self._sweep()
        self.storage.set_reserve_aside()
        resumable = self.store.active()
        for job in resumable[: self.max_concurrent]:
            with contextlib.suppress(StorageUnavailable):  # the runner waits for the disk
                self.store.update(job.job_id, note="resumed after restart")
            self.slots.launch(job.job_id)
        for job in reversed(resumable[self.max_concurrent :]):
            # More resumable jobs than slots (the limit was lowered): back to the queue's
            # front (each in turn, so they keep their order), keeping their operation, to
            # resume polling when a slot frees.
            requeue = functools.partial(
                self.store.transition, job.job_id, Status.QUEUED, detail="waiting for a slot after restart"
            )
            try:
                requeue()
            except StorageUnavailable:
                self.slots.spawn(self.storage.persist, requeue)  # once the disk accepts writes
        cleanups, auto_deletes = self._lead_begins()
        queued = self.store.queue_length()
        event(
            log,
            logging.INFO,
            "engine.recovered",
            "recovered: %d job(s) resumed, %d back in the queue, %d queued, %d cloud clean-up(s) pending,"
            " %d auto-delete(s) armed, %d orphan folder(s) removed",
            min(len(resumable), self.max_concurrent),
            max(0, len(resumable) - self.max_concurrent),
            queued,
            cleanups,
            auto_deletes,
            len(removed),
            resumed=[job.job_id for job in resumable[: self.max_concurrent]],
            requeued=[job.job_id for job in resumable[self.max_concurrent :]],
            queued=queued,
            pending_cleanups=cleanups,
            auto_deletes=auto_deletes,
            orphans_removed=len(removed),
            generator=self.generator_name,
        )

    def _recover_in_fleet(self) -> None:
        """At start in a fleet: take over the jobs whose lease ran out (a crashed server's;
        every one after the whole fleet stopped), and, as the oldest live server, do the
        once-only work."""
        assert self.fleet is not None
        self.leader = self._oldest()
        if self.bucket_files is not None:
            removed = self._sweep()  # its own cache: nothing is being written in it yet
            self._swept_at = time.monotonic()
        else:
            removed = self._sweep(older_than=FLEET_SWEEP_GRACE_SECONDS) if self.leader else []
        self.storage.set_reserve_aside()
        taken = self._take_over()
        cleanups, auto_deletes = self._lead_begins() if self.leader else (0, 0)
        event(
            log,
            logging.INFO,
            "engine.recovered",
            "recovered in a fleet as server %s: %d job(s) taken over, %d queued, %d cloud clean-up(s) pending,"
            " %d auto-delete(s) armed, %d orphan folder(s) removed",
            self.fleet.server_id,
            len(taken),
            self.store.queue_length(),
            cleanups,
            auto_deletes,
            len(removed),
            resumed=[job.job_id for job in taken],
            queued=self.store.queue_length(),
            pending_cleanups=cleanups,
            auto_deletes=auto_deletes,
            orphans_removed=len(removed),
            generator=self.generator_name,
            server_id=self.fleet.server_id,
            leader=self.leader,
        )

    def _sweep(self, older_than: float | None = None) -> list[str]:
        """Remove the folders of jobs the store does not know; their ids."""
        removed = self.files.sweep(self.store.known_ids, older_than=older_than)
        for orphan in removed:
            event(
                log,
                logging.INFO,
                "cleanup.folder",
                "removed the folder of a job the store does not know",
                job_id=orphan,
                path=str(self.files.folder(orphan)),
                outcome="removed",
            )
        return removed

    def _lead_begins(self) -> tuple[int, int]:
        """The once-only work of a start (a single server's, or the fleet leader's): the
        cloud clean-ups left pending and the auto-delete timers of downloaded jobs; their counts."""
        settled = self.store.settle_stranded()
        if settled:
            log.info("%d job(s) waited for a job that had ended: released or cancelled", settled)
        cleanups = self.store.pending_cleanups()
        for job in cleanups:
            self.slots.spawn(self.cleanup.remote, job)
        auto_deletes = []
        if self.auto_delete.enabled:
            auto_deletes = self.store.downloaded_completed()
            for job in auto_deletes:
                self.auto_delete.arm(job)
        return len(cleanups), len(auto_deletes)

    # -- the fleet ------------------------------------------------------------------------

    def _oldest(self) -> bool:
        """Whether this is the fleet's oldest live server (the one that does once-only work)."""
        assert self.fleet is not None
        servers = self.fleet.servers()
        return bool(servers) and servers[0]["server_id"] == self.fleet.server_id

    def _take_over(self) -> list[Job]:
        assert self.fleet is not None
        taken = self.fleet.take_over()
        for job in taken:
            event(log, logging.WARNING, "job.taken_over", "taken over: its server's lease ran out", job_id=job.job_id)
            if job.job_id not in self.slots:
                self.slots.launch(job.job_id)
        return taken

    async def heartbeat(self) -> None:
        """The fleet's heartbeat, every ``heartbeat_seconds`` until the engine stops."""
        assert self.fleet is not None
        while True:
            await anyio.sleep(self.fleet.heartbeat_seconds)
            try:
                self._beat()
            except StorageUnavailable as exc:
                log.warning("the fleet's heartbeat could not be recorded: %s", exc)
            except Exception:  # a bug must not end the heartbeat for good
                log.exception("the fleet's heartbeat failed; trying again")

    def _beat(self) -> None:
        """Renew this server's heartbeat and leases; stop running what another server took
        over; take over what ran out; take on the once-only work if this is now the oldest."""
        assert self.fleet is not None
        owned = self.fleet.heartbeat()
        for job_id in self.slots.running:
            if job_id not in owned:
                job = self.store.find(job_id)
                # A job that ended here is between its last write and its runner's end.
                if job is not None and job.status.is_active:
                    event(
                        log,
                        logging.WARNING,
                        "job.lease_lost",
                        "this server lost its lease on the job to another server; it stops running it here",
                        job_id=job_id,
                    )
                self.slots.stop(job_id)
        for job_id in owned - set(self.slots.running):
            # Its lease is this server's, so nobody else would ever resume it.
            event(
                log,
                logging.WARNING,
                "job.resumed",
                "this server owns the job but was not running it; resuming it",
                job_id=job_id,
            )
            self.slots.launch(job_id)
        self._take_over()
        if self.bucket_files is not None and time.monotonic() - self._swept_at > CACHE_SWEEP_SECONDS:
            self._swept_at = time.monotonic()
            self._sweep(older_than=CACHE_SWEEP_SECONDS)
        leader = self._oldest()
        if leader and not self.leader:
            log.info("this server now does the fleet's once-only work (auto-delete, pending clean-ups)")
            self.leader = True
            self._lead_begins()
        self.leader = leader
        self.slots.wake()  # a slot may have freed on another server

    def heard(self, change: Change) -> None:
        """A change another server of the fleet made (read back from the database)."""
        if not self.slots.is_open:
            return
        job = change.job
        if change.kind == "deleted" and self.bucket_files is not None:
            self.bucket_files.drop(change.job_id)
        if change.job_id in self.slots and (change.kind == "deleted" or (job is not None and not job.status.is_active)):
            self.slots.stop(change.job_id)  # cancelled or deleted on another server
        if (
            self.leader
            and job is not None
            and job.status == Status.COMPLETED
            and job.downloaded_at is not None
            and self.auto_delete.enabled
        ):
            self.auto_delete.arm(job)
        self.slots.wake()

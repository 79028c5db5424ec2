"""The scheduler: ``max_concurrent`` processing slots fed from the FIFO queue, and the queue's
actions (pause, resume, move, cancel, retry, delete, mark downloaded). It is the engine's face:
the backend calls it and nothing else of the engine but the bus.

It builds the engine's parts over the store, the generator and the job files:

- :class:`~veotui.engine.storage.StorageWatch` waits out a disk that refuses writes;
- :class:`~veotui.engine.runner.JobRunner` runs one job through its stages;
- :class:`~veotui.engine.slots.Slots` holds the running jobs and background tasks;
- :class:`~veotui.engine.upkeep.Cleanup`, :class:`~veotui.engine.upkeep.AutoDelete` and
  :class:`~veotui.engine.upkeep.DailyBudget` keep the house;
- :class:`~veotui.engine.recovery.Recovery` puts every job back at start and, in a fleet,
  keeps the leases and the leadership.

Shutting down cancels the runners without touching the store, so every job resumes.
While the disk refuses writes, nothing new starts. In a fleet (PostgreSQL, docs/fleet.md) a
job starts only through the store's fleet-wide claim.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import anyio
import anyio.abc

from veotui.core.access import AuditEntry, UserEntry
from veotui.core.errors import Conflict, InvalidRequest, StorageUnavailable
from veotui.core.job import ACTIVE_STATUSES, Change, Job, QueueState, Status, utcnow
from veotui.core.text import refuse_controls
from veotui.datadir.files import JobFiles
from veotui.engine.bucket_files import BucketFiles
from veotui.engine.recovery import Recovery
from veotui.engine.runner import JobRunner
from veotui.engine.slots import Slots
from veotui.engine.storage import StorageWatch, check_database
from veotui.engine.upkeep import AuditRetention, AutoDelete, Cleanup, DailyBudget, seconds_to_next_utc_day
from veotui.engine.users import UserLimits
from veotui.generators.base import Generator
from veotui.settings import Settings
from veotui.store.jobs import JobStore

log = logging.getLogger(__name__)
MAX_REASON_CHARS = 200


class Scheduler:
    def __init__(
        self,
        store: JobStore,
        generator: Generator,
        files: JobFiles,
        settings: Settings,
        bucket_files: BucketFiles | None = None,
    ) -> None:
        self.store = store
        self.generator = generator
        self.files = files
        self.settings = settings
        self.max_concurrent = settings.max_concurrent
        self.storage = StorageWatch(store)
        #: Where job files live when the servers of a fleet share no data directory.
        self.bucket_files = bucket_files
        self.runner = JobRunner(store, generator, files, settings, self.storage, bucket_files)
        self.cleanup = Cleanup(store, generator, files, settings, self.storage, bucket_files)
        self.slots = Slots(self.runner.run, self.cleanup.after_run)
        if bucket_files is not None:
            bucket_files.cache.busy = lambda: self.slots.running
        self.storage.when_writable(self.slots.wake)
        self.budget = DailyBudget(store, settings)
        self.user_limits = UserLimits(store, settings.users)
        self.audit_retention = AuditRetention(store, settings)
        self.auto_delete = AutoDelete(store, settings, self.storage, self.slots, self.delete)
        self.recovery = Recovery(
            store,
            files,
            settings.max_concurrent,
            generator.name,
            self.storage,
            self.slots,
            self.cleanup,
            self.auto_delete,
        )
        #: The store shared by a fleet of servers, or None (SQLite: this server alone).
        self.fleet = self.recovery.fleet

    # -- life cycle -----------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Recover, then dispatch until cancelled. Cancelling leaves the store as it is,
        so every processing job resumes at the next start."""
        async with anyio.create_task_group() as task_group:
            self.slots.open(task_group)
            try:
                self.recovery.recover()
                task_group.start_soon(self._dispatch_loop)
                task_group.start_soon(self.storage.watch)
                task_group.start_soon(check_database, self.store, self.storage.guard)
                task_group.start_soon(self.audit_retention.prune, lambda: self.recovery.leader)
                if self.fleet is not None:
                    task_group.start_soon(self.recovery.heartbeat)
                task_status.started()
                await anyio.sleep_forever()
            finally:
                self.slots.close()
                task_group.cancel_scope.cancel()

    @property
    def running_job_ids(self) -> list[str]:
        return self.slots.running

    @property
    def waiting(self) -> dict[str, tuple[datetime, str, float | None]]:
        """Jobs waiting out a backoff: when they try again, why, and their stage's time so far."""
        return self.runner.waiting

    def heard(self, change: Change) -> None:
        """A change another server of the fleet made (read back from the database)."""
        self.recovery.heard(change)

    @property
    def users(self) -> Mapping[str, UserEntry]:
        """The server's users, with their own budgets and limits (the config file's [users])."""
        return self.user_limits.users

    @users.setter
    def users(self, users: Mapping[str, UserEntry]) -> None:
        self.user_limits.users = users

    @property
    def holds(self) -> dict[str, str]:
        """Why each user's queued jobs wait (their budget, their limit), as of the last dispatch."""
        return self.user_limits.holds

    def waiting_reason(self, job: Job) -> str | None:
        return self.user_limits.waiting_reason(job)

    def probe_storage(self) -> bool:
        """Whether the disk accepts writes now (probed if it did not)."""
        return self.storage.probe()

    # -- actions --------------------------------------------------------------------------

    def wake(self) -> None:
        self.slots.wake()

    def pause(self, reason: str | None = None, *, audit: AuditEntry | None = None) -> QueueState:
        """Start nothing new until resumed; processing jobs go on. Survives a restart."""
        if reason is not None:
            if not isinstance(reason, str):
                raise InvalidRequest("reason must be text")
            reason = reason.strip() or None
            if reason is not None and len(reason) > MAX_REASON_CHARS:
                raise InvalidRequest(f"reason is {len(reason)} characters; the limit is {MAX_REASON_CHARS}")
            if reason is not None:
                # Printed on operators' terminals (queue status, the TUI's header): plain text only.
                refuse_controls("reason", reason)
                try:
                    reason.encode("utf-8")
                except UnicodeEncodeError:
                    raise InvalidRequest("reason contains a lone surrogate, which is not valid Unicode text") from None
        self.store.set_paused(True, reason, audit=_with_detail(audit, reason))
        return self.queue_state()

    def resume(self, *, audit: AuditEntry | None = None) -> QueueState:
        """Start queued jobs again. When the daily budget is what holds them, it is set
        aside for the rest of today (UTC)."""
        _, by_budget, _ = self.store.pause_flags()
        self.budget.set_aside_if_holding(by_budget)
        self.store.set_paused(False, audit=audit)
        self.wake()
        return self.queue_state()

    def queue_state(self, stored: QueueState | None = None) -> QueueState:
        """The store's pause (``stored`` where the store just read it), with the daily
        budget's figures."""
        return dataclasses.replace(
            stored or self.store.queue_state(),
            daily_budget_usd=self.budget.limit,
            budget_override=self.budget.limit is not None and self.budget.overridden(),
            spend_simulated=self.generator.is_simulator,
        )

    def move(
        self,
        job_id: str,
        *,
        to: str | None = None,
        position: int | None = None,
        among: str | None = None,
        audit: AuditEntry | None = None,
    ) -> Job:
        job = self.store.move(job_id, to=to, position=position, among=among, audit=audit)
        self.wake()  # under the fair queue's limits, a job moved first may start now
        return job

    def cancel(self, job_id: str, *, audit: AuditEntry | None = None) -> Job:
        job = self.store.get(job_id)
        if job.status.is_final:
            raise Conflict(f"job {job_id} already ended ({job.status.value}); there is nothing to cancel")
        job = self.store.transition(
            job_id,
            Status.CANCELLED,
            expect=(Status.QUEUED, *ACTIVE_STATUSES),
            detail="cancelled by user",
            audit=audit,
        )
        self.slots.stop(job_id)
        return job

    def retry(self, job_id: str, *, audit: AuditEntry | None = None) -> Job:
        """Queue a failed or cancelled job again. If its operation had finished with videos,
        the job keeps it and only fetches those videos again, at the front of the queue (it
        buys nothing and holds a slot for seconds, so it never waits behind paid
        generations); otherwise it is submitted anew, from the back of the queue."""
        job = self.store.get(job_id)
        if job.status not in (Status.FAILED, Status.CANCELLED):
            raise Conflict(f"job {job_id} is {job.status.value}; only failed or cancelled jobs can be retried")
        waiting_for = self._waits_again(job)
        self.cleanup.remove_outputs(job_id)
        if job.retry_reuses_operation:
            kept: dict[str, Any] = {}
            detail = "retried by user: fetches the videos of the finished generation again, no new charge"
        else:
            kept = {"operation": None, "operation_done": False, "result": None}
            detail = "retried by user: submits again, Google charges again"
        job = self.store.transition(
            job_id,
            Status.QUEUED,
            expect=(Status.FAILED, Status.CANCELLED),
            detail=detail,
            audit=_with_detail(audit, detail),
            **kept,
            submitting=False,
            waiting_for=waiting_for,
            error=None,
            error_kind=None,
            videos=(),
            started_at=None,
            finished_at=None,
            downloaded_at=None,
        )
        if job.retry_reuses_operation:
            try:
                job = self.store.move(job_id, to="top")
            except Conflict:
                job = self.store.get(job_id)  # another server of the fleet started it already
        self.wake()
        return job

    def _waits_again(self, job: Job) -> str | None:
        """What a retried job waits for: the job it was queued after, while that job has not
        completed; refused when that job will never complete."""
        after = job.request.after
        if after is None:
            return None
        waited = self.store.find(after)
        if waited is not None and waited.status == Status.COMPLETED:
            return None
        if waited is None or waited.status.is_final:
            state = waited.status.value if waited is not None else "deleted"
            raise Conflict(
                f"job {job.job_id} waits for job {after}, which {'was deleted' if waited is None else state}; "
                f"it would never start. Retry job {after} first, or submit this job again without it"
            )
        return after

    def delete(self, job_id: str, reason: str | None = None, *, audit: AuditEntry | None = None) -> None:
        # The files go first: on a full disk that frees the room to record the delete.
        self.store.get(job_id)
        self.cleanup.remove_folder(job_id)
        job = self.store.delete(job_id, reason, audit=audit)
        self.slots.stop(job_id)
        self.slots.spawn(self.cleanup.remote, job)
        self.storage.probe_soon()

    def mark_downloaded(self, job_id: str, *, by: str | None = None) -> Job:
        """A download completed: start the auto-delete timer (once). ``by`` is the user of
        the per-user token that downloaded it; None is the admin (the server's own token, a
        server without tokens, this machine's TUI). Only the job's owner or the admin starts
        it: on a shared server one person's save must not remove the job for everyone."""
        job = self.store.get(job_id)
        if job.status != Status.COMPLETED or job.downloaded_at is not None:
            return job
        if by is not None and by != job.request.user:
            log.info("job %s was downloaded by %s, not its owner %s: no auto-delete", job_id, by, job.request.user)
            return job
        try:
            job = self.store.update(job_id, downloaded_at=utcnow(), note="downloaded")
        except StorageUnavailable as exc:
            log.warning("job %s was downloaded, but its auto-delete timer could not start: %s", job_id, exc)
            return job
        if self.auto_delete.enabled and self.recovery.leader:
            self.auto_delete.arm(job)  # in a fleet the oldest server hears of it and arms it
        return job

    # -- dispatch -------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while True:
            if self.storage.ok:  # nothing new starts while the disk refuses writes
                try:
                    await self._dispatch()
                except StorageUnavailable:
                    pass  # the storage watch wakes this loop when the disk accepts writes
                except Exception:  # a bug must not end dispatch for good
                    log.exception("dispatching the queue failed; trying again at the next change")
            # A budget pause lifts by itself at the next UTC day; so does a user's own budget.
            try:
                _, by_budget, _ = self.store.pause_flags()
            except StorageUnavailable:  # the database is away (PostgreSQL): woken when it is back
                by_budget = False
            held = by_budget or bool(self.holds)
            await self.slots.wait(seconds_to_next_utc_day() + 1 if held else math.inf)

    async def _dispatch(self) -> None:
        policy = self.settings.queue_policy
        # A fleet counts its slots across servers at the claim; this server's jobs are among
        # them, so with its own slots all taken there is nothing to claim (nor to read).
        while len(self.slots) < self.max_concurrent:
            paused, by_budget, reason = self.store.pause_flags()
            if paused and not by_budget:
                return
            job = await self.user_limits.next_job(policy)
            if job is None:
                return
            hold = self.budget.hold(job)
            if hold is not None:
                if hold != reason:
                    log.info("queue paused: %s", hold)
                    self.store.set_paused(True, hold, by_budget=True)
                return
            if paused:  # by the budget, which now allows the next job (raised, a new day)
                log.info("the daily budget allows the next job again; the queue runs")
                self.store.set_paused(False)
            if self.fleet is not None:
                # The fleet's slots: counted and claimed in one transaction, across servers.
                if policy == "fifo" and not self.holds:
                    claimed = await self.fleet.aclaim_next(self.max_concurrent)
                else:  # the job chosen by the policy, past the held users, within its user's limit
                    limit = self.user_limits.limit_of(job.request.user)
                    claimed = await self.fleet.aclaim_next(self.max_concurrent, job, limit)
                if claimed is None:
                    return
                self.slots.launch(claimed.job_id)
                continue
            started = (job.started_at if job.operation else None) or utcnow()
            await self.store.atransition(
                job.job_id,
                Status.STARTING,
                expect=(Status.QUEUED,),
                attempts=job.attempts + 1,
                started_at=started,
            )
            self.slots.launch(job.job_id)


def _with_detail(audit: AuditEntry | None, detail: str | None) -> AuditEntry | None:
    return dataclasses.replace(audit, detail=detail) if audit is not None and detail else audit

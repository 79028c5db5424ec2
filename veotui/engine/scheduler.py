"""The scheduler: ``max_concurrent`` processing slots fed from the FIFO queue, each slot
driving one job through its stages against a generator.

Durability rules (docs/architecture.md has the long form):

- The store is the truth. Every stage change is committed before the work of that stage.
- ``submitting`` is committed before a submit is sent, and the operation's name the moment
  it comes back. After a crash between the two, the generator is asked whether that submit
  created an operation (the simulator can tell; Veo cannot); if it cannot tell, the job fails
  with ``submit_unknown`` instead of being sent, and paid for, a second time.
- A processing job found at start resumes where it stands: with an operation it polls that
  same operation; without one it starts its stages again (nothing was sent).
- A submitted operation is paid for: transient faults while polling it never fail the job
  before ``veo_deadline``. Once it finished with videos the job keeps it (``operation_done``
  and the generator's saved result) until deleted, so a retry fetches those videos again
  instead of buying them twice.
- Shutting down cancels the runners without touching the store, so every job resumes.
- A write the disk refuses (full, read-only) never ends the scheduler: the job in hand waits
  until the disk accepts writes again and carries on from its last recorded stage; dispatch
  pauses meanwhile, and the disk is probed with backoff.
- In a fleet (PostgreSQL, docs/fleet.md) the slots are the fleet's: a job starts only through
  the store's fleet-wide claim. This server runs the jobs it claimed or took over, renews
  their leases with its heartbeat, takes over the jobs whose lease ran out, and stops running
  a job another server took from it. The once-only work (the start-up sweep, auto-delete,
  cloud clean-ups left pending) is done by the fleet's oldest live server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import anyio
import anyio.abc
from anyio.abc import TaskGroup

from veotui.core.access import AuditEntry, UserEntry
from veotui.core.errors import Conflict, ErrorKind, InvalidRequest, JobNotFound, StorageUnavailable
from veotui.core.job import ACTIVE_STATUSES, Change, Job, QueueState, Status, Video, stage_index, utcnow
from veotui.datadir.files import JobFiles
from veotui.datadir.health import DAMAGED, StorageState, disk_full_error, format_bytes, free_bytes
from veotui.generators.base import (
    GenerationResult,
    Generator,
    GeneratorFault,
    JobInputs,
    PermanentFault,
    SubmitOutcomeUnknown,
    TransientFault,
)
from veotui.logs import event
from veotui.settings import Settings
from veotui.store.fleet import LeaseLost, fleet_of
from veotui.store.jobs import AUTO_DELETED, JobStore

log = logging.getLogger(__name__)
T = TypeVar("T")
BACKOFF_CAP_SECONDS = 60.0
MAX_REASON_CHARS = 200
#: While the disk refuses writes it is probed after this delay, doubling up to the cap.
PROBE_FIRST_SECONDS = 0.25
PROBE_CAP_SECONDS = 5.0
#: Seconds after start before a large database's deferred check begins.
DEFERRED_CHECK_SECONDS = 5.0
#: How often audit entries past their retention are pruned.
AUDIT_PRUNE_SECONDS = 6 * 3600.0
#: In a fleet the start-up sweep leaves alone what changed this recently: another server
#: may be writing it (a job's folder is made just before its row).
FLEET_SWEEP_GRACE_SECONDS = 15 * 60.0


class _JobGone(Exception):
    """The job was cancelled or deleted while its runner worked; the runner just stops."""


class _JobFailed(Exception):
    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class _Run:
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)


def backoff_delay(
    retry: int, base: float, cap: float = BACKOFF_CAP_SECONDS, rng: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**retry))."""
    return rng() * min(cap, base * 2.0**retry)


class Scheduler:
    def __init__(
        self,
        store: JobStore,
        generator: Generator,
        files: JobFiles,
        settings: Settings,
    ) -> None:
        self.store = store
        self.generator = generator
        self.files = files
        self.settings = settings
        self.max_concurrent = settings.max_concurrent
        self.poll_interval = (
            settings.poll_interval if settings.poll_interval is not None else generator.default_poll_interval
        )
        self._runs: dict[str, _Run] = {}
        #: Jobs waiting out a backoff: when they try again, why, and the time they had spent
        #: in their stage when the wait began (their progress holds still meanwhile).
        self.waiting: dict[str, tuple[datetime, str, float | None]] = {}
        self._wake = anyio.Event()
        self._task_group: TaskGroup | None = None
        self.storage = store.guard
        self._storage_ok = anyio.Event()
        self._storage_ok.set()
        self._storage_down = anyio.Event()
        self._probe_soon = anyio.Event()
        self.storage.add_listener(self._storage_changed)
        #: The store shared by a fleet of servers, or None (SQLite: this server alone).
        self.fleet = fleet_of(store)
        #: Whether this server does the once-only work (auto-delete, pending clean-ups).
        self.leader = self.fleet is None
        self._armed: set[str] = set()
        #: The server's users, with their own budgets and limits (the config file's [users]).
        self.users: Mapping[str, UserEntry] = settings.users
        #: Why each user's queued jobs wait (their budget, their limit), as of the last dispatch.
        self.holds: dict[str, str] = {}

    # -- life cycle -----------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Recover, then dispatch until cancelled. Cancelling leaves the store as it is,
        so every processing job resumes at the next start."""
        async with anyio.create_task_group() as task_group:
            self._task_group = task_group
            try:
                self._recover()
                task_group.start_soon(self._dispatch_loop)
                task_group.start_soon(self._watch_storage)
                task_group.start_soon(self._check_store)
                task_group.start_soon(self._prune_audit)
                if self.fleet is not None:
                    task_group.start_soon(self._fleet_loop)
                task_status.started()
                await anyio.sleep_forever()
            finally:
                self._task_group = None
                task_group.cancel_scope.cancel()

    @property
    def running_job_ids(self) -> list[str]:
        return list(self._runs)

    def _recover(self) -> None:
        """Put every job back where it stands after a stop or a crash."""
        if self.fleet is not None:
            self._recover_in_fleet()
            return
        removed = self._sweep()
        try:
            self.storage.ensure_reserve()
        except OSError as exc:
            self.storage.error(exc, "set aside its storage reserve")
        resumable = self.store.active()
        for job in resumable[: self.max_concurrent]:
            with contextlib.suppress(StorageUnavailable):  # the runner waits for the disk
                self.store.update(job.job_id, note="resumed after restart")
            self._launch(job.job_id)
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
                self._spawn(self._persist, requeue)  # once the disk accepts writes
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
            generator=self.generator.name,
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

    # -- the fleet -------------------------------------------------------------------------

    def _recover_in_fleet(self) -> None:
        """At start in a fleet: take over the jobs whose lease ran out (a crashed server's;
        every one after the whole fleet stopped), and, as the oldest live server, do the
        once-only work."""
        assert self.fleet is not None
        self.leader = self._oldest()
        removed = self._sweep(older_than=FLEET_SWEEP_GRACE_SECONDS) if self.leader else []
        try:
            self.storage.ensure_reserve()
        except OSError as exc:
            self.storage.error(exc, "set aside its storage reserve")
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
            generator=self.generator.name,
            server_id=self.fleet.server_id,
            leader=self.leader,
        )

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
            if job.job_id not in self._runs:
                self._launch(job.job_id)
        return taken

    def _lead_begins(self) -> tuple[int, int]:
        """The once-only work of a start (a single server's, or the fleet leader's): the
        cloud clean-ups left pending and the auto-delete timers of downloaded jobs; their counts."""
        cleanups = self.store.pending_cleanups()
        for job in cleanups:
            self._spawn(self._cleanup_remote, job)
        auto_deletes = []
        if self.settings.auto_delete_after_download is not None:
            auto_deletes = self.store.downloaded_completed()
            for job in auto_deletes:
                self._schedule_auto_delete(job)
        return len(cleanups), len(auto_deletes)

    async def _fleet_loop(self) -> None:
        assert self.fleet is not None
        while True:
            await anyio.sleep(self.fleet.heartbeat_seconds)
            try:
                self._fleet_tick()
            except StorageUnavailable as exc:
                log.warning("the fleet's heartbeat could not be recorded: %s", exc)
            except Exception:  # a bug must not end the heartbeat for good
                log.exception("the fleet's heartbeat failed; trying again")

    def _fleet_tick(self) -> None:
        """Renew this server's heartbeat and leases; stop running what another server took
        over; take over what ran out; take on the once-only work if this is now the oldest."""
        assert self.fleet is not None
        owned = self.fleet.heartbeat()
        for job_id in list(self._runs):
            if job_id not in owned:
                event(
                    log,
                    logging.WARNING,
                    "job.lease_lost",
                    "this server lost its lease on the job to another server; it stops running it here",
                    job_id=job_id,
                )
                self._stop_run(job_id)
        for job_id in owned - self._runs.keys():
            # Its lease is this server's, so nobody else would ever resume it.
            event(
                log,
                logging.WARNING,
                "job.resumed",
                "this server owns the job but was not running it; resuming it",
                job_id=job_id,
            )
            self._launch(job_id)
        self._take_over()
        leader = self._oldest()
        if leader and not self.leader:
            log.info("this server now does the fleet's once-only work (auto-delete, pending clean-ups)")
            self.leader = True
            self._lead_begins()
        self.leader = leader
        self.wake()  # a slot may have freed on another server

    def heard(self, change: Change) -> None:
        """A change another server of the fleet made (read back from the database)."""
        if self._task_group is None:
            return
        job = change.job
        if change.job_id in self._runs and (change.kind == "deleted" or (job is not None and not job.status.is_active)):
            self._stop_run(change.job_id)  # cancelled or deleted on another server
        if (
            self.leader
            and job is not None
            and job.status == Status.COMPLETED
            and job.downloaded_at is not None
            and self.settings.auto_delete_after_download is not None
        ):
            self._schedule_auto_delete(job)
        self.wake()

    # -- actions --------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def pause(self, reason: str | None = None, *, audit: AuditEntry | None = None) -> QueueState:
        """Start nothing new until resumed; processing jobs go on. Survives a restart."""
        if reason is not None:
            if not isinstance(reason, str):
                raise InvalidRequest("reason must be text")
            reason = reason.strip() or None
            if reason is not None and len(reason) > MAX_REASON_CHARS:
                raise InvalidRequest(f"reason is {len(reason)} characters; the limit is {MAX_REASON_CHARS}")
            if reason is not None:
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
        if self.settings.daily_budget_usd is not None and not self._budget_overridden():
            upcoming = self.store.next_queued()
            if by_budget or (upcoming is not None and self._budget_hold(upcoming)):
                self.store.set_budget_override_day(_utc_day())
                log.info("the daily budget is set aside until 00:00 UTC (resumed by hand)")
        self.store.set_paused(False, audit=audit)
        self.wake()
        return self.queue_state()

    def queue_state(self) -> QueueState:
        """The store's pause, with the daily budget's figures."""
        return dataclasses.replace(
            self.store.queue_state(),
            daily_budget_usd=self.settings.daily_budget_usd,
            budget_override=self.settings.daily_budget_usd is not None and self._budget_overridden(),
            spend_simulated=self.generator.is_simulator,
        )

    # -- the daily budget -------------------------------------------------------------------

    def _budget_overridden(self) -> bool:
        return self.store.budget_override_day() == _utc_day()

    def _budget_hold(self, job: Job) -> str | None:
        """Why ``job`` must wait, if starting it would pass the daily budget: what was bought
        today, plus what the jobs starting now will buy, plus its own estimate."""
        budget = self.settings.daily_budget_usd
        if budget is None or job.operation is not None or self._budget_overridden():
            return None  # a job with an operation resumes or refetches it: nothing new is bought
        starting = sum(j.estimated_cost_usd or 0.0 for j in self.store.active() if j.operation is None)
        spent = self.store.spend_today() + starting
        estimate = job.estimated_cost_usd or 0.0
        if spent + estimate <= budget + 0.005:
            return None
        return f"daily budget ${budget:,.2f}: ${spent:,.2f} spent, next job ${estimate:,.2f}"

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
        self._stop_run(job_id)
        return job

    def retry(self, job_id: str, *, audit: AuditEntry | None = None) -> Job:
        """Queue a failed or cancelled job again. If its operation had finished with videos,
        the job keeps it and only fetches those videos again; otherwise it is submitted anew."""
        job = self.store.get(job_id)
        if job.status not in (Status.FAILED, Status.CANCELLED):
            raise Conflict(f"job {job_id} is {job.status.value}; only failed or cancelled jobs can be retried")
        self._remove_outputs(job_id)
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
            error=None,
            error_kind=None,
            videos=(),
            started_at=None,
            finished_at=None,
            downloaded_at=None,
        )
        self.wake()
        return job

    def delete(self, job_id: str, reason: str | None = None, *, audit: AuditEntry | None = None) -> None:
        # The files go first: on a full disk that frees the room to record the delete.
        self.store.get(job_id)
        self._remove_folder(job_id)
        job = self.store.delete(job_id, reason, audit=audit)
        self._stop_run(job_id)
        self._spawn(self._cleanup_remote, job)
        if not self.storage.ok:
            self._probe_soon.set()

    def mark_downloaded(self, job_id: str) -> Job:
        """A download completed: start the auto-delete timer (once)."""
        job = self.store.get(job_id)
        if job.status != Status.COMPLETED or job.downloaded_at is not None:
            return job
        try:
            job = self.store.update(job_id, downloaded_at=utcnow(), note="downloaded")
        except StorageUnavailable as exc:
            log.warning("job %s was downloaded, but its auto-delete timer could not start: %s", job_id, exc)
            return job
        if self.settings.auto_delete_after_download is not None and self.leader:
            self._schedule_auto_delete(job)  # in a fleet the oldest server hears of it and arms it
        return job

    def _stop_run(self, job_id: str) -> None:
        run = self._runs.pop(job_id, None)
        if run is not None:
            run.scope.cancel()
            self.wake()

    # -- dispatch -------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while True:
            if self.storage.ok:  # nothing new starts while the disk refuses writes
                try:
                    self._dispatch()
                except StorageUnavailable:
                    pass  # the storage watch wakes this loop when the disk accepts writes
                except Exception:  # a bug must not end dispatch for good
                    log.exception("dispatching the queue failed; trying again at the next change")
            # A budget pause lifts by itself at the next UTC day.
            try:
                _, by_budget, _ = self.store.pause_flags()
            except StorageUnavailable:  # the database is away (PostgreSQL): woken when it is back
                by_budget = False
            # So does a user's own budget (their jobs are held meanwhile).
            held = by_budget or bool(self.holds)
            with anyio.move_on_after(_seconds_to_next_utc_day() + 1 if held else math.inf):
                await self._wake.wait()
            self._wake = anyio.Event()

    def _dispatch(self) -> None:
        policy = self.settings.queue_policy
        while self.fleet is not None or len(self._runs) < self.max_concurrent:
            paused, by_budget, reason = self.store.pause_flags()
            if paused and not by_budget:
                return
            job = self._next_job(policy)
            if job is None:
                return
            hold = self._budget_hold(job)
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
                    claimed = self.fleet.claim_next(self.max_concurrent)
                else:
                    user = self.users.get(job.request.user)
                    limit = user.max_concurrent if user is not None else None
                    claimed = self.fleet.claim_next(self.max_concurrent, job, limit)
                if claimed is None:
                    return
                self._launch(claimed.job_id)
                continue
            started = (job.started_at if job.operation else None) or utcnow()
            self.store.transition(
                job.job_id,
                Status.STARTING,
                expect=(Status.QUEUED,),
                attempts=job.attempts + 1,
                started_at=started,
            )
            self._launch(job.job_id)

    # -- each user's budget and limit ---------------------------------------------------------

    def _next_job(self, policy: str) -> Job | None:
        """The job to start next by ``policy``, passing over the users who must wait (at their
        limit, or past their budget with their next job); :attr:`holds` says why they wait."""
        holds = self._user_holds()
        while True:
            job = self.store.next_to_start(policy, holds)
            if job is None:
                break
            hold = self._user_budget_hold(job)
            if hold is None:
                break
            holds[job.request.user] = hold
        self.holds = holds
        return job

    def _user_holds(self) -> dict[str, str]:
        """The users whose jobs cannot start now, whatever the job: at their limit of jobs
        processing, or with their budget spent. Counted in the store, so across a fleet."""
        limited = {name: user for name, user in self.users.items() if user.max_concurrent or user.daily_budget_usd}
        if not limited:
            return {}
        holds: dict[str, str] = {}
        loads = self.store.loads()
        for name, user in limited.items():
            running, queued = loads.get(name, (0, 0))
            if not queued:
                continue
            if user.max_concurrent is not None and running >= user.max_concurrent:
                holds[name] = (
                    f"{name}'s limit: {running} of {user.max_concurrent} job(s) at once processing; "
                    "it starts when one of them ends"
                )
            elif user.daily_budget_usd is not None:
                spent = self._user_spent(name)
                if spent >= user.daily_budget_usd - 0.005:
                    holds[name] = self._budget_sentence(name, user.daily_budget_usd, spent, None)
        return holds

    def _user_spent(self, user: str) -> float:
        """What ``user``'s jobs bought today, plus what their jobs starting now will buy."""
        starting = sum(
            j.estimated_cost_usd or 0.0 for j in self.store.active() if j.operation is None and j.request.user == user
        )
        return self.store.spend_today(user) + starting

    def _user_budget_hold(self, job: Job) -> str | None:
        user = self.users.get(job.request.user)
        if user is None or user.daily_budget_usd is None or job.operation is not None:
            return None
        spent = self._user_spent(user.name)
        estimate = job.estimated_cost_usd or 0.0
        if spent + estimate <= user.daily_budget_usd + 0.005:
            return None
        return self._budget_sentence(user.name, user.daily_budget_usd, spent, estimate)

    @staticmethod
    def _budget_sentence(user: str, budget: float, spent: float, estimate: float | None) -> str:
        sentence = f"{user}'s daily budget ${budget:,.2f}: ${spent:,.2f} spent today"
        if estimate is not None:
            sentence += f", next job ${estimate:,.2f}"
        return sentence + "; it starts at 00:00 UTC or when the budget is raised"

    def waiting_reason(self, job: Job) -> str | None:
        """Why a queued job that could start does not: its user's budget or limit, or the
        queue's pause."""
        if job.status != Status.QUEUED:
            return None
        hold = self.holds.get(job.request.user)
        if hold is not None:
            return hold
        paused, _, reason = self.store.pause_flags()
        if paused:
            return f"the queue is paused: {reason}" if reason else "the queue is paused"
        return None

    # -- storage --------------------------------------------------------------------------

    def _storage_changed(self, state: StorageState) -> None:
        if state.ok:
            self._storage_ok.set()
            self.wake()
        else:
            if self._storage_ok.is_set():
                self._storage_ok = anyio.Event()
            self._storage_down.set()

    async def _check_store(self) -> None:
        """A large database is checked after start; damage stops new starts until a restart.
        It waits a few seconds first, so its seconds of CPU do not slow the start-up it was
        deferred from (the first clients' reads, the TUI's first paint). It runs at normal
        priority: a thread that SQLite's process-wide locks may wait on must not be starved."""
        await anyio.sleep(DEFERRED_CHECK_SECONDS)
        reason = await anyio.to_thread.run_sync(self.store.deferred_check, abandon_on_cancel=True)
        if reason is not None:
            self.storage.degrade(DAMAGED, reason)

    async def _prune_audit(self) -> None:
        """Forget audit entries older than ``audit_retention_days``, now and every few hours."""
        while True:
            if self.leader:
                with contextlib.suppress(StorageUnavailable):  # tried again at the next round
                    self.store.prune_audit(self.settings.audit_retention_days)
            await anyio.sleep(AUDIT_PRUNE_SECONDS)

    async def _watch_storage(self) -> None:
        """While the disk refuses writes, probe it with backoff until it accepts them."""
        while True:
            await self._storage_down.wait()
            delay = PROBE_FIRST_SECONDS
            while True:
                with anyio.move_on_after(delay):
                    await self._probe_soon.wait()
                self._probe_soon = anyio.Event()
                if self.probe_storage():
                    break
                delay = min(delay * 2, PROBE_CAP_SECONDS)
            self._storage_down = anyio.Event()

    def probe_storage(self) -> bool:
        """Whether the disk accepts writes now: the reserve can be written again and SQLite
        commits. Marks the storage recovered (which resumes everything) when it does."""
        if self.storage.ok:
            return True
        try:
            self.storage.ensure_reserve()
            self.store.probe()
        except StorageUnavailable:
            return False
        except OSError as exc:
            if self.storage.error(exc, "set aside its storage reserve") is None:
                log.warning("probing the data directory failed: %s", exc)
            return False
        self.storage.recovered()
        return True

    async def _storage_back(self) -> None:
        while not self.storage.ok:
            await self._storage_ok.wait()

    async def _persist(self, write: Callable[[], T]) -> T:
        """A store write that must happen: waits out a disk that refuses writes."""
        while True:
            try:
                return write()
            except StorageUnavailable:
                if self.storage.ok:  # refused without a fault on record (a lock timeout): do not spin
                    await anyio.sleep(PROBE_FIRST_SECONDS)
                await self._storage_back()

    def _launch(self, job_id: str) -> None:
        run = _Run()
        self._runs[job_id] = run
        self._spawn(self._runner, job_id, run)

    def _spawn(self, function: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        assert self._task_group is not None, "the scheduler is not running"
        self._task_group.start_soon(self._guarded, function, *args)

    @staticmethod
    async def _guarded(function: Callable[..., Awaitable[Any]], *args: Any) -> None:
        # An error in one background task must not end the scheduler's task group.
        try:
            await function(*args)
        except Exception:
            log.exception("%s failed", getattr(function, "__name__", function))

    async def _runner(self, job_id: str, run: _Run) -> None:
        try:
            with run.scope:
                await self._run_job(job_id)
        finally:
            if self._runs.get(job_id) is run:
                del self._runs[job_id]
            self.wake()
            await self._after_run(job_id)

    async def _run_job(self, job_id: str) -> None:
        while True:
            try:
                await self._process(job_id)
            except (_JobGone, JobNotFound):
                pass
            except LeaseLost as exc:  # another server of the fleet runs it now
                event(log, logging.WARNING, "job.lease_lost", "%s", exc, job_id=job_id)
            except Conflict:
                pass  # cancelled or deleted between two awaits
            except StorageUnavailable:
                # The stage reached could not be recorded: wait for the disk, then carry on
                # from the last stage that was (as after a restart).
                if self.storage.ok:  # refused without a disk fault on record: do not spin
                    await anyio.sleep(PROBE_FIRST_SECONDS)
                await self._storage_back()
                with contextlib.suppress(StorageUnavailable, Conflict, JobNotFound):
                    self.store.update(job_id, note="the store accepts writes again; carrying on")
                continue
            except Exception as exc:  # noqa: BLE001 - one job fails, never the engine (logged below)
                full = disk_full_error(exc)
                if full is not None:
                    message = self._disk_full_message(job_id, full)
                    event(log, logging.WARNING, "job.disk_full", "%s", message, job_id=job_id)
                    await self._fail(job_id, message, ErrorKind.DISK_FULL)
                elif isinstance(exc, _JobFailed):
                    await self._fail(job_id, str(exc), exc.kind)
                else:  # a bug must fail one job, not the engine
                    event(
                        log,
                        logging.ERROR,
                        "job.internal_error",
                        "internal error: %r",
                        exc,
                        job_id=job_id,
                        exc_info=True,
                        error_type=type(exc).__name__,
                    )
                    await self._fail(job_id, f"veotui hit an internal error: {exc!r}.", ErrorKind.INTERNAL)
            return

    def _disk_full_message(self, job_id: str, exc: OSError) -> str:
        """Where the space ran out and about how much this job needs there (never the
        temporary file's name)."""
        where = self.files.root
        free = free_bytes(where)
        job = self.store.find(job_id)
        need = self.generator.estimated_output_bytes(job.request) if job is not None else None
        parts = [f"the disk holding {where} is full"]
        if free is not None:
            parts.append(f" ({format_bytes(free)} free)")
        if need:
            parts.append(f"; this job needs about {format_bytes(need)} there for its videos and their zip")
        return "".join(parts) + ". Free some space, then retry (r)."

    async def _after_run(self, job_id: str) -> None:
        try:
            await self._tidy(job_id)
        except Exception:  # tidying is best effort; the start-up sweep catches what is left
            log.exception("tidying up after job %s failed", job_id)

    async def _tidy(self, job_id: str) -> None:
        """Tidy up once the runner is really done (its worker threads included)."""
        job = self.store.find(job_id)
        if job is not None and job.status.is_active:
            return  # shut down mid-job: resumes at next start
        with anyio.CancelScope(shield=True):
            if job is None:
                self._remove_folder(job_id)
            elif job.status in (Status.FAILED, Status.CANCELLED):
                self._remove_outputs(job_id)
                await self._cleanup_quietly(job, everything=False)
            elif job.status == Status.COMPLETED:
                await self._cleanup_quietly(job, everything=False)

    def _remove_folder(self, job_id: str) -> None:
        folder = self.files.folder(job_id)
        existed = folder.exists()
        self.files.remove(job_id)
        outcome = "absent" if not existed else "left behind" if folder.exists() else "removed"
        event(
            log,
            logging.WARNING if outcome == "left behind" else logging.INFO,
            "cleanup.folder",
            "%s: %s",
            folder,
            outcome,
            job_id=job_id,
            path=str(folder),
            outcome=outcome,
        )

    def _remove_outputs(self, job_id: str) -> None:
        folder = self.files.folder(job_id)
        self.files.remove_outputs(job_id)
        event(
            log,
            logging.INFO,
            "cleanup.outputs",
            "removed the partial outputs in %s (the input image stays for a retry)",
            folder,
            job_id=job_id,
            path=str(folder),
            outcome="removed",
        )

    async def _cleanup_quietly(self, job: Job, *, everything: bool) -> bool:
        try:
            await self.generator.cleanup(job, everything=everything)
            return True
        except Exception as exc:  # noqa: BLE001 - clean-up is retried later; it must never fail a job
            event(
                log,
                logging.WARNING,
                "cleanup.remote",
                "clean-up of the job's remote files failed: %s",
                exc,
                job_id=job.job_id,
                outcome="error",
            )
            return False

    async def _cleanup_remote(self, job: Job) -> None:
        """Remove a deleted job's remote files, retrying until it works."""
        for retry in range(8):
            if await self._cleanup_quietly(job, everything=True):
                await self._persist(functools.partial(self.store.cleanup_done, job.job_id))
                return
            await anyio.sleep(backoff_delay(retry, self.settings.retry_base_seconds))
        event(
            log,
            logging.WARNING,
            "cleanup.remote",
            "gave up cleaning the job's remote files for now; will try again at the next start",
            job_id=job.job_id,
            outcome="postponed",
        )

    async def _fail(self, job_id: str, message: str, kind: str) -> None:
        """Record the failure, waiting for the disk if it refuses writes just now."""
        with contextlib.suppress(Conflict, JobNotFound):
            await self._persist(
                functools.partial(
                    self.store.transition,
                    job_id,
                    Status.FAILED,
                    expect=ACTIVE_STATUSES,
                    detail=message,
                    error=message,
                    error_kind=kind,
                )
            )

    def _schedule_auto_delete(self, job: Job) -> None:
        assert job.downloaded_at is not None and self.settings.auto_delete_after_download is not None
        if job.job_id in self._armed:
            return
        self._armed.add(job.job_id)
        due = job.downloaded_at + timedelta(seconds=self.settings.auto_delete_after_download)

        async def auto_delete() -> None:
            try:
                await anyio.sleep(max(0.0, (due - utcnow()).total_seconds()))
                current = self.store.find(job.job_id)
                if current is not None and current.status == Status.COMPLETED and current.downloaded_at:
                    with contextlib.suppress(JobNotFound):
                        await self._persist(functools.partial(self.delete, job.job_id, AUTO_DELETED))
            finally:
                self._armed.discard(job.job_id)

        self._spawn(auto_delete)

    # -- one job --------------------------------------------------------------------------

    def _enter(self, job: Job, status: Status, **fields: Any) -> Job:
        """Move forward to ``status`` unless a resumed job is already there or beyond."""
        current = job
        if current.status not in ACTIVE_STATUSES:
            raise _JobGone()
        # The transition's status check catches a cancel or delete made meanwhile.
        while stage_index(current.status) < stage_index(status):
            following = ACTIVE_STATUSES[stage_index(current.status) + 1]
            current = self.store.transition(job.job_id, following, expect=(current.status,), **fields)
        return current

    async def _process(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job.retry_reuses_operation:
            await self._fetch_again(job)
            return
        inputs = self._inputs(job)

        if job.operation is None and job.submitting:
            operation = await self.generator.find_operation(job)
            if operation is None and self.generator.knows_its_operations:
                job = self.store.update(
                    job_id, submitting=False, note="the submit before the restart created nothing; sending it now"
                )
            elif operation is None:
                raise _JobFailed(
                    f"veotui stopped after sending this job to {self.generator.name} and before the answer "
                    "was recorded. The generation may have been accepted and billed, so it was not sent "
                    "again. Check your Google Cloud console before submitting it again.",
                    SubmitOutcomeUnknown.kind,
                )
            else:
                job = self.store.record_operation(job_id, operation, note=f"found operation {operation} after restart")

        if job.operation is None:
            job = self._enter(job, Status.UPLOADING_IMAGE)
            if inputs.files():
                inputs = await self._call(job, "upload the inputs", lambda: self.generator.upload_inputs(job, inputs))
            job = self._enter(job, Status.GENERATING)
            operation = await self._submit(job, inputs)
            # The operation exists (and may be billed): its name must be recorded, whatever it takes.
            job = await self._persist(
                functools.partial(self.store.record_operation, job_id, operation, note=f"operation {operation}")
            )
        else:
            job = self._enter(job, Status.GENERATING)

        result = await self._poll_until_done(job)
        # Only a generation seen whole by this process, on the monotonic clock, is a sample.
        generating_seconds = self.store.stage_elapsed(job)
        job = self._enter(job, Status.PROCESSING)
        if not result.videos:
            raise _JobFailed(
                "the generation finished without any video. Google does not charge for such attempts; "
                "rephrase the prompt and retry.",
                ErrorKind.NO_VIDEOS,
            )
        # Paid for and done: from here on a retry fetches these videos, it never buys them again.
        saved = self.generator.save_result(result)
        job = await self._persist(functools.partial(self.store.update, job_id, operation_done=True, result=saved))
        await self._download(job, result, generating_seconds)

    async def _fetch_again(self, job: Job) -> None:
        """A retried job whose operation already finished: fetch its videos, submit nothing."""
        job_id = job.job_id
        job = self._enter(job, Status.GENERATING)
        result = self.generator.load_result(job.result) if job.result is not None else None
        if result is None:
            try:
                result = await self._poll_until_done(job)
            except _JobFailed as failure:
                if failure.kind == ErrorKind.OPERATION_LOST:
                    # Nothing left to fetch: the next retry has to generate again.
                    self.store.update(job_id, operation_done=False, result=None)
                raise
        job = self._enter(job, Status.PROCESSING)
        await self._download(job, result, None)

    async def _download(self, job: Job, result: GenerationResult, generating_seconds: float | None) -> None:
        job_id = job.job_id
        job = self._enter(job, Status.DOWNLOADING)
        folder = self.files.ensure(job_id)
        paths = await self._call(job, "download the videos", lambda: self.generator.fetch(job, result, folder))
        await anyio.to_thread.run_sync(self.files.build_zip, job_id, paths)
        videos = tuple(Video(index=n, filename=p.name, size_bytes=p.stat().st_size) for n, p in enumerate(paths, 1))
        if generating_seconds is not None:
            self.store.record_duration(job.request.model, generating_seconds, prior=self.generator.typical_seconds)
        self.store.transition(
            job_id,
            Status.COMPLETED,
            expect=(Status.DOWNLOADING,),
            videos=videos,
            detail=f"{len(videos)} video(s)" + _filtered_note(result),
            seconds=self._run_seconds(job),
        )

    def _run_seconds(self, job: Job) -> float | None:
        """How long the job took: by the monotonic clock if it ran in this process alone."""
        seconds = self.store.run_elapsed(job.job_id)
        if seconds is None and job.started_at is not None:
            seconds = max(0.0, (utcnow() - job.started_at).total_seconds())
        return seconds

    def _inputs(self, job: Job) -> JobInputs:
        """The job's input files, each checked to be in its folder (a retry sends them again)."""
        job_id = job.job_id
        inputs = JobInputs(
            image=self.files.image(job_id) if job.has_image else None,
            last_frame=self.files.last_frame(job_id) if job.has_last_frame else None,
            references=tuple(self.files.reference(job_id, n) for n in range(1, job.reference_count + 1)),
            video=self.files.input_video(job_id) if job.request.extends else None,
        )
        for path in inputs.files():
            if not path.exists():
                raise _JobFailed(
                    f"the job's input {path.name} is missing from its folder; submit the job again",
                    ErrorKind.MISSING_IMAGE,
                )
        return inputs

    async def _submit(self, job: Job, inputs: JobInputs) -> str:
        """Send the generate request, retrying what was refused for a transient reason."""
        attempt = 1
        while True:
            self.store.update(job.job_id, submitting=True)
            try:
                return await self.generator.submit(job, inputs)
            except SubmitOutcomeUnknown as exc:
                raise _JobFailed(
                    f"{exc} The generation may have been accepted and billed, so veotui did not send it "
                    "again. Check your Google Cloud console before submitting it again.",
                    exc.kind,
                ) from exc
            except TransientFault as exc:
                await self._persist(functools.partial(self.store.update, job.job_id, submitting=False))
                if attempt >= self.settings.max_attempts:
                    raise _JobFailed(f"{exc} (gave up after {attempt} attempts)", ErrorKind.TRANSIENT) from exc
                delay = self._delay(attempt, exc)
                self._retrying(job.job_id, "submit", exc, attempt, delay)
                attempt += 1
                self._wait_begins(job, delay, exc)
                job = self.store.update(
                    job.job_id,
                    attempts=self.store.get(job.job_id).attempts + 1,
                    note=f"{exc}; attempt {attempt} of {self.settings.max_attempts} in {delay:.1f} s",
                )
                await self._wait_out(job.job_id, delay)
            except PermanentFault as exc:
                raise _JobFailed(str(exc), exc.kind) from exc

    async def _call(self, job: Job, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """A call that is safe to give up on (upload, download): transient faults are retried
        with backoff, up to ``max_attempts`` in a row. Polling has its own loop."""
        attempt = 1
        while True:
            try:
                return await call()
            except TransientFault as exc:
                if attempt >= self.settings.max_attempts:
                    raise _JobFailed(
                        f"could not {what}: {exc} (gave up after {attempt} attempts)", ErrorKind.TRANSIENT
                    ) from exc
                delay = self._delay(attempt, exc)
                self._retrying(job.job_id, what, exc, attempt, delay)
                self._wait_begins(job, delay, exc)
                self.store.update(job.job_id, note=f"could not {what}: {exc}; trying again in {delay:.1f} s")
                attempt += 1
                await self._wait_out(job.job_id, delay)
            except SubmitOutcomeUnknown as exc:
                raise _JobFailed(str(exc), exc.kind) from exc
            except PermanentFault as exc:
                raise _JobFailed(str(exc), exc.kind) from exc
            except GeneratorFault as exc:
                raise _JobFailed(str(exc), exc.kind) from exc

    async def _poll_until_done(self, job: Job) -> GenerationResult:
        """Poll the job's operation until it is done. The operation is paid for, so a
        transient fault never fails the job: it is noted, and polling goes on (backoff capped
        at the poll interval) until the deadline."""
        deadline = self.settings.veo_deadline if self.generator.operations_can_hang else None
        # Time already spent generating: by the monotonic clock if the stage began in this
        # process, else (resumed after a restart) by the wall clock; counted on monotonically.
        before = self.store.stage_elapsed(job)
        if before is None:
            before = max(0.0, (utcnow() - (job.stage_started_at or utcnow())).total_seconds())
        started = time.monotonic() - before
        operation = job.operation
        assert operation is not None
        failures = 0
        while True:
            try:
                result = await self.generator.poll(job, operation)
            except TransientFault as exc:
                failures += 1
                self._check_deadline(job, deadline, started, f" The last check failed: {exc}")
                delay = min(self._delay(failures, exc), self.poll_interval)
                self._wait_begins(job, delay, exc)
                self.store.update(
                    job.job_id,
                    note=f"could not check the operation ({failures} in a row): {exc}; checking again in {delay:.1f} s",
                )
                await self._wait_out(job.job_id, delay)
                continue
            except GeneratorFault as exc:
                raise _JobFailed(str(exc), exc.kind) from exc
            if result is not None:
                return result
            failures = 0
            self._check_deadline(job, deadline, started, "")
            await anyio.sleep(self.poll_interval)

    def _wait_begins(self, job: Job, delay: float, fault: TransientFault) -> None:
        """Mark the job as waiting before the note that publishes it, so readers see why."""
        text = str(fault)
        limited = fault.retry_after is not None or "429" in text or "RESOURCE_EXHAUSTED" in text
        reason = "rate limited" if limited else "temporary fault"
        current = self.store.find(job.job_id) or job
        held = self.store.stage_elapsed(current)
        if held is None and current.stage_started_at is not None:
            held = (utcnow() - current.stage_started_at).total_seconds()
        self.waiting[job.job_id] = (utcnow() + timedelta(seconds=delay), reason, held)

    async def _wait_out(self, job_id: str, delay: float) -> None:
        try:
            await anyio.sleep(delay)
        finally:
            self.waiting.pop(job_id, None)

    def _retrying(self, job_id: str, what: str, fault: TransientFault, attempt: int, delay: float) -> None:
        call = _CALL_NAMES.get(what, what.replace(" ", "_"))
        with contextlib.suppress(StorageUnavailable):  # a count lost on a full disk is no reason to stop
            self.store.count("retries_total", call)
        event(
            log,
            logging.WARNING,
            "job.retry",
            "%s failed (%s); attempt %d of %d in %.1f s",
            call,
            fault,
            attempt + 1,
            self.settings.max_attempts,
            delay,
            job_id=job_id,
            call=call,
            error=str(fault),
            attempt=attempt + 1,
            max_attempts=self.settings.max_attempts,
            backoff_seconds=round(delay, 3),
        )

    @staticmethod
    def _check_deadline(job: Job, deadline: float | None, started: float, why: str) -> None:
        """``started``: when generating began, on the monotonic clock."""
        if deadline is not None and time.monotonic() - started > deadline:
            raise _JobFailed(
                f"the operation {job.operation} did not finish within {deadline:.0f} s "
                f"(VEOTUI_VEO_DEADLINE).{why} It may still finish, and be billed, on Google's side; "
                "a retry submits again and Google charges again.",
                ErrorKind.DEADLINE,
            )

    def _delay(self, attempt: int, fault: TransientFault) -> float:
        delay = backoff_delay(attempt - 1, self.settings.retry_base_seconds)
        if fault.retry_after is not None:
            delay = max(delay, fault.retry_after)
        return delay


def _with_detail(audit: AuditEntry | None, detail: str | None) -> AuditEntry | None:
    return dataclasses.replace(audit, detail=detail) if audit is not None and detail else audit


def _utc_day() -> str:
    return utcnow().date().isoformat()


def _seconds_to_next_utc_day() -> float:
    now = utcnow()
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return (midnight - now).total_seconds()


#: The ``call`` label of retries, by what the scheduler was doing.
_CALL_NAMES = {
    "upload the image": "upload",
    "check the operation": "poll",
    "download the videos": "download",
    "submit": "submit",
}


def _filtered_note(result: GenerationResult) -> str:
    """Fewer videos than asked: say how many the safety filter blocked, and why."""
    if not result.filtered_count:
        return ""
    reasons = "; ".join(result.filtered_reasons) or "no reason given"
    return f"; {result.filtered_count} blocked by the safety filter ({reasons})"

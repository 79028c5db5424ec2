"""The engine's upkeep: clean-up (job folders, partial outputs, the cloud's copies), the
auto-delete of downloaded jobs, and the daily budget that holds the queue."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anyio

from veotui.core.errors import JobNotFound, StorageUnavailable
from veotui.core.job import Job, Status, utcnow
from veotui.datadir.files import JobFiles
from veotui.engine.bucket_files import BucketFiles
from veotui.engine.runner import backoff_delay
from veotui.engine.slots import Slots
from veotui.engine.storage import StorageWatch, at_once
from veotui.generators.base import Generator
from veotui.logs import event
from veotui.settings import Settings
from veotui.store.jobs import AUTO_DELETED, JobStore

log = logging.getLogger(__name__)
#: A deleted job's cloud files are tried this many times, with backoff, before the next start.
REMOTE_CLEANUP_TRIES = 8
#: How often audit entries past their retention are pruned.
AUDIT_PRUNE_SECONDS = 6 * 3600.0


class Cleanup:
    """Removes what a job leaves behind: its folder, its partial outputs, its cloud files."""

    def __init__(
        self,
        store: JobStore,
        generator: Generator,
        files: JobFiles,
        settings: Settings,
        storage: StorageWatch,
        bucket_files: BucketFiles | None = None,
    ) -> None:
        self.store = store
        self.generator = generator
        self.files = files
        self.settings = settings
        self.storage = storage
        self.bucket_files = bucket_files

    def remove_folder(self, job_id: str) -> None:
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

    def remove_outputs(self, job_id: str) -> None:
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

    async def after_run(self, job_id: str) -> None:
        """Tidy up once a job's runner is really done (its worker threads included)."""
        try:
            await self._tidy(job_id)
        except Exception:  # tidying is best effort; the start-up sweep catches what is left
            log.exception("tidying up after job %s failed", job_id)

    async def _tidy(self, job_id: str) -> None:
        job = await self.store.afind(job_id)
        if job is not None and job.status.is_active:
            return  # shut down mid-job: resumes at next start
        with anyio.CancelScope(shield=True):
            if job is None:
                self.remove_folder(job_id)
                if self.bucket_files is not None:
                    # Deleted while it ran here: what it stored meanwhile goes too.
                    with contextlib.suppress(Exception):
                        await self.bucket_files.remove(job_id)
            elif job.status in (Status.FAILED, Status.CANCELLED):
                self.remove_outputs(job_id)
                if self.bucket_files is None:  # else the bucket keeps the inputs for any server's retry
                    await self._remote_quietly(job, everything=False)
            elif job.status == Status.COMPLETED:
                if self.bucket_files is None:
                    await self._remote_quietly(job, everything=False)
                else:
                    await self.bucket_files.trim()

    async def _remote_quietly(self, job: Job, *, everything: bool) -> bool:
        try:
            await self.generator.cleanup(job, everything=everything)
            if everything and self.bucket_files is not None:
                await self.bucket_files.remove(job.job_id)
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

    async def remote(self, job: Job) -> None:
        """Remove a deleted job's remote files, retrying until it works."""
        for retry in range(REMOTE_CLEANUP_TRIES):
            if await self._remote_quietly(job, everything=True):
                await self.storage.persist(at_once(functools.partial(self.store.cleanup_done, job.job_id)))
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


class AutoDelete:
    """Deletes a downloaded job once ``auto_delete_after_download`` seconds have passed."""

    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        storage: StorageWatch,
        slots: Slots,
        delete: Callable[[str, str | None], None],
    ) -> None:
        self.store = store
        self.settings = settings
        self.storage = storage
        self.slots = slots
        self.delete = delete
        self._armed: set[str] = set()

    @property
    def enabled(self) -> bool:
        return self.settings.auto_delete_after_download is not None

    def arm(self, job: Job) -> None:
        """Start the job's timer, once. Timers live in memory: each start arms them again."""
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
                        await self.storage.persist(at_once(functools.partial(self.delete, job.job_id, AUTO_DELETED)))
            finally:
                self._armed.discard(job.job_id)

        self.slots.spawn(auto_delete)


class DailyBudget:
    """``daily_budget_usd``: no job starts that would take today's (UTC) spend past it,
    unless it is set aside for the day (resumed by hand)."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    @property
    def limit(self) -> float | None:
        return self.settings.daily_budget_usd

    def overridden(self) -> bool:
        return self.store.budget_override_day() == _utc_day()

    def hold(self, job: Job) -> str | None:
        """Why ``job`` must wait, if starting it would pass the daily budget: what was bought
        today, plus what the jobs starting now will buy, plus its own estimate."""
        budget = self.limit
        if budget is None or job.operation is not None or self.overridden():
            return None  # a job with an operation resumes or refetches it: nothing new is bought
        starting = sum(j.estimated_cost_usd or 0.0 for j in self.store.active() if j.operation is None)
        spent = self.store.spend_today() + starting
        estimate = job.estimated_cost_usd or 0.0
        if spent + estimate <= budget + 0.005:
            return None
        return f"daily budget ${budget:,.2f}: ${spent:,.2f} spent, next job ${estimate:,.2f}"

    def set_aside_if_holding(self, paused_by_budget: bool) -> None:
        """Resumed by hand: if the budget is what holds the queue, set it aside for the
        rest of today (UTC)."""
        if self.limit is None or self.overridden():
            return
        upcoming = self.store.next_queued()
        if paused_by_budget or (upcoming is not None and self.hold(upcoming)):
            self.store.set_budget_override_day(_utc_day())
            log.info("the daily budget is set aside until 00:00 UTC (resumed by hand)")


class AuditRetention:
    """Forgets audit entries older than ``audit_retention_days``."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def prune(self, leads: Callable[[], bool]) -> None:
        """Prune now and every few hours, on the server that does the once-only work."""
        while True:
            if leads():
                with contextlib.suppress(StorageUnavailable):  # tried again at the next round
                    self.store.prune_audit(self.settings.audit_retention_days)
            await anyio.sleep(AUDIT_PRUNE_SECONDS)


def _utc_day() -> str:
    return utcnow().date().isoformat()


def seconds_to_next_utc_day() -> float:
    """When a budget pause lifts by itself."""
    now = utcnow()
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return (midnight - now).total_seconds()

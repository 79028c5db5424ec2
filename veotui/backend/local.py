"""``LocalBackend``: the engine (store, scheduler, generator, files) in this process.

This is the engine's composition root: the one place that picks the store, the generator,
the data directory's lock and disk guard, builds the scheduler over them and starts it. The
TUI and the server get an engine only through it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from veotui import __version__
from veotui.backend.base import (
    AUDIT_PAGE,
    MAX_AUDIT_PAGE,
    MAX_GROUP_JOBS,
    QUEUE_PAGE,
    Backend,
    BackendInfo,
    Me,
    Upload,
    group_zip_name,
)
from veotui.core.access import LOCAL, Action, Actor, AuditEntry, UserEntry, refusal
from veotui.core.catalog import model_catalog
from veotui.core.errors import (
    BucketUnavailable,
    Conflict,
    ErrorKind,
    Forbidden,
    InvalidRequest,
    JobNotFound,
    SettingsError,
    StorageUnavailable,
    VeotuiError,
    VideoNotFound,
    clipped,
)
from veotui.core.idempotency import KeyClaim, KeyJobGone, KeyReused, KeyTaken, fingerprint
from veotui.core.ids import new_job_id
from veotui.core.job import Change, Job, JobEvent, JobLists, QueueState, Status, utcnow, waits_for
from veotui.core.prices import estimate_cost
from veotui.core.progress import with_progress
from veotui.core.request import JobRequest, cautions, check_extension_source, check_modes, group_name
from veotui.core.webhooks import Delivery
from veotui.datadir.cache import JobCache
from veotui.datadir.files import (
    IMAGE_NAME,
    LAST_FRAME_NAME,
    JobFiles,
    atomic_file,
    copy_atomic,
    reference_name,
    zip_stream,
)
from veotui.datadir.health import StorageGuard, StorageState, save_failed
from veotui.datadir.images import convert_image
from veotui.datadir.lock import DataDirLock
from veotui.datadir.privacy import open_to_others
from veotui.datadir.sizes import DirSize
from veotui.engine.bucket_files import BucketFiles
from veotui.engine.bus import EventBus, Subscription
from veotui.engine.scheduler import Scheduler
from veotui.engine.webhooks import WebhookSender, ping
from veotui.generators import Generator, GeneratorFault, make_generator
from veotui.generators.gcs import Bucket
from veotui.generators.render import video_seconds
from veotui.logs import FileLog, event
from veotui.settings import Settings
from veotui.store import is_postgres, open_store
from veotui.store.fleet import FleetStore, fleet_of
from veotui.store.jobs import JobStore

if TYPE_CHECKING:
    from veotui.datadir.frames import PictureRow

log = logging.getLogger(__name__)
SEARCH_LIMIT = 500
#: Beyond any real history, and within SQLite's 64-bit integers.
MAX_PAGE_ROWS = 2**53
#: The longest series /api/metrics/series serves: 31 days of hours.
MAX_SERIES_HOURS = 744
#: A model's estimate (progress and ETAs) is read again after a completion moved it, at most
#: this often: a hint needs no read per job.
ESTIMATE_REFRESH_SECONDS = 5.0


class NoLock:
    """The data-directory lock's stand-in when the store is PostgreSQL."""

    def acquire(self, url: str | None = None) -> None:
        pass

    def describe(self, url: str | None) -> None:
        pass

    def release(self) -> None:
        pass


class LocalBackend(Backend):
    """The engine, acting for one caller (:attr:`actor`): the person at the local TUI is the
    admin; the server hands each request :meth:`acting_for` its caller. Every action is
    checked against the caller's role here (``veotui.core.access``), so the server's routes,
    the local TUI and the verbs follow the same rules, and every change is written to the
    audit log with the change itself."""

    def __init__(
        self,
        settings: Settings,
        *,
        generator: Generator | None = None,
        env: Mapping[str, str] | None = None,
        url: str | None = None,
    ) -> None:
        self.settings = settings
        self._generator = generator
        self._env = env
        self.url = url
        self.actor: Actor = LOCAL
        #: Where the caller's request came from (the audit log's ``remote_addr``).
        self.remote_addr: str | None = None
        self._users: Mapping[str, UserEntry] = settings.users
        # With PostgreSQL the database, not the data directory's lock file, decides who runs.
        self.lock: DataDirLock | NoLock = NoLock() if is_postgres(settings.store) else DataDirLock(settings.data_dir)
        self.bus = EventBus()
        #: The videos of a job downloaded one by one so far, by who downloaded them.
        self._downloaded: dict[str, dict[str | None, set[int]]] = {}
        #: Each model's estimate as last read, and when (the monotonic clock).
        self._estimates: dict[str, tuple[float, float]] = {}
        #: Models whose estimate a completion moved since it was last read.
        self._estimates_moved: set[str] = set()
        self._started = False
        self.fleet: FleetStore | None = None
        self._unlisten: Callable[[], None] | None = None
        self._hearing: asyncio.Task[None] | None = None
        # The engine's parts, made by start() once the data directory is locked (the store
        # must not be opened by a second process, and the generator may need credentials).
        self.generator: Generator
        self.store: JobStore
        self.files: JobFiles
        self.scheduler: Scheduler
        self.webhooks: WebhookSender
        self._engine_task: asyncio.Task[None]
        self._image_limiter: anyio.CapacityLimiter | None = None
        #: Without a shared directory: the bucket holds the job files, the data directory
        #: caches them. None while the data directory is their home.
        self.bucket_files: BucketFiles | None = None

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        check_mode(self.settings)
        self.lock.acquire(self.url)
        self._log: FileLog | None = None
        try:
            # Only the owner of the data directory writes its log.
            self._log = FileLog(self.settings, self._env)
            event(
                log,
                logging.INFO,
                "engine.start",
                "veotui %s starting on %s (pid %d)",
                __version__,
                self.settings.data_dir,
                os.getpid(),
                version=__version__,
                data_dir=str(self.settings.data_dir),
                pid=os.getpid(),
                url=self.url,
                max_concurrent=self.settings.max_concurrent,
            )
            opened = open_to_others(self.settings.data_dir)
            if opened is not None:
                event(
                    log,
                    logging.WARNING,
                    "datadir.open_to_others",
                    "the data directory %s (%s) lets other users of this machine in; it holds every prompt: "
                    "chmod 700 %s",
                    self.settings.data_dir,
                    opened,
                    self.settings.data_dir,
                    mode=opened,
                )
            self.generator = self._generator or make_generator(self.settings, self._env)
            self.storage = StorageGuard(self.settings.data_dir)
            self.store = open_store(self.settings.store, self.settings.data_dir, self.storage)
            self.fleet = fleet_of(self.store)
            if self.fleet is not None:
                self.fleet.join(self.url, self.settings.lease_seconds)
            self.files = JobFiles(self.settings.jobs_dir)
            self.store.add_listener(self._publish)
            self.dir_size = DirSize(self.settings.data_dir)
            self.dir_size.value()  # the first walk starts now, in the background
            if not self.settings.shared_dir:
                self.bucket_files = BucketFiles(
                    self._bucket(),
                    self.files,
                    JobCache(self.files, self.settings.cache_max_bytes),
                    self.generator,
                )
            self.scheduler = Scheduler(self.store, self.generator, self.files, self.settings, self.bucket_files)
            self.scheduler.users = self._users
            # Each status change a hook wants is written to the outbox with the change itself.
            self.store.webhooks = self.settings.webhooks
            self.webhooks = WebhookSender(
                self.store,
                self.settings.webhooks,
                shared=self.fleet is not None,
                claimer=self.fleet.server_id if self.fleet is not None else None,
            )
            if self.fleet is not None:
                # What the other servers of the fleet change reaches this server's events too:
                # heard in the listener's thread, handled in a task of this loop.
                loop = asyncio.get_running_loop()
                heard: asyncio.Queue[Change] = asyncio.Queue()
                self._hearing = loop.create_task(self._hear(heard))
                self._unlisten = self.store.listen(lambda change: loop.call_soon_threadsafe(heard.put_nowait, change))
            await self._start_engine()
        except BaseException as exc:
            if isinstance(exc, VeotuiError):  # a refusal with a sentence (settings, credentials)
                event(log, logging.INFO, "engine.start_failed", "the engine did not start: %s", exc)
            else:
                event(log, logging.ERROR, "engine.start_failed", "the engine did not start: %r", exc, exc_info=True)
            if self._unlisten is not None:
                self._unlisten()
            if self._hearing is not None:
                self._hearing.cancel()
            if self.fleet is not None:
                with contextlib.suppress(VeotuiError):
                    self.fleet.leave()
                await self.store.aclose()
            self._close_log()
            self.lock.release()
            raise
        self._started = True

    def _bucket(self) -> Bucket:
        """The generator's bucket client (Veo's and the simulator's hold one in this mode)."""
        bucket = getattr(self.generator, "bucket", None)
        if not isinstance(bucket, Bucket):
            raise SettingsError(
                f"VEOTUI_SHARED_DIR=false needs the {self.generator.name} generator to reach the bucket "
                f"in VEOTUI_GCS_BUCKET ({self.settings.gcs_bucket}), and it has no Cloud Storage client"
            )
        return bucket

    async def _start_engine(self) -> None:
        # The engine runs in a task of its own, so start() and close() may be called from
        # different tasks (pytest fixtures, Textual's mount and unmount handlers).
        ready = anyio.Event()
        failure: list[BaseException] = []

        async def engine() -> None:
            try:
                async with anyio.create_task_group() as task_group:
                    await task_group.start(self.scheduler.run)
                    # Its own task: a slow receiver never holds up the scheduler.
                    await task_group.start(self.webhooks.run)
                    ready.set()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                raise

        self._engine_task = asyncio.get_running_loop().create_task(engine())
        await ready.wait()
        if failure:
            raise failure[0]

    async def _hear(self, heard: asyncio.Queue[Change]) -> None:
        """The changes other servers of the fleet make: streamed as this server's own are."""
        while True:
            change = await heard.get()
            if not self._started:
                continue
            try:
                with contextlib.suppress(StorageUnavailable):  # the database is away; heard afresh when back
                    self._publish(change)
                self.scheduler.heard(change)
            except Exception:  # one change must not end the hearing
                log.exception("handling a change another server made failed")

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._unlisten is not None:
            self._unlisten()
        if self._hearing is not None:
            self._hearing.cancel()
        try:
            self._engine_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._engine_task
            await self.generator.aclose()
        finally:
            if self.fleet is not None:
                # Its jobs' leases end now: another server of the fleet takes them over.
                with contextlib.suppress(VeotuiError):
                    self.fleet.leave()
            resumable = [job.job_id for job in self.store.active()]
            event(
                log,
                logging.INFO,
                "engine.stop",
                "stopped; %d processing job(s) resume at the next start"
                + (" or on another server of the fleet" if self.fleet is not None else ""),
                len(resumable),
                resumable=resumable,
            )
            self.bus.close()
            await self.store.aclose()
            self._close_log()
            self.lock.release()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- views ----------------------------------------------------------------------------

    def _estimate(self, model: str) -> float:
        known = self._estimates.get(model)
        now = time.monotonic()
        if known is None or (model in self._estimates_moved and now - known[1] >= ESTIMATE_REFRESH_SECONDS):
            self._estimates_moved.discard(model)
            known = (self.store.estimate(model) or self.generator.typical_seconds, now)
            self._estimates[model] = known
        return known[0]

    def view(self, job: Job, position: int | None = None) -> Job:
        """The job with its derived fields: progress, ETA, queue position, why it waits."""
        if job.status == Status.QUEUED:
            if position is None:
                position = job.queue_position or self.store.queue_position(job)
            # The job it waits for first: until that one completes, nothing else holds it.
            reason = waits_for(job.waiting_for) or self.scheduler.waiting_reason(job)
            if reason is not None:
                job = job.replace(waiting_reason=reason)
        else:
            position = None
        waiting = self.scheduler.waiting.get(job.job_id) if job.status.is_active else None
        if waiting is not None:
            retry_at, reason, held = waiting
            return with_progress(
                job,
                self._estimate(job.request.model),
                utcnow(),
                stage_elapsed=held if held is not None else self.store.stage_elapsed(job),
                queue_position=position,
                retry_at=retry_at,
                retry_reason=reason,
            )
        return with_progress(
            job,
            self._estimate(job.request.model),
            utcnow(),
            stage_elapsed=self.store.stage_elapsed(job),
            queue_position=position,
        )

    def _publish(self, change: Change) -> None:
        if change.job is not None and any(hook.wants(change.job.status) for hook in self.settings.webhooks):
            self.webhooks.wake()  # the change wrote a delivery
        if change.job is not None and change.job.status == Status.COMPLETED:
            self._estimates_moved.add(change.job.request.model)
        if not self.bus.subscriber_count:
            return  # nobody listens: skip deriving the view
        if change.kind == "queue":
            change = Change("queue", "", queue=self.scheduler.queue_state(change.queue))
        elif change.job is not None:
            change = Change(change.kind, change.job_id, self.view(change.job))
        self.bus.publish(change)

    # -- who acts -------------------------------------------------------------------------

    def acting_for(self, actor: Actor, remote_addr: str | None = None) -> LocalBackend:
        """The same engine acting for ``actor``: a view that shares every part of this one
        (store, scheduler, event bus) and differs only in whose rules apply."""
        view = copy.copy(self)
        view.actor = actor
        view.remote_addr = remote_addr
        return view

    @property
    def users(self) -> Mapping[str, UserEntry]:
        """The server's users (the config file's ``[users]``), as last read."""
        return self.scheduler.users if self._started else self._users

    def set_users(self, users: Mapping[str, UserEntry]) -> None:
        """Apply a new ``[users]`` table: budgets and limits hold from the next dispatch."""
        self._users = users
        self.scheduler.users = users
        self.scheduler.wake()  # a raised budget or limit may let a job start

    def _entry(self, action: str, job_id: str | None = None, detail: str | None = None) -> AuditEntry:
        return AuditEntry(
            user=self.actor.user,
            role=self.actor.role.value,
            action=action,
            job_id=job_id,
            detail=detail,
            remote_addr=self.remote_addr,
        )

    def _allow(self, action: Action, job: Job | None = None, *, audit_as: str | None = None) -> AuditEntry:
        """The audit entry of ``action`` when the caller may take it; otherwise the refusal
        is written to the audit log (on its own: it changes nothing else) and raised."""
        why = refusal(self.actor, action, job.request.user if job is not None else None, job.job_id if job else None)
        name = audit_as or action.name.lower()
        if why is not None:
            with contextlib.suppress(StorageUnavailable):  # the refusal stands even if it cannot be noted
                self.store.audit(self._entry(name, job.job_id if job else None, f"refused: {why}"))
            event(log, logging.INFO, "access.refused", "%s", why, user=self.actor.user, action=name)
            raise Forbidden(why)
        return self._entry(name, job.job_id if job else None)

    def allow(self, action: Action) -> None:
        """Refuse (:class:`Forbidden`, noted in the audit log) a server-wide ``action`` the
        caller's role may not take: for what the server does beside the engine (its log)."""
        self._allow(action)

    async def me(self) -> Me:
        user = self.users.get(self.actor.user)
        budget = user.daily_budget_usd if user is not None else None
        return Me(
            user=self.actor.user,
            role=self.actor.role,
            daily_budget_usd=budget,
            spent_today_usd=round(self.store.spend_today(self.actor.user), 2),
            max_concurrent=user.max_concurrent if user is not None else None,
        )

    async def audit(
        self, *, user: str | None = None, job_id: str | None = None, limit: int = AUDIT_PAGE, offset: int = 0
    ) -> list[AuditEntry]:
        self._allow(Action.AUDIT)
        if not (1 <= limit <= MAX_AUDIT_PAGE and 0 <= offset <= MAX_PAGE_ROWS):
            raise InvalidRequest(f"limit must be 1 to {MAX_AUDIT_PAGE} and offset 0 or more")
        return self.store.audit_page(user=user, job_id=job_id, limit=limit, offset=offset)

    # -- the interface --------------------------------------------------------------------

    async def info(self) -> BackendInfo:
        return BackendInfo(
            location=self.url or "local",
            generator=self.generator.name,
            is_simulator=self.generator.is_simulator,
            max_concurrent=self.settings.max_concurrent,
            data_dir=str(self.settings.data_dir),
            storage=self.storage_state(),
            prices=self.settings.price_table,
            auto_delete_after_download=self.settings.auto_delete_after_download,
            cloud_bucket=self.settings.gcs_bucket is not None,
            fleet=self.fleet_view(),
            shared_dir=self.bucket_files is None,
        )

    def fleet_view(self) -> dict[str, Any] | None:
        """This server's fleet (see :class:`BackendInfo`), read now; None with SQLite."""
        if self.fleet is None:
            return None
        try:
            servers = [
                {"server_id": s["server_id"], "url": s["url"], "host": s["host"], "pid": s["pid"]}
                for s in self.fleet.servers()
            ]
            slots: int | None = self.store.processing_count()
        except StorageUnavailable:  # the database is away: the storage state says so
            servers, slots = [], None
        return {"server_id": self.fleet.server_id, "servers": servers, "slots_in_use": slots}

    async def storage_status(self) -> StorageState:
        return self.storage_state()

    def storage_state(self) -> StorageState:
        """Whether the data directory accepts writes (probed now if it did not)."""
        self.scheduler.probe_storage()
        return self.storage.state

    def request_from(self, fields: Mapping[str, Any], user: str | None = None) -> JobRequest:
        request = JobRequest.from_mapping(fields, user=user)
        self.generator.validate(request)
        return request

    async def _converted(self, data: bytes, name: str) -> bytes:
        """An input image as JPEG, in a worker thread: at most ``image_workers`` at once."""
        if self._image_limiter is None:
            self._image_limiter = anyio.CapacityLimiter(self.settings.image_workers)
        return await anyio.to_thread.run_sync(convert_image, data, name, limiter=self._image_limiter)

    async def submit(
        self,
        fields: Mapping[str, Any],
        image: bytes | None = None,
        image_name: str | None = None,
        *,
        last_frame: Upload | None = None,
        references: Sequence[Upload] = (),
        user: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        job, _ = await self.submit_keyed(
            fields,
            image,
            image_name,
            last_frame=last_frame,
            references=references,
            user=user,
            idempotency_key=idempotency_key,
        )
        return job

    async def submit_keyed(
        self,
        fields: Mapping[str, Any],
        image: bytes | None = None,
        image_name: str | None = None,
        *,
        last_frame: Upload | None = None,
        references: Sequence[Upload] = (),
        user: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[Job, bool]:
        """As :meth:`submit`; also whether the answer is a replay: the job an earlier
        submit under the same ``idempotency_key`` made. Keys are kept per caller: the user
        the request acts for, never a name the request gives."""
        audit = self._allow(Action.SUBMIT)
        if not self.actor.is_admin:
            user = self.actor.user  # a user's jobs are their own, whatever the request says
        request = self.request_from(fields, user)
        if not self.scheduler.probe_storage():
            raise self.storage.unavailable()
        references = list(references)
        request = dataclasses.replace(
            request, reference_type=(request.reference_type or "asset") if references else None
        )
        check_modes(
            request,
            has_image=image is not None,
            has_last_frame=last_frame is not None,
            reference_count=len(references),
        )
        claim = None
        if idempotency_key is not None:
            images = [image, last_frame[0] if last_frame else None, *(data for data, _ in references)]
            claim = KeyClaim(self.actor.user, idempotency_key, fingerprint(request, images))
            earlier = self._replay(claim)
            if earlier is not None:
                return earlier, True
        try:
            job = await self._create(request, image, image_name, last_frame, references, claim, audit)
        except KeyTaken:
            # Another submit under the same key committed first: its job is the answer.
            earlier = self._replay(claim) if claim is not None else None
            if earlier is None:
                raise
            event(
                log,
                logging.INFO,
                "job.key_taken",
                "a submit racing another under the same key answered its job %s",
                earlier.job_id,
                job_id=earlier.job_id,
            )
            return earlier, True
        return job, False

    def _replay(self, claim: KeyClaim) -> Job | None:
        """The job an earlier submit under ``claim``'s key made (None: the key is free);
        409 when that submit was a different request, or its job was deleted since."""
        kept = self.store.keyed_job(claim.scope, claim.key)
        if kept is None:
            return None
        job_id, earlier_fingerprint = kept
        if earlier_fingerprint != claim.fingerprint:
            raise KeyReused(claim.key, job_id)
        job = self.store.find(job_id)
        if job is None:
            raise KeyJobGone(claim.key, job_id)
        event(log, logging.INFO, "job.replayed", "a submit under a used key answered job %s", job_id, job_id=job_id)
        return self.view(job)

    async def _create(
        self,
        request: JobRequest,
        image: bytes | None,
        image_name: str | None,
        last_frame: Upload | None,
        references: list[Upload],
        claim: KeyClaim | None,
        audit: AuditEntry,
    ) -> Job:
        source_video = None
        waiting_for = self._waits_for(request)
        if request.extends is not None:
            source = request.extends.job_id
            source_video, request = await self._extension_source(request)
            if source_video is None:  # the job it extends is unfinished: wait for it
                waiting_for = source
                request = dataclasses.replace(request, after=source)
        jpeg = None
        if image is not None:
            jpeg = await self._converted(image, image_name or "the image")
        last_jpeg = None
        if last_frame is not None:
            last_jpeg = await self._converted(last_frame[0], last_frame[1] or "the last frame")
        reference_jpegs = []
        for number, (data, name) in enumerate(references, 1):
            reference_jpegs.append(await self._converted(data, name or f"reference image {number}"))
        job = Job(
            job_id=new_job_id(),
            status=Status.QUEUED,
            request=request,
            has_image=jpeg is not None,
            has_last_frame=last_jpeg is not None,
            reference_count=len(reference_jpegs),
            estimated_cost_usd=estimate_cost(request, self.settings.price_table),
            waiting_for=waiting_for,
        )
        uploaded = False
        try:
            # A job without inputs has no folder until its videos come: no thread to start.
            if jpeg is not None or last_jpeg is not None or reference_jpegs or source_video is not None:
                await anyio.to_thread.run_sync(
                    functools.partial(
                        self.files.create,
                        job.job_id,
                        jpeg,
                        last_frame=last_jpeg,
                        references=tuple(reference_jpegs),
                        video=source_video,
                    )
                )
            if self.bucket_files is not None:
                await self.bucket_files.put_inputs(job)
                uploaded = True
            job = await self.store.ainsert(job, audit=dataclasses.replace(audit, job_id=job.job_id), claim=claim)
        except BaseException as exc:
            self.files.remove(job.job_id)
            if uploaded and self.bucket_files is not None:  # the row was refused: its inputs go too
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self.bucket_files.remove(job.job_id)
            if isinstance(exc, GeneratorFault):
                raise BucketUnavailable(
                    f"the job was not created: its inputs could not be stored in the bucket ({exc})"
                ) from exc
            failure = self.storage.error(exc, "save the job's input files") if isinstance(exc, OSError) else None
            if failure is not None:
                raise failure from exc
            raise
        for caution in cautions(request, reference_count=len(reference_jpegs)):
            job = self.store.update(job.job_id, note=f"caution: {caution}")
        event(
            log,
            logging.INFO,
            "job.submitted",
            "submitted by %s: %r",
            request.user,
            request.prompt[:200],
            job_id=job.job_id,
            user=request.user,
            prompt=request.prompt,
            parameters={k: v for k, v in request.to_dict().items() if k not in ("prompt", "user")},
            image_bytes=len(jpeg) if jpeg is not None else None,
            last_frame=last_jpeg is not None,
            reference_images=len(reference_jpegs),
            estimated_cost_usd=job.estimated_cost_usd,
        )
        self.scheduler.wake()
        return self.view(job)

    async def webhook_deliveries(self, job_id: str | None = None, *, limit: int = 100) -> list[Delivery]:
        self._allow(Action.READ_DELIVERIES)
        return self.store.deliveries(job_id, limit)

    async def test_webhooks(self) -> list[dict[str, Any]]:
        self._allow(Action.TEST_HOOKS)
        return [
            {
                "url": hook.url,
                "status": attempt.status,
                "answer": attempt.answer,
                "seconds": round(attempt.seconds, 3),
                "delivered": attempt.delivered,
            }
            for hook, attempt in await ping(self.settings.webhooks)
        ]

    def _waits_for(self, request: JobRequest) -> str | None:
        """The job a new job waits for: its ``after``, unless that job completed already.

        A chain of waits cannot form a cycle: a job can only wait for a job that exists
        before it (``after`` must name a job already in the store, and a job's wait is never
        changed to another job afterwards), so every wait points to an older job."""
        after = request.after
        if after is None:
            return None
        if request.extends is not None and request.extends.job_id != after:
            raise InvalidRequest(
                f"after names job {after} but extends names job {request.extends.job_id}; "
                "an extension waits for the job it extends"
            )
        waited = self.store.find(after)
        if waited is None:
            raise InvalidRequest(f"after: there is no job {after}")
        if waited.status == Status.COMPLETED:
            return None
        if waited.status.is_final:
            raise Conflict(
                f"after: job {after} {waited.status.value}; it will not complete, so this job would never "
                "start. Retry that job first"
            )
        return after

    async def _extension_source(self, request: JobRequest) -> tuple[Path | None, JobRequest]:
        """The video an extension continues (video N of a completed job), checked against the
        extension's rules, and the request with its measured length. For a job not yet
        finished: no video (it is copied once that job completes), checked against what that
        job asked for. 409 for a job that failed or was cancelled."""
        assert request.extends is not None
        source = self.store.get(request.extends.job_id)

        if source.status.is_final and source.status != Status.COMPLETED:
            raise Conflict(
                f"job {source.job_id} is {source.status.value}; only a completed or unfinished job's video can be "
                "extended"
            )
        if source.status != Status.COMPLETED:
            if self.bucket_files is not None:
                # The waiting extension would copy its source from a folder no other server has.
                raise Conflict(
                    f"job {source.job_id} is {source.status.value}; without a shared directory an extension "
                    "continues only a completed job's video: submit it once that job completes"
                )
            if request.extends.video > source.request.number_of_videos:
                raise InvalidRequest(
                    f"extends_video: job {source.job_id} makes {source.request.number_of_videos} video(s), "
                    f"not {request.extends.video}"
                )
            expected = source.request.video_seconds
            check_extension_source(
                request,
                source_seconds=expected,
                source_name=f"video {request.extends.video} of job {source.job_id}",
            )
            return None, request.continuing(expected, source.request.aspect_ratio)
        video = next((v for v in source.videos if v.index == request.extends.video), None)
        if video is None:
            raise InvalidRequest(
                f"extends_video: job {source.job_id} has no video {request.extends.video}; it has {len(source.videos)}"
            )
        path = await self._cached(source, lambda home: home.video(source, video.index))
        if path is None:
            path = self.files.folder(source.job_id) / video.filename
        if not path.is_file():
            raise VideoNotFound(f"video {video.index} of job {source.job_id} is missing from its folder")
        try:
            seconds: float | None = await anyio.to_thread.run_sync(video_seconds, path)
        except ValueError:
            seconds = source.request.video_seconds  # what the job asked for stands in
        check_extension_source(
            request,
            source_seconds=seconds,
            source_name=f"video {video.index} of job {source.job_id}",
        )
        return path, request.continuing(round(seconds, 2) if seconds else None, source.request.aspect_ratio)

    async def models(self) -> dict[str, Any]:
        return model_catalog(self.settings.price_table)

    async def get(self, job_id: str) -> Job:
        return self.view(self.store.get(job_id))

    async def resolve(self, prefix: str) -> str:
        return self.store.resolve(prefix)

    async def list_jobs(
        self,
        *,
        history_limit: int = 100,
        history_offset: int = 0,
        text: str | None = None,
        queue_limit: int = QUEUE_PAGE,
        queue_offset: int = 0,
    ) -> JobLists:
        pages = (history_limit, history_offset, queue_limit, queue_offset)
        if not all(0 <= value <= MAX_PAGE_ROWS for value in pages):
            raise InvalidRequest(f"limit and offset must be 0 to {MAX_PAGE_ROWS}")
        if text:
            return JobLists.split(
                (self.view(j) for j in self.store.search(text, SEARCH_LIMIT)),
                queue_limit=queue_limit,
                queue_offset=queue_offset,
                history_limit=history_limit,
                history_offset=history_offset,
            )
        history, total = self.store.history(history_limit, history_offset)
        queued = self.store.queued(queue_limit, queue_offset) if queue_limit else []
        return JobLists(
            processing=[self.view(j) for j in self.store.active()],
            queued=[self.view(j, j.queue_position) for j in queued],
            history=[self.view(j) for j in history],
            history_total=total,
            queued_total=self.store.queue_length(),
        )

    async def group_jobs(self, group: str) -> list[Job]:
        jobs = self.store.group(group_name(group) or "", MAX_GROUP_JOBS)
        if not jobs:
            raise JobNotFound(group, f"group {group!r} has no jobs")
        return [self.view(j) for j in jobs]

    async def cancel(self, job_id: str) -> Job:
        audit = self._allow(Action.CANCEL, self.store.get(job_id))
        return self.view(self.scheduler.cancel(job_id, audit=audit))

    async def retry(self, job_id: str) -> Job:
        audit = self._allow(Action.RETRY, self.store.get(job_id))
        return self.view(self.scheduler.retry(job_id, audit=audit))

    async def delete(self, job_id: str) -> None:
        audit = self._allow(Action.DELETE, self.store.get(job_id))
        self.scheduler.delete(job_id, audit=audit)
        self._downloaded.pop(job_id, None)

    async def queue(self) -> QueueState:
        return self.scheduler.queue_state()

    async def pause(self, reason: str | None = None) -> QueueState:
        audit = self._allow(Action.PAUSE)
        return self.scheduler.pause(reason, audit=audit)

    async def resume(self) -> QueueState:
        audit = self._allow(Action.RESUME)
        return self.scheduler.resume(audit=audit)

    async def move(self, job_id: str, *, to: str | None = None, position: int | None = None) -> Job:
        audit = self._allow(Action.MOVE, self.store.get(job_id))
        detail = f"to {to}" if to is not None else f"to position {position}"
        # An operator orders their own jobs among themselves, never ahead of another user's.
        among = None if self.actor.is_admin else self.actor.user
        job = self.scheduler.move(
            job_id, to=to, position=position, among=among, audit=dataclasses.replace(audit, detail=detail)
        )
        return self.view(job, job.queue_position)

    async def timeline(self, job_id: str) -> list[JobEvent]:
        self.store.get(job_id)
        return self.store.timeline(job_id)

    async def metrics(self) -> dict[str, Any]:
        return {
            **self.store.metrics(),
            "storage_bytes": self.dir_size.value(),
            "spend_today_usd": self.store.spend_today(),
            "daily_budget_usd": self.settings.daily_budget_usd,
        }

    async def metric_series(self, hours: int = 24) -> list[dict[str, Any]]:
        if not 1 <= hours <= MAX_SERIES_HOURS:
            raise InvalidRequest(f"hours must be 1 to {MAX_SERIES_HOURS}, got {hours}")
        return self.store.metric_series(hours)

    # -- files ----------------------------------------------------------------------------

    async def _cached(self, job: Job, fetch: Callable[[BucketFiles], Awaitable[Path]]) -> Path | None:
        """Without a shared directory: the file ``fetch`` brings from the bucket into this
        server's cache; None while the data directory is the files' home."""
        if self.bucket_files is None:
            return None
        try:
            return await fetch(self.bucket_files)
        except GeneratorFault as exc:
            if exc.kind in (ErrorKind.STORAGE_NOT_FOUND, ErrorKind.MISSING_IMAGE):
                raise VideoNotFound(f"a file of job {job.job_id} is missing from the bucket: {exc}") from exc
            raise BucketUnavailable(f"the job's files could not be fetched from the bucket: {exc}") from exc

    def _completed(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job.status != Status.COMPLETED:
            raise Conflict(f"job {job_id} is {job.status.value}; only completed jobs can be downloaded")
        return job

    async def zip_file(self, job_id: str) -> Path:
        """The zip of a completed job's videos, in this server's data directory."""
        job = self._completed(job_id)
        path = await self._cached(job, lambda home: home.zip(job)) or self.files.zip(job_id)
        if not path.is_file():
            raise VideoNotFound(f"the zip of job {job_id} is missing from its folder")
        return path

    async def video_file(self, job_id: str, index: int) -> Path:
        """Video ``index`` of a completed job, in this server's data directory."""
        job = self._completed(job_id)
        video = next((v for v in job.videos if v.index == index), None)
        if video is None:
            raise VideoNotFound(f"job {job_id} has no video {index}; it has {len(job.videos)}")
        path = (
            await self._cached(job, lambda home: home.video(job, index)) or self.files.folder(job_id) / video.filename
        )
        if not path.is_file():
            raise VideoNotFound(f"video {index} of job {job_id} is missing from its folder")
        return path

    async def job_pictures(self, job_id: str, cache_dir: Path | None = None) -> list[PictureRow]:
        job = self.store.get(job_id)
        await self._cached(job, lambda home: home.everything(job, _input_names(job)))
        folder = self.files.folder(job_id)
        if not folder.is_dir():
            return []
        # Imported here: decoding videos (PyAV) is dear to import and a server may never need it.
        from veotui.datadir.frames import job_pictures

        return await anyio.to_thread.run_sync(job_pictures, folder, job)

    def picture_path(self, job_id: str, name: str) -> Path:
        """One cached picture of the job, by file name (made by :meth:`job_pictures`)."""
        self.store.get(job_id)
        if "/" in name or "\\" in name or not name.endswith(".png") or name.startswith("."):
            raise VideoNotFound(f"{clipped(name)} is not a picture name")
        path = self.files.thumbnails(job_id) / name
        if not path.is_file():
            raise VideoNotFound(f"job {job_id} has no picture {name}; list them with GET /api/jobs/{job_id}/pictures")
        return path

    async def input_file(self, job_id: str, name: str) -> Path:
        """One of the job's input images, by its name in the job's folder."""
        job = self.store.get(job_id)
        if name not in _input_names(job):
            raise VideoNotFound(
                f"job {job_id} has no input {clipped(name)}; it has {', '.join(_input_names(job)) or 'none'}"
            )
        path = await self._cached(job, lambda home: home.input(job, name)) or self.files.folder(job_id) / name
        if not path.is_file():
            raise VideoNotFound(f"the input {name} of job {job_id} is missing from its folder")
        return path

    async def input_files(self, job_id: str, dest_dir: Path) -> dict[str, Path]:
        job = self.store.get(job_id)
        found = {}
        for name in _input_names(job):
            with contextlib.suppress(VideoNotFound):
                found[name] = await self.input_file(job_id, name)
        return found

    def local_video_path(self, job: Job, index: int) -> Path | None:
        """The video's file in this data directory, if it is there now (nothing is fetched)."""
        video = next((v for v in job.videos if v.index == index), None)
        if job.status != Status.COMPLETED or video is None:
            return None
        path = self.files.folder(job.job_id) / video.filename
        return path if path.is_file() else None

    def record_download(self, job_id: str, index: int | None = None) -> None:
        """A download finished: the zip (``index`` None), or one video. The zip, or every
        video one by one by the same caller, may start the auto-delete timer (the engine
        decides: only the job's owner or an admin starts it)."""
        by = None if self.actor.is_admin else self.actor.user
        job = self.store.find(job_id)
        if job is None or job.status != Status.COMPLETED:
            return
        with contextlib.suppress(StorageUnavailable):  # the video was saved; the note of it may wait
            self.store.audit(self._entry("download", job_id, "the zip" if index is None else f"video {index}"))
        if index is not None:
            done = self._downloaded.setdefault(job_id, {}).setdefault(by, set())
            done.add(index)
            if not {v.index for v in job.videos} <= done:
                return
        self._downloaded.pop(job_id, None)
        self.scheduler.mark_downloaded(job_id, by=by)

    async def download_zip(self, job_id: str, dest_dir: Path, *, keep: bool = False) -> Path:
        source = await self.zip_file(job_id)
        target = Path(dest_dir) / f"veotui_{job_id[:8]}_videos.zip"
        await _save(source, target)
        if not keep:
            self.record_download(job_id)
        return target

    async def group_zip(self, group: str) -> tuple[list[Job], Iterator[bytes]]:
        """The completed jobs of ``group`` and their videos as one zip made as it is read,
        laid out as ``<job id>/<video file>``; 409 when none of its jobs has completed."""
        jobs = [job for job in await self.group_jobs(group) if job.status == Status.COMPLETED]
        if not jobs:
            raise Conflict(f"no job of group {group!r} has completed yet; nothing to download")
        # Each video as a single download finds it: fetched into the cache first where the
        # bucket holds the files, so a missing one is a 404 before the first byte is sent.
        entries = [
            (f"{job.job_id}/{video.filename}", await self.video_file(job.job_id, video.index))
            for job in jobs
            for video in job.videos
        ]
        return jobs, zip_stream(entries)

    async def download_group(self, group: str, dest_dir: Path) -> Path:
        jobs, chunks = await self.group_zip(group)
        target = Path(dest_dir) / group_zip_name(group)

        def save() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(target) as out:
                for chunk in chunks:
                    out.write(chunk)

        try:
            await anyio.to_thread.run_sync(save)
        except OSError as exc:
            raise save_failed(target, exc, None) from exc
        for job in jobs:
            self.record_download(job.job_id)
        return target

    async def view_video(self, job_id: str, index: int, dest_dir: Path) -> Path:
        source = await self.video_file(job_id, index)
        target = Path(dest_dir) / f"veotui_{job_id[:8]}_{source.name}"
        await _save(source, target)
        return target

    async def download_video(self, job_id: str, index: int, dest_dir: Path) -> Path:
        source = await self.video_file(job_id, index)
        target = Path(dest_dir) / f"veotui_{job_id[:8]}_{source.name}"
        await _save(source, target)
        self.record_download(job_id, index)
        return target

    async def changes(self) -> AsyncIterator[Change]:
        with self.bus.subscribe() as subscription:
            async for change in subscription:
                yield change

    def subscribe(self) -> Subscription:
        """A raw subscription (the server needs to register it before it starts streaming)."""
        return self.bus.subscribe()


def check_mode(settings: Settings) -> None:
    """Without a shared directory the database holds the state and the bucket the files:
    both must be set, else the servers could not see each other's jobs."""
    if settings.shared_dir:
        return
    missing = [
        what
        for what, present in (
            ("VEOTUI_STORE set to a postgresql:// URL", is_postgres(settings.store)),
            ("VEOTUI_GCS_BUCKET", settings.gcs_bucket is not None),
        )
        if not present
    ]
    if missing:
        raise SettingsError(
            "VEOTUI_SHARED_DIR=false (each server keeps its own data directory) needs "
            + " and ".join(missing)
            + ": the database holds the fleet's jobs and the bucket their files"
        )


def _input_names(job: Job) -> list[str]:
    names = [IMAGE_NAME] if job.has_image else []
    if job.has_last_frame:
        names.append(LAST_FRAME_NAME)
    return names + [reference_name(n) for n in range(1, job.reference_count + 1)]


async def _save(source: Path, target: Path) -> None:
    try:
        await anyio.to_thread.run_sync(copy_atomic, source, target)
    except OSError as exc:
        raise save_failed(target, exc, source.stat().st_size) from exc

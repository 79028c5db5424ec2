"""One job's run: its stages against the generator (upload, submit, poll, fetch, download),
retries with backoff, the deadline, and how it fails.

The durability rules it keeps (docs/architecture.md has the long form):

- The store is the truth. Every stage change is committed before the work of that stage.
- ``submitting`` is committed before a submit is sent, and the operation's name the moment
  it comes back. After a crash between the two, the generator is asked whether that submit
  created an operation (the simulator can tell; Veo cannot); if it cannot tell, the job fails
  with ``submit_unknown`` instead of being sent, and paid for, a second time.
- A job found processing at start resumes where it stands: with an operation it polls that
  same operation; without one it starts its stages again (nothing was sent).
- A submitted operation is paid for: transient faults while polling it never fail the job
  before ``veo_deadline``. Once it finished with videos the job keeps it (``operation_done``
  and the generator's saved result) until deleted, so a retry fetches those videos again
  instead of buying them twice.
- A write the disk refuses (full, read-only) never fails the job: it waits until the disk
  accepts writes again and carries on from its last recorded stage.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import anyio

from veotui.core.errors import Conflict, ErrorKind, JobNotFound, StorageUnavailable
from veotui.core.job import ACTIVE_STATUSES, Job, Status, Video, stage_index, utcnow
from veotui.datadir.files import JobFiles
from veotui.datadir.health import disk_full_error, format_bytes, free_bytes
from veotui.engine.bucket_files import BucketFiles
from veotui.engine.storage import StorageWatch
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
from veotui.store.fleet import LeaseLost
from veotui.store.jobs import JobStore

log = logging.getLogger(__name__)
T = TypeVar("T")
BACKOFF_CAP_SECONDS = 60.0


class _JobGone(Exception):
    """The job was cancelled or deleted while its runner worked; the runner just stops."""


class _JobFailed(Exception):
    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def backoff_delay(
    retry: int, base: float, cap: float = BACKOFF_CAP_SECONDS, rng: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**retry))."""
    return rng() * min(cap, base * 2.0**retry)


class JobRunner:
    """Runs a job, by id, from the stage its row records to its end."""

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
        self.bucket_files = bucket_files
        self.settings = settings
        self.storage = storage
        self.poll_interval = (
            settings.poll_interval if settings.poll_interval is not None else generator.default_poll_interval
        )
        #: Jobs waiting out a backoff: when they try again, why, and the time they had spent
        #: in their stage when the wait began (their progress holds still meanwhile).
        self.waiting: dict[str, tuple[datetime, str, float | None]] = {}

    async def run(self, job_id: str) -> None:
        """Run the job to its end. Whatever goes wrong ends in the job's failure, never the
        engine's; a cancel, a delete or a lost lease just stops the run."""
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
                await self.storage.writable()
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

    # -- the stages -----------------------------------------------------------------------

    async def _enter(self, job: Job, status: Status, **fields: Any) -> Job:
        """Move forward to ``status``, with ``fields``, in one commit: the stages between
        pass with no work done in them. A resumed job already there or beyond stays where it
        is and only takes ``fields``."""
        if job.status not in ACTIVE_STATUSES:
            raise _JobGone()
        passed = ACTIVE_STATUSES[stage_index(job.status) + 1 : stage_index(status)]
        if stage_index(job.status) >= stage_index(status):
            return await self.store.aupdate(job.job_id, **fields) if fields else job
        # The transition's status check catches a cancel or delete made meanwhile.
        return await self.store.atransition(job.job_id, status, expect=(job.status,), via=passed, **fields)

    async def _process(self, job_id: str) -> None:
        job = await self.store.aget(job_id)
        if job.retry_reuses_operation:
            await self._fetch_again(job)
            return
        if job.request.extends and job.operation is None and not self.files.input_video(job_id).exists():
            await self._copy_chained_source(job)
        inputs = await self._inputs(job)

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
            if inputs.files():
                job = await self._enter(job, Status.UPLOADING_IMAGE)
                inputs = await self._call(job, "upload the inputs", lambda: self.generator.upload_inputs(job, inputs))
            # ``submitting`` is committed with the stage, before the request leaves.
            job = await self._enter(job, Status.GENERATING, submitting=True)
            operation = await self._submit(job, inputs)
            # The operation exists (and may be billed): its name must be recorded, whatever it takes.
            job = await self.storage.persist(
                functools.partial(self.store.arecord_operation, job_id, operation, note=f"operation {operation}")
            )
        else:
            job = await self._enter(job, Status.GENERATING)

        result = await self._poll_until_done(job)
        # Only a generation seen whole by this process, on the monotonic clock, is a sample.
        generating_seconds = self.store.stage_elapsed(job)
        if not result.videos:
            await self._enter(job, Status.PROCESSING)
            raise _JobFailed(
                "the generation finished without any video. Google does not charge for such attempts; "
                "rephrase the prompt and retry.",
                ErrorKind.NO_VIDEOS,
            )
        # Paid for and done: from here on a retry fetches these videos, it never buys them
        # again. The result is kept in the commit that starts the download.
        saved = self.generator.save_result(result)
        job = await self.storage.persist(
            functools.partial(self._enter, job, Status.DOWNLOADING, operation_done=True, result=saved)
        )
        await self._download(job, result, generating_seconds)

    async def _fetch_again(self, job: Job) -> None:
        """A retried job whose operation already finished: fetch its videos, submit nothing."""
        job_id = job.job_id
        job = await self._enter(job, Status.GENERATING)
        result = self.generator.load_result(job.result) if job.result is not None else None
        if result is None:
            try:
                result = await self._poll_until_done(job)
            except _JobFailed as failure:
                if failure.kind == ErrorKind.OPERATION_LOST:
                    # Nothing left to fetch: the next retry has to generate again.
                    self.store.update(job_id, operation_done=False, result=None)
                raise
        await self._download(job, result, None)

    async def _download(self, job: Job, result: GenerationResult, generating_seconds: float | None) -> None:
        job_id = job.job_id
        job = await self._enter(job, Status.DOWNLOADING)
        folder = self.files.ensure(job_id)
        paths = await self._call(job, "download the videos", lambda: self.generator.fetch(job, result, folder))
        await anyio.to_thread.run_sync(self.files.build_zip, job_id, paths)
        home = self.bucket_files
        if home is not None:
            await self._call(job, "store the videos", lambda: home.put_outputs(job, result, paths))
        videos = tuple(Video(index=n, filename=p.name, size_bytes=p.stat().st_size) for n, p in enumerate(paths, 1))
        sample = None
        if generating_seconds is not None:
            sample = (job.request.model, generating_seconds, self.generator.typical_seconds)
        await self.store.atransition(
            job_id,
            Status.COMPLETED,
            expect=(Status.DOWNLOADING,),
            videos=videos,
            detail=f"{len(videos)} video(s)" + _filtered_note(result),
            seconds=self._run_seconds(job),
            sample=sample,
        )

    def _run_seconds(self, job: Job) -> float | None:
        """How long the job took: by the monotonic clock if it ran in this process alone."""
        seconds = self.store.run_elapsed(job.job_id)
        if seconds is None and job.started_at is not None:
            seconds = max(0.0, (utcnow() - job.started_at).total_seconds())
        return seconds

    async def _copy_chained_source(self, job: Job) -> None:
        """An extension queued while the job it extends was unfinished: that job has completed
        (this one waited for it), so its video is copied in now, as a submit copies it."""
        extends = job.request.extends
        assert extends is not None
        source = self.store.find(extends.job_id)
        video = None
        if source is not None and source.status == Status.COMPLETED:
            video = next((v for v in source.videos if v.index == extends.video), None)
        path = self.files.folder(extends.job_id) / video.filename if video is not None else None
        if path is None or not path.is_file():
            raise _JobFailed(
                f"video {extends.video} of job {extends.job_id}, which this job extends, is not there "
                f"(job {'deleted' if source is None else source.status.value}); submit the extension again",
                ErrorKind.MISSING_IMAGE,
            )
        await anyio.to_thread.run_sync(self.files.add_input_video, job.job_id, path)

    async def _inputs(self, job: Job) -> JobInputs:
        """The job's input files, each checked to be in its folder (a retry sends them again);
        without a shared directory, fetched from the bucket into this server's cache."""
        home = self.bucket_files
        if home is not None:
            return await self._call(job, "fetch the inputs", lambda: home.inputs(job))
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

    # -- calls to the generator, and their retries ----------------------------------------

    async def _submit(self, job: Job, inputs: JobInputs) -> str:
        """Send the generate request, retrying what was refused for a transient reason."""
        attempt = 1
        while True:
            if not job.submitting:
                job = await self.store.aupdate(job.job_id, submitting=True)
            try:
                return await self.generator.submit(job, inputs)
            except SubmitOutcomeUnknown as exc:
                raise _JobFailed(
                    f"{exc} The generation may have been accepted and billed, so veotui did not send it "
                    "again. Check your Google Cloud console before submitting it again.",
                    exc.kind,
                ) from exc
            except TransientFault as exc:
                await self.storage.persist(functools.partial(self.store.aupdate, job.job_id, submitting=False))
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
                _check_deadline(job, deadline, started, f" The last check failed: {exc}")
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
            _check_deadline(job, deadline, started, "")
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

    def _delay(self, attempt: int, fault: TransientFault) -> float:
        delay = backoff_delay(attempt - 1, self.settings.retry_base_seconds)
        if fault.retry_after is not None:
            delay = max(delay, fault.retry_after)
        return delay

    # -- failure --------------------------------------------------------------------------

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

    async def _fail(self, job_id: str, message: str, kind: str) -> None:
        """Record the failure, waiting for the disk if it refuses writes just now."""
        with contextlib.suppress(Conflict, JobNotFound):
            await self.storage.persist(
                functools.partial(
                    self.store.atransition,
                    job_id,
                    Status.FAILED,
                    expect=ACTIVE_STATUSES,
                    detail=message,
                    error=message,
                    error_kind=kind,
                )
            )


def _check_deadline(job: Job, deadline: float | None, started: float, why: str) -> None:
    """``started``: when generating began, on the monotonic clock."""
    if deadline is not None and time.monotonic() - started > deadline:
        raise _JobFailed(
            f"the operation {job.operation} did not finish within {deadline:.0f} s "
            f"(VEOTUI_VEO_DEADLINE).{why} It may still finish, and be billed, on Google's side; "
            "a retry submits again and Google charges again.",
            ErrorKind.DEADLINE,
        )


#: The ``call`` label of retries, by what the runner was doing.
_CALL_NAMES = {
    "upload the image": "upload",
    "check the operation": "poll",
    "download the videos": "download",
    "fetch the inputs": "download",
    "store the videos": "upload",
    "submit": "submit",
}


def _filtered_note(result: GenerationResult) -> str:
    """Fewer videos than asked: say how many the safety filter blocked, and why."""
    if not result.filtered_count:
        return ""
    reasons = "; ".join(result.filtered_reasons) or "no reason given"
    return f"; {result.filtered_count} blocked by the safety filter ({reasons})"

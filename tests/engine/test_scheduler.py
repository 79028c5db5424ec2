"""What the scheduler promises: slots, FIFO, cancel / retry / delete, auto-retry, auto-delete."""

from __future__ import annotations

import random

import anyio
import pytest

from tests.support.fakes import ControlledGenerator
from tests.support.waiting import wait_for, wait_status
from veotui.backend.local import LocalBackend
from veotui.core.errors import Conflict, DownloadFailed, ErrorKind, JobNotFound
from veotui.core.job import Status
from veotui.engine.runner import backoff_delay
from veotui.generators.base import PermanentFault, SubmitOutcomeUnknown, TransientFault


@pytest.fixture
async def engine(settings):
    generator = ControlledGenerator()
    async with LocalBackend(settings, generator=generator, env={}) as backend:
        yield backend, generator


async def submit(backend, prompt="p", **fields):
    return await backend.submit({"prompt": prompt, **fields})


async def statuses(backend, job_ids):
    return [(await backend.get(job_id)).status for job_id in job_ids]


async def test_at_most_two_jobs_process_and_the_rest_wait_in_fifo_order(engine):
    backend, generator = engine
    jobs = [await submit(backend, f"job {n}") for n in range(5)]
    ids = [job.job_id for job in jobs]
    await wait_for(lambda: len(generator.submitted) == 2, what="two submits")
    await anyio.sleep(0.05)
    assert generator.submitted == ids[:2]
    lists = await backend.list_jobs()
    assert [j.job_id for j in lists.processing] == ids[:2]
    assert [j.job_id for j in lists.queued] == ids[2:]
    assert [j.queue_position for j in lists.queued] == [1, 2, 3]

    generator.finish(ids[1])
    await wait_for(lambda: len(generator.submitted) == 3, what="the third submit")
    assert generator.submitted[2] == ids[2]
    await wait_status(backend, ids[1], Status.COMPLETED)
    assert (await backend.get(ids[3])).queue_position == 1


async def test_cancel_of_a_processing_job_frees_its_slot_at_once(engine):
    backend, generator = engine
    first, second, third = [await submit(backend, f"job {n}") for n in range(3)]
    await wait_for(lambda: len(generator.submitted) == 2, what="two submits")

    cancelled = await backend.cancel(first.job_id)
    assert cancelled.status == Status.CANCELLED
    await wait_for(lambda: len(generator.submitted) == 3, what="the queued job to take the slot")
    assert generator.submitted[2] == third.job_id
    assert backend.scheduler.running_job_ids == [second.job_id, third.job_id]
    # The cancelled job's temp files are released when its runner ends.
    await wait_for(lambda: generator.cleaned.get(first.job_id) == [False], what="cleanup of the cancelled job")


async def test_cancel_of_a_queued_job_moves_it_to_history(engine):
    backend, generator = engine
    jobs = [await submit(backend, f"job {n}") for n in range(3)]
    await wait_for(lambda: len(generator.submitted) == 2, what="two submits")
    await backend.cancel(jobs[2].job_id)
    lists = await backend.list_jobs()
    assert lists.queued == []
    assert [j.job_id for j in lists.history] == [jobs[2].job_id]
    assert jobs[2].job_id not in generator.submitted
    with pytest.raises(Conflict, match="already ended"):
        await backend.cancel(jobs[2].job_id)


async def test_retry_goes_to_the_back_of_the_queue_with_the_original_parameters(engine):
    backend, generator = engine
    first = await submit(backend, "first", number_of_videos=3, seed=7, aspect_ratio="9:16")
    await wait_for(lambda: len(generator.submitted) == 1, what="a submit")
    generator.fail(first.job_id)
    await wait_status(backend, first.job_id, Status.FAILED)
    failed = await backend.get(first.job_id)
    assert failed.error == "3 INVALID_ARGUMENT: bad prompt"
    assert failed.error_kind == "operation_error"

    blockers = [await submit(backend, f"blocker {n}") for n in range(2)]
    waiting = await submit(backend, "waiting")
    await wait_for(lambda: len(generator.submitted) == 3, what="blockers submitted")
    retried = await backend.retry(first.job_id)
    assert retried.status == Status.QUEUED
    assert retried.error is None and retried.operation is None
    assert retried.request == first.request
    lists = await backend.list_jobs()
    assert [j.job_id for j in lists.queued] == [waiting.job_id, first.job_id]

    generator.finish(blockers[0].job_id)
    generator.finish(blockers[1].job_id)
    await wait_for(lambda: generator.submitted[-1] == first.job_id, what="the retried job to start")
    assert (await backend.get(first.job_id)).attempts == 2
    with pytest.raises(Conflict, match="only failed or cancelled"):
        await backend.retry(blockers[0].job_id)


async def test_delete_removes_row_folder_and_remote_files_and_frees_the_slot(engine, settings):
    backend, generator = engine
    running = await submit(backend, "running")
    await submit(backend, "also running")
    third = await submit(backend, "third")
    await wait_for(lambda: len(generator.submitted) == 2, what="two submits")
    folder = backend.files.folder(running.job_id)
    assert not folder.exists()  # no input image: no folder until the videos come
    backend.files.ensure(running.job_id)

    await backend.delete(running.job_id)
    with pytest.raises(JobNotFound):
        await backend.get(running.job_id)
    assert not folder.exists()
    await wait_for(lambda: third.job_id in generator.submitted, what="the slot to be reused")
    await wait_for(lambda: True in generator.cleaned.get(running.job_id, []), what="remote cleanup")
    assert backend.store.pending_cleanups() == []


async def test_transient_submit_faults_are_retried_then_the_job_completes(engine):
    backend, generator = engine
    generator.submit_faults = [TransientFault("429 RESOURCE_EXHAUSTED"), TransientFault("503 UNAVAILABLE")]
    job = await submit(backend, "flaky")
    await wait_for(lambda: len(generator.submitted) == 1, what="the third attempt to submit")
    generator.finish(job.job_id, videos=2)
    await wait_status(backend, job.job_id, Status.COMPLETED)
    done = await backend.get(job.job_id)
    assert done.attempts == 3
    notes = [e.detail for e in await backend.timeline(job.job_id) if e.detail and e.detail.startswith("429 ")]
    assert notes and "attempt 2 of 3" in notes[0]


async def test_three_transient_faults_fail_the_job_with_the_last_error(engine):
    backend, generator = engine
    generator.submit_faults = [TransientFault(f"503 UNAVAILABLE #{n}") for n in range(3)]
    job = await submit(backend, "doomed")
    await wait_status(backend, job.job_id, Status.FAILED)
    failed = await backend.get(job.job_id)
    assert failed.error == "503 UNAVAILABLE #2 (gave up after 3 attempts)"
    assert failed.error_kind == "transient"
    assert generator.submitted == []


async def test_a_permanent_fault_fails_at_once_and_an_unknown_submit_is_never_resent(engine):
    backend, generator = engine
    generator.submit_faults = [PermanentFault("400 INVALID_ARGUMENT: duration", kind="bad_request")]
    bad = await submit(backend, "bad")
    await wait_status(backend, bad.job_id, Status.FAILED)
    assert (await backend.get(bad.job_id)).attempts == 1

    generator.submit_faults = [SubmitOutcomeUnknown("the submit timed out after it was sent.")]
    unknown = await submit(backend, "unknown")
    await wait_status(backend, unknown.job_id, Status.FAILED)
    failed = await backend.get(unknown.job_id)
    assert failed.error_kind == "submit_unknown"
    assert "did not send it again" in failed.error
    assert generator.submitted == []


async def test_auto_delete_after_a_download(make_settings, tmp_path):
    settings = make_settings(auto_delete_after_download="0.2")
    generator = ControlledGenerator()
    async with LocalBackend(settings, generator=generator, env={}) as backend:
        job = await submit(backend, "to download", number_of_videos=2)
        await wait_for(lambda: generator.submitted, what="a submit")
        generator.finish(job.job_id, videos=2)
        await wait_status(backend, job.job_id, Status.COMPLETED)

        await backend.download_video(job.job_id, 1, tmp_path / "out")
        await anyio.sleep(0.4)
        assert (await backend.get(job.job_id)).status == Status.COMPLETED  # one of two videos
        await backend.download_video(job.job_id, 2, tmp_path / "out")

        async def gone():
            try:
                await backend.get(job.job_id)
            except JobNotFound:
                return True
            return False

        await wait_for(gone, what="auto-delete")
        assert not backend.files.folder(job.job_id).exists()
        with pytest.raises(JobNotFound, match="was deleted after download at"):
            await backend.resolve(job.job_id[:8])
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
            f"veotui_{job.job_id[:8]}_generated_video_1.mp4",
            f"veotui_{job.job_id[:8]}_generated_video_2.mp4",
        ]


async def test_auto_delete_off_keeps_the_job(make_settings, tmp_path):
    settings = make_settings(auto_delete_after_download="off")
    generator = ControlledGenerator()
    async with LocalBackend(settings, generator=generator, env={}) as backend:
        job = await submit(backend, "keep me")
        await wait_for(lambda: generator.submitted, what="a submit")
        generator.finish(job.job_id)
        await wait_status(backend, job.job_id, Status.COMPLETED)
        await backend.download_zip(job.job_id, tmp_path / "out")
        await anyio.sleep(0.3)
        assert (await backend.get(job.job_id)).downloaded_at is not None


async def test_subscribers_see_every_transition_and_a_stalled_one_does_not_block(engine):
    backend, generator = engine
    seen: list[tuple[str, str]] = []
    stalled = backend.subscribe()  # never read: must not hold anything up

    async def listen(task_status=anyio.TASK_STATUS_IGNORED):
        subscription = backend.subscribe()
        task_status.started()
        with subscription:
            async for change in subscription:
                seen.append((change.kind, change.job.status.value if change.job else "-"))
                if change.kind == "deleted":
                    return

    async with anyio.create_task_group() as tg:
        await tg.start(listen)
        job = await submit(backend, "watched")
        await wait_for(lambda: generator.submitted, what="a submit")
        await wait_for(lambda: ("job", "generating") in seen, what="the generating event")
        generator.finish(job.job_id)
        await wait_status(backend, job.job_id, Status.COMPLETED)
        await wait_for(lambda: ("job", "completed") in seen, what="the completed event")
        await backend.delete(job.job_id)
    stalled.close()
    statuses_seen = [status for kind, status in seen if kind == "job"]
    assert statuses_seen[0] == "queued"
    assert statuses_seen.index("generating") < statuses_seen.index("completed")
    assert seen[-1] == ("deleted", "-")


def test_backoff_is_full_jitter_bounded_by_the_cap():
    rng = random.Random(4)
    delays = [backoff_delay(n, 2.0, cap=60.0, rng=rng.random) for n in range(12)]
    assert all(0 <= d <= min(60.0, 2.0 * 2**n) for n, d in enumerate(delays))
    assert backoff_delay(3, 2.0, rng=lambda: 1.0) == 16.0
    assert backoff_delay(10, 2.0, rng=lambda: 1.0) == 60.0


async def test_a_download_to_an_unwritable_place_is_one_clear_error(engine, tmp_path):
    backend, generator = engine
    job = await submit(backend, "saved nowhere")
    await wait_for(lambda: generator.submitted, what="a submit")
    generator.finish(job.job_id)
    await wait_status(backend, job.job_id, Status.COMPLETED)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(DownloadFailed, match=f"cannot save veotui_{job.job_id[:8]}_videos.zip in {blocker}"):
        await backend.download_zip(job.job_id, blocker)
    assert (await backend.get(job.job_id)).downloaded_at is None


class _NeverDone(ControlledGenerator):
    """Operations that never finish, on a service where that can happen."""

    operations_can_hang = True

    polls = 0

    async def poll(self, job, operation):
        self.polls += 1
        return None


@pytest.mark.parametrize("can_hang", [True, False])
async def test_the_deadline_applies_to_generators_whose_operations_can_hang(make_settings, can_hang):
    generator = _NeverDone()
    generator.operations_can_hang = can_hang
    async with LocalBackend(make_settings(veo_deadline="0.2"), generator=generator, env={}) as backend:
        job = await submit(backend)
        if can_hang:
            await wait_status(backend, job.job_id, Status.FAILED)
            assert (await backend.get(job.job_id)).error_kind == ErrorKind.DEADLINE
        else:
            # Polled well past the deadline, the job still waits for its operation.
            await wait_for(lambda: generator.polls >= 20, what="polls past the deadline")
            assert (await backend.get(job.job_id)).status == Status.GENERATING

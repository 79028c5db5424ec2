"""A submitted generation is paid for: veotui never abandons one to a transient fault, and a
retry never buys again what Google already made. Through the whole engine, the real
google-genai and google-cloud-storage clients, the fake Vertex AI and the storage emulator."""

from __future__ import annotations

from tests.support.waiting import wait_for
from tests.veo.fake_vertex import Fault
from veotui.backend.local import LocalBackend
from veotui.core.job import Job, Status


async def until_ended(backend: LocalBackend, job_id: str) -> Job:
    async def ended() -> bool:
        return (await backend.get(job_id)).status.is_final

    await wait_for(ended, what=f"job {job_id} to end")
    return await backend.get(job_id)


async def test_polls_that_fail_again_and_again_never_fail_the_job(make_settings, make_veo, fake_vertex):
    # More 503s in a row than the three attempts a submit or a download gets.
    fake_vertex.faults.append(Fault("fetchPredictOperation", status=503, times=6))
    fake_vertex.pending_polls = 0
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await backend.submit({"prompt": "a lighthouse in fog"})
        done = await until_ended(backend, job.job_id)
        notes = [event.detail or "" for event in await backend.timeline(job.job_id)]

    assert done.status == Status.COMPLETED, done.error
    assert len(fake_vertex.submits()) == 1
    assert len(fake_vertex.calls("fetchPredictOperation")) == 7
    failed_polls = [note for note in notes if note.startswith("could not check the operation")]
    assert len(failed_polls) == 6 and all("503 UNAVAILABLE" in note for note in failed_polls)
    assert "(6 in a row)" in failed_polls[-1]


async def test_polls_that_never_recover_fail_only_at_the_deadline(make_settings, make_veo, fake_vertex):
    fake_vertex.faults.append(Fault("fetchPredictOperation", status=503, times=10_000))
    settings = make_settings(veo_deadline=0.8)
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await backend.submit({"prompt": "a lighthouse in a storm"})
        failed = await until_ended(backend, job.job_id)

    assert failed.status == Status.FAILED and failed.error_kind == "deadline"
    assert failed.error is not None
    assert "VEOTUI_VEO_DEADLINE" in failed.error and "503 UNAVAILABLE" in failed.error
    assert len(fake_vertex.submits()) == 1
    assert len(fake_vertex.calls("fetchPredictOperation")) > 3
    assert not failed.retry_reuses_operation


async def test_a_retry_fetches_a_finished_generation_again_without_a_new_submit(
    make_settings, make_veo, fake_vertex, bucket, storage_client, mp4
):
    # Veo finished and named its videos, but they cannot be read from the bucket yet.
    fake_vertex.withhold_videos = True
    settings = make_settings(gcs_bucket=bucket)
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await backend.submit({"prompt": "two herons", "number_of_videos": 2})
        failed = await until_ended(backend, job.job_id)
        assert failed.status == Status.FAILED, failed.error
        assert failed.operation and failed.retry_reuses_operation
        # The failed job's outputs are kept for the retry.
        polls_before = len(fake_vertex.calls("fetchPredictOperation"))

        fake_vertex.release_videos()
        retried = await backend.retry(job.job_id)
        assert retried.status == Status.QUEUED and retried.operation == failed.operation
        assert retried.retry_reuses_operation
        done = await until_ended(backend, job.job_id)
        folder = backend.files.folder(job.job_id)
        notes = [event.detail or "" for event in await backend.timeline(job.job_id)]
        spend = backend.store.spend_today()

    assert done.status == Status.COMPLETED, done.error
    assert len(fake_vertex.submits()) == 1 and len(fake_vertex.operations) == 1
    # The saved result named the videos: not even a poll was needed.
    assert len(fake_vertex.calls("fetchPredictOperation")) == polls_before
    assert [v.filename for v in done.videos] == ["generated_video_1.mp4", "generated_video_2.mp4"]
    assert (folder / "generated_video_2.mp4").read_bytes() == mp4
    assert any("no new charge" in note for note in notes)
    # Bought once, counted once.
    assert spend == done.estimated_cost_usd


async def test_a_retry_of_an_operation_that_ended_in_an_error_submits_again(make_settings, make_veo, fake_vertex):
    fake_vertex.outcome = "error"
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await backend.submit({"prompt": "a clock tower"})
        failed = await until_ended(backend, job.job_id)
        assert failed.status == Status.FAILED and failed.error_kind == "operation_error"
        assert not failed.retry_reuses_operation

        fake_vertex.outcome = "videos"
        retried = await backend.retry(job.job_id)
        assert retried.operation is None and not retried.retry_reuses_operation
        done = await until_ended(backend, job.job_id)
        notes = [event.detail or "" for event in await backend.timeline(job.job_id)]
        spend = backend.store.spend_today()

    assert done.status == Status.COMPLETED, done.error
    assert len(fake_vertex.submits()) == 2 and done.operation != failed.operation
    assert any("Google charges again" in note for note in notes)
    assert done.estimated_cost_usd is not None and spend == round(2 * done.estimated_cost_usd, 2)


async def test_without_a_saved_result_a_retry_polls_the_finished_operation_again(
    make_settings, make_veo, fake_vertex, bucket
):
    fake_vertex.withhold_videos = True
    settings = make_settings(gcs_bucket=bucket)
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await backend.submit({"prompt": "a kingfisher"})
        failed = await until_ended(backend, job.job_id)
        assert failed.status == Status.FAILED and failed.retry_reuses_operation
        # As for videos that came inline: nothing saved, only the operation to ask again.
        backend.store.update(job.job_id, result=None)
        polls_before = len(fake_vertex.calls("fetchPredictOperation"))
        fake_vertex.release_videos()
        await backend.retry(job.job_id)
        done = await until_ended(backend, job.job_id)

    assert done.status == Status.COMPLETED, done.error
    assert len(fake_vertex.submits()) == 1
    assert len(fake_vertex.calls("fetchPredictOperation")) == polls_before + 1


async def test_a_finished_operation_google_forgot_is_generated_again_at_the_next_retry(
    make_settings, make_veo, fake_vertex, bucket
):
    fake_vertex.withhold_videos = True
    settings = make_settings(gcs_bucket=bucket)
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await backend.submit({"prompt": "an otter"})
        failed = await until_ended(backend, job.job_id)
        backend.store.update(job.job_id, result=None)
        fake_vertex.operations.clear()  # Vertex AI no longer knows it
        await backend.retry(job.job_id)
        lost = await until_ended(backend, job.job_id)
        assert lost.status == Status.FAILED and lost.error_kind == "operation_lost"
        assert lost.operation == failed.operation and not lost.retry_reuses_operation

        fake_vertex.release_videos()
        again = await backend.retry(job.job_id)
        assert again.operation is None
        done = await until_ended(backend, job.job_id)

    assert done.status == Status.COMPLETED, done.error
    assert len(fake_vertex.submits()) == 2

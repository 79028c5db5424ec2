"""The backend interface, run against LocalBackend and RemoteBackend alike (see conftest):
the same calls must give the same results and raise the same errors."""

from __future__ import annotations

import io
import zipfile

import anyio
import pytest
from PIL import Image

from tests.support.waiting import wait_for
from veotui.core.errors import Conflict, InvalidRequest, JobNotFound, TooLarge, VideoNotFound
from veotui.core.job import ACTIVE_STATUSES, Change, Status
from veotui.datadir.files import MAX_IMAGE_BYTES


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (200, 30, 30, 128)).save(out, "PNG")
    return out.getvalue()


async def until_status(backend, job_id: str, *statuses: Status, timeout: float = 60.0):
    async def reached() -> bool:
        return (await backend.get(job_id)).status in statuses

    await wait_for(reached, timeout=timeout, what=f"job {job_id[:8]} to be {'/'.join(statuses)}")
    return await backend.get(job_id)


async def test_info_names_the_simulator(backend):
    info = await backend.info()
    assert (info.generator, info.is_simulator, info.max_concurrent) == ("sim", True, 2)


async def test_storage_accepts_writes(backend):
    state = await backend.storage_status()
    assert (state.ok, state.state, state.reason) == (True, "ok", None)
    assert (await backend.info()).storage == state


async def test_submit_returns_the_queued_job_with_every_field(backend):
    job = await backend.submit(
        {
            "prompt": "  a red kite over dunes  ",
            "number_of_videos": 2,
            "model": "veo-3.1-fast-generate-001",
            "aspect_ratio": "9:16",
            "duration_seconds": 8,
            "resolution": "1080p",
            "negative_prompt": "fog",
            "seed": 7,
        }
    )
    assert job.status == Status.QUEUED and job.queue_position is not None
    request = job.request
    assert (request.prompt, request.number_of_videos, request.model) == (
        "a red kite over dunes",
        2,
        "veo-3.1-fast-generate-001",
    )
    assert (request.aspect_ratio, request.duration_seconds, request.resolution) == ("9:16", 8, "1080p")
    assert (request.negative_prompt, request.seed, job.has_image) == ("fog", 7, False)
    assert (await backend.get(job.job_id)).request == request


@pytest.mark.parametrize(
    "fields, names",
    [
        ({}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 4001}, "4000"),
        ({"prompt": "p", "number_of_videos": 5}, "number_of_videos"),
        ({"prompt": "p", "number_of_videos": True}, "number_of_videos"),
        ({"prompt": "p", "number_of_videos": "two"}, "number_of_videos"),
        ({"prompt": "p", "model": "veo-9"}, "model"),
        ({"prompt": "p", "aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"prompt": "p", "duration_seconds": 5}, "duration_seconds"),
        ({"prompt": "p", "resolution": "8k"}, "resolution"),
        ({"prompt": "p", "seed": -1}, "seed"),
        ({"prompt": "p", "negative_prompt": 3}, "negative_prompt"),
        ({"prompt": "p", "colour": "blue"}, "colour"),
        ({"prompt": "half a pair \ud83d"}, "prompt"),
        ({"prompt": "p", "number_of_videos": float("nan")}, "number_of_videos"),
    ],
)
async def test_invalid_fields_are_refused_naming_the_field(backend, fields, names):
    with pytest.raises(InvalidRequest, match=names):
        await backend.submit(fields)
    assert (await backend.list_jobs()).queued == []


async def test_images_are_converted_and_bad_ones_refused(backend, settings):
    job = await backend.submit({"prompt": "pan over this"}, png(), "kite.png")
    assert job.has_image
    with pytest.raises(InvalidRequest, match="notes.txt"):
        await backend.submit({"prompt": "p"}, b"just some text", "notes.txt")
    with pytest.raises(InvalidRequest, match="cut.png"):
        await backend.submit({"prompt": "p"}, png(400, 300)[:300], "cut.png")
    with pytest.raises(TooLarge, match="10 MB"):
        await backend.submit({"prompt": "p"}, b"\x89PNG" + bytes(MAX_IMAGE_BYTES), "huge.png")
    lists = await backend.list_jobs()
    assert [j.job_id for j in (*lists.processing, *lists.queued, *lists.history)] == [job.job_id]
    assert sorted(p.name for p in settings.jobs_dir.iterdir()) == [f"job_{job.job_id}"]


async def test_jobs_run_fifo_two_at_a_time_to_completed(backend):
    jobs = [await backend.submit({"prompt": f"scene {n}"}) for n in range(4)]
    most_processing = 0

    async def all_done() -> bool:
        nonlocal most_processing
        lists = await backend.list_jobs()
        most_processing = max(most_processing, len(lists.processing))
        assert len(lists.processing) <= 2
        assert [j.queue_position for j in lists.queued] == list(range(1, len(lists.queued) + 1))
        return len(lists.history) == 4

    await wait_for(all_done, what="four jobs to end")
    assert most_processing == 2
    finished = [await backend.get(j.job_id) for j in jobs]
    assert all(j.status == Status.COMPLETED and j.progress == 100 for j in finished)
    started = [j.started_at for j in finished]
    assert started == sorted(started), "queued jobs start in submission order"
    history = (await backend.list_jobs()).history
    assert [j.finished_at for j in history] == sorted((j.finished_at for j in history), reverse=True)


async def test_timeline_lists_every_stage_in_order(backend):
    job = await backend.submit({"prompt": "timeline"})
    await until_status(backend, job.job_id, Status.COMPLETED)
    statuses: list[Status] = []
    for event in await backend.timeline(job.job_id):
        if not statuses or statuses[-1] != event.status:
            statuses.append(event.status)
    assert statuses == [Status.QUEUED, *ACTIVE_STATUSES, Status.COMPLETED]
    with pytest.raises(JobNotFound):
        await backend.timeline("00000000-0000-4000-8000-000000000000")


async def test_cancel_retry_delete_and_their_conflicts(backend, settings):
    blockers = [await backend.submit({"prompt": f"blocker {n}"}) for n in range(2)]
    waiting = await backend.submit({"prompt": "waits in line"})
    cancelled = await backend.cancel(waiting.job_id)
    assert cancelled.status == Status.CANCELLED
    with pytest.raises(Conflict):
        await backend.cancel(waiting.job_id)
    requeued = await backend.retry(waiting.job_id)
    assert requeued.status == Status.QUEUED
    await until_status(backend, blockers[0].job_id, Status.COMPLETED)
    with pytest.raises(Conflict):
        await backend.retry(blockers[0].job_id)
    await backend.delete(blockers[0].job_id)
    with pytest.raises(JobNotFound):
        await backend.get(blockers[0].job_id)
    with pytest.raises(JobNotFound):
        await backend.delete(blockers[0].job_id)
    assert not (settings.jobs_dir / f"job_{blockers[0].job_id}").exists()


async def test_a_processing_job_cancels_at_once_and_frees_its_slot(backend_for, make_settings):
    async with backend_for(make_settings(sim_seconds=30)) as backend:
        first, second, third = [await backend.submit({"prompt": f"long {n}"}) for n in range(3)]
        await until_status(backend, first.job_id, Status.GENERATING)
        assert (await backend.cancel(first.job_id)).status == Status.CANCELLED
        await until_status(backend, third.job_id, *ACTIVE_STATUSES)
        assert (await backend.get(second.job_id)).status in ACTIVE_STATUSES


async def test_failures_carry_an_error_and_can_be_retried(backend):
    job = await backend.submit({"prompt": "this will [fail]"})
    failed = await until_status(backend, job.job_id, Status.FAILED)
    assert failed.error and failed.error_kind
    assert (await backend.retry(job.job_id)).status == Status.QUEUED
    metrics = await backend.metrics()
    assert metrics["failed"] >= 1 and metrics["errors_by_kind"]


async def test_resolve_accepts_unique_prefixes(backend):
    job = await backend.submit({"prompt": "prefix"})
    assert await backend.resolve(job.job_id[:6]) == job.job_id
    assert await backend.resolve(job.job_id.upper()) == job.job_id
    for bad in ("", "zz", "../etc", "ffffffff-ffff"):
        with pytest.raises(JobNotFound):
            await backend.resolve(bad)


async def test_list_jobs_filters_by_text_and_pages_history(backend):
    kite = await backend.submit({"prompt": "a kite"})
    boat = await backend.submit({"prompt": "a boat"})
    await until_status(backend, boat.job_id, Status.COMPLETED)
    await until_status(backend, kite.job_id, Status.COMPLETED)
    found = await backend.list_jobs(text="kite")
    assert [j.job_id for j in found.history] == [kite.job_id]
    page = await backend.list_jobs(history_limit=1, history_offset=1)
    assert len(page.history) == 1 and page.history_total == 2
    with pytest.raises(InvalidRequest):
        await backend.list_jobs(history_limit=-1)


async def test_downloads_and_auto_delete(backend_for, make_settings, tmp_path):
    # Long enough for the zip and a video to be saved before the job goes.
    async with backend_for(make_settings(auto_delete_after_download="1.0")) as backend:
        job = await backend.submit({"prompt": "two takes", "number_of_videos": 2})
        with pytest.raises(Conflict):
            await backend.download_zip(job.job_id, tmp_path)
        done = await until_status(backend, job.job_id, Status.COMPLETED)
        with pytest.raises(VideoNotFound):
            await backend.download_video(job.job_id, 3, tmp_path)
        zip_path = await backend.download_zip(job.job_id, tmp_path / "zips")
        assert zip_path.name == f"veotui_{job.job_id[:8]}_videos.zip"
        with zipfile.ZipFile(zip_path) as archive:
            assert sorted(archive.namelist()) == ["generated_video_1.mp4", "generated_video_2.mp4"]
        first = await backend.download_video(job.job_id, 1, tmp_path)
        assert first.name == f"veotui_{job.job_id[:8]}_generated_video_1.mp4"
        assert first.stat().st_size == done.videos[0].size_bytes
        assert not list(tmp_path.rglob(".partial-*"))

        async def gone() -> bool:
            try:
                await backend.get(job.job_id)
            except JobNotFound:
                return True
            return False

        await wait_for(gone, what="the downloaded job to be deleted automatically")


async def test_changes_report_every_transition_and_deletes(backend):
    seen: list[Change] = []

    async def follow() -> None:
        async for change in backend.changes():
            seen.append(change)

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(follow)
        await anyio.sleep(0.3)  # the remote stream connects
        job = await backend.submit({"prompt": "watched"})
        await until_status(backend, job.job_id, Status.COMPLETED)

        async def saw(predicate) -> bool:
            return any(predicate(c) for c in seen)

        await wait_for(
            lambda: saw(lambda c: c.job_id == job.job_id and c.job.status == Status.COMPLETED), what="completed event"
        )
        await backend.delete(job.job_id)
        await wait_for(lambda: saw(lambda c: c.job_id == job.job_id and c.kind == "deleted"), what="deleted event")
        task_group.cancel_scope.cancel()
    mine = [c for c in seen if c.job_id == job.job_id and c.kind == "job"]
    last = mine[-1].job
    assert last is not None and last.videos and last.progress == 100


async def test_changes_end_when_the_backend_closes(backend_for, settings):
    ended = anyio.Event()

    async def follow(backend) -> None:
        async for _ in backend.changes():
            pass
        ended.set()

    async with backend_for(settings) as backend:
        async with anyio.create_task_group() as followers:
            followers.start_soon(follow, backend)
            await backend.submit({"prompt": "short-lived"})
            await anyio.sleep(0.3)
            await backend.close()  # closing twice (here and on exit) is fine too
            with anyio.fail_after(5):
                await ended.wait()


async def test_list_jobs_pages_the_queue(backend_for, make_settings):
    async with backend_for(make_settings(max_concurrent=1, sim_seconds=60)) as backend:
        jobs = [await backend.submit({"prompt": f"in line {n}"}) for n in range(6)]
        await until_status(backend, jobs[0].job_id, Status.GENERATING)
        page = await backend.list_jobs(queue_limit=2, queue_offset=1)
        assert [j.job_id for j in page.queued] == [jobs[2].job_id, jobs[3].job_id]
        assert [j.queue_position for j in page.queued] == [2, 3]
        assert page.queued_total == 5
        assert (await backend.list_jobs(queue_limit=0)).queued == []
        assert (await backend.list_jobs()).queued_total == 5
        seqs = [j.queue_seq for j in (await backend.list_jobs()).queued]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        with pytest.raises(InvalidRequest):
            await backend.list_jobs(queue_offset=-1)
        for job in jobs:
            await backend.cancel(job.job_id)


async def test_metrics_and_the_hourly_series_count_ended_jobs(backend):
    done = await backend.submit({"prompt": "counted"})
    await until_status(backend, done.job_id, Status.COMPLETED)
    metrics = await backend.metrics()
    assert metrics["completed"] == 1 and metrics["processing_seconds_p50"] is not None
    assert metrics["queue_wait_seconds_avg"] is not None and metrics["estimated_cost_usd_total"] >= 0
    assert metrics["storage_bytes"] >= 0 and "downloading" in metrics["stage_seconds"]
    series = await backend.metric_series(24)
    assert len(series) == 24 and sum(hour["completed"] for hour in series) == 1
    assert series[-1]["completed"] == 1 and series[-1]["queue_length_max"] >= 1
    assert [hour["hour"] for hour in series] == sorted(hour["hour"] for hour in series)
    with pytest.raises(InvalidRequest):
        await backend.metric_series(0)


async def test_every_job_carries_its_estimated_cost(backend):
    from veotui.core.prices import estimate_cost

    job = await backend.submit({"prompt": "a priced kite", "number_of_videos": 3, "duration_seconds": 6})
    expected = estimate_cost(job.request)
    assert expected is not None and expected > 0
    assert job.estimated_cost_usd == expected
    assert (await backend.get(job.job_id)).estimated_cost_usd == expected
    listed = await backend.list_jobs()
    assert [j.estimated_cost_usd for j in [*listed.processing, *listed.queued] if j.job_id == job.job_id] == [expected]


async def test_retry_says_what_it_will_do_and_a_finished_generation_is_not_bought_twice(backend):
    failed_op = await backend.submit({"prompt": "this will [fail]"})
    unfetchable = await backend.submit({"prompt": "made but [unfetchable]"})
    errored = await until_status(backend, failed_op.job_id, Status.FAILED)
    stranded = await until_status(backend, unfetchable.job_id, Status.FAILED)
    assert not errored.retry_reuses_operation
    assert stranded.operation and stranded.retry_reuses_operation

    again = await backend.retry(stranded.job_id)
    assert again.status == Status.QUEUED and again.operation == stranded.operation and again.retry_reuses_operation
    done = await until_status(backend, stranded.job_id, Status.COMPLETED)
    assert done.operation == stranded.operation and len(done.videos) == 1
    notes = [event.detail or "" for event in await backend.timeline(done.job_id)]
    assert any("no new charge" in note for note in notes)

    resubmitted = await backend.retry(errored.job_id)
    assert resubmitted.operation is None and not resubmitted.retry_reuses_operation
    failed_again = await until_status(backend, errored.job_id, Status.FAILED)
    assert failed_again.operation not in (None, errored.operation)


async def test_the_queue_reports_what_was_bought_today(backend):
    assert (await backend.queue()).spent_today_usd == 0
    states = []

    async def follow():
        async for change in backend.changes():
            if change.kind == "queue" and change.queue is not None:
                states.append(change.queue.spent_today_usd)

    async with anyio.create_task_group() as group:
        group.start_soon(follow)
        first = await backend.submit({"prompt": "bought once", "duration_seconds": 4})
        second = await backend.submit({"prompt": "bought too but [unfetchable]", "number_of_videos": 2})
        await until_status(backend, first.job_id, Status.COMPLETED)
        stranded = await until_status(backend, second.job_id, Status.FAILED)
        bought = round(first.estimated_cost_usd + second.estimated_cost_usd, 2)
        assert (await backend.queue()).spent_today_usd == bought
        await wait_for(lambda: bought in states, what="a queue change with today's spend")

        # A retry that fetches the finished generation again buys nothing.
        await backend.retry(stranded.job_id)
        await until_status(backend, stranded.job_id, Status.COMPLETED)
        assert (await backend.queue()).spent_today_usd == bought
        group.cancel_scope.cancel()


async def test_info_carries_the_price_table_in_use_and_jobs_are_priced_by_it(backend_for, settings):
    from veotui.core.prices import estimate_cost

    priced = settings.replace(prices={"veo-3.1-fast-generate-001": {"audio": 1.0}})
    async with backend_for(priced) as backend:
        info = await backend.info()
        fast = info.prices.get("veo-3.1-fast-generate-001")
        assert fast is not None and fast.per_second(audio=True, resolution="1080p") == 1.0
        job = await backend.submit({"prompt": "priced here", "model": "veo-3.1-fast-generate-001"})
        assert job.estimated_cost_usd == 8.0 == estimate_cost(job.request, info.prices)


async def test_the_veo_31_modes_travel_through_the_backend(backend):
    def picture(colour) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (32, 18), colour).save(buffer, "PNG")
        return buffer.getvalue()

    frames = await backend.submit(
        {"prompt": "a door", "generate_audio": False, "person_generation": "allow_adult", "enhance_prompt": True},
        picture((255, 0, 0)),
        "first.png",
        last_frame=(picture((0, 0, 255)), "last.png"),
    )
    assert (frames.has_image, frames.has_last_frame, frames.reference_count) == (True, True, 0)
    request = frames.request
    assert (request.generate_audio, request.person_generation, request.enhance_prompt) == (False, "allow_adult", True)
    assert (await backend.get(frames.job_id)).request == request

    refs = await backend.submit(
        {"prompt": "a mug"}, references=[(picture((0, n * 80, 0)), f"r{n}.png") for n in range(3)]
    )
    assert (refs.reference_count, refs.request.reference_type) == (3, "asset")

    with pytest.raises(InvalidRequest, match="resolution: veo-3.1-lite-generate-001 renders 720p or 1080p, not 4k"):
        await backend.submit({"prompt": "p", "model": "veo-3.1-lite-generate-001", "resolution": "4k"})
    with pytest.raises(InvalidRequest, match="reference_type: veo-3.1-generate-001 takes asset"):
        await backend.submit({"prompt": "p", "reference_type": "style"}, references=[(picture((0, 0, 0)), "r.png")])
    doomed = await backend.submit({"prompt": "never finishes well [fail]"})
    await until_status(backend, doomed.job_id, Status.FAILED)
    with pytest.raises(Conflict, match="is failed; only a completed or unfinished job's video can be extended"):
        await backend.submit({"prompt": "p", "extends_job_id": doomed.job_id})

    async def completed() -> bool:
        return (await backend.get(frames.job_id)).status == Status.COMPLETED

    await wait_for(completed, what="the first + last frame job to complete")
    extension = await backend.submit({"prompt": "more", "extends_job_id": frames.job_id, "extends_video": 1})
    assert extension.request.extends is not None and extension.request.extends.job_id == frames.job_id
    assert extension.to_dict()["extends"] == {
        "job_id": frames.job_id,
        "video": 1,
        "source_seconds": 8.0,
        "source_aspect_ratio": "16:9",
    }


async def test_pictures_of_a_job_inputs_and_frame_strips(backend, tmp_path):
    job = await backend.submit(
        {"prompt": "a door", "duration_seconds": 4}, png(), "first.png", last_frame=(png(32, 18), "last.png")
    )
    await until_status(backend, job.job_id, Status.COMPLETED)
    rows = await backend.job_pictures(job.job_id, tmp_path / "cache")
    assert [title for title, _ in rows] == ["Inputs", "Video 1"]
    assert [caption for caption, _ in rows[0][1]] == ["input image", "last frame"]
    assert [caption for caption, _ in rows[1][1]] == ["first", "middle", "last"]
    for _, pictures in rows:
        for _, path in pictures:
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert await backend.job_pictures(job.job_id, tmp_path / "cache") == rows  # cached, same files
    with pytest.raises(JobNotFound):
        await backend.job_pictures("00000000-0000-4000-8000-0000000000ff", tmp_path / "cache")


async def test_viewing_a_video_never_starts_the_auto_delete(backend, tmp_path):
    job = await backend.submit({"prompt": "looked at, kept"})
    await until_status(backend, job.job_id, Status.COMPLETED)
    viewed = await backend.view_video(job.job_id, 1, tmp_path)
    assert viewed.read_bytes()[4:8] == b"ftyp"
    assert (await backend.get(job.job_id)).downloaded_at is None
    saved = await backend.download_video(job.job_id, 1, tmp_path / "saved")
    assert saved.is_file()

    # A server records the download once the whole answer has been sent, which may be just
    # after the client has it.
    async def recorded() -> bool:
        return (await backend.get(job.job_id)).downloaded_at is not None

    await wait_for(recorded, what="the download to be recorded")


async def test_an_idempotency_key_makes_one_job_of_the_same_request(backend):
    first = await backend.submit({"prompt": "a fox"}, idempotency_key="conformance-1")
    again = await backend.submit({"prompt": "a fox"}, idempotency_key="conformance-1")
    assert again.job_id == first.job_id
    with pytest.raises(Conflict, match="conformance-1"):
        await backend.submit({"prompt": "an owl"}, idempotency_key="conformance-1")
    other = await backend.submit({"prompt": "a fox"}, idempotency_key="conformance-2")
    assert other.job_id != first.job_id
    lists = await backend.list_jobs()
    assert len(lists.processing) + len(lists.queued) + len(lists.history) == 2

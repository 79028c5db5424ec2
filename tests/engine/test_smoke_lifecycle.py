from tests.support.waiting import wait_for
from veotui.core.job import Status


async def test_a_job_runs_to_completed_with_real_videos(local_backend):
    job = await local_backend.submit({"prompt": "a lighthouse in a storm", "number_of_videos": 2})
    assert job.status == Status.QUEUED

    async def done():
        return (await local_backend.get(job.job_id)).status == Status.COMPLETED

    await wait_for(done, what="the job to complete")
    finished = await local_backend.get(job.job_id)
    assert finished.progress == 100
    assert [v.filename for v in finished.videos] == ["generated_video_1.mp4", "generated_video_2.mp4"]
    folder = local_backend.files.folder(job.job_id)
    assert (folder / "all_videos.zip").stat().st_size > sum(v.size_bytes for v in finished.videos)
    assert (folder / "generated_video_1.mp4").read_bytes()[4:8] == b"ftyp"


async def test_a_job_without_inputs_runs_in_five_commits_after_its_submit(local_backend):
    """Stages with no work between them pass in one commit: the claim, generating (with
    submitting), the operation, downloading (with the saved result) and completed."""
    commits: list[str] = []
    raw = local_backend.store.db.raw
    job = await local_backend.submit({"prompt": "a lighthouse in a storm"})
    raw.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)

    async def done():
        return (await local_backend.get(job.job_id)).status == Status.COMPLETED

    await wait_for(done, what="the job to complete")
    raw.set_trace_callback(None)
    assert len(commits) == 5
    # Every stage is still on the timeline (a note repeats the stage it was written in).
    steps = [e.status.value for e in local_backend.store.timeline(job.job_id)]
    steps = [s for n, s in enumerate(steps) if n == 0 or steps[n - 1] != s]
    assert steps == ["queued", "starting", "uploading_image", "generating", "processing", "downloading", "completed"]
    assert local_backend.store.estimate(job.request.model) is not None


async def test_only_a_jobs_start_and_completion_commit_without_waiting_for_the_disk(local_backend):
    """A power cut may undo the claim (the job is queued again; nothing was sent) or the
    completion (the job downloads again from its recorded operation): those two commits do
    not wait for the disk. The submit, generating with submitting, the operation and the
    saved result do, and each flushes whatever came before it."""
    raw = local_backend.store.db.raw
    modes: list[str] = []
    synchronous = ["FULL"]

    def seen(sql: str) -> None:
        words = sql.split()
        if words[:2] == ["PRAGMA", "synchronous"] and len(words) == 4:
            synchronous[0] = words[3]
        elif sql.strip().upper() == "COMMIT":
            modes.append(synchronous[0])

    raw.set_trace_callback(seen)
    job = await local_backend.submit({"prompt": "a lighthouse in a storm"})

    async def done():
        return (await local_backend.get(job.job_id)).status == Status.COMPLETED

    await wait_for(done, what="the job to complete")
    raw.set_trace_callback(None)
    # submit, claim, generating (with submitting), operation, downloading (with the result), completed
    assert modes == ["FULL", "NORMAL", "FULL", "FULL", "FULL", "NORMAL"]

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

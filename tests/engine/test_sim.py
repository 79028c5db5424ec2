"""The simulator through the real engine: its markers, its operation files, its videos."""

import io
import json

import av
from PIL import Image

from tests.support.waiting import wait_for
from veotui.core.job import Status


async def finished(backend, job_id):
    async def ended():
        return (await backend.get(job_id)).status.is_final

    await wait_for(ended, what=f"job {job_id[:8]} to end")
    return await backend.get(job_id)


async def test_markers_drive_the_outcome(local_backend):
    fail = await local_backend.submit({"prompt": "a storm [fail]"})
    filtered = await local_backend.submit({"prompt": "a storm [filtered]"})
    flaky = await local_backend.submit({"prompt": "a storm [flaky]", "duration_seconds": 4})

    failed = await finished(local_backend, fail.job_id)
    assert failed.status == Status.FAILED
    assert failed.error_kind == "operation_error"
    assert "[fail]" in failed.error and failed.attempts == 1

    blocked = await finished(local_backend, filtered.job_id)
    assert blocked.status == Status.FAILED
    assert blocked.error_kind == "safety_filter"
    assert "does not charge" in blocked.error

    recovered = await finished(local_backend, flaky.job_id)
    assert recovered.status == Status.COMPLETED
    assert recovered.attempts == 3  # two simulated rate limits, then success
    notes = [e.detail for e in await local_backend.timeline(flaky.job_id) if e.detail and e.detail.startswith("429 ")]
    assert len(notes) == 2


async def test_one_operation_file_per_submit_naming_its_job(local_backend, settings):
    jobs = [await local_backend.submit({"prompt": f"clip {n}", "duration_seconds": 4}) for n in range(3)]
    for job in jobs:
        done = await finished(local_backend, job.job_id)
        assert done.operation.startswith("sim/operations/")
    records = [json.loads(p.read_text()) for p in (settings.sim_dir / "operations").glob("*.json")]
    assert sorted(r["job_id"] for r in records) == sorted(j.job_id for j in jobs)
    # Delete removes the job's "remote" operation too, like cloud files.
    await local_backend.delete(jobs[0].job_id)
    await wait_for(lambda: len(list((settings.sim_dir / "operations").glob("*.json"))) == 2, what="cleanup")


async def test_an_input_image_becomes_the_moving_picture(local_backend):
    png = io.BytesIO()
    Image.new("RGBA", (400, 300), (250, 20, 20, 255)).save(png, "PNG")
    job = await local_backend.submit(
        {"prompt": "pan across", "number_of_videos": 2, "aspect_ratio": "9:16", "duration_seconds": 4},
        png.getvalue(),
        "red.png",
    )
    assert job.has_image
    done = await finished(local_backend, job.job_id)
    assert done.status == Status.COMPLETED
    folder = local_backend.files.folder(job.job_id)
    assert Image.open(folder / "uploaded_image.jpg").format == "JPEG"
    for video in done.videos:
        with av.open(str(folder / video.filename)) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == (180, 320)
            frame = next(container.decode(stream)).to_image()
        r, g, b = frame.getpixel((90, 200))
        assert r > 180 and g < 90

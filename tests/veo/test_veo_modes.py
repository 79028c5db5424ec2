"""Veo 3.1 modes through the whole engine and the real google-genai client: first + last
frame, reference images, extension and the switches, with Cloud Storage and inline."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from tests.support.waiting import wait_for
from tests.veo.test_veo_jobs import blob_names
from veotui.backend.local import LocalBackend
from veotui.core.job import Job, Status
from veotui.datadir.files import video_name


def png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), colour).save(buffer, "PNG")
    return buffer.getvalue()


async def ended(backend: LocalBackend, job: Job) -> Job:
    async def done() -> bool:
        return (await backend.get(job.job_id)).status.is_final

    await wait_for(done, what=f"job {job.job_id[:8]} to end")
    return await backend.get(job.job_id)


REFERENCES = [(png((n * 80, 40, 200)), f"ref{n}.png") for n in range(3)]


async def test_first_and_last_frame_and_the_switches_through_cloud_storage(
    make_settings, make_veo, fake_vertex, bucket, storage_client
):
    settings = make_settings(gcs_bucket=bucket)
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await backend.submit(
            {
                "prompt": "a door opens",
                "generate_audio": False,
                "person_generation": "dont_allow",
                "enhance_prompt": "false",
            },
            png((200, 0, 0)),
            "first.png",
            last_frame=(png((0, 0, 200)), "last.png"),
        )
        job = await ended(backend, job)

    assert job.status == Status.COMPLETED, job.error
    [submit] = fake_vertex.submits()
    instance, parameters = submit.body["instances"][0], submit.body["parameters"]
    prefix = f"gs://{bucket}/temp_images/{job.job_id}_"
    assert instance["image"]["gcsUri"].startswith(prefix)
    assert instance["lastFrame"]["gcsUri"].startswith(prefix) and instance["lastFrame"]["gcsUri"].endswith(
        "_last_frame.jpg"
    )
    assert instance["lastFrame"]["mimeType"] == "image/jpeg"
    assert (parameters["generateAudio"], parameters["personGeneration"], parameters["enhancePrompt"]) == (
        False,
        "dont_allow",
        False,
    )
    assert "referenceImages" not in instance and "video" not in instance
    assert blob_names(storage_client, bucket, "temp_images/") == []  # removed when the job ended


async def test_reference_images_through_cloud_storage(make_settings, make_veo, fake_vertex, bucket, storage_client):
    settings = make_settings(gcs_bucket=bucket)
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await ended(
            backend, await backend.submit({"prompt": "the same mug, three angles"}, references=REFERENCES)
        )

    assert job.status == Status.COMPLETED, job.error
    [submit] = fake_vertex.submits()
    instance = submit.body["instances"][0]
    references = instance["referenceImages"]
    assert [r["referenceType"] for r in references] == ["ASSET"] * 3
    uris = [r["image"]["gcsUri"] for r in references]
    assert [u.rsplit("_", 1)[-1] for u in uris] == ["1.jpg", "2.jpg", "3.jpg"]
    assert all(u.startswith(f"gs://{bucket}/temp_images/{job.job_id}_") for u in uris)
    assert "image" not in instance and "lastFrame" not in instance
    assert submit.body["parameters"]["generateAudio"] is True  # the model's default: sound
    assert blob_names(storage_client, bucket, "temp_images/") == []


async def test_without_a_bucket_every_input_travels_inline(make_settings, make_veo, fake_vertex):
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        first = await backend.submit({"prompt": "p"}, png((1, 2, 3)), "a.png", last_frame=(png((9, 9, 9)), "b.png"))
        refs = await backend.submit({"prompt": "q"}, references=REFERENCES[:2])
        first, refs = await ended(backend, first), await ended(backend, refs)
        source_video = (backend.files.folder(first.job_id) / video_name(1)).read_bytes()
        extension = await ended(backend, await backend.submit({"prompt": "r", "extends_job_id": first.job_id}))

    assert (first.status, refs.status, extension.status) == (Status.COMPLETED,) * 3, extension.error
    bodies = {s.body["instances"][0]["prompt"]: s.body["instances"][0] for s in fake_vertex.submits()}
    last = base64.b64decode(bodies["p"]["lastFrame"]["bytesBase64Encoded"])
    assert last[:2] == b"\xff\xd8"
    assert [r["referenceType"] for r in bodies["q"]["referenceImages"]] == ["ASSET", "ASSET"]
    video = bodies["r"]["video"]
    assert video["mimeType"] == "video/mp4" and base64.b64decode(video["bytesBase64Encoded"]) == source_video


@pytest.mark.parametrize("source_first", [True, False], ids=["source deleted first", "extension deleted first"])
async def test_extension_through_cloud_storage_then_delete_in_either_order(
    make_settings, make_veo, fake_vertex, bucket, storage_client, source_first
):
    settings = make_settings(gcs_bucket=bucket)
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        source = await ended(backend, await backend.submit({"prompt": "a boat sets off"}))
        source_outputs = blob_names(storage_client, bucket, f"veo_outputs/{source.job_id}/")
        assert source_outputs
        fake_vertex.hold = True
        extension = await backend.submit({"prompt": "it reaches the island", "extends_job_id": source.job_id})
        await wait_for(lambda: len(fake_vertex.submits()) == 2, what="the extension's submit")
        # While it runs, its video is a copy under temp_videos/.
        [copy] = blob_names(storage_client, bucket, f"temp_videos/{extension.job_id}_")
        assert copy.endswith(".mp4")
        video = fake_vertex.submits()[1].body["instances"][0]["video"]
        assert video == {"gcsUri": f"gs://{bucket}/{copy}", "mimeType": "video/mp4"}
        fake_vertex.hold = False
        extension = await ended(backend, extension)
        assert extension.status == Status.COMPLETED, extension.error
        await wait_for(lambda: not blob_names(storage_client, bucket, "temp_videos/"), what="the copy's removal")
        # The source job was never touched.
        assert blob_names(storage_client, bucket, f"veo_outputs/{source.job_id}/") == source_outputs
        assert (backend.files.folder(source.job_id) / video_name(1)).is_file()

        order = [source, extension] if source_first else [extension, source]
        await backend.delete(order[0].job_id)
        if source_first:
            assert backend.files.input_video(extension.job_id).is_file()
        await backend.delete(order[1].job_id)
        await wait_for(
            lambda: not blob_names(storage_client, bucket) and not backend.store.pending_cleanups(),
            what="every object of both jobs to be removed",
        )
        assert backend.files.job_ids_on_disk() == set()


@pytest.mark.parametrize("mode", ["first and last frame", "reference images", "extension"])
async def test_retry_sends_the_same_inputs_again(make_settings, make_veo, fake_vertex, mode):
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        fields: dict = {"prompt": "again", "generate_audio": False, "enhance_prompt": True}
        kwargs: dict = {}
        if mode == "first and last frame":
            kwargs = {"image": png((5, 5, 5)), "image_name": "a.png", "last_frame": (png((250, 0, 0)), "b.png")}
        elif mode == "reference images":
            kwargs = {"references": REFERENCES}
        else:
            source = await ended(backend, await backend.submit({"prompt": "source"}))
            fields["extends_job_id"] = source.job_id
        fake_vertex.outcome = "error"
        failed = await ended(backend, await backend.submit(fields, **kwargs))
        assert failed.status == Status.FAILED
        fake_vertex.outcome = "videos"
        retried = await ended(backend, await backend.retry(failed.job_id))

    assert retried.status == Status.COMPLETED, retried.error
    first, second = [s.body for s in fake_vertex.submits() if s.body["instances"][0]["prompt"] == "again"]
    assert second == first


async def test_the_fake_refuses_what_vertex_would(make_settings, make_veo, fake_vertex, tmp_path):
    from veotui.core.job import Job
    from veotui.core.request import JobRequest
    from veotui.generators.base import JobInputs, PermanentFault

    settings = make_settings()
    generator = make_veo(settings)
    jpeg, not_jpeg, not_mp4 = tmp_path / "a.jpg", tmp_path / "b.png", tmp_path / "c.mp4"
    Image.new("RGB", (8, 8)).save(jpeg, "JPEG")
    not_jpeg.write_bytes(png((1, 1, 1)))
    not_mp4.write_bytes(b"not a video at all")
    job = Job(job_id="00000000-0000-4000-8000-000000000009", status=Status.GENERATING, request=JobRequest("p"))
    try:
        for inputs, said in [
            (JobInputs(image=jpeg, last_frame=not_jpeg), "lastFrame is not a JPEG image"),
            (JobInputs(references=(not_jpeg,)), r"referenceImages\[0\].image is not a JPEG image"),
            (JobInputs(video=not_mp4), "video is not an MP4 video"),
        ]:
            with pytest.raises(PermanentFault, match=said):
                await generator.submit(job, inputs)
    finally:
        await generator.aclose()

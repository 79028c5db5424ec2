"""Veo 3.1 modes over REST: multipart files and form fields, the JSON equivalents, the 422s
naming field and model, 409 for extending an unfinished job, and the remote backend."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from tests.server.conftest import data_files, form_fields
from tests.support.waiting import wait_for
from veotui.backend.remote import RemoteBackend
from veotui.core.errors import InvalidRequest
from veotui.datadir.files import MAX_IMAGE_BYTES


def png(colour=(10, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 27), colour).save(buffer, "PNG")
    return buffer.getvalue()


async def completed(http: httpx.AsyncClient, job_id: str) -> dict:
    async def done() -> bool:
        return (await http.get(f"/api/status/{job_id}")).json()["status"] == "completed"

    await wait_for(done, what=f"job {job_id[:8]} to complete")
    return (await http.get(f"/api/status/{job_id}")).json()


async def test_multipart_first_and_last_frame_with_the_switches(http, settings):
    answer = await http.post(
        "/api/generate",
        data={"prompt": "a door", "generate_audio": "false", "person_generation": "dont_allow", "enhance_prompt": "on"},
        files={"image": ("a.png", png(), "image/png"), "last_frame": ("b.png", png((200, 0, 0)), "image/png")},
    )
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert (job["has_image"], job["has_last_frame"], job["reference_count"]) == (True, True, 0)
    assert (job["generate_audio"], job["person_generation"], job["enhance_prompt"]) == (False, "dont_allow", True)
    folder = settings.jobs_dir / f"job_{job['job_id']}"
    assert sorted(p.name for p in folder.iterdir()) == ["last_frame.jpg", "uploaded_image.jpg"]


async def test_multipart_three_reference_images_then_an_extension(http, settings):
    files = [("reference_image", (f"r{n}.png", png((n * 70, 0, 0)), "image/png")) for n in range(3)]
    answer = await http.post("/api/generate", data={"prompt": "a mug", "reference_type": "asset"}, files=files)
    assert answer.status_code == 202, answer.text
    job = await completed(http, answer.json()["job_id"])
    assert (job["reference_count"], job["reference_type"]) == (3, "asset")

    extension = await http.post(
        "/api/generate", files=form_fields(prompt="more", extends_job_id=job["job_id"], extends_video="1")
    )
    assert extension.status_code == 202, extension.text
    # The video continued was measured: the simulator made it 8 s long, in 16:9.
    assert extension.json()["extends"] == {
        "job_id": job["job_id"],
        "video": 1,
        "source_seconds": 8.0,
        "source_aspect_ratio": "16:9",
    }
    copy = settings.jobs_dir / f"job_{extension.json()['job_id']}" / "input_video.mp4"
    assert copy.read_bytes() == (settings.jobs_dir / f"job_{job['job_id']}" / "generated_video_1.mp4").read_bytes()


async def test_json_base64_equivalents(http):
    encoded = base64.b64encode(png()).decode()
    answer = await http.post(
        "/api/generate",
        json={"prompt": "p", "image_base64": encoded, "last_frame_base64": encoded, "generate_audio": True},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["has_last_frame"] is True and answer.json()["generate_audio"] is True
    refs = await http.post("/api/generate", json={"prompt": "p", "reference_images_base64": [encoded, encoded]})
    assert refs.status_code == 202, refs.text
    assert refs.json()["reference_count"] == 2


@pytest.mark.parametrize(
    ("kwargs", "status", "said"),
    [
        ({"data": {"prompt": "p"}, "files": {"last_frame": png()}}, 422, "last_frame needs an input image"),
        (
            {"files": form_fields(prompt="p", model="veo-3.1-lite-generate-001", resolution="4k")},
            422,
            "resolution: veo-3.1-lite-generate-001 renders 720p or 1080p, not 4k",
        ),
        (
            {"data": {"prompt": "p", "reference_type": "style"}, "files": {"reference_image": png()}},
            422,
            "reference_type: veo-3.1-generate-001 takes asset reference images, not style",
        ),
        (
            {"data": {"prompt": "p"}, "files": [("reference_image", png())] * 4},
            422,
            "reference_image: at most 3",
        ),
        ({"json": {"prompt": "p", "reference_images_base64": "x"}}, 422, "must be a list"),
        ({"json": {"prompt": "p", "last_frame_base64": "%%%"}}, 422, "last_frame_base64 is not valid base64"),
        (
            {"data": {"prompt": "p"}, "files": {"last_frame": ("big.png", b"0" * (MAX_IMAGE_BYTES + 1))}},
            413,
            "big.png is 10.0 MB",
        ),
    ],
)
async def test_refused_combinations_name_the_field_and_leave_nothing(http, settings, kwargs, status, said):
    before = data_files(settings.data_dir)
    answer = await http.post("/api/generate", **kwargs)
    assert answer.status_code == status, answer.text
    assert said in answer.json()["detail"]
    assert data_files(settings.data_dir) == before


async def test_extending_a_job_that_failed_is_a_409(http, make_settings):
    doomed = (await http.post("/api/generate", json={"prompt": "will fail [fail]"})).json()

    async def failed() -> bool:
        return (await http.get(f"/api/status/{doomed['job_id']}")).json()["status"] == "failed"

    await wait_for(failed, what="the source to fail")
    answer = await http.post("/api/generate", json={"prompt": "p", "extends_job_id": doomed["job_id"]})
    assert answer.status_code == 409, answer.text
    assert "is failed; only a completed or unfinished job's video can be extended" in answer.json()["detail"]
    unknown = await http.post(
        "/api/generate", json={"prompt": "p", "extends_job_id": "00000000-0000-4000-8000-000000000077"}
    )
    assert unknown.status_code == 404


async def test_the_remote_backend_sends_every_input(server, settings):
    async with RemoteBackend(server.url, settings.token) as remote:
        job = await remote.submit({"prompt": "p"}, png(), "a.png", last_frame=(png((0, 0, 0)), "b.png"))
        assert job.has_last_frame and job.has_image
        refs = await remote.submit({"prompt": "q", "reference_type": "asset"}, references=[(png(), "r.png")] * 3)
        assert refs.reference_count == 3
        with pytest.raises(InvalidRequest, match="reference_type: veo-3.1-generate-001 takes asset"):
            await remote.submit({"prompt": "q", "reference_type": "style"}, references=[(png(), "r.png")])
        extension = await remote.submit({"prompt": "q", "extends_job_id": job.job_id, "extends_video": 1})
        assert extension.request.extends is not None and extension.request.extends.job_id == job.job_id


async def test_pictures_over_rest_and_names_that_are_not_pictures(http):
    answer = await http.post("/api/generate", files={"image": ("a.png", png(), "image/png")}, data={"prompt": "p"})
    job = await completed(http, answer.json()["job_id"])
    listing = (await http.get(f"/api/jobs/{job['job_id']}/pictures")).json()
    assert [row["title"] for row in listing["rows"]] == ["Inputs", "Video 1"]
    url = listing["rows"][1]["pictures"][2]["url"]
    picture = await http.get(url)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    for name in ("..%2Fveotui.db", "generated_video_1.mp4", ".hidden.png", "missing.png"):
        refused = await http.get(f"/api/jobs/{job['job_id']}/pictures/{name}")
        assert refused.status_code == 404, name

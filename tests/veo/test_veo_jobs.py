"""Jobs through the whole engine (LocalBackend, scheduler, SQLite) on the real ``veo``
generator, which talks through the real google-genai and google-cloud-storage clients to the
fake Vertex AI server and the Cloud Storage emulator."""

from __future__ import annotations

import base64
import json

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.waiting import wait_for
from tests.veo.fake_vertex import FILTER_REASON, Fault
from veotui.backend.local import LocalBackend
from veotui.core.job import Job, Status
from veotui.generators.gcs import gcs_operations
from veotui.server.prometheus import Collector


async def run_job(backend: LocalBackend, fields: dict, image: bytes | None = None) -> Job:
    job = await backend.submit(fields, image, "input.png" if image else None)

    async def ended() -> bool:
        return (await backend.get(job.job_id)).status.is_final

    await wait_for(ended, what=f"job {job.job_id} to end")
    return await backend.get(job.job_id)


def blob_names(storage_client, bucket: str, prefix: str = "") -> list[str]:
    return sorted(b.name for b in storage_client.list_blobs(bucket, prefix=prefix))


async def test_an_image_and_two_videos_travel_through_cloud_storage(
    make_settings, make_veo, fake_vertex, bucket, storage_client, png_image, mp4
):
    settings = make_settings(gcs_bucket=bucket)
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await run_job(backend, {"prompt": "a fox in the snow", "number_of_videos": 2}, png_image)
        folder = backend.files.folder(job.job_id)

    assert job.status == Status.COMPLETED, job.error
    [submit] = fake_vertex.submits()
    assert submit.path == (
        "/v1beta1/projects/test-proj/locations/us-central1/publishers/google/models/"
        "veo-3.1-generate-001:predictLongRunning"
    )
    assert submit.headers["authorization"] == "Bearer fake-access-token"
    instance, parameters = submit.body["instances"][0], submit.body["parameters"]
    image_uri = instance["image"]["gcsUri"]
    assert image_uri.startswith(f"gs://{bucket}/temp_images/{job.job_id}_") and image_uri.endswith(".jpg")
    assert instance["image"]["mimeType"] == "image/jpeg" and "bytesBase64Encoded" not in instance["image"]
    assert parameters["storageUri"] == f"gs://{bucket}/veo_outputs/{job.job_id}/"
    assert parameters["sampleCount"] == 2
    assert submit.body["labels"] == {"veotui_job": job.job_id, "veotui_user": "local"}
    assert job.operation == fake_vertex.calls("fetchPredictOperation")[-1].body["operationName"]

    assert [v.filename for v in job.videos] == ["generated_video_1.mp4", "generated_video_2.mp4"]
    assert (folder / "generated_video_1.mp4").read_bytes() == mp4
    assert (folder / "generated_video_2.mp4").read_bytes() == mp4
    # The ended job's input image is gone from the bucket; its videos stay until delete.
    assert blob_names(storage_client, bucket, "temp_images/") == []
    assert len(blob_names(storage_client, bucket, f"veo_outputs/{job.job_id}/")) == 2


async def test_without_a_bucket_image_and_videos_travel_inline(make_settings, make_veo, fake_vertex, png_image, mp4):
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await run_job(
            backend,
            {
                "prompt": "a paper boat on a river",
                "model": "veo-3.1-fast-generate-001",
                "aspect_ratio": "9:16",
                "duration_seconds": 4,
                "resolution": "720p",
                "negative_prompt": "rain",
                "seed": 1234,
            },
            png_image,
        )
        video = (backend.files.folder(job.job_id) / "generated_video_1.mp4").read_bytes()

    assert job.status == Status.COMPLETED, job.error
    [submit] = fake_vertex.submits()
    assert submit.path.endswith("/models/veo-3.1-fast-generate-001:predictLongRunning")
    image = submit.body["instances"][0]["image"]
    assert base64.b64decode(image["bytesBase64Encoded"])[:2] == b"\xff\xd8"  # converted to JPEG
    assert submit.body["parameters"] == {
        "sampleCount": 1,
        "durationSeconds": 4,
        "aspectRatio": "9:16",
        "resolution": "720p",
        "negativePrompt": "rain",
        "seed": 1234,
        "generateAudio": True,
    }
    assert video == mp4


async def test_delete_leaves_nothing_under_either_prefix(
    make_settings, make_veo, fake_vertex, bucket, storage_client, png_image
):
    settings = make_settings(gcs_bucket=bucket)
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        done = await run_job(backend, {"prompt": "a red kite", "number_of_videos": 2}, png_image)
        assert blob_names(storage_client, bucket, f"veo_outputs/{done.job_id}/")

        # A second job deleted while Veo still works on it: its uploaded image goes too.
        fake_vertex.hold = True
        pending = await backend.submit({"prompt": "a blue kite"}, png_image, "input.png")
        await wait_for(lambda: len(fake_vertex.submits()) == 2, what="the second submit")
        assert blob_names(storage_client, bucket, f"temp_images/{pending.job_id}_")

        await backend.delete(done.job_id)
        await backend.delete(pending.job_id)
        await wait_for(
            lambda: not blob_names(storage_client, bucket) and not backend.store.pending_cleanups(),
            what="both jobs' cloud files to be removed",
        )


async def test_a_rate_limited_submit_is_retried_after_the_servers_delay(make_settings, make_veo, fake_vertex):
    fake_vertex.faults.append(Fault("predictLongRunning", status=429, message="Quota exceeded", retry_delay="0.4s"))
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await run_job(backend, {"prompt": "a windmill"})

    assert job.status == Status.COMPLETED, job.error
    refused, accepted = fake_vertex.submits()
    assert accepted.at - refused.at >= 0.4  # RetryInfo honoured; the backoff alone is ~0.01 s
    assert len(fake_vertex.operations) == 1


async def test_transient_poll_faults_never_submit_again(make_settings, make_veo, fake_vertex):
    # One poll answers 503, the next one hangs past the client's timeout; then it works.
    fake_vertex.faults += [
        Fault("fetchPredictOperation", status=503),
        Fault("fetchPredictOperation", delay=3.0),
    ]
    fake_vertex.pending_polls = 0
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings, request_timeout=0.5)) as backend:
        job = await run_job(backend, {"prompt": "a lantern", "number_of_videos": 2})
        notes = [event.detail or "" for event in await backend.timeline(job.job_id)]

    assert job.status == Status.COMPLETED, job.error
    assert len(fake_vertex.submits()) == 1
    assert len(fake_vertex.calls("fetchPredictOperation")) == 3
    assert any("503 UNAVAILABLE" in note for note in notes)
    assert any("ReadTimeout" in note for note in notes)


async def test_a_submit_that_timed_out_is_not_sent_again(make_settings, make_veo, fake_vertex, bucket):
    # Google accepts the request but the answer never arrives in time.
    fake_vertex.faults.append(Fault("predictLongRunning", delay=3.0, accepted=True))
    settings = make_settings(gcs_bucket=bucket)
    async with LocalBackend(settings, generator=make_veo(settings, request_timeout=0.5)) as backend:
        job = await run_job(backend, {"prompt": "a heron"})

    assert job.status == Status.FAILED
    assert job.error_kind == "submit_unknown"
    assert job.error is not None
    assert "may have been accepted and billed" in job.error
    assert f"gs://{bucket}/veo_outputs/{job.job_id}/" in job.error
    assert len(fake_vertex.submits()) == 1 and len(fake_vertex.operations) == 1


async def test_a_server_error_on_submit_is_retried_up_to_three_attempts(make_settings, make_veo, fake_vertex):
    fake_vertex.faults.append(Fault("predictLongRunning", status=503, times=10))
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await run_job(backend, {"prompt": "a storm"})

    assert job.status == Status.FAILED and job.error_kind == "transient"
    assert job.error is not None
    assert "503 UNAVAILABLE" in job.error and "gave up after 3 attempts" in job.error
    assert len(fake_vertex.submits()) == 3 and not fake_vertex.operations


@pytest.mark.parametrize(
    ("status", "message", "kind", "advice"),
    [
        (400, "Unsupported person generation setting.", "bad_request", "Change what it names"),
        (403, "Permission 'aiplatform.endpoints.predict' denied.", "permission_denied", "roles/aiplatform.user"),
        (404, "Publisher Model was not found.", "model_not_found", "GOOGLE_CLOUD_LOCATION"),
    ],
)
async def test_a_refused_submit_fails_at_once_quoting_google(
    make_settings, make_veo, fake_vertex, status, message, kind, advice
):
    fake_vertex.faults.append(Fault("predictLongRunning", status=status, message=message))
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await run_job(backend, {"prompt": "a canyon"})

    assert job.status == Status.FAILED and job.error_kind == kind
    assert job.error is not None
    assert f"{status}" in job.error and f'"{message}"' in job.error and advice in job.error
    assert len(fake_vertex.submits()) == 1


async def test_a_safety_filtered_result_fails_with_googles_reasons(make_settings, make_veo, fake_vertex):
    fake_vertex.outcome = "filtered"
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await run_job(backend, {"prompt": "a crowd", "number_of_videos": 2})

    assert job.status == Status.FAILED and job.error_kind == "safety_filter"
    assert job.error is not None
    assert "blocked 2 of 2" in job.error
    assert FILTER_REASON in job.error and "not charged" in job.error
    assert len(fake_vertex.submits()) == 1


async def test_fewer_videos_than_asked_completes_with_those_made(make_settings, make_veo, fake_vertex, bucket):
    fake_vertex.outcome = "fewer"
    settings = make_settings(gcs_bucket=bucket)
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await run_job(backend, {"prompt": "three dancers", "number_of_videos": 3})
        notes = [event.detail or "" for event in await backend.timeline(job.job_id)]

    assert job.status == Status.COMPLETED, job.error
    assert [v.index for v in job.videos] == [1, 2]
    assert any("1 blocked by the safety filter" in note for note in notes)


async def test_an_operation_error_fails_quoting_its_message(make_settings, make_veo, fake_vertex):
    fake_vertex.outcome = "error"
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await run_job(backend, {"prompt": "a clock tower"})

    assert job.status == Status.FAILED and job.error_kind == "operation_error"
    assert job.error is not None
    assert "3 INVALID_ARGUMENT" in job.error and '"The prompt could not be rewritten."' in job.error


async def test_a_stuck_operation_fails_at_the_deadline_and_its_image_is_removed(
    make_settings, make_veo, fake_vertex, bucket, storage_client, png_image
):
    fake_vertex.hold = True
    settings = make_settings(gcs_bucket=bucket, veo_deadline=0.6)
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await run_job(backend, {"prompt": "a glacier"}, png_image)
        await wait_for(lambda: not blob_names(storage_client, bucket, "temp_images/"), what="image cleanup")

    assert job.status == Status.FAILED and job.error_kind == "deadline"
    assert job.error is not None
    assert "VEOTUI_VEO_DEADLINE" in job.error
    assert len(fake_vertex.submits()) == 1
    assert len(fake_vertex.calls("fetchPredictOperation")) >= 3  # it kept polling until then


async def test_a_delete_logs_each_cloud_object_with_its_outcome(
    make_settings, make_veo, fake_vertex, bucket, storage_client, png_image
):
    settings = make_settings(gcs_bucket=bucket, log_format="json")
    before = dict(gcs_operations())  # the process's counts: earlier tests used the bucket too
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await run_job(backend, {"prompt": "a paper boat", "number_of_videos": 2}, png_image)
        outputs = blob_names(storage_client, bucket, f"veo_outputs/{job.job_id}/")
        assert len(outputs) == 2
        # The end of the job removes its input image; let that finish before the delete.
        await wait_for(lambda: not blob_names(storage_client, bucket, "temp_images/"), what="the image's removal")
        await backend.delete(job.job_id)
        await wait_for(
            lambda: not blob_names(storage_client, bucket) and not backend.store.pending_cleanups(),
            what="the job's cloud files to be removed",
        )
        # The bucket's calls are counted for /metrics.
        registry = CollectorRegistry(auto_describe=False)
        registry.register(Collector(backend.store, backend.dir_size, uses_bucket=True))
        counted = {
            (s.labels["op"], s.labels["outcome"]): s.value - before.get((s.labels["op"], s.labels["outcome"]), 0)
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for s in family.samples
            if s.name == "veotui_gcs_operations_total"
        }
        assert counted[("upload", "ok")] >= 1 and counted[("download", "ok")] >= 2
        assert counted[("delete", "ok")] == 3  # the image, then the two videos
    lines = (settings.data_dir / "logs" / "veotui.log").read_text(encoding="utf-8").splitlines()
    records = [r for r in map(json.loads, lines) if r["job_id"] == job.job_id]
    objects: dict[str, list[str]] = {}
    for r in records:
        if r["event"] == "cleanup.object":
            objects.setdefault(r["uri"], []).append(r["outcome"])
    # Each video went when the job was deleted; the input image when the job completed (a
    # delete that sweeps every input may find it already gone).
    assert {uri: outcomes for uri, outcomes in objects.items() if "/veo_outputs/" in uri} == {
        f"gs://{bucket}/{name}": ["deleted"] for name in outputs
    }
    [image_outcomes] = [outcomes for uri, outcomes in objects.items() if "/temp_images/" in uri]
    assert image_outcomes[0] == "deleted"
    assert set(image_outcomes[1:]) <= {"already gone"}
    [folder] = [r for r in records if r["event"] == "cleanup.folder"]
    assert folder["outcome"] == "removed"
    text = "\n".join(lines)
    assert "fake-access-token" not in text and base64.b64encode(png_image[:30]).decode() not in text

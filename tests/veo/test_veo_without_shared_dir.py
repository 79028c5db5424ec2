"""The real ``veo`` generator in a fleet without a shared directory: two engines on one
PostgreSQL database, each on a data directory of its own, the Cloud Storage emulator as the
bucket and the fake Vertex AI server as Veo. The image uploaded at submit is the one Veo
reads (no second upload), Veo's videos stay where Veo wrote them, and a server that never ran
the job serves them from the bucket."""

from __future__ import annotations

from pathlib import Path

import anyio

from tests.conftest import FAST_ENV
from tests.support.waiting import wait_for
from tests.veo.test_veo_jobs import blob_names
from veotui.backend.local import LocalBackend
from veotui.core.job import Status
from veotui.settings import Settings, load_settings


async def test_veo_reads_the_submitted_image_from_the_bucket_and_any_server_serves_its_videos(
    tmp_path, postgres_cluster, make_veo, fake_vertex, bucket, storage_client, png_image, mp4
):
    database = postgres_cluster.new_database()

    def settings_for(name: str) -> Settings:
        env = {
            **FAST_ENV,
            "VEOTUI_DATA_DIR": str(tmp_path / name),
            "VEOTUI_STORE": str(database),
            "VEOTUI_SHARED_DIR": "false",
            "VEOTUI_GCS_BUCKET": bucket,
        }
        return load_settings(env=env).replace(downloads_dir=tmp_path / f"{name}-downloads")

    runs, serves = settings_for("runs"), settings_for("serves")
    async with LocalBackend(runs, generator=make_veo(runs)) as runner:
        job = await runner.submit({"prompt": "a fox in the snow", "number_of_videos": 2}, png_image, "input.png")
        [uploaded] = blob_names(storage_client, bucket, f"temp_images/{job.job_id}_")

        async def ended() -> bool:
            return (await runner.get(job.job_id)).status.is_final

        await wait_for(ended, what=f"job {job.job_id} to end")
        job = await runner.get(job.job_id)
    assert job.status == Status.COMPLETED, job.error

    [submit] = fake_vertex.submits()
    assert submit.body["instances"][0]["image"]["gcsUri"] == f"gs://{bucket}/{uploaded}"
    # Veo wrote the videos; nothing uploaded them a second time, and the input stays for a retry.
    outputs = blob_names(storage_client, bucket, f"veo_outputs/{job.job_id}/")
    assert len(outputs) == 2
    assert blob_names(storage_client, bucket, "temp_images/") == [uploaded]

    async with LocalBackend(serves, generator=make_veo(serves)) as server:
        cached = Path(serves.data_dir) / "temp_downloads" / f"job_{job.job_id}"
        assert not cached.exists()
        video = await server.video_file(job.job_id, 2)
        assert video.read_bytes() == mp4
        assert video.parent == cached
        zipped = await server.zip_file(job.job_id)
        assert zipped.parent == cached
        inputs = await server.input_files(job.job_id, tmp_path / "inputs")
        assert list(inputs) == ["uploaded_image.jpg"]
        assert (
            inputs["uploaded_image.jpg"].read_bytes()
            == storage_client.bucket(bucket).blob(uploaded).download_as_bytes()
        )

        await server.delete(job.job_id)
        assert not cached.exists()

        async def no_objects_left() -> bool:
            left = await anyio.to_thread.run_sync(blob_names, storage_client, bucket)
            return not [name for name in left if job.job_id in name]

        await wait_for(no_objects_left, what="the job's objects to go")

"""A fleet whose servers share no data directory: real ``veotui serve`` processes, each on its
own directory, one PostgreSQL database and the Cloud Storage emulator as the bucket. Any server
runs any job and serves any finished one; a delete leaves nothing anywhere; a killed server's
job is taken over without a second submit."""

from __future__ import annotations

import hashlib
import io
import json
import signal
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest
from google.cloud import storage
from PIL import Image

from tests.fleet.servers import FleetServer, fleet_env
from tests.support.postgres import Cluster
from tests.support.waiting import wait_until
from veotui.core.job import isoformat, utcnow

pytestmark = pytest.mark.slow


class Start(Protocol):
    def __call__(self, name: str, **extra: str) -> FleetServer: ...


@pytest.fixture
def database(postgres_cluster: Cluster) -> str:
    return str(postgres_cluster.new_database())


@pytest.fixture
def start(tmp_path: Path, database: str, bucket: str, gcs_emulator: str) -> Iterator[Start]:
    """Starts a server on a data directory of its own (or the one named); stops them all."""
    started: list[FleetServer] = []

    def start_server(name: str, **extra: str) -> FleetServer:
        settings = {"VEOTUI_SHARED_DIR": "false", "VEOTUI_GCS_BUCKET": bucket, "STORAGE_EMULATOR_HOST": gcs_emulator}
        env = fleet_env(tmp_path / name, database, **{**settings, **extra})
        server = FleetServer(env)
        started.append(server)
        return server.ready()

    yield start_server
    for server in started:
        server.stop()


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (30, 160, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def objects(client: storage.Client, bucket: str, job_id: str) -> list[str]:
    return sorted(blob.name for blob in client.list_blobs(bucket) if job_id in blob.name)


def operations(client: storage.Client, bucket: str, job_id: str) -> list[str]:
    return sorted(blob.name for blob in client.list_blobs(bucket, prefix=f"sim_operations/{job_id}/"))


def status(server: FleetServer, job_id: str) -> str:
    with server.client() as client:
        return str(client.get(f"/api/status/{job_id}").json()["status"])


def completed(server: FleetServer, job_id: str, timeout: float = 90) -> None:
    def done() -> bool:
        state = status(server, job_id)
        assert state not in ("failed", "cancelled"), state
        return state == "completed"

    wait_until(done, timeout, what=f"job {job_id[:8]} to complete")


def timeline(server: FleetServer, job_id: str) -> str:
    with server.client() as client:
        return "\n".join(e["detail"] or "" for e in client.get(f"/api/jobs/{job_id}/events").json()["events"])


def folder(server_dir: Path, job_id: str) -> Path:
    return server_dir / "temp_downloads" / f"job_{job_id}"


def gone(path: Path) -> Callable[[], bool]:
    """Whether ``path`` has gone, asked each time it is called."""
    return lambda: not path.exists()


def submit(server: FleetServer, prompt: str, *, image: bool = False, videos: int = 1, group: str | None = None) -> str:
    with server.client() as client:
        fields: dict[str, object] = {"prompt": prompt, "number_of_videos": videos, "duration_seconds": 4}
        if group is not None:
            fields["group"] = group
        if image:
            form = {key: str(value) for key, value in fields.items()}
            response = client.post("/api/generate", data=form, files={"image": ("frame.png", png(), "image/png")})
        else:
            response = client.post("/api/generate", json=fields)
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])


def test_info_and_banner_say_the_bucket_holds_the_files(start: Start, bucket: str) -> None:
    server = start("a")
    with server.client() as client:
        info = client.get("/api/info").json()
    assert info["shared_dir"] is False
    assert f"files: in the bucket gs://{bucket}" in server.banner
    assert "this server's own cache" in server.banner


def test_a_job_submitted_on_one_server_runs_on_another_and_downloads_from_a_third(
    start: Start, tmp_path: Path, storage_client: storage.Client, bucket: str
) -> None:
    first = start("first")
    with first.client() as client:
        assert client.post("/api/queue/pause", json={}).status_code == 200
    job_id = submit(first, "a lighthouse at dusk", image=True, videos=2)
    # The input is in the bucket before the submit answered.
    assert [name for name in objects(storage_client, bucket, job_id) if name.startswith("temp_images/")]
    assert first.stop() == 0  # nothing of its directory can help the job from here on

    second = start("second")
    with second.client() as client:
        assert client.post("/api/queue/resume").status_code == 200
    completed(second, job_id)
    assert f"on server {second.server_id}" in timeline(second, job_id)
    # The second server read the input from the bucket; the videos went back there.
    assert (folder(tmp_path / "second", job_id) / "uploaded_image.jpg").read_bytes()
    outputs = [name for name in objects(storage_client, bucket, job_id) if name.startswith("veo_outputs/")]
    assert outputs == [f"veo_outputs/{job_id}/generated_video_{n}.mp4" for n in (1, 2)]

    third = start("third")
    assert not folder(tmp_path / "third", job_id).exists()
    with third.client() as client:
        video = client.get(f"/api/download/{job_id}/video/2")
        assert video.status_code == 200, video.text
        expected = storage_client.bucket(bucket).blob(f"veo_outputs/{job_id}/generated_video_2.mp4").download_as_bytes()
        assert video.content == expected
        part = client.get(f"/api/download/{job_id}/video/1", headers={"Range": "bytes=10-109"})
        assert part.status_code == 206
        assert len(part.content) == 100
        whole = client.get(f"/api/download/{job_id}")
        assert whole.status_code == 200
        assert whole.headers["content-type"] == "application/zip"
        image = client.get(f"/api/jobs/{job_id}/inputs/uploaded_image.jpg")
        assert image.status_code == 200
        assert image.content == (folder(tmp_path / "second", job_id) / "uploaded_image.jpg").read_bytes()
        pictures = client.get(f"/api/jobs/{job_id}/pictures").json()["rows"]
        assert [row["title"] for row in pictures] == ["Inputs", "Video 1", "Video 2"]
        picture = client.get(pictures[1]["pictures"][0]["url"])
        assert picture.status_code == 200
        assert picture.headers["content-type"] == "image/png"
    assert (folder(tmp_path / "third", job_id) / "generated_video_2.mp4").is_file()


def test_a_delete_leaves_no_object_and_no_cached_file_anywhere(
    start: Start, tmp_path: Path, storage_client: storage.Client, bucket: str
) -> None:
    first, second = start("first"), start("second")
    job_id = submit(first, "waves on a pier", image=True)
    completed(first, job_id)
    for server in (first, second):
        with server.client() as client:
            assert client.get(f"/api/download/{job_id}").status_code == 200
    assert folder(tmp_path / "first", job_id).is_dir()
    assert folder(tmp_path / "second", job_id).is_dir()
    assert objects(storage_client, bucket, job_id)
    third = start("third")  # a server that never held the job's files

    with third.client() as client:
        assert client.delete(f"/api/delete/{job_id}").status_code == 200
    wait_until(lambda: not objects(storage_client, bucket, job_id), 30, what="the job's objects to go")
    for name in ("first", "second", "third"):
        wait_until(gone(folder(tmp_path / name, job_id)), 30, what=f"{name}'s cached copy to go")
    with second.client() as client:
        assert client.get(f"/api/download/{job_id}").status_code == 404


def test_an_auto_delete_leaves_no_object_and_no_cached_file_anywhere(
    start: Start, tmp_path: Path, storage_client: storage.Client, bucket: str
) -> None:
    oldest = start("oldest", VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD="0.5")
    newer = start("newer", VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD="0.5")
    job_id = submit(newer, "snow on pines", image=True)
    completed(newer, job_id)
    with oldest.client() as client:  # cached here too, before the download that counts
        assert client.get(f"/api/jobs/{job_id}/inputs/uploaded_image.jpg").status_code == 200
    assert folder(tmp_path / "oldest", job_id).is_dir()
    with newer.client() as client:
        assert client.get(f"/api/download/{job_id}").status_code == 200

    # The oldest server deletes it once; every server drops its copy.
    with newer.client() as client:
        wait_until(lambda: client.get(f"/api/status/{job_id}").status_code == 404, 30, what="the auto-delete")
    wait_until(lambda: not objects(storage_client, bucket, job_id), 30, what="the job's objects to go")
    for name in ("oldest", "newer"):
        wait_until(gone(folder(tmp_path / name, job_id)), 30, what=f"{name}'s cached copy to go")


def test_a_server_started_after_a_delete_sweeps_its_cached_copy(start: Start, tmp_path: Path) -> None:
    first = start("first")
    job_id = submit(first, "a kite over dunes")
    completed(first, job_id)
    with first.client() as client:
        assert client.get(f"/api/download/{job_id}/video/1").status_code == 200
    assert first.stop() == 0
    second = start("second")
    with second.client() as client:
        assert client.delete(f"/api/delete/{job_id}").status_code == 200
    # The first server heard nothing while it was down: it sweeps its cache when it starts.
    assert folder(tmp_path / "first", job_id).is_dir()
    start("first")
    assert not folder(tmp_path / "first", job_id).exists()


def test_a_killed_servers_job_is_taken_over_without_a_second_submit(
    start: Start, tmp_path: Path, storage_client: storage.Client, bucket: str
) -> None:
    first = start("first", VEOTUI_SIM_SECONDS="600")
    job_id = submit(first, "rain on a tin roof", image=True)
    wait_until(lambda: operations(storage_client, bucket, job_id), 60, what="the operation to be submitted")
    second = start("second", VEOTUI_SIM_SECONDS="600")
    first.signal(signal.SIGKILL)
    first.process.wait(10)

    wait_until(lambda: f"taken over by server {second.server_id}" in timeline(second, job_id), 60, what="take-over")
    # The operation finishes now; the second server resumes polling that very operation.
    (name,) = operations(storage_client, bucket, job_id)
    blob = storage_client.bucket(bucket).blob(name)
    record = json.loads(blob.download_as_bytes())
    record["done_at"] = isoformat(utcnow())
    blob.upload_from_string(json.dumps(record), content_type="application/json")
    completed(second, job_id)
    assert operations(storage_client, bucket, job_id) == [name]
    with second.client() as client:
        job = client.get(f"/api/status/{job_id}").json()
        assert job["operation"] == record["name"]
        assert client.get(f"/api/download/{job_id}/video/1").status_code == 200


def test_a_fresh_server_with_an_empty_directory_serves_every_finished_job(start: Start, tmp_path: Path) -> None:
    first = start("first", VEOTUI_MAX_CONCURRENT="3")
    jobs = [submit(first, f"scene {n}", image=n == 0, videos=1 + n % 2) for n in range(3)]
    for job_id in jobs:
        completed(first, job_id)
    digests = {}
    with first.client() as client:
        for job_id in jobs:
            digests[job_id] = hashlib.sha256(client.get(f"/api/download/{job_id}/video/1").content).hexdigest()
    assert first.stop() == 0

    fresh = start("fresh")
    assert not list((tmp_path / "fresh" / "temp_downloads").glob("job_*"))
    with fresh.client() as client:
        for job_id in jobs:
            video = client.get(f"/api/download/{job_id}/video/1")
            assert video.status_code == 200, video.text
            assert hashlib.sha256(video.content).hexdigest() == digests[job_id]
            assert client.get(f"/api/download/{job_id}").status_code == 200


def test_a_fresh_server_zips_a_group_from_the_bucket(start: Start, tmp_path: Path) -> None:
    first = start("first", VEOTUI_MAX_CONCURRENT="2")
    jobs = [submit(first, f"a kite, take {n}", videos=1 + n, group="kites") for n in range(2)]
    for job_id in jobs:
        completed(first, job_id)
    digests = {}
    with first.client() as client:
        for job_id in jobs:
            for index in range(1, jobs.index(job_id) + 2):
                video = client.get(f"/api/download/{job_id}/video/{index}").content
                digests[f"{job_id}/generated_video_{index}.mp4"] = hashlib.sha256(video).hexdigest()
    assert first.stop() == 0

    fresh = start("fresh")  # holds no file of either job
    with fresh.client() as client:
        response = client.get("/api/download/group/kites")
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        zipped = {name: hashlib.sha256(archive.read(name)).hexdigest() for name in archive.namelist()}
    assert zipped == digests


def test_an_extension_of_an_unfinished_job_is_refused_and_creates_nothing(start: Start, tmp_path: Path) -> None:
    server = start("a")
    with server.client() as client:
        assert client.post("/api/queue/pause", json={}).status_code == 200
    source = submit(server, "a ship leaves harbour")
    with server.client() as client:
        refused = client.post("/api/generate", json={"prompt": "it sails on", "extends_job_id": source})
        assert refused.status_code == 409, refused.text
        assert "only a completed job's video" in refused.json()["detail"]
        assert [job["job_id"] for job in client.get("/api/jobs").json()["queued"]] == [source]
    assert {path.name for path in (tmp_path / "a" / "temp_downloads").glob("job_*")} <= {f"job_{source}"}


def test_a_submit_the_bucket_refuses_answers_503_and_creates_nothing(
    start: Start, tmp_path: Path, storage_client: storage.Client, bucket: str
) -> None:
    server = start("a", VEOTUI_GCS_BUCKET="veotui-no-such-bucket")
    with server.client() as client:
        response = client.post(
            "/api/generate", data={"prompt": "a fox"}, files={"image": ("frame.png", png(), "image/png")}
        )
        assert response.status_code == 503, response.text
        assert "bucket" in response.json()["detail"]
        lists = client.get("/api/jobs").json()
        assert lists["queued"] == [] and lists["processing"] == [] and lists["history"] == []
    assert not list((tmp_path / "a" / "temp_downloads").glob("job_*"))
    assert list(storage_client.list_blobs(bucket)) == []

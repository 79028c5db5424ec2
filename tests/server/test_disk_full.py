"""A full disk, from outside: ``veotui serve`` with its data directory on a small filesystem
that the test fills to the last byte and then frees.

- The engine survives writes the store cannot make: /api/health is 503 while it cannot write
  and 200 after, the jobs in hand are carried on or failed (never left generating), the queue
  runs again by itself, and SIGTERM still exits 0.
- Submits and deletes on a full disk answer 507 with a sentence, never 500, and the
  keep-alive connection stays usable; a delete frees space even with nothing left; a refused
  image upload leaves no folder behind.
- Running out of space while writing videos fails the job with ``error_kind`` ``disk_full``,
  a message that says where and how much, no traceback in the log; retry then works.
- SIGTERM while the disk is full exits 0; the job in hand resumes at the next start.
- Downloading onto a full disk is one line that says so and how much is needed, and leaves
  no file behind.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from tests.server.harness import ServeProcess, server_env
from tests.support.smallfs import fill, small_filesystem
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

FINAL = {"completed", "failed", "cancelled"}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


class Connection:
    """One keep-alive HTTP connection that notices if the server drops it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None, url
        self.http = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.http.connect()
        self.socket = self.http.sock

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict, dict]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if data is not None else {}
        self.http.request(method, path, body=data, headers=headers)
        response = self.http.getresponse()
        payload = json.loads(response.read() or b"null")
        return response.status, payload, {k.lower(): v for k, v in response.getheaders()}

    def still_the_same(self) -> bool:
        return self.http.sock is self.socket

    def close(self) -> None:
        self.http.close()


def statuses(client: httpx.Client, ids: list[str]) -> dict[str, str]:
    return {job_id: client.get(f"/api/status/{job_id}").json()["status"] for job_id in ids}


def fill_after_cleanups(disk: Path) -> None:
    """Fill the disk, then again once a deleted job's background clean-up (a few simulator
    files) has had time to free its pages."""
    fill(disk)
    time.sleep(0.5)
    fill(disk)


@pytest.fixture
def disk(tmp_path):
    with small_filesystem(tmp_path / "disk", size_mb=8) as mount:
        yield mount


def stop(server: ServeProcess) -> int:
    server.signal(signal.SIGTERM)
    try:
        return server.wait(20)
    finally:
        server.kill()


def test_the_engine_survives_a_full_disk_and_carries_on_when_space_returns(disk):
    data = disk / "data"
    server = ServeProcess(server_env(data, VEOTUI_SIM_SECONDS="2"))
    try:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            ids = [client.post("/api/generate", json={"prompt": f"job {n}"}).json()["job_id"] for n in range(4)]
            wait_until(
                lambda: sum(1 for s in statuses(client, ids).values() if s == "generating") == 2,
                what="two jobs generating",
            )
            filler = fill(disk)

            # The two generations end within seconds; recording that fails.
            health = wait_until(
                lambda: r if (r := client.get("/api/health")).status_code == 503 else None,
                what="/api/health to report the full disk",
            )
            assert health.json()["status"] == "degraded"
            assert health.json()["storage"] == "full"
            assert health.json()["detail"].startswith("storage full:")
            assert str(data) not in health.json()["detail"], "health answers without a token: no paths"
            info = client.get("/api/info").json()
            assert info["storage"]["state"] == "full"
            assert f"the disk holding {data} is full" in info["storage"]["reason"]
            assert info["generator"] == "sim"  # the other fields are still there

            refused = client.post("/api/generate", json={"prompt": "while full"})
            assert refused.status_code == 507, refused.text
            assert "is full" in refused.json()["detail"]
            time.sleep(1.0)  # nothing may move while the disk refuses writes
            assert all(s != "completed" for s in statuses(client, ids).values())

            filler.unlink()
            wait_until(lambda: client.get("/api/health").status_code == 200, what="/api/health back to 200")
            assert client.get("/api/health").json() == {"status": "ok"}
            assert client.get("/api/info").json()["storage"]["state"] == "ok"

            # Every job ends: the two in hand carried on (or failed for the disk), the two
            # queued ran; none is left generating.
            def all_ended() -> dict[str, str] | None:
                now = statuses(client, ids)
                return now if all(v in FINAL for v in now.values()) else None

            final = wait_until(all_ended, what="every job to end after space returned")
            jobs = [client.get(f"/api/status/{i}").json() for i in ids]
            for job in jobs:
                assert job["status"] == "completed" or job["error_kind"] == "disk_full", job
            assert list(final.values())[2:] == ["completed", "completed"]

            late = client.post("/api/generate", json={"prompt": "after the disk was freed"})
            assert late.status_code == 202
            late_id = late.json()["job_id"]
            wait_until(
                lambda: client.get(f"/api/status/{late_id}").json()["status"] == "completed",
                what="a new job to complete",
            )
        code = stop(server)
        log = server.stderr()
        assert code == 0, log
        assert "Traceback" not in log, log
    finally:
        server.kill()


def test_submit_and_delete_on_a_full_disk_answer_507_and_delete_still_frees_space(disk):
    data = disk / "data"
    server = ServeProcess(server_env(data))
    connection = None
    try:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            done = client.post("/api/generate", json={"prompt": "done", "number_of_videos": 2}).json()["job_id"]
            failed = [client.post("/api/generate", json={"prompt": f"[fail] {n}"}).json()["job_id"] for n in (1, 2)]
            wait_until(lambda: set(statuses(client, [done, *failed]).values()) == {"completed", "failed"}, what="ends")
            folders_before = sorted(p.name for p in (data / "temp_downloads").iterdir())
            filler = fill(disk)

            connection = Connection(server.url)
            # An image upload on a full disk: a sentence, not a 500, and no folder left.
            image = base64.b64encode(png()).decode()
            status, body, headers = connection.request(
                "POST", "/api/generate", {"prompt": "with image", "image_base64": image}
            )
            assert status == 507, body
            assert "is full" in body["detail"] and ".partial-" not in body["detail"]
            assert headers.get("connection") != "close"
            assert sorted(p.name for p in (data / "temp_downloads").iterdir()) == folders_before

            status, body, _ = connection.request("POST", "/api/generate", {"prompt": "no image"})
            assert status == 507 and "is full" in body["detail"], body
            status, body, _ = connection.request("GET", "/api/health")
            assert status == 503 and body["storage"] == "full"
            assert connection.still_the_same(), "the server dropped the keep-alive connection"

            # Delete frees space on a full disk: a job with files...
            status, body, _ = connection.request("DELETE", f"/api/delete/{done}")
            assert status == 200, body
            assert not (data / "temp_downloads" / f"job_{done}").exists()
            # ... and one without any, once the disk is full again: the reserve makes room.
            fill_after_cleanups(disk)
            assert (data / "veotui.reserve").exists()
            status, body, _ = connection.request("DELETE", f"/api/delete/{failed[0]}")
            assert status == 200, body
            assert not (data / "veotui.reserve").exists()
            assert client.get(f"/api/status/{failed[0]}").status_code == 404

            # With the reserve spent and the disk full again, a delete is refused with a
            # sentence, and the job is still there.
            fill_after_cleanups(disk)
            status, body, headers = connection.request("DELETE", f"/api/delete/{failed[1]}")
            assert status == 507, body
            assert "is full" in body["detail"]
            assert client.get(f"/api/status/{failed[1]}").json()["status"] == "failed"
            status, _, _ = connection.request("GET", f"/api/status/{failed[1]}")
            assert status == 200
            assert connection.still_the_same(), "the server dropped the keep-alive connection"

            filler.unlink()
            wait_until(lambda: client.get("/api/health").status_code == 200, what="/api/health back to 200")
            assert (data / "veotui.reserve").stat().st_size > 0, "the reserve is set aside again"
            assert client.delete(f"/api/delete/{failed[1]}").status_code == 200
            job_id = client.post("/api/generate", json={"prompt": "after"}).json()["job_id"]
            wait_until(lambda: client.get(f"/api/status/{job_id}").json()["status"] == "completed", what="a new job")
        connection.close()
        code = stop(server)
        log = server.stderr()
        assert code == 0, log
        assert "Traceback" not in log, log
    finally:
        if connection is not None:
            connection.close()
        server.kill()


def test_running_out_of_space_for_videos_is_disk_full_and_retryable(tmp_path):
    data = tmp_path / "data"
    # Only the job folders sit on the small disk: the database can still record the failure.
    with small_filesystem(data / "temp_downloads", size_mb=1) as videos:
        server = ServeProcess(server_env(data, VEOTUI_SIM_SECONDS="1"))
        try:
            with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
                body = {"prompt": "four long videos", "number_of_videos": 4, "duration_seconds": 8}
                job_id = client.post("/api/generate", json=body).json()["job_id"]
                filler = fill(videos)
                job = wait_until(
                    lambda: (j := client.get(f"/api/status/{job_id}").json())["status"] in FINAL and j,
                    what="the job to end",
                )
                assert job["status"] == "failed"
                assert job["error_kind"] == "disk_full"
                assert f"the disk holding {videos} is full" in job["error"]
                assert "needs about" in job["error"] and "KB" in job["error"]
                assert ".partial-" not in job["error"]
                assert client.get("/api/metrics").json()["errors_by_kind"] == {"disk_full": 1}

                filler.unlink()
                assert client.post(f"/api/retry/{job_id}").status_code == 200
                wait_until(
                    lambda: client.get(f"/api/status/{job_id}").json()["status"] == "completed",
                    what="the retried job to complete",
                )
                assert len(client.get(f"/api/status/{job_id}").json()["videos"]) == 4
            code = stop(server)
            log = server.stderr()
            assert code == 0, log
            assert "Traceback" not in log, log
        finally:
            server.kill()


def test_downloading_onto_a_full_disk_says_so_and_leaves_nothing(tmp_path):
    server = ServeProcess(server_env(tmp_path / "data", VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD="off"))
    try:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            job_id = client.post("/api/generate", json={"prompt": "to keep", "number_of_videos": 2}).json()["job_id"]
            wait_until(lambda: client.get(f"/api/status/{job_id}").json()["status"] == "completed", what="done")
        with small_filesystem(tmp_path / "downloads", size_mb=1) as downloads:
            fill(downloads)
            env = server_env(tmp_path / "unused", VEOTUI_REMOTE=server.url)
            saved = subprocess.run(
                [sys.executable, "-m", "veotui", "download", job_id[:8], "-o", str(downloads)],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert saved.returncode == 1
            message = saved.stderr.strip()
            assert len(message.splitlines()) == 1, message
            assert f"cannot save veotui_{job_id[:8]}_videos.zip in {downloads}: the disk is full" in message
            assert "it needs" in message and ".partial-" not in message
            assert sorted(p.name for p in downloads.iterdir()) == ["filler"]
        assert stop(server) == 0
    finally:
        server.kill()


def test_sigterm_while_the_disk_is_full_exits_0_and_the_job_resumes_at_the_next_start(disk):
    data = disk / "data"
    env = server_env(data, VEOTUI_SIM_SECONDS="1")
    server = ServeProcess(env)
    try:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            job_id = client.post("/api/generate", json={"prompt": "interrupted"}).json()["job_id"]
            wait_until(lambda: client.get(f"/api/status/{job_id}").json()["status"] == "generating", what="generating")
            filler = fill(disk)
            wait_until(lambda: client.get("/api/health").status_code == 503, what="/api/health to report it")
        code = stop(server)
        log = server.stderr()
        assert code == 0, log
        assert "Traceback" not in log, log
    finally:
        server.kill()

    filler.unlink()
    restarted = ServeProcess(env)
    try:
        with httpx.Client(base_url=restarted.url, trust_env=False, timeout=30) as client:
            assert client.get("/api/health").status_code == 200
            wait_until(
                lambda: client.get(f"/api/status/{job_id}").json()["status"] == "completed",
                what="the job to complete after the restart",
            )
            assert client.get(f"/api/status/{job_id}").json()["attempts"] == 1
        assert stop(restarted) == 0
    finally:
        restarted.kill()

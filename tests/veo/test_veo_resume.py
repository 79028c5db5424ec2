"""A real ``veotui serve`` process on the veo generator, SIGKILLed while Veo works on a job:
the restarted process resumes polling the recorded operation and never submits again."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.waiting import wait_until
from tests.veo.fake_vertex import FakeVertex

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class ServeProcess:
    """``python -m veotui serve --port 0``, configured only through the environment (the
    operator's path: ``auto`` picks veo from GOOGLE_API_KEY), stopped by its PID."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> str:
        self.process = process = subprocess.Popen(
            [sys.executable, "-m", "veotui", "serve", "--port", "0"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("veotui serves "):
            self.kill()
            raise AssertionError(f"veotui serve did not start: {line!r}")
        self.url = line.split()[-1]
        return self.url

    def kill(self) -> None:
        if self.process is None:
            return
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        self.process = None


def test_a_killed_process_resumes_the_same_operation(
    tmp_path, fake_vertex: FakeVertex, gcs_emulator, bucket, storage_client, png_image, mp4
):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GOOGLE_", "VEOTUI_", "STORAGE_EMULATOR"))
    }
    env.update(
        {
            "VEOTUI_DATA_DIR": str(tmp_path / "data"),
            "VEOTUI_CONFIG": "/nonexistent/veotui.toml",
            "VEOTUI_POLL_INTERVAL": "0.05",
            "VEOTUI_GCS_BUCKET": bucket,
            "GOOGLE_API_KEY": "express-test-key",
            "GOOGLE_VERTEX_BASE_URL": fake_vertex.url,
            "STORAGE_EMULATOR_HOST": gcs_emulator,
        }
    )
    fake_vertex.hold = True  # Veo keeps working until the test says otherwise
    server = ServeProcess(env)
    try:
        url = server.start()
        answer = httpx.post(
            f"{url}/api/generate",
            json={
                "prompt": "a night train",
                "number_of_videos": 2,
                "image_base64": base64.b64encode(png_image).decode(),
            },
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]
        operation = wait_until(
            lambda: httpx.get(f"{url}/api/status/{job_id}").json()["operation"], what="the operation to be recorded"
        )
        wait_until(lambda: len(fake_vertex.calls("fetchPredictOperation")) >= 2, what="polling")
        server.kill()

        polls_before = len(fake_vertex.calls("fetchPredictOperation"))
        fake_vertex.hold = False
        url = server.start()
        job = wait_until(
            lambda: (lambda j: j if j["status"] in ("completed", "failed", "cancelled") else None)(
                httpx.get(f"{url}/api/status/{job_id}").json()
            ),
            what="the resumed job to end",
        )
        video = httpx.get(f"{url}/api/download/{job_id}/video/2")
    finally:
        server.kill()

    assert job["status"] == "completed", job["error"]
    assert job["operation"] == operation
    [submit] = fake_vertex.submits()
    assert submit.headers["x-goog-api-key"] == "express-test-key"
    assert submit.path == "/v1beta1/publishers/google/models/veo-3.1-generate-001:predictLongRunning"
    resumed = fake_vertex.calls("fetchPredictOperation")[polls_before:]
    assert resumed and {r.body["operationName"] for r in resumed} == {operation}
    assert video.status_code == 200 and video.content == mp4
    assert not [b.name for b in storage_client.list_blobs(bucket, prefix="temp_images/")]

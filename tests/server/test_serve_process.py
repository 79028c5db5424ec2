"""``veotui serve`` as a real process: its URL line, the data-directory lock, clean stops on
SIGINT/SIGTERM, and a SIGKILL while jobs generate."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest

from tests.server.conftest import data_files
from tests.server.harness import ServeProcess, server_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def all_jobs(client: httpx.Client) -> list[dict]:
    lists = client.get("/api/jobs").json()
    return lists["processing"] + lists["queued"] + lists["history"]


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def test_prints_its_url_once_it_accepts_and_stops_cleanly_on_sigterm(data_dir):
    server = ServeProcess(server_env(data_dir, VEOTUI_SIM_SECONDS="3"))
    try:
        # The URL line means the socket accepts: no retry needed.
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            assert client.get("/api/health").json() == {"status": "ok"}
            job_id = client.post("/api/generate", json={"prompt": "long"}).json()["job_id"]
            wait_until(lambda: client.get(f"/api/status/{job_id}").json()["status"] == "generating", what="generating")
            with client.stream("GET", "/api/events") as events:
                assert events.status_code == 200
                server.signal(signal.SIGTERM)
                # The open event stream does not hold the shutdown up.
                assert server.wait(15) == 0
        assert "resume at the next start" in server.stderr()
    finally:
        server.kill()

    restarted = ServeProcess(server_env(data_dir, VEOTUI_SIM_SECONDS="0.3"))
    try:
        with httpx.Client(base_url=restarted.url, trust_env=False) as client:
            job = client.get(f"/api/status/{job_id}").json()
            assert job["status"] in ("generating", "processing", "downloading", "completed"), job
            wait_until(lambda: client.get(f"/api/status/{job_id}").json()["status"] == "completed", what="completed")
            assert client.get(f"/api/status/{job_id}").json()["attempts"] == 1
        restarted.signal(signal.SIGINT)
        assert restarted.wait(15) == 0
    finally:
        restarted.kill()


def test_a_second_server_on_the_same_data_dir_is_refused_and_changes_nothing(data_dir):
    first = ServeProcess(server_env(data_dir))
    try:
        with httpx.Client(base_url=first.url, trust_env=False) as client:
            job_id = client.post("/api/generate", json={"prompt": "one"}).json()["job_id"]
            # Let the job finish so the comparison is about the second process alone.
            wait_until(
                lambda: client.get(f"/api/status/{job_id}").json()["status"] == "completed",
                what="the job to complete",
            )
        lock_before = (data_dir / "veotui.lock").read_bytes()
        files_before = data_files(data_dir)
        db_before = (data_dir / "veotui.db").read_bytes()
        second = subprocess.run(
            [sys.executable, "-m", "veotui", "serve", "--port", "0"],
            env=server_env(data_dir),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert second.stdout == ""
        message = second.stderr.strip()
        assert len(message.splitlines()) == 1
        assert f"in use by veotui process {first.process.pid}" in message
        assert f"veotui --remote {first.url}" in message
        assert data_files(data_dir) == files_before
        assert (data_dir / "veotui.db").read_bytes() == db_before
        assert (data_dir / "veotui.lock").read_bytes() == lock_before
    finally:
        first.signal(signal.SIGTERM)
        first.wait()
        first.kill()


def test_a_taken_port_is_one_clear_line(data_dir, tmp_path):
    first = ServeProcess(server_env(data_dir))
    try:
        port = first.url.rsplit(":", 1)[1]
        second = subprocess.run(
            [sys.executable, "-m", "veotui", "serve", "--port", port],
            env=server_env(tmp_path / "other"),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert second.stderr.strip().startswith(f"veotui: cannot listen on 127.0.0.1:{port}")
    finally:
        first.kill()


def test_sigkill_while_generating_then_restart_completes_every_job_once(data_dir):
    env = server_env(data_dir, VEOTUI_SIM_SECONDS="1.5", VEOTUI_POLL_INTERVAL="0.05")
    server = ServeProcess(env)
    try:
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            ids = [client.post("/api/generate", json={"prompt": f"job {n}"}).json()["job_id"] for n in range(4)]
            # Two generating (operations submitted), two waiting in the queue.
            wait_until(
                lambda: sum(1 for j in all_jobs(client) if j["status"] == "generating" and j["operation"]) == 2,
                what="two jobs generating",
            )
    finally:
        server.kill()
    assert server.process.returncode == -signal.SIGKILL

    restarted = ServeProcess(env)
    try:
        with httpx.Client(base_url=restarted.url, trust_env=False) as client:
            wait_until(
                lambda: all(client.get(f"/api/status/{i}").json()["status"] == "completed" for i in ids),
                what="every job to complete after the restart",
            )
            jobs = [client.get(f"/api/status/{i}").json() for i in ids]
    finally:
        restarted.signal(signal.SIGTERM)
        restarted.wait()
        restarted.kill()
    operations = list((data_dir / "sim" / "operations").glob("*.json"))
    assert len(operations) == len(ids), "no operation was submitted twice"
    assert len({job["operation"] for job in jobs}) == len(ids)

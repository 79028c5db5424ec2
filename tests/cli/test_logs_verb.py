"""``veotui logs`` as a real process, reading the log of a data directory that a running
``veotui serve`` owns."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.server.harness import ServeProcess, server_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def logs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "veotui", "logs", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def serving(tmp_path):
    env = server_env(tmp_path / "data")
    server = ServeProcess(env)
    try:
        yield server, env
    finally:
        server.signal(signal.SIGTERM)
        try:
            server.wait(15)
        finally:
            server.kill()  # only if it is still running


def run_jobs(url: str, prompts: list[str]) -> list[str]:
    with httpx.Client(base_url=url, trust_env=False) as client:
        ids = [client.post("/api/generate", json={"prompt": p}).json()["job_id"] for p in prompts]
        wait_until(
            lambda: all(client.get(f"/api/status/{job_id}").json()["status"] == "completed" for job_id in ids),
            what="every job to complete",
        )
    return ids


def test_job_filters_by_prefix_while_the_server_owns_the_directory(serving):
    server, env = serving
    first, second = run_jobs(server.url, ["first job", "second job"])

    done = logs(env, "--job", first[:8])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(f"job={first}" in line for line in lines)
    assert any("job.submitted" in line and '"first job"' in line for line in lines)
    assert any("downloading -> completed" in line for line in lines)

    as_json = logs(env, "--job", second, "--json", "--since", "1h")
    assert as_json.returncode == 0, as_json.stderr
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert records and {r["job_id"] for r in records} == {second}
    assert {"ts", "level", "event", "message"} <= records[0].keys()

    everything = logs(env)
    assert "engine.start" in everything.stdout and f"job={first}" in everything.stdout
    assert f"job={second}" in everything.stdout

    # Records older than the window are left out.
    time.sleep(1.1)
    assert logs(env, "--since", "1s", "--job", first).stdout == ""


def test_bad_filters_are_usage_errors(tmp_path):
    env = server_env(tmp_path / "data")
    for args, words in (
        (["--since", "yesterday"], "--since must be a duration"),
        (["--job", "not-hex!"], "--job must be a job id"),
    ):
        done = logs(env, *args)
        assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
    missing = logs(env)
    assert missing.returncode == 1 and "there is no log at" in missing.stderr


def test_follow_prints_new_records_as_they_come(serving):
    server, env = serving
    follower = subprocess.Popen(
        [sys.executable, "-m", "veotui", "logs", "-f", "--json"],
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    received: list[dict] = []

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            received.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(lambda: any(r["event"] == "engine.start" for r in received), what="the existing records")
        [job_id] = run_jobs(server.url, ["followed"])
        wait_until(
            lambda: any(r["job_id"] == job_id and "-> completed" in r["message"] for r in received),
            what="the new job's records",
        )
    finally:
        follower.send_signal(signal.SIGINT)
        try:
            follower.wait(10)
        except subprocess.TimeoutExpired:
            follower.kill()
            follower.wait()
        reader.join(5)
    assert follower.returncode in (0, -signal.SIGINT)


def test_serve_writes_records_to_stderr_at_the_level_asked(tmp_path):
    env = server_env(tmp_path / "data")
    server = ServeProcess(env, "--log-level", "debug")
    try:
        [job_id] = run_jobs(server.url, ["told on stderr"])
        server.signal(signal.SIGTERM)
        assert server.wait(15) == 0
    finally:
        server.kill()
    stderr = server.stderr()
    assert f"job={job_id}" in stderr and "downloading -> completed" in stderr
    assert "http.request" in stderr and "GET /api/status/" in stderr
    # The file got the same records, at the same level.
    text = (tmp_path / "data" / "logs" / "veotui.log").read_text(encoding="utf-8")
    assert "http.request" in text and f"job={job_id}" in text


def test_serve_keeps_stderr_to_warnings_by_default(serving):
    server, _ = serving
    run_jobs(server.url, ["quiet"])
    server.signal(signal.SIGTERM)
    assert server.wait(15) == 0
    assert "job.transition" not in server.stderr()

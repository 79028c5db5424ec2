"""What a new operator met in their first hour with the command line: a closed pipe, a long
queue, exit statuses, who starts the auto-delete, the server's log and doctor over
``--remote``, and the line ``serve`` prints for the client verbs. Real subprocesses against
a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.cli.test_verbs import TOKEN, one_line, veotui
from tests.server.harness import ServeProcess, server_env, server_thread
from tests.support.env import FAST_ENV
from tests.support.users import users_with_tokens
from tests.support.waiting import wait_until
from veotui.backend.base import QUEUE_PAGE
from veotui.settings import load_settings

pytestmark = pytest.mark.slow

QUEUED = QUEUE_PAGE + 30


@pytest.fixture(scope="module")
def long_queue(tmp_path_factory):
    """A paused server with more queued jobs than one page of the queue."""
    data_dir = tmp_path_factory.mktemp("long") / "data"
    settings = load_settings(env={**FAST_ENV, "VEOTUI_DATA_DIR": str(data_dir)})
    with server_thread(settings.replace(token=TOKEN)) as running:
        with httpx.Client(base_url=running.url, headers={"authorization": f"Bearer {TOKEN}"}) as client:
            client.post("/api/queue/pause", json={"reason": "client review at 4pm"})
            for n in range(QUEUED):
                client.post("/api/generate", json={"prompt": f"shot {n}"}).raise_for_status()
        yield running


def piped_into_head(*args: str, remote: str) -> tuple[int, str, str]:
    """``veotui ARGS | head -1``: the reader takes one line and closes the pipe."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEOTUI_")}
    env.update(VEOTUI_CONFIG="/nonexistent/veotui.toml", VEOTUI_REMOTE=remote, VEOTUI_TOKEN=TOKEN)
    process = subprocess.Popen(
        [sys.executable, "-m", "veotui", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline().decode()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    return process.wait(60), first, stderr


@pytest.mark.parametrize("args", [("jobs", "--json", "--all"), ("jobs", "--all"), ("logs",)])
def test_a_closed_pipe_ends_a_verb_quietly(long_queue, args):
    status, first, stderr = piped_into_head(*args, remote=long_queue.url)
    assert first  # it did write
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert status in (0, 141)


def test_jobs_says_how_many_queued_jobs_it_left_out_and_all_lists_them(long_queue):
    shown = veotui("jobs", remote=long_queue.url)
    assert shown.returncode == 0
    lines = shown.stdout.splitlines()
    assert len(lines) == 1 + QUEUE_PAGE  # the header line, then the first page of the queue
    assert one_line(shown.stderr) == f"{QUEUE_PAGE} of {QUEUED} queued shown; --all for every one"

    every = veotui("jobs", "--all", remote=long_queue.url)
    rows = every.stdout.splitlines()[1:]
    assert len(rows) == QUEUED and every.stderr == ""
    assert [row.split("\t")[2] for row in rows] == [f"#{n}" for n in range(1, QUEUED + 1)]
    listed = json.loads(veotui("jobs", "--json", "--all", remote=long_queue.url).stdout)
    assert len(listed["queued"]) == listed["queued_total"] == QUEUED
    assert [job["prompt"] for job in listed["queued"]] == [f"shot {n}" for n in range(QUEUED)]


def test_queue_alone_is_queue_status(long_queue):
    alone = veotui("queue", remote=long_queue.url)
    assert alone.returncode == 0
    assert alone.stdout.startswith(f"paused: client review at 4pm ({QUEUED} jobs queued)")
    assert alone.stdout == veotui("queue", "status", remote=long_queue.url).stdout
    assert json.loads(veotui("queue", "--json", remote=long_queue.url).stdout)["length"] == QUEUED


# -- who starts the auto-delete --------------------------------------------------------------


@pytest.fixture
def shared_server(tmp_path):
    """A server with the admin token and two per-user tokens, deleting jobs 0.2 s after a
    download."""
    settings = load_settings(
        env={**FAST_ENV, "VEOTUI_DATA_DIR": str(tmp_path / "data"), "VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD": "0.2"}
    )
    users = users_with_tokens({"alice": "alice-token", "bob": "bob-token"})
    with server_thread(settings.replace(token=TOKEN, users=users)) as running:
        yield running


def completed_job(url: str, token: str) -> str:
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}) as client:
        job_id = client.post("/api/generate", json={"prompt": "a shared shot"}).json()["job_id"]
        wait_until(lambda: client.get(f"/api/status/{job_id}").json()["status"] == "completed", what="completion")
    return job_id


def job_state(url: str, job_id: str) -> dict | None:
    answer = httpx.get(f"{url}/api/status/{job_id}", headers={"authorization": f"Bearer {TOKEN}"})
    return None if answer.status_code == 404 else answer.json()


def test_only_the_owner_or_the_admin_starts_the_auto_delete(shared_server, tmp_path):
    url = shared_server.url
    job_id = completed_job(url, "alice-token")

    by_bob = veotui("download", job_id[:8], "-o", str(tmp_path / "bob"), remote=url, token="bob-token")
    assert by_bob.returncode == 0, by_bob.stderr
    assert (tmp_path / "bob" / f"veotui_{job_id[:8]}_videos.zip").is_file()
    bob_video = veotui(
        "download", job_id[:8], "--video", "1", "-o", str(tmp_path / "bob"), remote=url, token="bob-token"
    )
    assert bob_video.returncode == 0
    state = job_state(url, job_id)
    assert state is not None and state["downloaded_at"] is None  # bob's saves start nothing

    kept = veotui("download", job_id[:8], "--keep", "-o", str(tmp_path / "alice"), remote=url, token="alice-token")
    assert kept.returncode == 0 and kept.stderr == ""
    state = job_state(url, job_id)
    assert state is not None and state["downloaded_at"] is None  # --keep starts nothing

    by_alice = veotui("download", job_id[:8], "-o", str(tmp_path / "alice"), remote=url, token="alice-token")
    assert by_alice.returncode == 0 and "will be removed in" in by_alice.stderr
    wait_until(lambda: job_state(url, job_id) is None, what="the owner's download to delete the job")

    by_admin = completed_job(url, "alice-token")
    assert veotui("download", by_admin[:8], "-o", str(tmp_path / "admin"), remote=url).returncode == 0
    wait_until(lambda: job_state(url, by_admin) is None, what="the admin's download to delete the job")


def test_the_download_help_says_a_download_deletes_the_job():
    helped = veotui("download", "--help")
    text = " ".join(helped.stdout.split())
    assert "auto-delete" in text and "auto_delete_after_download" in text and "--keep" in text


# -- the server's log and doctor over --remote ----------------------------------------------


def test_logs_reads_the_servers_log_with_its_own_token_only(shared_server, tmp_path):
    url = shared_server.url
    job_id = completed_job(url, TOKEN)
    read = veotui("logs", "--job", job_id[:8], "--json", remote=url)
    assert read.returncode == 0, read.stderr
    records = [json.loads(line) for line in read.stdout.splitlines()]
    assert records and {r["job_id"] for r in records} == {job_id}
    assert any("-> completed" in r["message"] for r in records)
    assert f"the log of the server at {url}" in read.stderr

    refused = veotui("logs", remote=url, token="alice-token")
    assert refused.returncode == 1
    assert one_line(refused.stderr) == "veotui: alice may not read the log of this server"
    bad = veotui("logs", "--since", "yesterday", remote=url)
    assert bad.returncode == 2 and "since must be a duration" in bad.stderr

    # --data-dir with VEOTUI_REMOTE set: this machine's data directory, and it says which.
    local = veotui("logs", "--data-dir", str(tmp_path / "nowhere"), remote=url)
    assert local.returncode == 1 and f"there is no log at {tmp_path / 'nowhere'}" in local.stderr


def test_logs_follows_the_servers_log(shared_server):
    url = shared_server.url
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEOTUI_")}
    env.update(VEOTUI_CONFIG="/nonexistent/veotui.toml", VEOTUI_REMOTE=url, VEOTUI_TOKEN=TOKEN)
    follower = subprocess.Popen(
        [sys.executable, "-m", "veotui", "logs", "-f", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        first = json.loads(follower.stdout.readline())
        assert first["event"]  # the records written so far come first
        job_id = completed_job(url, TOKEN)
        for line in follower.stdout:
            record = json.loads(line)
            if record["job_id"] == job_id and "-> completed" in record["message"]:
                break
    finally:
        follower.send_signal(signal.SIGINT)
        try:
            follower.wait(10)
        except subprocess.TimeoutExpired:
            follower.kill()
            follower.wait()


def test_doctor_asks_the_server(shared_server):
    asked = veotui("doctor", remote=shared_server.url)
    assert asked.returncode == 0, asked.stdout
    lines = asked.stdout.splitlines()
    assert lines[0] == f"veotui doctor: asking the veotui server at {shared_server.url}"
    assert any(line.startswith("  ok    storage: data directory ") for line in lines)
    assert any(line.startswith("  --    generator: the server runs the offline simulator") for line in lines)
    wrong = veotui("doctor", remote=shared_server.url, token="not-a-token")
    assert wrong.returncode == 1 and "FAIL  token: the bearer token is not one this server accepts" in wrong.stdout


def test_doctor_without_a_server_says_nothing_answers():
    from veotui.server.running import bind

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    down = veotui("doctor", remote=f"http://127.0.0.1:{port}")
    assert down.returncode == 1 and "FAIL  server: nothing answers at" in down.stdout


def test_serve_prints_the_export_line_for_the_client_verbs(tmp_path):
    server = ServeProcess(server_env(tmp_path / "data"))
    try:
        url = server.url
        server.signal(signal.SIGTERM)
        assert server.wait(15) == 0
    finally:
        server.kill()
    assert server.process.stdout is not None
    assert f"  for the client verbs: export VEOTUI_REMOTE={url}\n" in server.process.stdout.read()

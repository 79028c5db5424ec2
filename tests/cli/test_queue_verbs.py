"""``veotui queue`` and ``veotui move`` as real subprocesses against a real server."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.cli.test_verbs import TOKEN, one_line, veotui
from tests.conftest import FAST_ENV
from tests.server.harness import server_thread
from veotui.settings import load_settings


@pytest.fixture
def server(tmp_path):
    settings = load_settings(env={**FAST_ENV, "VEOTUI_DATA_DIR": str(tmp_path / "data")})
    with server_thread(settings.replace(token=TOKEN)) as running:
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, trust_env=False) as client:
        yield client


def queued(client: httpx.Client) -> list[str]:
    return [job["job_id"] for job in client.get("/api/jobs").json()["queued"]]


def test_queue_pause_status_resume(server, client):
    paused = veotui("queue", "pause", "the render farm is down", remote=server.url)
    assert (paused.returncode, paused.stdout.strip()) == (0, "paused: the render farm is down (0 jobs queued)")
    job_id = client.post("/api/generate", json={"prompt": "waits"}).json()["job_id"]
    status = veotui("queue", "status", remote=server.url)
    assert status.stdout.strip() == "paused: the render farm is down (1 job queued)"
    state = json.loads(veotui("queue", "status", "--json", remote=server.url).stdout)
    assert (state["paused"], state["reason"], state["length"]) == (True, "the render farm is down", 1)
    assert client.get(f"/api/status/{job_id}").json()["status"] == "queued"
    resumed = veotui("queue", "resume", remote=server.url)
    assert resumed.returncode == 0 and resumed.stdout.startswith("running (")
    assert client.get("/api/queue").json()["paused"] is False


def test_move_top_bottom_up_down_and_positions(server, client):
    client.post("/api/queue/pause")
    a, b, c = [client.post("/api/generate", json={"prompt": p}).json()["job_id"] for p in "abc"]
    top = veotui("move", c[:8], "top", remote=server.url)
    assert (top.returncode, top.stdout.strip()) == (0, f"{c} is now at position 1")
    assert queued(client) == [c, a, b]
    assert veotui("move", c[:8], "down", remote=server.url).stdout.strip().endswith("position 2")
    assert veotui("move", b[:8], "up", remote=server.url).returncode == 0
    assert queued(client) == [a, b, c]
    assert veotui("move", a[:8], "bottom", remote=server.url).returncode == 0
    assert veotui("move", a[:8], "2", remote=server.url).stdout.strip() == f"{a} is now at position 2"
    assert queued(client) == [b, a, c]


def test_move_failures_are_one_line(server, client):
    client.post("/api/queue/pause")
    job_id = client.post("/api/generate", json={"prompt": "gone soon"}).json()["job_id"]
    client.post(f"/api/cancel/{job_id}")
    refused = veotui("move", job_id[:8], "top", remote=server.url)
    assert refused.returncode == 1 and "only queued jobs can be moved" in one_line(refused.stderr)
    for where in ("0", "sideways", "-1"):
        usage = veotui("move", job_id[:8], where, remote=server.url)
        assert usage.returncode == 2 and "top, bottom, up, down or a position" in usage.stderr
    missing = veotui("queue", remote=server.url)
    assert missing.returncode == 2 and "usage: veotui queue" in missing.stderr

"""``veotui submit`` never makes two jobs of one submit: real processes racing one key on
one server and on a fleet of two, a server that drops the connection after committing, and
a batch file sent twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.fleet.servers import FleetServer, fleet_env
from tests.server.harness import server_thread
from tests.support.env import FAST_ENV
from veotui.settings import load_settings

#: Noise so the conversion to JPEG takes a while: racing submits overlap in it.
PICTURE_SIDE = 1200


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pictures") / "noise.png"
    Image.frombytes("RGB", (PICTURE_SIDE, PICTURE_SIDE // 2), os.urandom(PICTURE_SIDE * PICTURE_SIDE // 2 * 3)).save(
        path
    )
    return path


@pytest.fixture
def server(tmp_path):
    settings = load_settings(env={**FAST_ENV, "VEOTUI_DATA_DIR": str(tmp_path / "data"), "VEOTUI_SIM_SECONDS": "60"})
    with server_thread(settings) as running:
        yield running


def submit_process(remote: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEOTUI_")}
    env.update({"VEOTUI_CONFIG": "/nonexistent/veotui-test-config.toml", "VEOTUI_REMOTE": remote})
    return subprocess.Popen(
        [sys.executable, "-m", "veotui", "submit", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out.strip()


def all_jobs(url: str) -> list[dict[str, Any]]:
    lists = httpx.get(f"{url}/api/jobs", trust_env=False, timeout=30).json()
    return [job for name in ("processing", "queued", "history") for job in lists[name]]


def test_two_processes_racing_one_key_make_one_job(server, picture):
    for round_ in range(4):
        racers = [
            submit_process(server.url, "a fox", "--image", str(picture), "--idempotency-key", f"race-{round_}")
            for _ in range(2)
        ]
        ids = {finished(p) for p in racers}
        assert len(ids) == 1, f"round {round_} made {ids}"
    assert len(all_jobs(server.url)) == 4


def test_two_servers_of_a_fleet_racing_one_key_make_one_job(postgres_cluster, tmp_path, picture):
    database = postgres_cluster.new_database()
    servers = [FleetServer(fleet_env(tmp_path / "data", database, VEOTUI_SIM_SECONDS="60")).ready() for _ in range(2)]
    try:
        for round_ in range(4):
            racers = [
                submit_process(s.url, "a fox", "--image", str(picture), "--idempotency-key", f"fleet-{round_}")
                for s in servers
            ]
            ids = {finished(p) for p in racers}
            assert len(ids) == 1, f"round {round_} made {ids}"
        assert len(all_jobs(servers[0].url)) == 4
    finally:
        for s in servers:
            s.stop()


@contextmanager
def dropping_proxy(upstream: str) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An HTTP proxy to ``upstream`` that passes the first submit on, lets the server commit
    it, and then drops the client's connection without an answer; everything else passes."""
    submits: list[dict[str, str]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            answer = httpx.request(
                self.command, upstream + self.path, content=body, headers=headers, trust_env=False, timeout=30
            )
            if self.command == "POST" and self.path == "/api/generate":
                with lock:
                    submits.append({"key": self.headers.get("idempotency-key", ""), "status": str(answer.status_code)})
                    first = len(submits) == 1
                if first:
                    self.close_connection = True  # committed upstream; the client hears nothing
                    return
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_DELETE = _forward

        def log_message(self, format: str, *args: Any) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.daemon_threads = True
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}", submits
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(10)


def test_submit_sends_its_own_key_again_after_a_dropped_connection(server):
    with dropping_proxy(server.url) as (proxy_url, submits):
        printed = finished(submit_process(proxy_url, "a fox"))
    (job,) = all_jobs(server.url)
    assert printed == job["job_id"]
    # Two sends, one key of the client's making; the server made the job at the first and
    # answered the second as a replay.
    assert [s["status"] for s in submits] == ["202", "200"]
    assert submits[0]["key"] == submits[1]["key"] and submits[0]["key"].startswith("veotui-")


def test_a_batch_sent_twice_queues_its_keyed_lines_once(server, tmp_path):
    batch = tmp_path / "jobs.jsonl"
    lines = [
        {"prompt": "a fox", "idempotency_key": "batch-1"},
        {"prompt": "an owl", "idempotency_key": "batch-2"},
        {"prompt": "a bee"},
    ]
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines))
    first = finished(submit_process(server.url, "--from", str(batch))).splitlines()
    second = finished(submit_process(server.url, "--from", str(batch))).splitlines()
    assert first[:2] == second[:2] and first[2] != second[2]
    assert len(all_jobs(server.url)) == 4

    batch.write_text(json.dumps({"prompt": "a fox", "idempotency_key": 7}) + "\n")
    refused = submit_process(server.url, "--from", str(batch))
    _, err = refused.communicate(timeout=60)
    assert refused.returncode == 2 and "line 1: idempotency_key must be text" in err


def test_a_key_given_twice_with_another_prompt_is_refused(server):
    finished(submit_process(server.url, "a fox", "--idempotency-key", "mine"))
    refused = submit_process(server.url, "an owl", "--idempotency-key", "mine")
    _, err = refused.communicate(timeout=60)
    assert refused.returncode == 1
    assert "Idempotency-Key 'mine' was used within the last 24 hours for a different request" in err
    assert len(err.strip().splitlines()) == 1

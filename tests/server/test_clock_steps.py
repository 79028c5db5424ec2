"""Wall-clock steps against a real ``veotui serve`` (its wall clock stepped by time-machine,
its monotonic clock untouched): generation times, ETAs and progress keep to the monotonic
clock, and History keeps the order in which jobs ended."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.server.harness import ServeProcess, server_env
from veotui.core.job import parse_time

pytestmark = pytest.mark.slow

SIM_SECONDS = 2.0


def wait_for(client: httpx.Client, job_id: str, predicate, what: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/status/{job_id}").json()
        if predicate(job):
            return job
        time.sleep(0.02)
    pytest.fail(f"job {job_id} never got {what}: {job}")


def test_a_clock_step_neither_corrupts_estimates_nor_reorders_history(tmp_path):
    env = server_env(tmp_path / "data", VEOTUI_SIM_SECONDS=str(SIM_SECONDS), VEOTUI_MAX_CONCURRENT="1")
    server = ServeProcess(env, module="tests.support.clock_serve")
    try:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=20) as client:
            first = client.post("/api/generate", json={"prompt": "first"}).json()["job_id"]
            wait_for(client, first, lambda j: j["status"] == "generating", "to generating")
            server.signal(signal.SIGUSR1)  # +1 h while it generates
            wait_for(client, first, lambda j: j["status"] == "completed", "to completed")

            # The next job's ETA comes from the first job's generation time on the monotonic
            # clock: at most the simulated time, not an hour (nor the clamp's 4x of it).
            second = client.post("/api/generate", json={"prompt": "second"}).json()
            assert second["eta_seconds"] <= SIM_SECONDS + 1, second
            seen: list[int] = []

            def progress_moves(job: dict) -> bool:
                if job["status"] == "generating":
                    seen.append(job["progress"])
                return job["status"] == "completed"

            wait_for(client, second["job_id"], progress_moves, "to completed")
            assert any(p > 5 for p in seen), f"progress stuck while generating: {seen}"
            metrics = client.get("/api/metrics").json()
            assert 0 < metrics["avg_processing_seconds"] < 60, metrics

            server.signal(signal.SIGUSR2)  # -2 h: the third job ends "before" the first two
            third = client.post("/api/generate", json={"prompt": "third"}).json()["job_id"]
            ended = wait_for(client, third, lambda j: j["status"] == "completed", "to completed")
            first_ended = client.get(f"/api/status/{first}").json()
            third_at, first_at = parse_time(ended["finished_at"]), parse_time(first_ended["finished_at"])
            assert third_at is not None and first_at is not None and third_at < first_at

            history = client.get("/api/jobs").json()["history"]
            assert [job["prompt"] for job in history] == ["third", "second", "first"]
            assert [job["prompt"] for job in client.get("/api/jobs", params={"q": "i"}).json()["history"]] == [
                "third",
                "first",
            ]
        server.signal(signal.SIGTERM)
        assert server.wait(15) == 0
    finally:
        server.kill()

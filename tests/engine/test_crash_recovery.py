"""Crash tests with real processes: SIGKILL the engine mid-job, restart it on the same data
directory, and check that nothing is lost and nothing is submitted twice."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from veotui.core.ids import new_job_id
from veotui.core.job import Job, Status
from veotui.core.request import JobRequest
from veotui.datadir.files import JobFiles
from veotui.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class EngineProcess:
    """``python -m tests.support.engine_process`` on a data directory, stopped by its PID."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.env = {
            **os.environ,
            "VEOTUI_DATA_DIR": str(data_dir),
            "VEOTUI_CONFIG": "/nonexistent/veotui.toml",
            "VEOTUI_GENERATOR": "sim",
            "VEOTUI_SIM_SECONDS": "0.6",
            "VEOTUI_POLL_INTERVAL": "0.05",
            "VEOTUI_RETRY_BASE_SECONDS": "0.01",
            "VEOTUI_TEST_SLOW": "0.25",
            **env,
        }
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.engine_process"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stderr is not None
        line = process.stdout.readline()
        if line.strip() != "ready":
            process.kill()
            raise AssertionError(f"engine did not start: {line!r} {process.stderr.read()}")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.kill()


def statuses(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT job_id, status FROM jobs"))


def small_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def queue_jobs(data_dir: Path, prompts: list[str]) -> list[str]:
    """Jobs as a previous run would have left them: queued, each with its input image."""
    store = SqliteStore(data_dir / "veotui.db")
    files = JobFiles(data_dir / "temp_downloads")
    ids = []
    try:
        for prompt in prompts:
            request = JobRequest(prompt=prompt, duration_seconds=4)
            job = Job(job_id=new_job_id(), status=Status.QUEUED, request=request, has_image=True)
            files.create(job.job_id, small_jpeg())
            ids.append(store.insert(job).job_id)
    finally:
        store.close()
    return ids


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_sigkill_in_every_stage_then_restart_completes_every_job_once(tmp_path):
    data = tmp_path / "data"
    job_ids = queue_jobs(data, [f"crash test job {n}" for n in range(6)])
    db = data / "veotui.db"
    engine = EngineProcess(data)
    killed_in: set[str] = set()
    wanted = {"uploading_image", "generating", "downloading"}
    try:
        # Kill at the moment some job reaches each stage, while others are still queued.
        for stage in ("uploading_image", "generating", "downloading", "generating"):
            engine.start()
            wait_until(lambda stage=stage: stage in statuses(db).values(), 30, f"a job in {stage}")
            engine.kill()
            snapshot = statuses(db)
            killed_in.update(s for s in snapshot.values() if s in wanted)
            assert "queued" in snapshot.values() or stage == "generating"
        # A burst of kills at random moments.
        for delay in (0.15, 0.4, 0.05, 0.3):
            engine.start()
            time.sleep(delay)
            engine.kill()
        engine.start()
        wait_until(lambda: set(statuses(db).values()) == {"completed"}, 120, "every job to complete after restarts")
        engine.kill()
    finally:
        engine.stop()

    assert killed_in == wanted
    operations = list((data / "sim" / "operations").glob("*.json"))
    owners = [json.loads(path.read_text())["job_id"] for path in operations]
    assert sorted(owners) == sorted(job_ids), "every job submitted exactly once"
    assert {p.name for p in (data / "temp_downloads").iterdir()} == {f"job_{i}" for i in job_ids}
    for job_id in job_ids:
        folder = data / "temp_downloads" / f"job_{job_id}"
        names = sorted(p.name for p in folder.iterdir())
        assert names == ["all_videos.zip", "generated_video_1.mp4", "uploaded_image.jpg"], names
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        resumed = conn.execute("SELECT COUNT(*) FROM events WHERE detail = 'resumed after restart'").fetchone()[0]
    assert resumed >= 4


def test_a_second_engine_on_the_same_directory_is_refused_and_changes_nothing(tmp_path):
    data = tmp_path / "data"
    queue_jobs(data, ["held"])
    first = EngineProcess(data, VEOTUI_SIM_SECONDS="30")
    first.start()
    try:
        before = (data / "veotui.db").read_bytes()
        second = subprocess.run(
            [sys.executable, "-m", "tests.support.engine_process"],
            cwd=ROOT,
            env=first.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert first.process is not None
        assert f"in use by veotui process {first.process.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert (data / "veotui.db").read_bytes() == before
        first.kill()
        # The kernel released the dead holder's lock: a new engine starts at once.
        first.start()
    finally:
        first.stop()


def test_a_job_killed_between_submit_and_record_is_adopted_not_resent(tmp_path):
    data = tmp_path / "data"
    (job_id,) = queue_jobs(data, ["adopt me"])
    db = data / "veotui.db"
    engine = EngineProcess(data, VEOTUI_TEST_SLOW="1.0")
    try:
        engine.start()
        ops = data / "sim" / "operations"
        wait_until(lambda: ops.is_dir() and any(ops.glob("*.json")), 30, "the submit to reach the simulator")
        engine.kill()
        with sqlite3.connect(db) as conn:
            operation, submitting = conn.execute(
                "SELECT operation, submitting FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        assert (operation, submitting) == (None, 1)  # killed inside the window
        engine.start()
        wait_until(lambda: statuses(db)[job_id] == "completed", 60, "the job to complete")
        engine.kill()
    finally:
        engine.stop()
    assert len(list(ops.glob("*.json"))) == 1
    with sqlite3.connect(db) as conn:
        details = [row[0] for row in conn.execute("SELECT detail FROM events WHERE job_id = ?", (job_id,))]
    assert any(d and d.startswith("found operation") for d in details)


def test_a_completion_a_power_cut_undid_is_downloaded_again_and_submitted_once(tmp_path):
    """A completion commits without waiting for the disk; a power cut may undo it, leaving
    the row as the durable commit before it wrote it: downloading, with its operation and
    saved result. The next start downloads the videos again from that operation and buys
    nothing again."""
    data = tmp_path / "data"
    (job_id,) = queue_jobs(data, ["a completion undone by a power cut"])
    db = data / "veotui.db"
    engine = EngineProcess(data)
    try:
        engine.start()
        wait_until(lambda: statuses(db) == {job_id: "completed"}, 60, "the job to complete")
        engine.kill()
        with sqlite3.connect(db) as conn:
            # The row as the commit before the completion left it (the power cut's work).
            operation = conn.execute("SELECT operation FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0]
            conn.execute(
                "UPDATE jobs SET status = 'downloading', videos = '[]', finished_at = NULL, finished_seq = NULL"
                " WHERE job_id = ?",
                (job_id,),
            )
        for leftover in (data / "temp_downloads" / f"job_{job_id}").glob("*.mp4"):
            leftover.unlink()
        engine.start()
        wait_until(lambda: statuses(db) == {job_id: "completed"}, 60, "the job to complete again")
        engine.kill()
    finally:
        engine.stop()

    with sqlite3.connect(db) as conn:
        again = conn.execute("SELECT operation, videos FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    assert again[0] == operation
    assert json.loads(again[1]), "the videos are listed again"
    assert (data / "temp_downloads" / f"job_{job_id}" / "generated_video_1.mp4").stat().st_size > 0
    owners = [json.loads(p.read_text())["job_id"] for p in (data / "sim" / "operations").glob("*.json")]
    assert owners == [job_id], "submitted once"

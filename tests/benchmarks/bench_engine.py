"""Engine throughput against raw SQLite, run on demand:

    .venv/bin/python tests/benchmarks/bench_engine.py [N] [--hook-delay SECONDS]

N jobs (default 2000) go through the whole lifecycle in-process with a generator that does no
work; then a raw sqlite3 loop runs a job's write transactions (see :func:`raw_run`) with the
same pragmas and the same file writes (and once more without them). It prints jobs/s for each, the peak RSS of a
process holding a 10,000-job store, and last `ratio: X` (engine / raw; target >= 0.5).

With ``--hook-delay S`` it measures what webhooks cost the queue instead: the engine runs N
jobs without a hook, then N jobs with a hook for every end status whose receiver (a real
HTTP server on 127.0.0.1) answers each delivery after S seconds, then both once more, and
prints jobs/s for each and last `hooks ratio: X` (with / without; target >= 0.9).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.receiver import receiving
from veotui.backend.local import LocalBackend
from veotui.core.webhooks import Hook
from veotui.datadir.files import video_name
from veotui.generators.base import GenerationResult, Generator
from veotui.settings import load_settings
from veotui.store.migrations import MIGRATIONS


class NullGenerator(Generator):
    name = "null"
    operations_can_hang = False
    default_poll_interval = 0.0

    async def submit(self, job, inputs):
        return f"null/{job.job_id}"

    async def poll(self, job, operation):
        return GenerationResult(videos=[1])

    async def fetch(self, job, result, dest):
        path = dest / video_name(1)
        path.write_bytes(b"\x00")
        return [path]


async def engine_run(n: int, data_dir: Path, hooks: tuple[Hook, ...] = ()) -> float:
    settings = load_settings(
        env={"VEOTUI_DATA_DIR": str(data_dir), "VEOTUI_CONFIG": "/nonexistent", "VEOTUI_GENERATOR": "sim"}
    ).replace(webhooks=hooks)
    async with LocalBackend(settings, generator=NullGenerator(), env={}) as backend:
        finished = anyio.Event()
        done = 0

        async def count() -> None:
            nonlocal done
            async for change in backend.changes():
                if change.job is not None and change.job.status.value == "completed":
                    done += 1
                    if done == n:
                        finished.set()
                        return

        async with anyio.create_task_group() as tg:
            tg.start_soon(count)
            await anyio.sleep(0.01)
            start = time.perf_counter()
            for i in range(n):
                await backend.submit({"prompt": f"benchmark job {i}"})
            await finished.wait()
            elapsed = time.perf_counter() - start
    return n / elapsed


def raw_run(n: int, path: Path, with_files: bool = True) -> float:
    """The ten write transactions a job's life took when this baseline was set, as bare SQL on
    the same schema with the same pragmas: a transition reads the row, updates it and appends
    an event. The baseline stays fixed so that its ratios compare across versions (the engine
    now commits six times a job, each change with its aggregates and audit rows). With
    ``with_files`` it also makes the same file-system changes as the engine (job folder, one
    video, the zip written under a temporary name and renamed): on ext4 they make every
    following fsync costlier, so leaving them out would charge their cost to the engine."""
    jobs_dir = path.parent / "temp_downloads"
    jobs_dir.mkdir(exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    for statement in filter(str.strip, MIGRATIONS[0].split(";")):
        conn.execute(statement)
    event = "INSERT INTO events (job_id, at, status, detail, user, model) VALUES (?, ?, ?, ?, 'local', 'm')"

    def transaction(*statements):
        conn.execute("BEGIN IMMEDIATE")
        for sql, args in statements:
            conn.execute(sql, args).fetchall()
        conn.execute("COMMIT")

    def transition(job_id, status, now, **fields):
        sets = ", ".join(["status = ?", *(f"{k} = ?" for k in fields)])
        transaction(
            ("SELECT * FROM jobs WHERE job_id = ?", (job_id,)),
            (f"UPDATE jobs SET {sets} WHERE job_id = ?", (status, *fields.values(), job_id)),
            (event, (job_id, now, status, None)),
        )

    start = time.perf_counter()
    for i in range(n):
        job_id = str(uuid.uuid4())
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        transaction(
            ("SELECT COALESCE(MAX(queue_seq), 0) FROM jobs", ()),
            (
                "INSERT INTO jobs (job_id, queue_seq, status, prompt, number_of_videos, model, aspect_ratio,"
                " duration_seconds, resolution, user, created_at) VALUES (?, ?, 'queued', ?, 1, 'm', '16:9', 8, '720p', 'local', ?)",
                (job_id, i, f"job {i}", now),
            ),
            (event, (job_id, now, "queued", "submitted")),
        )
        transition(job_id, "starting", now, attempts=1, started_at=now, stage_started_at=now)
        transition(job_id, "uploading_image", now, stage_started_at=now)
        transition(job_id, "generating", now, stage_started_at=now)
        transaction(
            ("SELECT * FROM jobs WHERE job_id = ?", (job_id,)),
            ("UPDATE jobs SET submitting = 1 WHERE job_id = ?", (job_id,)),
        )
        transaction(
            ("SELECT * FROM jobs WHERE job_id = ?", (job_id,)),
            ("UPDATE jobs SET operation = ?, submitting = 0 WHERE job_id = ?", (f"op/{i}", job_id)),
            (event, (job_id, now, "generating", "operation")),
        )
        transition(job_id, "processing", now, stage_started_at=now)
        transition(job_id, "downloading", now, stage_started_at=now)
        if with_files:
            folder = jobs_dir / f"job_{job_id}"
            folder.mkdir(exist_ok=True)
            video = folder / "generated_video_1.mp4"
            video.write_bytes(b"\x00")
            with zipfile.ZipFile(folder / ".partial-zip", "w", zipfile.ZIP_STORED) as archive:
                archive.write(video, arcname=video.name)
            os.replace(folder / ".partial-zip", folder / "all_videos.zip")
        transaction(
            ("SELECT seconds, samples FROM estimates WHERE model = 'm'", ()),
            ("INSERT OR REPLACE INTO estimates VALUES ('m', 1.0, ?)", (i,)),
        )
        transition(job_id, "completed", now, videos="[1]", finished_at=now, submitting=0)
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


RSS_SCRIPT = """
import resource, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from veotui.core.job import Job, Status
from veotui.core.request import JobRequest
from veotui.core.ids import new_job_id
from veotui.store.sqlite import SqliteStore
with tempfile.TemporaryDirectory() as d:
    store = SqliteStore(Path(d) / "veotui.db")
    store.insert_many(Job(job_id=new_job_id(), status=Status.COMPLETED, request=JobRequest(prompt=f"history job {i} " * 4))
                      for i in range(10_000))
    page, total = store.history(limit=100)
    assert total == 10_000
    store.queued(); store.metrics()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mib_with_10k_jobs() -> float:
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(ROOT)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


def hooks_cost(n: int, delay: float) -> None:
    """Jobs/s without and with a hook whose receiver answers after ``delay`` seconds,
    alternated twice so that a change in the machine's load hits both alike."""
    runs: dict[str, list[float]] = {"without hooks": [], "with hooks": []}
    with receiving(delay=delay) as receiver:
        hook = Hook(receiver.url, "benchmark-secret-0123456789")
        for _ in range(2):
            for name, hooks in (("without hooks", ()), ("with hooks", (hook,))):
                with tempfile.TemporaryDirectory() as data_dir:
                    runs[name].append(anyio.run(engine_run, n, Path(data_dir), hooks))
        received = len(receiver.received)
    without, with_hooks = (max(runs[name]) for name in runs)
    print(f"jobs: {n} a run; receiver answers after {delay:g} s")
    for name, figures in runs.items():
        print(f"engine jobs/s {name}: " + ", ".join(f"{f:.1f}" for f in figures) + f" (best {max(figures):.1f})")
    print(f"deliveries received meanwhile: {received} (the rest were still pending when each run ended)")
    print(f"hooks ratio: {with_hooks / without:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=2000, help="jobs a run (default 2000)")
    parser.add_argument(
        "--hook-delay", type=float, metavar="S", help="compare runs with a hook whose receiver answers after S s"
    )
    args = parser.parse_args()
    n = args.n
    if args.hook_delay is not None:
        hooks_cost(n, args.hook_delay)
        return
    with tempfile.TemporaryDirectory() as engine_dir, tempfile.TemporaryDirectory() as raw_dir:
        engine = anyio.run(engine_run, n, Path(engine_dir))
        raw = raw_run(n, Path(raw_dir) / "raw.db")
    with tempfile.TemporaryDirectory() as sql_only_dir:
        sql_only = raw_run(n, Path(sql_only_dir) / "raw.db", with_files=False)
    print(f"jobs: {n}")
    print(f"engine jobs/s: {engine:.1f}")
    print(f"raw sqlite3 + same file writes jobs/s: {raw:.1f}")
    print(f"raw sqlite3 alone jobs/s: {sql_only:.1f} (engine / this: {engine / sql_only:.2f})")
    print(f"peak RSS with a 10,000-job store: {peak_rss_mib_with_10k_jobs():.1f} MiB")
    print(f"ratio: {engine / raw:.2f}")


if __name__ == "__main__":
    main()

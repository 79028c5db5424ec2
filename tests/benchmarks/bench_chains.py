"""Jobs that wait for jobs against a long queue, run on demand (not a timed test):

    .venv/bin/python tests/benchmarks/bench_chains.py [--queued N] [--calls N]

Fills two SQLite stores with N queued jobs each (default 100,000): in the baseline none
waits; in the other every job but the last waits for a job that is processing, so the one job
that may start is at the back of the queue, behind all of them. For each it prints:

- ``next_job_us_p50`` / ``_p99``: the dispatcher's read of the next job that may start
  (``JobStore.next_queued``), over ``--calls`` reads;
- ``complete_us_p50``: a job's completion, which releases the jobs waiting for it in its own
  transaction (in the filled store, one of the N waiting jobs waits for each completed job);

then each figure's ratio, waiting over baseline: the claim is that waiting jobs cost the
dispatcher nothing (they are not in the index it reads) and that releasing them costs a seek.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from veotui.core.ids import new_job_id
from veotui.core.job import Job, Status, Video
from veotui.core.request import JobRequest
from veotui.store.sqlite import SqliteStore

REQUEST = JobRequest(prompt="a long queue")
COMPLETIONS = 20


def filled(folder: Path, queued: int, waiting: bool) -> tuple[SqliteStore, list[str]]:
    """A store with ``queued`` jobs; with ``waiting``, all but the last wait for one of the
    ``COMPLETIONS`` processing jobs. Returns the store and the processing jobs' ids."""
    store = SqliteStore(folder / "veotui.db")
    heads = [Job(job_id=new_job_id(), status=Status.QUEUED, request=REQUEST) for _ in range(COMPLETIONS)]
    store.insert_many(heads)
    for head in heads:
        store.transition(head.job_id, Status.STARTING)
        store.transition(
            head.job_id, Status.DOWNLOADING, via=(Status.UPLOADING_IMAGE, Status.GENERATING, Status.PROCESSING)
        )
    jobs = []
    for n in range(queued):
        wait_for = heads[n % COMPLETIONS].job_id if waiting and n < queued - 1 else None
        jobs.append(Job(job_id=new_job_id(), status=Status.QUEUED, request=REQUEST, waiting_for=wait_for))
    for start in range(0, len(jobs), 50_000):
        store.insert_many(jobs[start : start + 50_000])
    return store, [head.job_id for head in heads]


def micros(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.99) - 1] * 1e6


def measure(store: SqliteStore, heads: list[str], calls: int) -> dict[str, float]:
    reads = []
    for _ in range(calls):
        began = time.perf_counter()
        job = store.next_queued()
        reads.append(time.perf_counter() - began)
        assert job is not None
    completes = []
    video = (Video(1, "generated_video_1.mp4", 10),)
    for job_id in heads:
        began = time.perf_counter()
        store.transition(job_id, Status.COMPLETED, videos=video)
        completes.append(time.perf_counter() - began)
    p50, p99 = micros(reads)
    return {"next_job_us_p50": p50, "next_job_us_p99": p99, "complete_us_p50": micros(completes)[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=2_000)
    args = parser.parse_args()
    print(f"# load average {os.getloadavg()[0]:.2f}, {args.queued:,} queued", flush=True)
    results = {}
    for name, waiting in (("baseline", False), ("waiting", True)):
        with tempfile.TemporaryDirectory(prefix="veotui-chains-") as folder:
            began = time.perf_counter()
            store, heads = filled(Path(folder), args.queued, waiting)
            print(f"# {name}: filled in {time.perf_counter() - began:.1f} s", flush=True)
            results[name] = measure(store, heads, args.calls)
            store.close()
        for figure, value in results[name].items():
            print(f"{name} {figure} {value:.1f}")
    for figure in results["baseline"]:
        print(f"ratio {figure} {results['waiting'][figure] / results['baseline'][figure]:.2f}")


if __name__ == "__main__":
    main()

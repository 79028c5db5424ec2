"""Claim and transition throughput of the stores, run on demand:

    .venv/bin/python tests/benchmarks/bench_fleet.py [N]

N jobs (default 300) are queued, then claimed and taken through every status to completed:
on SQLite by one store (the server's own dispatch: next job, one transition), on PostgreSQL by
1, 2 and 4 stores in threads, each claiming with ``claim_next`` (the fleet-wide slot claim).
It starts a private PostgreSQL cluster (tests/support/postgres.py, which runs with fsync
off: the figures say what the statements and round trips cost, not the disk; it prints the
settings) and prints jobs/s for each and the ratios to SQLite (synchronous=FULL). These are store figures
with several stores in one process, not yet several ``veotui serve`` processes.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.postgres import start_cluster
from veotui.model import ACTIVE_STATUSES, Job, JobRequest, Status, new_job_id
from veotui.store import open_store

LIFE = (*ACTIVE_STATUSES[1:], Status.COMPLETED)


def queue(store, count: int) -> None:
    store.insert_many(
        Job(job_id=new_job_id(), status=Status.QUEUED, request=JobRequest(prompt="b")) for _ in range(count)
    )


def finish(store, job: Job) -> None:
    for status in LIFE:
        store.transition(job.job_id, status)


def run_sqlite(count: int) -> float:
    store = open_store("sqlite", Path(tempfile.mkdtemp(prefix="veotui-bench-")))
    queue(store, count)
    began = time.perf_counter()
    while (job := store.next_queued()) is not None:
        store.transition(job.job_id, Status.STARTING, expect=(Status.QUEUED,))
        finish(store, store.get(job.job_id))
    elapsed = time.perf_counter() - began
    store.close()
    return count / elapsed


def run_postgres(url: str, servers: int, count: int) -> float:
    stores = [open_store(url, Path(tempfile.mkdtemp(prefix="veotui-bench-"))) for _ in range(servers)]
    queue(stores[0], count)
    go = threading.Barrier(servers + 1)

    def work(store) -> None:
        go.wait()
        while (job := store.claim_next(servers * 2)) is not None:
            finish(store, job)

    threads = [threading.Thread(target=work, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    go.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    done = stores[0].count_by_status().get("completed", 0)
    for store in stores:
        store.close()
    assert done == count, f"{done} of {count} completed"
    return count / elapsed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    print(f"{count} jobs, each claimed and moved through {len(LIFE) + 1} transitions")
    sqlite = run_sqlite(count)
    print(f"sqlite, 1 server: {sqlite:.0f} jobs/s")
    cluster = start_cluster()
    try:
        import psycopg

        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            shown = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in ("fsync", "synchronous_commit")}
        # The test cluster trades durability for speed; SQLite here syncs every commit (FULL).
        print(f"postgresql settings: {shown}")
        for servers in (1, 2, 4):
            rate = run_postgres(cluster.new_database(), servers, count)
            print(f"postgresql, {servers} server(s): {rate:.0f} jobs/s  ratio to sqlite: {rate / sqlite:.2f}")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()

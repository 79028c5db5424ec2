"""Claim and transition throughput of the stores, and of fleets of servers, run on demand:

    .venv/bin/python tests/benchmarks/bench_fleet.py [N] [M]

Stores: N jobs (default 300) are queued, then claimed and taken through every status to
completed: on SQLite by one store (the server's own dispatch: next job, one transition), on
PostgreSQL by 1, 2 and 4 stores in threads, each claiming with ``claim_next`` (the fleet-wide
slot claim).

Servers: M jobs (default 60) are submitted round the servers of a fleet of 1, 2 and 4 real
``veotui serve`` processes on one PostgreSQL database and one data directory (the simulator,
no generation delay, 8 slots across the fleet), against one server on SQLite; the figure is
jobs completed per second, from the first submit to the last completion. The simulator renders
each video with PyAV (CPU), so on a small machine the servers compete for the same cores: the
ratios say what the fleet's coordination costs or gains there, not what separate machines do.

It starts a private PostgreSQL cluster (tests/support/postgres.py, which runs with fsync
off: the figures say what the statements and round trips cost, not the disk; it prints the
settings) and prints jobs/s for each and the ratios to SQLite (synchronous=FULL).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.fleet.servers import FleetServer
from tests.server.harness import server_env
from tests.support.postgres import start_cluster
from veotui.core.ids import new_job_id
from veotui.core.job import ACTIVE_STATUSES, Job, Status
from veotui.core.request import JobRequest
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


def run_servers(store: str, servers: int, count: int) -> float:
    """Jobs/s of ``servers`` ``veotui serve`` processes sharing ``store`` and one data directory."""
    data_dir = Path(tempfile.mkdtemp(prefix="veotui-bench-fleet-"))
    env = server_env(
        data_dir,
        VEOTUI_STORE=store,
        VEOTUI_SIM_SECONDS="0",
        VEOTUI_POLL_INTERVAL="0.02",
        VEOTUI_MAX_CONCURRENT="8",
        VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD="off",
    )
    fleet = [FleetServer(env) for _ in range(servers)]
    try:
        for server in fleet:
            if store == "sqlite":
                server.serving()
            else:
                server.ready()
        clients = [server.client() for server in fleet]
        began = time.perf_counter()
        job_ids = [
            clients[n % servers]
            .post("/api/generate", json={"prompt": f"bench {n}", "duration_seconds": 4})
            .json()["job_id"]
            for n in range(count)
        ]
        pending = set(job_ids)
        while pending:
            done = {j for j in pending if clients[0].get(f"/api/status/{j}").json()["status"] == "completed"}
            pending -= done
            if pending:
                time.sleep(0.05)
        elapsed = time.perf_counter() - began
        for client in clients:
            client.close()
    finally:
        for server in fleet:
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return count / elapsed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    print(f"{count} jobs, each claimed and moved through {len(LIFE) + 1} transitions")
    sqlite = run_sqlite(count)
    print(f"sqlite, 1 store: {sqlite:.0f} jobs/s")
    cluster = start_cluster()
    try:
        import psycopg

        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            shown = {}
            for name in ("fsync", "synchronous_commit"):
                row = conn.execute(f"SHOW {name}").fetchone()
                assert row is not None
                shown[name] = row[0]
        # The test cluster trades durability for speed; SQLite here syncs every commit (FULL).
        print(f"postgresql settings: {shown}")
        for servers in (1, 2, 4):
            rate = run_postgres(cluster.new_database(), servers, count)
            print(f"postgresql, {servers} store(s): {rate:.0f} jobs/s  ratio to sqlite: {rate / sqlite:.2f}")
        print(f"{jobs} jobs through real veotui serve processes (simulator, 8 slots)")
        alone = run_servers("sqlite", 1, jobs)
        print(f"sqlite, 1 server: {alone:.1f} jobs/s")
        for servers in (1, 2, 4):
            rate = run_servers(cluster.new_database(), servers, jobs)
            print(f"postgresql, {servers} server(s): {rate:.1f} jobs/s  ratio to sqlite: {rate / alone:.2f}")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()

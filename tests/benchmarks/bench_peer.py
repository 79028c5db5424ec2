"""veotui's engine on PostgreSQL against procrastinate, a PostgreSQL task queue, run on demand:

    .venv/bin/python tests/benchmarks/bench_peer.py [--jobs N] [--concurrency C] [--queued Q]
                                                     [--only veotui|procrastinate] [--statements K]

Both run on one private PostgreSQL 15 cluster started for the run, each in a database of its
own, with PostgreSQL's durable defaults (``fsync`` on, ``synchronous_commit`` on, full page
writes) and ``pg_stat_statements`` loaded. Each system gets N jobs (default 2,000) that do no
work and C workers (default 2): procrastinate one worker with ``concurrency=C``, veotui one
engine with ``max_concurrent=C`` (a generator that does no work, as in bench_engine.py). With
``--queued Q`` each first queues Q jobs, untimed; then the timed run submits N more and
ends when N jobs have completed (the first N of the queue), so the queue stays Q long.

The figure is end to end: from the first submit to the N-th completion, submits and work
interleaved as a server sees them. Per job it prints:

- round trips: the times the client waited for PostgreSQL's answer, counted in psycopg, which
  both systems use (:class:`RoundTrips`): every statement sent alone is one, a pipeline of
  statements is one per sync, and waiting for a notification is none;
- statements: calls in ``pg_stat_statements`` (top-level). PostgreSQL 15 leaves out a utility
  statement (``BEGIN``, ``COMMIT``) sent with the extended protocol, as psycopg's
  ``execute()`` does, so this undercounts the round trips of a client that writes its own
  ``BEGIN``: the round trips above are the truer figure;
- transactions: ``xact_commit + xact_rollback`` of the system's database (``pg_stat_database``);
- WAL syncs: ``wal_sync`` of ``pg_stat_wal`` (the cluster's; the systems run one after the other);
- client CPU: the CPU time of this process (every thread, not PostgreSQL's) over the timed
  run, per job, and as a share of the run's wall time: near 1, the client's Python is what
  holds the rate, not the database.

The counters are reset once the system is up (its schema made, its worker started) and read
after it has stopped, so start-up is left out and shutting down adds a handful of statements.
It needs procrastinate (``pip install -e '.[test,bench]'``). The last two lines are
``round_trips_per_job: N`` (veotui's) and ``ratio: X`` (veotui's
jobs/s over procrastinate's; targets N <= 20, X >= 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psycopg

from tests.benchmarks.bench_engine import NullGenerator
from tests.support.postgres import DURABLE, Cluster, start_cluster

#: Seconds for the stopped system's backends to flush their statistics before they are read.
STATS_SETTLE_SECONDS = 1.5


def one(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    """The one row a statistics query answers."""
    row = cursor.fetchone()
    assert row is not None, "the statistics query answered no row"
    return row


@dataclass
class Figures:
    name: str
    jobs: int
    seconds: float
    statements: int
    transactions: int
    wal_syncs: int
    round_trips: int
    top: list[tuple[int, str]]
    #: CPU seconds this process used over the timed run (every thread; not the server's).
    cpu_seconds: float = 0.0

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.seconds

    def per_job(self, value: int) -> float:
        return value / self.jobs

    @property
    def round_trips_per_job(self) -> float:
        return self.per_job(self.round_trips)


class RoundTrips:
    """Counts the waits of every psycopg connection of this process for the server's answer.

    psycopg runs each exchange with the server as a generator that yields whenever it must
    wait for the socket. An exchange that never waits (a setting changed on the client only)
    is no round trip; one that waits is one (a statement sent alone, a commit). In pipeline
    mode the statements are only queued, and the wait of a sync, or of leaving the pipeline,
    is the round trip. Waiting for ``NOTIFY`` is not a round trip."""

    QUEUED_IN_A_PIPELINE = frozenset({"_execute_gen", "_executemany_gen_pipeline", "_enter_gen"})

    def __init__(self) -> None:
        self.count = 0

    def install(self) -> None:
        for cls in (psycopg.Connection, psycopg.AsyncConnection):
            cls.wait = self._counting(cls.wait, asynchronous=cls is psycopg.AsyncConnection)  # type: ignore[method-assign]

    def _watched(self, conn: Any, gen: Any) -> Any:
        name = getattr(gen, "__name__", "")
        if name == "notifies" or (conn._pipeline is not None and name in self.QUEUED_IN_A_PIPELINE):
            return gen
        return self._counted(gen)

    def _counted(self, gen: Any) -> Any:
        try:
            wanted = next(gen)
        except StopIteration as stop:
            return stop.value
        self.count += 1
        sent = yield wanted
        while True:
            try:
                wanted = gen.send(sent)
            except StopIteration as stop:
                return stop.value
            sent = yield wanted

    def _counting(self, wait: Any, *, asynchronous: bool) -> Any:
        if asynchronous:

            async def wait_async(conn: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
                return await wait(conn, self._watched(conn, gen), *args, **kwargs)

            return wait_async

        def wait_sync(conn: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
            return wait(conn, self._watched(conn, gen), *args, **kwargs)

        return wait_sync


ROUND_TRIPS = RoundTrips()


class Counters:
    """The cluster's statistics for one database: reset, then read once its system stopped."""

    def __init__(self, cluster: Cluster, url: str) -> None:
        self.cluster = cluster
        self.url = url
        self.database = url.rsplit("/", 1)[1]

    def reset(self) -> None:
        with psycopg.connect(self.cluster.url(), autocommit=True) as admin:
            admin.execute("SELECT pg_stat_statements_reset()")
            admin.execute("SELECT pg_stat_reset_shared('wal')")
        with psycopg.connect(self.url, autocommit=True) as own:
            own.execute("SELECT pg_stat_reset()")  # this database's counters only

    def read(self, top: int) -> tuple[int, int, int, list[tuple[int, str]]]:
        time.sleep(STATS_SETTLE_SECONDS)
        with psycopg.connect(self.cluster.url(), autocommit=True) as admin:
            oid = one(admin.execute("SELECT oid FROM pg_database WHERE datname = %s", (self.database,)))[0]
            (statements,) = one(
                admin.execute("SELECT COALESCE(SUM(calls), 0) FROM pg_stat_statements WHERE dbid = %s", (oid,))
            )
            (transactions,) = one(
                admin.execute(
                    "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (self.database,)
                )
            )
            (wal_syncs,) = one(admin.execute("SELECT wal_sync FROM pg_stat_wal"))
            rows = admin.execute(
                "SELECT calls, query FROM pg_stat_statements WHERE dbid = %s ORDER BY calls DESC LIMIT %s", (oid, top)
            ).fetchall()
        return int(statements), int(transactions), int(wal_syncs), [(int(c), " ".join(q.split())) for c, q in rows]


Clock = Callable[[], None]
#: Starts a system, calls its first argument once the system is up (the counters are reset and
#: the clock starts), runs the jobs, calls its second when the N-th has completed, and stops
#: the system.
Runner = Callable[[Clock, Clock], Awaitable[None]]


async def measure(name: str, counters: Counters, jobs: int, top: int, run: Runner) -> Figures:
    began: list[float] = []
    ended: list[float] = []
    trips: list[int] = []
    cpu: list[float] = []

    def start_clock() -> None:
        counters.reset()
        trips.append(ROUND_TRIPS.count)
        cpu.append(time.process_time())
        began.append(time.perf_counter())

    def stop_clock() -> None:
        ended.append(time.perf_counter())
        cpu.append(time.process_time())
        trips.append(ROUND_TRIPS.count)

    await run(start_clock, stop_clock)
    statements, transactions, wal_syncs, statements_top = counters.read(top)
    return Figures(
        name,
        jobs,
        ended[0] - began[0],
        statements,
        transactions,
        wal_syncs,
        trips[1] - trips[0],
        statements_top,
        cpu[1] - cpu[0],
    )


# -- procrastinate --------------------------------------------------------------------------


def procrastinate_runner(url: str, jobs: int, concurrency: int, queued: int) -> Runner:
    async def run(start_clock: Clock, stop_clock: Clock) -> None:
        import procrastinate

        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
        done = 0
        finished = asyncio.Event()

        @app.task(name="noop")
        async def noop() -> None:
            nonlocal done
            done += 1
            if done == jobs:
                finished.set()

        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            if queued:
                await noop.batch_defer_async(*({} for _ in range(queued)))
            worker = asyncio.create_task(
                app.run_worker_async(concurrency=concurrency, install_signal_handlers=False, wait=True)
            )
            await asyncio.sleep(0.5)  # the worker is up and listening
            start_clock()
            for _ in range(jobs):
                await noop.defer_async()
            await finished.wait()
            stop_clock()
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    return run


# -- veotui ---------------------------------------------------------------------------------


def veotui_runner(url: str, jobs: int, concurrency: int, queued: int) -> Runner:
    async def run(start_clock: Clock, stop_clock: Clock) -> None:
        from veotui.backend.local import LocalBackend
        from veotui.core.ids import new_job_id
        from veotui.core.job import Job, Status
        from veotui.core.request import JobRequest
        from veotui.settings import load_settings
        from veotui.store import open_store

        data_dir = Path(tempfile.mkdtemp(prefix="veotui-bench-peer-"))
        env = {
            "VEOTUI_DATA_DIR": str(data_dir),
            "VEOTUI_CONFIG": "/nonexistent",
            "VEOTUI_GENERATOR": "sim",
            "VEOTUI_STORE": url,
            "VEOTUI_MAX_CONCURRENT": str(concurrency),
        }
        if queued:
            store = open_store(url, data_dir)
            store.insert_many(
                Job(job_id=new_job_id(), status=Status.QUEUED, request=JobRequest(prompt=f"queued first {n}"))
                for n in range(queued)
            )
            store.close()
        backend = LocalBackend(load_settings(env=env), generator=NullGenerator(), env={})
        await backend.start()
        try:
            done = 0
            finished = asyncio.Event()

            async def count() -> None:
                nonlocal done
                async for change in backend.changes():
                    if change.job is not None and change.job.status is Status.COMPLETED:
                        done += 1
                        if done == jobs:
                            finished.set()
                            return

            counting = asyncio.create_task(count())
            await asyncio.sleep(0.5)  # the engine is up and idle
            start_clock()
            for n in range(jobs):
                await backend.submit({"prompt": f"benchmark job {n}"})
            await finished.wait()
            stop_clock()
            counting.cancel()
        finally:
            await backend.close()

    return run


# -- the run --------------------------------------------------------------------------------


def server_version(cluster: Cluster) -> str:
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        version = one(conn.execute("SHOW server_version"))[0]
        settings = one(
            conn.execute(
                "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings"
                " WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method')"
            )
        )[0]
    return f"PostgreSQL {version} ({settings})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--queued", type=int, default=0, help="jobs queued first, untimed")
    parser.add_argument("--only", choices=("veotui", "procrastinate"))
    parser.add_argument("--statements", type=int, default=0, help="print each system's K most called statements")
    args = parser.parse_args()
    ROUND_TRIPS.install()
    logging.getLogger("procrastinate").setLevel(logging.ERROR)  # its advice on where to make the App

    cluster = start_cluster(
        {
            **DURABLE,
            "shared_preload_libraries": "pg_stat_statements",
            "pg_stat_statements.track": "top",
            "pg_stat_statements.max": "10000",
        }
    )
    try:
        with psycopg.connect(cluster.url(), autocommit=True) as admin:
            admin.execute("CREATE EXTENSION pg_stat_statements")
        print(server_version(cluster))
        print(
            f"jobs: {args.jobs}, concurrency: {args.concurrency}, queued first: {args.queued},"
            f" load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores,"
            f" Python {platform.python_version()}"
        )
        results: dict[str, Figures] = {}
        for name, make in (("procrastinate", procrastinate_runner), ("veotui", veotui_runner)):
            if args.only not in (None, name):
                continue
            url = cluster.new_database()
            run = make(url, args.jobs, args.concurrency, args.queued)
            results[name] = asyncio.run(measure(name, Counters(cluster, url), args.jobs, args.statements, run))
    finally:
        cluster.stop()

    names = list(results)
    print(f"{'':28}" + "".join(f"{name:>16}" for name in names))
    rows: list[tuple[str, Callable[[Figures], str]]] = [
        ("jobs/s end to end", lambda f: f"{f.jobs_per_second:.1f}"),
        ("round trips per job", lambda f: f"{f.round_trips_per_job:.1f}"),
        ("statements per job", lambda f: f"{f.per_job(f.statements):.1f}"),
        ("transactions per job", lambda f: f"{f.per_job(f.transactions):.1f}"),
        ("WAL syncs per job", lambda f: f"{f.per_job(f.wal_syncs):.2f}"),
        ("client CPU ms per job", lambda f: f"{1000 * f.cpu_seconds / f.jobs:.2f}"),
        ("client CPU busy (share)", lambda f: f"{f.cpu_seconds / f.seconds:.2f}"),
    ]
    for label, cell in rows:
        print(f"{label:28}" + "".join(f"{cell(results[name]):>16}" for name in names))
    for name in names:
        figures = results[name]
        if figures.top:
            print(f"{name}: the most called statements (pg_stat_statements)")
        for calls, query in figures.top:
            print(f"  {calls / figures.jobs:7.2f}/job  {query[:150]}")
    if "veotui" in results:
        print(f"round_trips_per_job: {results['veotui'].round_trips_per_job:.1f}")
    if len(results) == 2:
        print(f"ratio: {results['veotui'].jobs_per_second / results['procrastinate'].jobs_per_second:.2f}")


if __name__ == "__main__":
    main()

"""Cost against queue and history length, run on demand (not a timed test):

    .venv/bin/python tests/benchmarks/bench_scale.py [--remote] [--queued N] [--history N]

Fills a store with N queued jobs (default 100,000) and N ended jobs (default 1,000,000), and
another with 1,000 queued and 1,000 ended, then measures the TUI on each (a LocalBackend in
the TUI's process, or with ``--remote`` a RemoteBackend on ``veotui serve``), the simulator
holding both slots for an hour so that only the benchmark's cancels produce events. For each
size it prints, one per line:

- ``first_paint_seconds``: from starting the backend and the app to the first frame showing
  the jobs (target <= 1 s);
- ``event_to_render_p50_ms`` / ``_p99_ms``, for 100 cancels of the job at the head of the
  queue and 30 cancels of a processing job (which starts the head): from the commit of the cancel
  (local: a store listener; remote: the cancel request, so the HTTP round trip and the event
  stream count too) to the first frame painted after the TUI applied the change (target
  p99 <= 100 ms), after three head cancels not counted (warm-up: the footer is rebuilt once
  after the first read, which is part of starting);
- ``peak_rss_mb``: the peak resident set size of the TUI's process (in local mode it also
  holds the engine; target <= 300 MB);
- ``restart_to_ready_seconds``: from starting ``veotui serve`` on the filled data directory
  again (as after a restart) to its first healthy answer, the median of three restarts
  (target <= 2 s);

and then each figure's ratio, large size over small: the claim is that cost does not grow
with the number of jobs.

Filling: rows are generated in Python and written with ``SqliteStore.insert_many``, which inserts
them with one ``executemany`` per chunk of 50,000 in one transaction each, numbering the queue
and the finish order as it goes and telling no listener; no job folders are made. A filled
store is kept under the system's temp directory (``veotui-scale-<queued>-<history>``) and
copied for each run, since the benchmark cancels jobs.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SMALL = (1_000, 1_000)
CHUNK = 50_000
WARM_UP_CANCELS = 3
HEAD_CANCELS = 100
PROCESSING_CANCELS = 30
RESTARTS = 3


def env_for(data_dir: Path) -> dict[str, str]:
    return {
        "VEOTUI_DATA_DIR": str(data_dir),
        "VEOTUI_GENERATOR": "sim",
        "VEOTUI_SIM_SECONDS": "3600",
        "VEOTUI_MAX_CONCURRENT": "2",
        "VEOTUI_CONFIG": "/nonexistent/veotui.toml",
        "VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD": "off",
    }


# -- filling --------------------------------------------------------------------------------


def fill(data_dir: Path, queued: int, history: int) -> None:
    from tests.tui.history import ended_job
    from veotui.core.job import Job, Status
    from veotui.core.request import JobRequest
    from veotui.settings import load_settings
    from veotui.store.sqlite import SqliteStore

    settings = load_settings(env=env_for(data_dir))
    data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(settings.db_path)
    base = datetime(2026, 1, 1, tzinfo=UTC)

    def waiting(n: int) -> Job:
        return Job(
            job_id=f"{n:08x}-0000-4000-8000-{1:012x}",
            status=Status.QUEUED,
            request=JobRequest(prompt=f"queued shot {n}: waves on a pier"),
            created_at=base + timedelta(days=400, seconds=n),
        )

    for start in range(0, history, CHUNK):
        store.insert_many(ended_job(n, base) for n in range(start, min(history, start + CHUNK)))
    for start in range(0, queued, CHUNK):
        store.insert_many(waiting(n) for n in range(start, min(queued, start + CHUNK)))
    store.close()


def filled(queued: int, history: int) -> Path:
    template = Path(tempfile.gettempdir()) / f"veotui-scale-{queued}-{history}"
    if not (template / "done").exists():
        shutil.rmtree(template, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--fill", str(template), str(queued), str(history)], check=True)
        (template / "done").write_text(f"{time.perf_counter() - started:.1f}")
        print(f"# filled {queued:,} queued + {history:,} ended in {(template / 'done').read_text()} s", flush=True)
    run = Path(tempfile.mkdtemp(prefix="veotui-scale-run-"))
    shutil.copytree(template, run / "data", ignore=shutil.ignore_patterns("done", "*.lock"))
    return run / "data"


# -- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(data_dir: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    """``veotui serve`` on the data directory; returns it and the seconds until healthy.
    Polled with ``http.client`` (httpx builds an SSL context per call, ~50 ms of CPU the
    server would compete with)."""
    env = {**os.environ, **env_for(data_dir), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "veotui", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if healthy(port):
            return process, time.perf_counter() - started
        if process.poll() is not None:
            raise RuntimeError(f"veotui serve exited with {process.returncode}")
        time.sleep(0.01)
    process.kill()
    raise TimeoutError("veotui serve did not become healthy")


def healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/api/health")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- measuring ------------------------------------------------------------------------------


async def wait_until(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark waited too long")
        await asyncio.sleep(0.001)


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(1000 * value for value in values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def measure(data_dir: Path, remote: bool) -> dict[str, float]:
    from veotui.backend.local import LocalBackend
    from veotui.backend.remote import RemoteBackend
    from veotui.core.job import Change, Status
    from veotui.settings import load_settings
    from veotui.tui.app import VeotuiApp
    from veotui.tui.board import PROCESSING, QUEUE
    from veotui.tui.screen import MainScreen

    figures: dict[str, float] = {}
    settings = load_settings(env=env_for(data_dir))
    port = free_port()
    # The first start takes both slots (the queue's first two jobs start); the second is the restart.
    server, _ = start_server(data_dir, port)
    restarts = []
    for _ in range(RESTARTS):
        stop_server(server)
        server, seconds = start_server(data_dir, port)
        restarts.append(seconds)
    figures["restart_to_ready_seconds"] = statistics.median(restarts)
    if not remote:
        stop_server(server)

    painted: dict[tuple[str, str], float] = {}
    original_apply = MainScreen.apply

    def apply_and_time(self: MainScreen, change: Change, was_live: bool = False) -> None:
        original_apply(self, change, was_live)
        key = (change.job_id, change.job.status.value if change.job else change.kind)
        self.app.call_after_refresh(lambda: painted.setdefault(key, time.perf_counter()))

    MainScreen.apply = apply_and_time  # type: ignore[method-assign]  # times every change the screen applies

    started = time.perf_counter()
    backend = RemoteBackend(f"http://127.0.0.1:{port}") if remote else LocalBackend(settings, env={})
    try:
        async with backend:
            app = VeotuiApp(backend, settings)
            async with app.run_test(size=(140, 40)):
                screen = app.main_screen
                first_paint: list[float] = []
                await wait_until(lambda: screen.loaded.is_set())
                app.call_after_refresh(lambda: first_paint.append(time.perf_counter()))
                await wait_until(lambda: bool(first_paint))
                figures["first_paint_seconds"] = first_paint[0] - started
                board = screen.board
                await wait_until(lambda: len(board.processing) == 2)

                committed: dict[tuple[str, str], float] = {}
                if isinstance(backend, LocalBackend):
                    # Local: from the commit of the cancel (a store listener), as the TUI
                    # cannot see it sooner; keyed by status, since a processing job's start
                    # was committed before.
                    def commit_time(change: Change) -> None:
                        key = (change.job_id, change.job.status.value if change.job else change.kind)
                        committed.setdefault(key, time.perf_counter())

                    backend.store.add_listener(commit_time)

                async def cancel_and_time(job_id: str) -> float:
                    begun = time.perf_counter()
                    await backend.cancel(job_id)
                    await wait_until(lambda: (job_id, Status.CANCELLED.value) in painted)
                    key = (job_id, Status.CANCELLED.value)
                    return painted[key] - committed.get(key, begun)

                def settled() -> bool:
                    # Both slots taken again and the window refilled from the server.
                    return len(board.processing) == 2 and len(board.queued) == min(
                        board.queue_limit, board.queued_total
                    )

                # Warm-up, not counted: the footer is rebuilt once after the first read
                # (the keys of the selected job), which belongs to the start, not to a change.
                for _ in range(WARM_UP_CANCELS):
                    await wait_until(settled)
                    await cancel_and_time(board.jobs(QUEUE)[0].job_id)
                head: list[float] = []
                for _ in range(HEAD_CANCELS):
                    await wait_until(settled)
                    head.append(await cancel_and_time(board.jobs(QUEUE)[0].job_id))
                running: list[float] = []
                for _ in range(PROCESSING_CANCELS):
                    await wait_until(settled)
                    running.append(await cancel_and_time(board.jobs(PROCESSING)[0].job_id))
                await wait_until(settled)
                figures["head_cancel_p50_ms"], figures["head_cancel_p99_ms"] = percentiles(head)
                figures["processing_cancel_p50_ms"], figures["processing_cancel_p99_ms"] = percentiles(running)
                figures["event_to_render_p50_ms"], figures["event_to_render_p99_ms"] = percentiles(head + running)
                figures["queued_total"] = board.queued_total
                figures["history_total"] = board.history_total
    finally:
        MainScreen.apply = original_apply  # type: ignore[method-assign]  # puts the real one back
        if remote:
            stop_server(server)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def run(queued: int, history: int, remote: bool) -> dict[str, float]:
    data_dir = filled(queued, history)
    try:
        output = subprocess.run(
            [sys.executable, __file__, "--measure", str(data_dir), *(["--remote"] if remote else [])],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        shutil.rmtree(data_dir.parent, ignore_errors=True)
    return json.loads(output.strip().splitlines()[-1])


SHOWN = (
    "first_paint_seconds",
    "event_to_render_p50_ms",
    "event_to_render_p99_ms",
    "head_cancel_p50_ms",
    "head_cancel_p99_ms",
    "processing_cancel_p50_ms",
    "processing_cancel_p99_ms",
    "peak_rss_mb",
    "restart_to_ready_seconds",
)


# -- the fair queue's dispatch ----------------------------------------------------------------

FAIR_USERS = 100
FAIR_PICKS = 400


def fair_dispatch_ms(queued: int, users: int = FAIR_USERS) -> tuple[float, float]:
    """p99 milliseconds of choosing the next job under the fair policy, with ``queued`` jobs
    across ``users`` users: each pick is started, and finished once two run, so the users'
    loads move as in real dispatch (only the choice is timed). Wall time, and this process's
    CPU time (which a loaded machine's preemption does not inflate)."""
    from veotui.core.job import Job, Status
    from veotui.core.request import JobRequest
    from veotui.datadir.health import StorageGuard
    from veotui.store import open_store

    data_dir = Path(tempfile.mkdtemp(prefix="veotui-fair-"))
    store = open_store("sqlite", data_dir, StorageGuard(data_dir))
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for start in range(0, queued, CHUNK):
        store.insert_many(
            Job(
                job_id=f"{n:08x}-0000-4000-8000-{2:012x}",
                status=Status.QUEUED,
                request=JobRequest(prompt=f"shot {n}", user=f"user{n % users:03d}"),
                created_at=base + timedelta(seconds=n),
            )
            for n in range(start, min(queued, start + CHUNK))
        )
    times, cpu, running = [], [], []
    for _ in range(FAIR_PICKS):
        began, began_cpu = time.perf_counter(), time.process_time()
        job = store.next_to_start("fair")
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
        assert job is not None
        store.transition(job.job_id, Status.STARTING, attempts=1)
        running.append(job.job_id)
        if len(running) == 2:
            finished = running.pop(0)
            store.transition(finished, Status.CANCELLED)
    store.close()
    shutil.rmtree(data_dir, ignore_errors=True)
    return percentiles(times)[1], percentiles(cpu)[1]


def main(argv: list[str]) -> None:
    if argv[:1] == ["--fair"]:
        at_100k = fair_dispatch_ms(100_000)
        at_1k = fair_dispatch_ms(1_000)
        print(f"-- fair policy, {FAIR_USERS} users, {FAIR_PICKS} picks")
        print(f"fair_dispatch_ms_p99 at 100,000 queued: {at_100k[0]:.3f} (CPU {at_100k[1]:.3f})")
        print(f"fair_dispatch_ms_p99 at 1,000 queued: {at_1k[0]:.3f} (CPU {at_1k[1]:.3f})")
        print(f"fair_dispatch_ms_p99_ratio: {at_100k[0] / at_1k[0]:.2f} (CPU {at_100k[1] / max(at_1k[1], 1e-3):.2f})")
        return
    if argv[:1] == ["--fill"]:
        fill(Path(argv[1]), int(argv[2]), int(argv[3]))
        return
    if argv[:1] == ["--measure"]:
        print(json.dumps(asyncio.run(measure(Path(argv[1]), "--remote" in argv))))
        return
    remote = "--remote" in argv
    large = (
        int(argv[argv.index("--queued") + 1]) if "--queued" in argv else 100_000,
        int(argv[argv.index("--history") + 1]) if "--history" in argv else 1_000_000,
    )
    print(f"mode: {'remote' if remote else 'local'}")
    results = {}
    for size in (large, SMALL):
        figures = run(*size, remote)
        results[size] = figures
        print(f"-- {size[0]:,} queued, {size[1]:,} ended")
        for name in SHOWN:
            print(f"{name}: {figures[name]:.3f}" if "seconds" in name else f"{name}: {figures[name]:.1f}")
    print(f"-- ratio {large[0]:,}/{large[1]:,} over {SMALL[0]:,}/{SMALL[1]:,}")
    for name in SHOWN:
        small = results[SMALL][name]
        print(f"{name}_ratio: {results[large][name] / small:.2f}" if small else f"{name}_ratio: n/a")


if __name__ == "__main__":
    main(sys.argv[1:])

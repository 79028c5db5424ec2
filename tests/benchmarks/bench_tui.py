"""TUI responsiveness with 10,000 jobs in history, run on demand (not a timed test):

    .venv/bin/python tests/benchmarks/bench_tui.py [EVENTS]

A real LocalBackend on the simulator, a store holding 10,000 ended jobs, the app under Pilot
(headless, 140x40). It prints, one per line:

- ``first_paint_seconds``: from starting the backend and the app to the first frame that
  shows the jobs (target <= 1.5 s);
- ``peak_rss_mb``: the peak resident set size of this process;
- ``event_to_render_p50_ms`` / ``_p99_ms``: from a scheduler event (the store's commit,
  seen by a store listener) to the first frame painted after the TUI applied that change,
  over EVENTS events (default 500; half submits into the queue, half cancels moving a row
  into History; target p99 <= 100 ms).

With ``-v`` it also prints the percentiles of submits and cancels apart.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.tui.history import ended_jobs
from veotui.backend.local import LocalBackend
from veotui.core.job import Change
from veotui.settings import load_settings
from veotui.store.sqlite import SqliteStore
from veotui.tui.app import VeotuiApp
from veotui.tui.screen import MainScreen

HISTORY_JOBS = 10_000


async def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark waited too long")
        await asyncio.sleep(0.001)


async def main(events: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="veotui-bench-"))
    settings = load_settings(
        env={
            "VEOTUI_DATA_DIR": str(data_dir),
            "VEOTUI_GENERATOR": "sim",
            # Jobs that start stay generating: only submits and cancels produce events.
            "VEOTUI_SIM_SECONDS": "3600",
            "VEOTUI_MAX_CONCURRENT": "1",
            "VEOTUI_CONFIG": "/nonexistent/veotui.toml",
        }
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(settings.db_path)
    store.insert_many(ended_jobs(HISTORY_JOBS))
    store.close()

    # Each applied change asks for a callback after the next frame is painted.
    painted: dict[tuple[str, str], float] = {}
    original_apply = MainScreen.apply

    def apply_and_time(self: MainScreen, change: Change, was_live: bool = False) -> None:
        original_apply(self, change, was_live)
        key = (change.job_id, change.job.status.value if change.job else "deleted")
        self.app.call_after_refresh(lambda: painted.setdefault(key, time.perf_counter()))

    MainScreen.apply = apply_and_time  # type: ignore[method-assign]  # times every change the screen applies

    started = time.perf_counter()
    async with LocalBackend(settings, env={}) as backend:
        app = VeotuiApp(backend, settings)
        async with app.run_test(size=(140, 40)) as pilot:
            first_paint: list[float] = []
            await wait_until(lambda: app.main_screen.loaded.is_set())
            app.call_after_refresh(lambda: first_paint.append(time.perf_counter()))
            await wait_until(lambda: bool(first_paint))
            print(f"first_paint_seconds: {first_paint[0] - started:.3f}")

            committed: dict[tuple[str, str], float] = {}

            def commit_time(change: Change) -> None:
                key = (change.job_id, change.job.status.value if change.job else "deleted")
                committed.setdefault(key, time.perf_counter())

            backend.store.add_listener(commit_time)
            latencies: list[float] = []

            async def measure(key: tuple[str, str]) -> None:
                await wait_until(lambda: key in painted)
                latencies.append(painted[key] - committed[key])

            await backend.submit({"prompt": "holds the only slot"})
            submitted = []
            for n in range(events // 2):
                job = await backend.submit({"prompt": f"bench job {n}"})
                submitted.append(job.job_id)
                await measure((job.job_id, "queued"))
            for job_id in submitted:
                await backend.cancel(job_id)
                await measure((job_id, "cancelled"))
            await pilot.pause()

    latencies_ms = sorted(1000 * value for value in latencies)
    p99 = latencies_ms[min(len(latencies_ms) - 1, int(len(latencies_ms) * 0.99))]
    print(f"peak_rss_mb: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")
    print(f"event_to_render_p50_ms: {statistics.median(latencies_ms):.1f}")
    print(f"event_to_render_p99_ms: {p99:.1f}")
    print(f"events: {len(latencies_ms)}")
    if "-v" in sys.argv:
        half = len(latencies) // 2
        for name, part in (("submits", latencies[:half]), ("cancels", latencies[half:])):
            part_ms = sorted(1000 * v for v in part)
            figures = [part_ms[int(len(part_ms) * q)] for q in (0.1, 0.5, 0.9, 0.99)] + [part_ms[-1]]
            print(f"{name}_p10_p50_p90_p99_max_ms: " + " ".join(f"{value:.1f}" for value in figures))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 500))

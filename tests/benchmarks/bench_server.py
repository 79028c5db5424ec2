"""REST server throughput and event latency, run on demand:

    .venv/bin/python tests/benchmarks/bench_server.py [SECONDS]

1. Requests per second for ``GET /api/status/{id}`` against a real ``veotui serve`` process,
   then for a bare Starlette route returning a constant JSON under the same uvicorn settings
   (``veotui.server.running.uvicorn_config``, same socket setup): three alternating rounds
   of SECONDS each (default 3), best of each, with 8 keep-alive connections from a minimal
   asyncio HTTP/1.1 client (so the client, not the server, is the cheap side).
2. Server-Sent Events latency: 20 simulated jobs run while a client follows ``/api/events``;
   for each transition, the time from the transition's timestamp (taken in the same
   transaction, just before its commit) to the client receiving the event. Timestamps have
   millisecond resolution, so figures are conservative by up to 1 ms. Prints p50 and p99
   (target p99 <= 50 ms on loopback).

3. ``GET /metrics`` with 1,000,000 ended jobs in the history: the jobs and their final
   events are written straight into the database with one SQL statement each (a recursive
   CTE inside SQLite: 80 % completed, 10 % failed, 10 % cancelled, spread over the last
   30 days), the metric aggregates are recounted from that event log once (as the schema
   migration does), then a real ``veotui serve`` owns the directory and is scraped 50 times
   over one keep-alive connection. Prints p50 and max per scrape (target <= 50 ms), and the
   same for ``GET /api/metrics``. ``bench_server.py --metrics [JOBS]`` runs this part alone.

The last line is ``ratio: X`` (status rps / bare rps; target >= 0.5).

    .venv/bin/python tests/benchmarks/bench_server.py --images [ROUNDS]

5. Large images: ROUNDS (default 3) times, three 50-megapixel RGBA PNGs (7070 x 7070, a
   few hundred kilobytes each) are uploaded at once to a real ``veotui serve``; the server's
   peak resident memory (``VmHWM``, reset before each round) minus its RSS before the round
   is the growth. The baseline, in this process: the same image decoded and flattened the
   plain way with Pillow (open, load, convert), its own peak growth measured the same way.
   Prints each round, then ``images growth: X MB`` (the largest; target <= 400 MB) and
   ``images ratio: X`` (that growth / three plain decodes).

    .venv/bin/python tests/benchmarks/bench_server.py --storm [CYCLES] [CLIENTS]

4. Reconnect storms: CYCLES (default 30) times, CLIENTS (default 300) clients open
   ``/api/events``, one job runs, every client reads the stream until that job completed and
   then drops its connection. Prints the server's RSS after each cycle, and last
   ``storm growth: X MB`` (RSS after the last cycle minus after the first; target <= 20 MB).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.memory import large_png, peak_mb, reset_peak, rss_mb

CONNECTIONS = 8
ROUNDS = 3
JOBS_FOR_LATENCY = 20


# -- the servers ------------------------------------------------------------------------------


def run_bare_server() -> None:
    """The control: a bare Starlette route under the same uvicorn settings."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from veotui.server.running import bind, url_of, uvicorn_config

    async def constant(request):
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/bare", constant)])
    sock = bind("127.0.0.1", 0)
    print(f"bare serves {url_of(sock)}", flush=True)
    uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])


def start(command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        match = re.search(r"serves (http://\S+)", line)
        if match:
            return process, match.group(1)
    raise SystemExit(f"{command} printed no URL")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- a minimal keep-alive HTTP client -----------------------------------------------------------


async def hammer(url: str, path: str, seconds: float, headers: str = "") -> float:
    parts = urlsplit(url)
    request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{headers}\r\n".encode()
    deadline = time.perf_counter() + seconds
    counts = [0] * CONNECTIONS

    async def connection(slot: int) -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            found = re.search(rb"content-length: (\d+)", head, re.I)
            assert found is not None, head
            length = int(found.group(1))
            await reader.readexactly(length)
            if status != b"200":
                raise SystemExit(f"{path} answered {status.decode()}")
            counts[slot] += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection(n) for n in range(CONNECTIONS)))
    return sum(counts) / (time.perf_counter() - started)


# -- event latency ------------------------------------------------------------------------------


async def event_latencies(url: str) -> list[float]:
    import httpx

    latencies: list[float] = []
    last_status: dict[str, str] = {}
    ids: list[str] = []
    finished: set[str] = set()
    async with httpx.AsyncClient(base_url=url, timeout=60, trust_env=False) as client:
        async with client.stream("GET", "/api/events") as stream:

            async def submit() -> None:
                # Submitted while the stream is read, so no event waits for the client.
                for n in range(JOBS_FOR_LATENCY):
                    ids.append((await client.post("/api/generate", json={"prompt": f"latency {n}"})).json()["job_id"])
                    await asyncio.sleep(0.05)

            submitter = asyncio.create_task(submit())
            async for line in stream.aiter_lines():
                if not line.startswith("data: "):
                    continue
                received = time.time()
                job = json.loads(line[6:])
                job_id, status = job.get("job_id"), job.get("status")
                if status is None or last_status.get(job_id) == status:
                    continue  # a note, not a transition
                last_status[job_id] = status
                if status == "queued":
                    moment = job["created_at"]
                elif status in ("completed", "failed", "cancelled"):
                    moment = job["finished_at"]
                else:
                    moment = job["stage_started_at"]
                latencies.append(received - datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp())
                if status in ("completed", "failed"):
                    finished.add(job_id)
                    if len(finished) == JOBS_FOR_LATENCY:
                        break
            await submitter
    return latencies


# -- reconnect storms ---------------------------------------------------------------------------


async def storm_cycle(url: str, clients: int) -> None:
    """``clients`` event streams open; one job runs; each reads until it completed, then drops."""
    parts = urlsplit(url)
    request = f"GET /api/events HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    connected = 0
    all_connected = asyncio.Event()

    async def client() -> None:
        nonlocal connected
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            writer.write(request)
            await reader.readuntil(b": connected\n\n")
            connected += 1
            if connected == clients:
                all_connected.set()
            seen = b""
            while b'"status":"completed"' not in seen:
                chunk = await reader.read(65536)
                if not chunk:
                    raise SystemExit("the server ended an event stream")
                seen = seen[-64:] + chunk
        finally:
            writer.transport.abort()  # drop, as a client that goes away does

    async def connect_all() -> list[asyncio.Task]:
        tasks = []
        for n in range(clients):
            tasks.append(asyncio.create_task(client()))
            if n % 50 == 49:
                await asyncio.sleep(0.05)  # keep within the listen backlog
        return tasks

    tasks = await connect_all()
    await asyncio.wait_for(all_connected.wait(), 60)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    body = b'{"prompt": "storm"}'
    writer.write(
        f"POST /api/generate HTTP/1.1\r\nHost: {parts.netloc}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
        + body
    )
    await reader.read()
    writer.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 120)


def server_env(data_dir: Path) -> dict[str, str]:
    """A fast simulator on ``data_dir``, free of the caller's veotui and Google settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VEOTUI_", "GOOGLE_"))}
    env.update(
        VEOTUI_DATA_DIR=str(data_dir),
        VEOTUI_GENERATOR="sim",
        VEOTUI_SIM_SECONDS="0.2",
        VEOTUI_POLL_INTERVAL="0.05",
        VEOTUI_CONFIG="/nonexistent",
        PYTHONUNBUFFERED="1",
    )
    return env


def storm(cycles: int, clients: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="veotui-storm-"))
    env = server_env(data_dir)
    server, url = start([sys.executable, "-m", "veotui", "serve", "--port", "0"], env)
    figures: list[float] = []
    try:
        print(f"start: RSS {rss_mb(server.pid):.1f} MB", flush=True)
        for cycle in range(1, cycles + 1):
            started = time.perf_counter()
            asyncio.run(storm_cycle(url, clients))
            time.sleep(0.3)  # let the server finish with the dropped streams
            figures.append(rss_mb(server.pid))
            print(
                f"cycle {cycle:2d}: RSS {figures[-1]:.1f} MB ({time.perf_counter() - started:.1f} s)",
                flush=True,
            )
    finally:
        stop(server)
    print(f"{cycles} storms of {clients} clients; RSS after the first {figures[0]:.1f} MB, last {figures[-1]:.1f} MB")
    print(f"storm growth: {figures[-1] - figures[0]:.1f} MB")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# -- /metrics with a long history ----------------------------------------------------------------

HISTORY_JOBS = 1_000_000
SCRAPES = 50


def fill_history(data_dir: Path, jobs: int) -> float:
    """``jobs`` ended jobs and their final events, written by SQLite itself; seconds taken."""
    from veotui.store import aggregates
    from veotui.store.sqlite import SqliteStore

    began = time.perf_counter()
    SqliteStore(data_dir / "veotui.db").close()  # the schema, as veotui creates it
    import sqlite3

    conn = sqlite3.connect(data_dir / "veotui.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN")
    numbers = f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {jobs})"
    status = "CASE i % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'cancelled' ELSE 'completed' END"
    # Finished i * (30 days / jobs) seconds after a start 30 days ago; each took 60-179 s.
    finished = f"strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-30 days', '+' || (i * 2592.0 / {jobs} * 1000) || ' seconds')"
    conn.execute(
        f"{numbers} INSERT INTO jobs (job_id, queue_seq, status, prompt, number_of_videos, model, aspect_ratio,"
        " duration_seconds, resolution, user, created_at, started_at, finished_at, finished_seq, attempts)"
        f" SELECT printf('%08x-0000-4000-8000-%012x', i, i), i, {status}, 'history ' || i, 1,"
        f" 'veo-3.1-generate-001', '16:9', 8, '720p', 'user' || (i % 7), {finished}, {finished}, {finished}, i, 1"
        " FROM n"
    )
    conn.execute(
        f"{numbers} INSERT INTO events (job_id, at, status, detail, kind, user, model, error_kind, seconds)"
        f" SELECT printf('%08x-0000-4000-8000-%012x', i, i), {finished}, {status}, 'history', 'transition',"
        " 'user' || (i % 7), 'veo-3.1-generate-001', CASE i % 10 WHEN 0 THEN 'operation_error' END,"
        " CASE WHEN i % 10 > 1 THEN 60 + i % 120 END FROM n"
    )
    conn.execute(f"UPDATE counters SET value = {jobs} WHERE name IN ('queue_seq', 'finished_seq')")
    aggregates.rebuild(conn)
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - began


def scrape_times(url: str, path: str, count: int) -> list[float]:
    import httpx

    times = []
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
        client.get(path).raise_for_status()  # warm up
        for _ in range(count):
            began = time.perf_counter()
            answer = client.get(path)
            times.append(time.perf_counter() - began)
            answer.raise_for_status()
    return times


def metrics_benchmark(jobs: int = HISTORY_JOBS) -> list[str]:
    data_dir = Path(tempfile.mkdtemp(prefix="veotui-bench-metrics-"))
    filled = fill_history(data_dir, jobs)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VEOTUI_", "GOOGLE_"))}
    env.update(
        VEOTUI_DATA_DIR=str(data_dir), VEOTUI_GENERATOR="sim", VEOTUI_CONFIG="/nonexistent", PYTHONUNBUFFERED="1"
    )
    server, url = start([sys.executable, "-m", "veotui", "serve", "--port", "0"], env)
    try:
        prometheus = scrape_times(url, "/metrics", SCRAPES)
        figures = scrape_times(url, "/api/metrics", SCRAPES)
        import httpx

        text = httpx.get(f"{url}/metrics", trust_env=False).text
    finally:
        stop(server)
        shutil.rmtree(data_dir, ignore_errors=True)
    completed = re.search(r'veotui_jobs_total\{status="completed"\} (\S+)', text)
    lines = [
        f"history: {jobs} ended jobs written in {filled:.1f} s (one SQL statement per table)",
        f"  /metrics reports {completed.group(1) if completed else '?'} completed",
    ]
    for name, times in (("GET /metrics", prometheus), ("GET /api/metrics", figures)):
        millis = [1000 * t for t in times]
        lines.append(
            f"{name} with {jobs} jobs in history ({len(millis)} scrapes): "
            f"p50 {statistics.median(millis):.1f} ms, max {max(millis):.1f} ms (target <= 50 ms)"
        )
    return lines


# -- large images -------------------------------------------------------------------------------


def plain_decode_growth(image: bytes) -> float:
    """Peak growth of this process while Pillow decodes and flattens ``image`` the plain way."""
    import gc
    import io

    from PIL import Image

    gc.collect()
    before = rss_mb(os.getpid())
    reset_peak(os.getpid())
    with Image.open(io.BytesIO(image)) as opened:
        opened.load()
        flat = opened.convert("RGB")
    growth = peak_mb(os.getpid()) - before
    del flat
    return growth


def upload_round(url: str, images: list[bytes]) -> None:
    import httpx

    def upload(image: bytes) -> int:
        with httpx.Client(base_url=url, timeout=600, trust_env=False) as client:
            return client.post(
                "/api/generate", data={"prompt": "large"}, files={"image": ("large.png", image, "image/png")}
            ).status_code

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(images)) as pool:
        statuses = list(pool.map(upload, images))
    if statuses != [202] * len(images):
        raise SystemExit(f"uploads answered {statuses}")


def images_benchmark(rounds: int) -> None:
    images = [large_png(colour=(n * 80, 120, 40, 100 + n)) for n in range(3)]
    baseline = plain_decode_growth(images[0])
    data_dir = Path(tempfile.mkdtemp(prefix="veotui-images-"))
    env = {**server_env(data_dir), "VEOTUI_SIM_SECONDS": "600"}
    server, url = start([sys.executable, "-m", "veotui", "serve", "--port", "0"], env)
    figures = []
    try:
        for round_number in range(1, rounds + 1):
            before = rss_mb(server.pid)
            reset_peak(server.pid)
            started = time.perf_counter()
            upload_round(url, images)
            figures.append(peak_mb(server.pid) - before)
            print(
                f"round {round_number}: RSS before {before:.1f} MB, peak {peak_mb(server.pid):.1f} MB, "
                f"growth {figures[-1]:.1f} MB, after {rss_mb(server.pid):.1f} MB "
                f"({time.perf_counter() - started:.1f} s)",
                flush=True,
            )
    finally:
        stop(server)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"one 7070 x 7070 RGBA PNG ({len(images[0]) / 1024:.0f} KB) decoded the plain way: {baseline:.1f} MB")
    print(f"images growth: {max(figures):.1f} MB")
    print(f"images ratio: {max(figures) / (3 * baseline):.2f}")


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    data_dir = Path(tempfile.mkdtemp(prefix="veotui-bench-"))
    env = server_env(data_dir)
    server, url = start([sys.executable, "-m", "veotui", "serve", "--port", "0"], env)
    bare, bare_url = start([sys.executable, __file__, "--bare"], env)
    try:
        import httpx

        job_id = httpx.post(f"{url}/api/generate", json={"prompt": "benchmark"}, trust_env=False).json()["job_id"]
        time.sleep(1.0)
        asyncio.run(hammer(url, f"/api/status/{job_id}", 0.5))  # warm up both
        asyncio.run(hammer(bare_url, "/bare", 0.5))
        # Alternating rounds, best of each: other load on the machine hits both alike.
        status_runs, bare_runs = [], []
        for _ in range(ROUNDS):
            status_runs.append(asyncio.run(hammer(url, f"/api/status/{job_id}", seconds)))
            bare_runs.append(asyncio.run(hammer(bare_url, "/bare", seconds)))
        status_rps, bare_rps = max(status_runs), max(bare_runs)
        latencies = asyncio.run(event_latencies(url))
    finally:
        stop(server)
        stop(bare)
    print(f"connections: {CONNECTIONS}; {ROUNDS} alternating rounds of {seconds:g} s; best of each")
    print(f"GET /api/status/{{id}}: {status_rps:.0f} requests/s (rounds: {', '.join(f'{r:.0f}' for r in status_runs)})")
    print(f"bare Starlette route: {bare_rps:.0f} requests/s (rounds: {', '.join(f'{r:.0f}' for r in bare_runs)})")
    millis = [1000 * v for v in latencies]
    print(
        f"SSE latency, transition commit -> client ({len(millis)} events): "
        f"p50 {statistics.median(millis):.1f} ms, p99 {percentile(millis, 0.99):.1f} ms, max {max(millis):.1f} ms"
    )
    for line in metrics_benchmark():
        print(line)
    print(f"ratio: {status_rps / bare_rps:.2f}")


def audit_page_ms(entries: int, pages: int = 200) -> dict[str, float]:
    """p99 milliseconds of one audit page (100 entries, newest first): all, one user's, one
    job's, with ``entries`` in the log (100 users, 10 entries a job)."""
    import sqlite3
    import time

    from veotui.core.access import AuditEntry
    from veotui.datadir.health import StorageGuard
    from veotui.store import open_store

    data_dir = Path(tempfile.mkdtemp(prefix="veotui-audit-"))
    store = open_store("sqlite", data_dir, StorageGuard(data_dir))
    store.audit(AuditEntry("admin", "admin", "pause"))  # made by the store: its schema
    store.close()
    raw = sqlite3.connect(data_dir / "veotui.db")
    rows = (
        (
            f"2026-01-01T00:00:{n // 1000:06d}.{n % 1000:03d}Z",
            f"user{n % 100:03d}",
            "operator",
            "submit",
            f"{n // 10:08x}-0000-4000-8000-000000000000",
            None,
            "127.0.0.1",
        )
        for n in range(entries)
    )
    raw.executemany(
        "INSERT INTO audit (ts, user, role, action, job_id, detail, remote_addr) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
    )
    raw.commit()
    raw.close()
    store = open_store("sqlite", data_dir, StorageGuard(data_dir))
    figures = {}
    for name, user, job_id in (
        ("all", None, None),
        ("user", "user042", None),
        ("job", None, f"{(entries // 20):08x}-0000-4000-8000-000000000000"),
    ):
        times, cpu = [], []
        for _ in range(pages):
            began, began_cpu = time.perf_counter(), time.process_time()
            page = store.audit_page(limit=100, user=user, job_id=job_id)
            times.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
            assert page
        times.sort()
        cpu.sort()
        figures[name] = times[min(len(times) - 1, int(len(times) * 0.99))]
        figures[f"{name}_median"] = statistics.median(times)
        # This process's CPU time: what the page costs, without a loaded machine's preemption.
        figures[f"{name}_cpu"] = cpu[min(len(cpu) - 1, int(len(cpu) * 0.99))]
    store.close()
    shutil.rmtree(data_dir, ignore_errors=True)
    return figures


def audit_benchmark() -> None:
    large, small = audit_page_ms(1_000_000), audit_page_ms(1_000)
    for name in ("all", "user", "job"):
        print(
            f"audit_page_ms_p99 ({name}) at 1,000,000 entries: {large[name]:.3f} "
            f"(median {large[name + '_median']:.3f}, CPU p99 {large[name + '_cpu']:.3f})"
        )
        print(f"audit_page_ms_p99 ({name}) at 1,000 entries: {small[name]:.3f} (CPU p99 {small[name + '_cpu']:.3f})")
        print(f"audit_page_ms_p99_ratio ({name}): {large[name] / small[name]:.2f}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--audit"]:
        audit_benchmark()
    elif sys.argv[1:] == ["--bare"]:
        run_bare_server()
    elif sys.argv[1:2] == ["--storm"]:
        numbers = [int(n) for n in sys.argv[2:4]]
        storm(*(numbers + [30, 300][len(numbers) :]))
    elif sys.argv[1:2] == ["--images"]:
        images_benchmark(int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    elif sys.argv[1:2] == ["--metrics"]:
        for line in metrics_benchmark(int(sys.argv[2]) if len(sys.argv) > 2 else HISTORY_JOBS):
            print(line)
    else:
        main()

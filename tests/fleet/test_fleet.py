"""A fleet of real ``veotui serve`` processes on one PostgreSQL database and one data
directory: the slot limit holds across servers, a dead server's jobs are taken over and
resume their operation, a server that lost its lease writes nothing, and every server
streams every job's changes."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.fleet.servers import FleetServer, fleet_env
from tests.support.by_hand import by_hand
from tests.support.postgres import open_shared_store
from tests.support.waiting import wait_until
from veotui.core.job import isoformat, utcnow
from veotui.datadir.files import write_atomic

if TYPE_CHECKING:
    from veotui.store.postgres import PostgresStore

pytestmark = pytest.mark.slow
LEASE = 1.5


def operations_of(data_dir: Path) -> dict[str, list[str]]:
    """The simulator's operations (each one a paid submit), by job id."""
    by_job: dict[str, list[str]] = {}
    for path in (data_dir / "sim" / "operations").glob("*.json"):
        record = json.loads(path.read_text())
        by_job.setdefault(record["job_id"], []).append(record["name"])
    return by_job


def finish_operation(data_dir: Path, operation: str) -> None:
    """The simulated remote operation finishes now (it was started with a long time to run)."""
    path = data_dir / "sim" / "operations" / f"{operation.rsplit('/', 1)[-1]}.json"
    record = json.loads(path.read_text())
    record["done_at"] = isoformat(utcnow())
    write_atomic(path, json.dumps(record).encode())


def operation_of(store: PostgresStore, job_id: str) -> str:
    """The operation of a job that has one."""
    operation = store.get(job_id).operation
    assert operation is not None, f"job {job_id[:8]} has no operation"
    return operation


def runner_of(store: PostgresStore, job_id: str) -> list[str]:
    """The servers that started or took over the job, from its timeline."""
    found = []
    for event in store.timeline(job_id):
        match = re.search(r"(?:on|taken over by) server (\w+)", event.detail or "")
        if match:
            found.append(match.group(1))
    return found


def stuck(store: PostgresStore, job_ids: list[str], servers: list[FleetServer]) -> str:
    """What a fleet that stopped making progress looks like: each job, each server's errors."""
    lines = [f"{j[:8]} {store.get(j).status.value} owner={store.owner_of(j)}" for j in job_ids]
    for server in servers:
        server.signal(signal.SIGABRT)
        server.process.wait(10)
    time.sleep(1)
    lines += [f"--- {s.server_id} ---\n{''.join(s.err)[-6000:]}" for s in servers]
    return "\n".join(lines)


class EventLog:
    """The job events one server streams, read in a thread."""

    def __init__(self, url: str) -> None:
        self.seen: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._client = httpx.Client(base_url=url, trust_env=False, timeout=httpx.Timeout(30, read=None))
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self._connected.wait(30), "the event stream did not open"

    def _read(self) -> None:
        try:
            with self._client.stream("GET", "/api/events") as response:
                self._connected.set()
                kind = ""
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind == "job":
                        data = json.loads(line[6:])
                        self.seen.append((data["job_id"], data["status"]))
        except httpx.HTTPError:
            pass

    def close(self) -> None:
        self._stop.set()
        self._client.close()


def test_three_servers_share_the_slots_the_fifo_queue_and_every_event(postgres_cluster, tmp_path):
    url = postgres_cluster.new_database()
    data_dir = tmp_path / "shared"
    # A lease long enough that a busy machine's stalls move no job (failover is tested below).
    env = fleet_env(data_dir, url, VEOTUI_MAX_CONCURRENT="3", VEOTUI_SIM_SECONDS="0.05", VEOTUI_LEASE_SECONDS="10")
    servers = [FleetServer(env) for _ in range(3)]
    watcher = open_shared_store(url, tmp_path / "watcher")
    events = None
    try:
        for server in servers:
            server.ready()
        first = servers[0]
        wait_until(lambda: len(watcher.servers(within=60)) == 3, what="three live servers")
        with first.client() as client:
            info = client.get("/api/info").json()["fleet"]
        assert info["server_id"] == first.server_id and len(info["servers"]) == 3
        events = EventLog(first.url)

        clients = [server.client() for server in servers]
        try:
            # Submitted round the servers, so each one's dispatch wakes on its own submits.
            job_ids = [
                clients[n % 3]
                .post("/api/generate", json={"prompt": f"fleet job {n}", "duration_seconds": 4})
                .json()["job_id"]
                for n in range(20)
            ]
            most = 0
            deadline = time.monotonic() + 120
            while True:  # sampled throughout, from the database every server writes
                busy = watcher.processing_count()
                most = max(most, busy)
                assert busy <= 3
                counts = watcher.count_by_status()
                if counts.get("completed", 0) == 20:
                    break
                assert not counts.get("failed"), "a job failed"
                assert time.monotonic() < deadline, stuck(watcher, job_ids, servers)
                time.sleep(0.02)
            assert most == 3
        finally:
            for client in clients:
                client.close()

        # FIFO across the fleet: jobs started in the order they were queued.
        with by_hand(watcher) as conn:
            started = [
                row[0] for row in conn.execute("SELECT job_id FROM events WHERE status = 'starting' ORDER BY id")
            ]
        assert started == job_ids
        # One operation (one paid submit) per job, whichever server ran it.
        assert {job: len(ops) for job, ops in operations_of(data_dir).items()} == dict.fromkeys(job_ids, 1)
        runners = {job_id: runner_of(watcher, job_id) for job_id in job_ids}
        assert all(runners.values())  # each started by a server (a stall past the lease may move one)
        assert len({r[0] for r in runners.values()}) >= 2, "one server ran every job"
        # The first server streamed every job's completion, those the others ran included.
        by_others = [job_id for job_id, r in runners.items() if r[0] != first.server_id]
        wait_until(
            lambda: {job for job, status in events.seen if status == "completed"} >= set(job_ids),
            what="server A's stream to carry every completion",
        )
        assert by_others
    finally:
        if events is not None:
            events.close()
        watcher.close()
        for server in servers:
            server.stop()


def test_a_killed_servers_jobs_are_taken_over_and_resume_their_operations(postgres_cluster, tmp_path):
    url = postgres_cluster.new_database()
    data_dir = tmp_path / "shared"
    # Operations that would run long: the test finishes them once they are taken over.
    env = fleet_env(data_dir, url, VEOTUI_MAX_CONCURRENT="2", VEOTUI_SIM_SECONDS="120")
    doomed = FleetServer(env).ready()
    survivor = None
    watcher = open_shared_store(url, tmp_path / "watcher")
    try:
        with doomed.client() as client:
            job_ids = [client.post("/api/generate", json={"prompt": f"run by A {n}"}).json()["job_id"] for n in (1, 2)]
        wait_until(
            lambda: all(watcher.get(j).operation for j in job_ids), what="both jobs to be generating on server A"
        )
        operations = {j: operation_of(watcher, j) for j in job_ids}
        survivor = FleetServer(env).ready()  # a live server beside A: it takes nothing of A's
        assert all(watcher.owner_of(j) == doomed.server_id for j in job_ids)

        doomed.signal(signal.SIGKILL)
        killed_at = time.time()
        doomed.kill()
        wait_until(
            lambda: all(watcher.owner_of(j) == survivor.server_id for j in job_ids), what="server B to take both over"
        )
        for job_id in job_ids:
            finish_operation(data_dir, operations[job_id])
        wait_until(
            lambda: all(watcher.get(j).status.value == "completed" for j in job_ids),
            what="both jobs to complete on server B",
        )
        for job_id in job_ids:
            job = watcher.get(job_id)
            assert job.operation == operations[job_id] and job.attempts == 1
            assert runner_of(watcher, job_id) == [doomed.server_id, survivor.server_id]
            taken = next(e for e in watcher.timeline(job_id) if "taken over" in (e.detail or ""))
            # Within the lease and a heartbeat (plus a busy machine's slack).
            assert taken.at.timestamp() - killed_at < LEASE + LEASE / 3 + 5
        # Nothing was submitted (or paid for) twice.
        assert {job: len(ops) for job, ops in operations_of(data_dir).items()} == dict.fromkeys(job_ids, 1)
    finally:
        watcher.close()
        doomed.kill()
        if survivor is not None:
            survivor.stop()


def test_a_server_that_lost_its_lease_does_not_write_over_the_new_owner(postgres_cluster, tmp_path):
    url = postgres_cluster.new_database()
    data_dir = tmp_path / "shared"
    env = fleet_env(data_dir, url, VEOTUI_SIM_SECONDS="120")
    paused = FleetServer(env).ready()
    other = None
    watcher = open_shared_store(url, tmp_path / "watcher")
    try:
        with paused.client() as client:
            job_id = client.post("/api/generate", json={"prompt": "leased"}).json()["job_id"]
        operation = wait_until(lambda: watcher.get(job_id).operation, what="the job to be generating on server A")
        other = FleetServer(env).ready()

        paused.signal(signal.SIGSTOP)  # past its lease: B takes the job over
        wait_until(lambda: watcher.owner_of(job_id) == other.server_id, what="server B to take the job over")
        paused.signal(signal.SIGCONT)
        # A notices before it writes anything: it stops running the job.
        wait_until(lambda: "lost its lease" in "".join(paused.err), what="server A to notice its lost lease")
        finish_operation(data_dir, operation)
        wait_until(lambda: watcher.get(job_id).status.value == "completed", what="server B to complete the job")

        job = watcher.get(job_id)
        assert job.operation == operation and job.attempts == 1
        stages = [e.status.value for e in watcher.timeline(job_id)]
        # Each stage once: A wrote nothing after B took over.
        assert stages.count("processing") == stages.count("downloading") == stages.count("completed") == 1
        assert runner_of(watcher, job_id) == [paused.server_id, other.server_id]
        assert operations_of(data_dir) == {job_id: [operation]}
        # A is still a live member of the fleet and runs new work.
        wait_until(lambda: len(watcher.servers(within=LEASE)) == 2, what="server A to beat again")
    finally:
        watcher.close()
        paused.stop()
        if other is not None:
            other.stop()


def test_auto_delete_runs_once_on_the_oldest_server_and_passes_on_when_it_dies(postgres_cluster, tmp_path):
    url = postgres_cluster.new_database()
    data_dir = tmp_path / "shared"
    env = fleet_env(data_dir, url, VEOTUI_SIM_SECONDS="0.05", VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD="0.3")
    oldest = FleetServer(env).ready()
    other = FleetServer(env).ready()
    watcher = open_shared_store(url, tmp_path / "watcher")

    def downloaded_then_deleted(client: httpx.Client) -> str:
        job_id = client.post("/api/generate", json={"prompt": "fetched once", "duration_seconds": 4}).json()["job_id"]
        wait_until(lambda: client.get(f"/api/status/{job_id}").json()["status"] == "completed", what="completion")
        assert client.get(f"/api/download/{job_id}").status_code == 200
        wait_until(lambda: client.get(f"/api/status/{job_id}").status_code == 404, what="the auto-delete")
        return job_id

    def deletes_of(job_id: str) -> int:
        with by_hand(watcher) as conn:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM events WHERE job_id = ? AND kind = 'deleted'", (job_id,)
            ).fetchone()
        return int(count)

    try:
        assert [s["server_id"] for s in watcher.servers(within=LEASE)] == [oldest.server_id, other.server_id]
        with other.client() as client:
            # Downloaded from the newer server; the oldest one hears of it and deletes it, once.
            first = downloaded_then_deleted(client)
            assert deletes_of(first) == 1 and not (data_dir / "temp_downloads" / f"job_{first}").exists()
            assert "deleted after download" in client.get(f"/api/status/{first}").json()["detail"]

            oldest.signal(signal.SIGKILL)
            oldest.kill()
            wait_until(
                lambda: [s["server_id"] for s in watcher.servers(within=LEASE)] == [other.server_id],
                what="the oldest server to be gone",
            )
            # The survivor is now the oldest: it does the once-only work.
            second = downloaded_then_deleted(client)
            assert deletes_of(second) == 1
    finally:
        watcher.close()
        oldest.kill()
        other.stop()

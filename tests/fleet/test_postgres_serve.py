"""``veotui serve`` on PostgreSQL as a real process: a job runs end to end on the simulator,
no lock file is used, the server records itself and says so, and a clean stop removes it."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.fleet.servers import FleetServer
from tests.server.harness import ServeProcess, server_env
from tests.support.postgres import open_shared_store
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def test_a_server_on_postgresql_runs_a_job_and_records_itself(postgres_cluster, tmp_path):
    url = postgres_cluster.new_database()
    data_dir = tmp_path / "data"
    server = FleetServer(server_env(data_dir, VEOTUI_STORE=url, VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD="off")).ready()
    try:
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            job_id = client.post("/api/generate", json={"prompt": "on postgres"}).json()["job_id"]
            wait_until(
                lambda: client.get(f"/api/status/{job_id}").json()["status"] == "completed", what="the job to complete"
            )
            job = client.get(f"/api/status/{job_id}").json()
            assert job["attempts"] == 1 and len(job["videos"]) == 1
            assert client.get(f"/api/download/{job_id}").status_code == 200
        # The server is recorded with its heartbeat, and says so.
        watcher = open_shared_store(url, tmp_path / "watcher")
        try:
            (row,) = watcher.servers(within=60)
            assert row["url"] == server.url and row["pid"] == server.pid
            assert f"fleet: this server {row['server_id']}; other live servers: none" in server.banner
        finally:
            watcher.close()
        # The jobs are in PostgreSQL; the data directory holds no database and no lock file.
        assert not (data_dir / "veotui.db").exists()
        assert not (data_dir / "veotui.lock").exists()

    finally:
        assert server.stop() == 0

    watcher = open_shared_store(url, tmp_path / "watcher")
    try:
        assert watcher.servers(within=60) == []  # a clean stop removes its row
    finally:
        watcher.close()

    # Its lock went with it: a new server on the same database sees the finished job.
    again = ServeProcess(server_env(data_dir, VEOTUI_STORE=url, VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD="off"))
    try:
        with httpx.Client(base_url=again.url, trust_env=False) as client:
            assert client.get(f"/api/status/{job_id}").json()["status"] == "completed"
        again.signal(signal.SIGTERM)
        assert again.wait(30) == 0
    finally:
        again.kill()


def test_a_server_rides_out_postgresql_going_away_with_503_and_reconnects(postgres_cluster, tmp_path):
    import json

    import psycopg

    url = postgres_cluster.new_database()
    database = url.rsplit("/", 1)[-1]
    data_dir = tmp_path / "data"
    server = FleetServer(
        server_env(
            data_dir,
            VEOTUI_STORE=url,
            VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD="off",
            VEOTUI_SIM_SECONDS="120",
            VEOTUI_LEASE_SECONDS="1.5",  # a heartbeat every half second notices the loss soon
        )
    ).ready()
    admin = psycopg.connect(postgres_cluster.url(), autocommit=True)
    try:
        with server.client() as client:
            job_id = client.post("/api/generate", json={"prompt": "through an outage"}).json()["job_id"]
            wait_until(lambda: client.get(f"/api/status/{job_id}").json()["operation"], what="the job to generate")
            operation = client.get(f"/api/status/{job_id}").json()["operation"]

            # PostgreSQL goes away for this database: its connections end, new ones are refused.
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))

            def down() -> bool:
                answer = client.get("/api/health")
                return answer.status_code == 503 and answer.json()["storage"] == "unavailable"

            wait_until(down, what="/api/health to say the database is unreachable")
            listed = client.get("/api/jobs")
            assert listed.status_code == 503 and "cannot be reached" in listed.json()["detail"]
            refused = client.post("/api/generate", json={"prompt": "while down"})
            assert refused.status_code == 503
            info = client.get("/api/info").json()
            assert info["storage"]["state"] == "unavailable" and info["fleet"]["slots_in_use"] is None

            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            wait_until(lambda: client.get("/api/health").status_code == 200, what="veotui to reconnect")
            # The job carries on from where it stood: the same operation, polled to its end.
            record_path = data_dir / "sim" / "operations" / f"{operation.rsplit('/', 1)[-1]}.json"
            record = json.loads(record_path.read_text())
            record["done_at"] = record["created_at"]
            record_path.write_text(json.dumps(record))
            wait_until(
                lambda: client.get(f"/api/status/{job_id}").json()["status"] == "completed", what="the job to complete"
            )
            job = client.get(f"/api/status/{job_id}").json()
            assert job["operation"] == operation and job["attempts"] == 1
            assert len(list((data_dir / "sim" / "operations").glob("*.json"))) == 1
    finally:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        admin.close()
        server.stop()

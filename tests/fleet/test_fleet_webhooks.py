"""A fleet of two servers on one PostgreSQL database, both with the same hook: each event
is delivered once, whichever server ran the job and whichever sender claimed it."""

from __future__ import annotations

import httpx

from tests.fleet.servers import FleetServer, fleet_env
from tests.support.receiver import receiving
from tests.support.waiting import wait_until

SECRET = "a-secret-of-some-length"
JOBS = 8


def test_two_servers_deliver_each_event_once(postgres_cluster, tmp_path):
    database = postgres_cluster.new_database()
    # Half the receiver's answers fail at first, so deliveries are retried and reclaimed.
    with receiving(answer=lambda n: 503 if n % 2 else 200) as receiver:
        env = fleet_env(tmp_path / "data", database, VEOTUI_WEBHOOK_URL=receiver.url, VEOTUI_WEBHOOK_SECRET=SECRET)
        servers = [FleetServer(env).ready() for _ in range(2)]
        try:
            submitted = []
            for n in range(JOBS):
                with servers[n % 2].client() as http:
                    submitted.append(http.post("/api/generate", json={"prompt": f"job {n}"}).json()["job_id"])

            def all_delivered() -> bool:
                with servers[0].client() as http:
                    found = http.get("/api/webhooks/deliveries").json()["deliveries"]
                return len(found) == JOBS and all(d["state"] == "delivered" for d in found)

            wait_until(all_delivered, timeout=120, what="every job's delivery")
            with servers[1].client() as http:
                listed = http.get("/api/webhooks/deliveries").json()["deliveries"]
        finally:
            for server in servers:
                server.stop()

    delivered = receiver.delivered()
    assert sorted(r.json["job"]["job_id"] for r in delivered) == sorted(submitted)
    assert len({r.delivery_id for r in delivered}) == JOBS
    # Every attempt of a delivery is recorded once: the receiver saw no attempt the store missed.
    assert sum(d["tries"] for d in listed) == len(receiver.received)
    assert {d["delivery_id"] for d in listed} == {r.delivery_id for r in delivered}


def test_a_fleet_reads_its_deliveries_from_either_server(postgres_cluster, tmp_path):
    database = postgres_cluster.new_database()
    with receiving() as receiver:
        env = fleet_env(tmp_path / "data", database, VEOTUI_WEBHOOK_URL=receiver.url, VEOTUI_WEBHOOK_SECRET=SECRET)
        servers = [FleetServer(env).ready() for _ in range(2)]
        try:
            with servers[0].client() as http:
                job_id = http.post("/api/generate", json={"prompt": "a fox"}).json()["job_id"]
            wait_until(lambda: receiver.delivered(), what="the delivery")

            def listed(server: FleetServer) -> list[dict]:
                answer = httpx.get(
                    f"{server.url}/api/webhooks/deliveries", params={"job_id": job_id}, trust_env=False, timeout=30
                )
                return answer.json()["deliveries"]

            wait_until(lambda: listed(servers[1]) and listed(servers[1])[0]["state"] == "delivered")
            assert listed(servers[0]) == listed(servers[1])
        finally:
            for server in servers:
                server.stop()

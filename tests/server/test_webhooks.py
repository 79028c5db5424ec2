"""Webhooks against a real receiver on 127.0.0.1: signed deliveries, retries with backoff,
the deliveries endpoint, the admin's ping, and a queue that never waits for a receiver."""

from __future__ import annotations

import hashlib
import hmac
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import httpx

from tests.support.receiver import Received, closed_port, receiving
from tests.support.users import users_with_tokens
from tests.support.waiting import wait_for, wait_until
from veotui.backend.remote import RemoteBackend
from veotui.core.job import Status, utcnow
from veotui.core.webhooks import Hook, signed_headers
from veotui.server import running_server
from veotui.server.schemas import DeliveriesOut, HookTestOut

SECRET = "a-secret-of-some-length"
ALICE = "alice-token-0123456789"


def signed_correctly(request: Received, secret: str = SECRET) -> bool:
    """What a receiver checks: HMAC-SHA256 of "<timestamp>.<body>" with the shared secret."""
    timestamp = request.headers["x-veotui-timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers["x-veotui-signature"], f"sha256={expected}")


async def test_a_completed_job_is_posted_signed_once_and_listed_as_delivered(make_settings):
    with receiving() as receiver:
        settings = make_settings(webhook_url=receiver.url, webhook_secret=SECRET)
        async with (
            running_server(settings, keepalive=0.2) as server,
            httpx.AsyncClient(base_url=server.url, timeout=20, trust_env=False) as http,
        ):
            job = (await http.post("/api/generate", json={"prompt": "a fox in the snow"})).json()

            async def delivered() -> bool:
                found = (await http.get("/api/webhooks/deliveries", params={"job_id": job["job_id"]})).json()
                return bool(found["deliveries"]) and found["deliveries"][0]["state"] == "delivered"

            await wait_for(delivered, what="the delivery to be recorded as delivered")
            listed = (await http.get("/api/webhooks/deliveries", params={"job_id": job["job_id"]})).json()
            status = (await http.get(f"/api/status/{job['job_id']}")).json()

    # The default events are the end statuses: this job sent one, its completion.
    (request,) = receiver.received
    assert request.headers["x-veotui-event"] == "job.completed"
    assert request.headers["content-type"] == "application/json"
    assert signed_correctly(request)
    assert abs(int(request.headers["x-veotui-timestamp"]) - time.time()) < 300
    payload = request.json
    assert set(payload) == {"event", "delivery_id", "ts", "job"}
    assert payload["event"] == "job.completed"
    assert payload["delivery_id"] == request.delivery_id
    assert payload["job"]["job_id"] == job["job_id"]
    assert payload["job"]["status"] == "completed" and payload["job"]["progress"] == 100
    assert payload["job"]["videos"] == status["videos"] and status["videos"]
    assert payload["ts"] == status["finished_at"]

    DeliveriesOut.model_validate(listed)
    (delivery,) = listed["deliveries"]
    assert delivery["delivery_id"] == request.delivery_id
    assert delivery["url"] == receiver.url and delivery["event"] == "job.completed"
    assert delivery["tries"] == 1 and delivery["next_attempt_at"] is None
    (attempt,) = delivery["attempts"]
    assert attempt["status"] == 200 and '"ok"' in attempt["answer"]


async def test_a_receiver_that_fails_then_recovers_gets_the_same_delivery_after_backoff(make_settings):
    with receiving(answer=lambda n: 503 if n <= 2 else 204) as receiver:
        settings = make_settings(webhook_url=receiver.url, webhook_secret=SECRET)
        async with running_server(settings, keepalive=0.2) as server, RemoteBackend(server.url) as backend:
            job = await backend.submit({"prompt": "a lighthouse"})
            await wait_for(lambda: len(receiver.received) == 3, what="three attempts")

            async def recorded() -> bool:
                (delivery,) = await backend.webhook_deliveries(job.job_id)
                return delivery.state == "delivered"

            await wait_for(recorded, what="the third attempt to be recorded")
            (delivery,) = await backend.webhook_deliveries(job.job_id)

    assert [r.status for r in receiver.received] == [503, 503, 204]
    assert len({r.delivery_id for r in receiver.received}) == 1
    # The same event each time, but each attempt is signed afresh.
    assert len({r.body for r in receiver.received}) == 1 and all(signed_correctly(r) for r in receiver.received)
    assert delivery.tries == 3
    assert [a.status for a in delivery.attempts] == [503, 503, 204]
    assert delivery.attempts[0].answer == "receiver says no"
    first, second, third = (a.at for a in delivery.attempts)
    # Backoff doubles from 1 s: 1 s, then 2 s.
    assert (second - first).total_seconds() >= 0.95
    assert (third - second).total_seconds() >= 1.95


async def test_every_status_change_goes_to_a_hook_that_asks_for_all(make_settings):
    with receiving() as receiver:
        settings = make_settings().replace(webhooks=(Hook(receiver.url, SECRET, None),))
        async with running_server(settings, keepalive=0.2) as server, RemoteBackend(server.url) as backend:
            job = await backend.submit({"prompt": "a kite"})
            timeline: list[str] = []

            async def all_sent() -> bool:
                # The timeline's notes repeat the status they were made in: one entry a status.
                events = [e.status.value for e in await backend.timeline(job.job_id)]
                timeline[:] = [s for n, s in enumerate(events) if n == 0 or events[n - 1] != s]
                return timeline[-1] == "completed" and len(receiver.delivered()) == len(timeline)

            await wait_for(all_sent, what="a delivery for every status change")

    # Sent side by side, they may arrive in any order; "ts" puts them back in the job's order.
    # Stages passed in one commit share their "ts": among those, the order is the lifecycle's.
    lifecycle = list(Status)
    by_time = sorted(
        receiver.delivered(), key=lambda r: (r.json["ts"], lifecycle.index(Status(r.json["job"]["status"])))
    )
    assert [r.json["event"] for r in by_time] == [f"job.{status}" for status in timeline]
    assert [r.json["job"]["status"] for r in by_time] == timeline


async def test_a_receiver_that_never_answers_holds_up_no_job(make_settings):
    release = threading.Event()
    with receiving(hold=release) as receiver:
        settings = make_settings(webhook_url=receiver.url, webhook_secret=SECRET)
        async with running_server(settings, keepalive=0.2) as server, RemoteBackend(server.url) as backend:
            jobs = [await backend.submit({"prompt": f"job {n}"}) for n in range(4)]

            async def all_completed() -> bool:
                return all([(await backend.get(job.job_id)).status.value == "completed" for job in jobs])

            try:
                # Every delivery hangs in the receiver, and every job still runs to its end.
                await wait_for(all_completed, what="every job to complete while the receiver hangs")
                assert receiver.received, "the deliveries were sent"
                listed = await backend.webhook_deliveries()
                assert all(d.state == "pending" and d.tries == 0 for d in listed), "none has been answered"
            finally:
                release.set()
            await wait_for(lambda: len({r.delivery_id for r in receiver.delivered()}) == len(jobs))


async def test_only_an_admin_reads_deliveries_and_pings_the_hooks(make_settings):
    with receiving() as receiver, receiving(answer=lambda n: 500) as failing:
        settings = make_settings().replace(
            token="admin-token-0123456789",
            users=users_with_tokens({"alice": ALICE}),
            webhooks=(Hook(receiver.url, SECRET), Hook(failing.url, SECRET + "-2")),
        )
        async with running_server(settings, keepalive=0.2) as server:
            async with RemoteBackend(server.url, ALICE) as alice:
                for call, what in (
                    (alice.webhook_deliveries(), "read the webhook deliveries of"),
                    (alice.test_webhooks(), "test the webhooks of"),
                ):
                    try:
                        await call
                    except Exception as exc:
                        assert type(exc).__name__ == "Forbidden"
                        assert str(exc) == f"alice may not {what} this server"
                    else:
                        raise AssertionError("a user's token read an admin's route")
            async with RemoteBackend(server.url, "admin-token-0123456789") as admin:
                results = await admin.test_webhooks()
            async with httpx.AsyncClient(
                base_url=server.url, headers={"authorization": "Bearer admin-token-0123456789"}, trust_env=False
            ) as http:
                HookTestOut.model_validate((await http.post("/api/webhooks/test")).json())

    assert [(r["url"], r["status"], r["delivered"]) for r in results] == [
        (receiver.url, 200, True),
        (failing.url, 500, False),
    ]
    ping, again = receiver.received  # the second from the shape check
    assert ping.delivery_id != again.delivery_id
    assert ping.json["event"] == "ping" and ping.json["job"] is None
    assert ping.headers["x-veotui-event"] == "ping" and signed_correctly(ping)
    assert signed_correctly(failing.received[0], SECRET + "-2")


async def test_no_request_can_point_the_server_at_an_address(make_settings):
    """Hooks come from the config file alone: the API has no route that takes an address
    for the server to call, and the ping goes only to configured hooks."""
    with receiving() as receiver:
        settings = make_settings(webhook_url=receiver.url, webhook_secret=SECRET)
        async with (
            running_server(settings, keepalive=0.2) as server,
            httpx.AsyncClient(base_url=server.url, timeout=20, trust_env=False) as http,
        ):
            schema = (await http.get("/openapi.json")).json()
            hook_routes = {path: set(ops) for path, ops in schema["paths"].items() if "webhook" in path}
            assert hook_routes == {"/api/webhooks/deliveries": {"get"}, "/api/webhooks/test": {"post"}}
            answered = await http.post("/api/webhooks/test", json={"url": "http://127.0.0.1:9/elsewhere"})
    assert [r["url"] for r in answered.json()["results"]] == [receiver.url]


def test_the_receiver_in_the_docs_verifies_a_real_delivery(make_settings, tmp_path):
    """The example of docs/api.md, run as written (its secret and port filled in), takes a
    real delivery and refuses a forged one."""

    docs = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = docs[docs.index("### Verifying the signature") :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "docs/api.md has no Python example under Verifying the signature"
    example = found.group(1)
    port = closed_port()
    script = tmp_path / "receiver.py"
    script.write_text(example.replace("the hook's secret", SECRET).replace("9000", str(port)))
    process = subprocess.Popen([sys.executable, "-u", str(script)], stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: _answers(url), what="the example receiver to listen")
        forged = signed_headers(Hook(url, "not-the-secret-at-all"), "job.failed", "d", b"{}", utcnow())
        assert httpx.post(url, content=b"{}", headers=forged, trust_env=False).status_code == 401
        settings = make_settings(webhook_url=url, webhook_secret=SECRET)
        async_run(_one_job, settings)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "job.completed"
    finally:
        process.kill()
        process.wait(10)


def _answers(url: str) -> bool:
    try:
        httpx.post(url, content=b"", headers={"x-veotui-timestamp": "0", "x-veotui-signature": ""}, trust_env=False)
    except httpx.TransportError:
        return False
    return True


async def _one_job(settings) -> None:
    async with running_server(settings, keepalive=0.2) as server, RemoteBackend(server.url) as backend:
        job = await backend.submit({"prompt": "a fox"})

        async def delivered() -> bool:
            found = await backend.webhook_deliveries(job.job_id)
            return bool(found) and found[0].state == "delivered"

        await wait_for(delivered, what="the example receiver to accept the delivery")


def async_run(function, *args) -> None:
    anyio.run(function, *args)

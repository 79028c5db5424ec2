"""A ``veotui serve`` killed with SIGKILL between a job's end and its delivery: the delivery
was committed with the job's end, and goes out once after the restart."""

from __future__ import annotations

import httpx

from tests.server.harness import ServeProcess, server_env
from tests.support.receiver import closed_port, receiving
from tests.support.waiting import wait_until

SECRET = "a-secret-of-some-length"


def deliveries(url: str, job_id: str) -> list[dict]:
    answer = httpx.get(f"{url}/api/webhooks/deliveries", params={"job_id": job_id}, trust_env=False, timeout=30)
    return answer.json()["deliveries"]


def test_a_delivery_pending_at_a_kill_goes_out_once_after_the_restart(tmp_path):
    port = closed_port()  # the receiver is down while the job ends
    env = server_env(
        tmp_path / "data",
        VEOTUI_WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
        VEOTUI_WEBHOOK_SECRET=SECRET,
        VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD="off",
    )
    server = ServeProcess(env)
    try:
        job = httpx.post(f"{server.url}/api/generate", json={"prompt": "a fox"}, trust_env=False).json()
        # The job ended and its delivery was tried, refused, and is due again.
        tried = wait_until(
            lambda: [d for d in deliveries(server.url, job["job_id"]) if d["tries"] >= 1],
            what="a refused attempt",
        )
    finally:
        server.kill()
    (before,) = tried
    assert before["state"] == "pending" and before["attempts"][0]["status"] is None
    assert "Connect" in before["attempts"][0]["answer"]

    with receiving(port) as receiver:
        server = ServeProcess(env)
        try:
            wait_until(
                lambda: [d for d in deliveries(server.url, job["job_id"]) if d["state"] == "delivered"],
                what="the delivery after the restart",
            )
            # A second job's delivery goes out after the first one's: had the first been
            # sent twice, the receiver would hold it twice by now.
            second = httpx.post(f"{server.url}/api/generate", json={"prompt": "an owl"}, trust_env=False).json()
            wait_until(
                lambda: [d for d in deliveries(server.url, second["job_id"]) if d["state"] == "delivered"],
                what="the second job's delivery",
            )
            (after,) = deliveries(server.url, job["job_id"])
        finally:
            server.kill()

    assert [r.json["job"]["job_id"] for r in receiver.received] == [job["job_id"], second["job_id"]]
    first = receiver.received[0]
    assert first.delivery_id == before["delivery_id"] == after["delivery_id"]
    assert first.json["event"] == "job.completed" and first.json["job"]["status"] == "completed"
    assert after["tries"] == before["tries"] + 1 and after["attempts"][-1]["status"] == 200

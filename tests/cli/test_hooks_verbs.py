"""``veotui hooks test`` and ``veotui hooks deliveries`` as real processes against a real
server with a real receiver."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.cli.test_verbs import veotui
from tests.server.harness import server_thread
from tests.support.env import FAST_ENV
from tests.support.receiver import receiving
from tests.support.users import users_with_tokens
from tests.support.waiting import wait_until
from veotui.core.webhooks import Hook
from veotui.settings import load_settings

ADMIN, ALICE = "admin-token-0123456789", "alice-token-0123456789"
SECRET = "a-secret-of-some-length"


@pytest.fixture
def hooked(tmp_path):
    with receiving() as receiver, receiving(answer=lambda n: 410) as gone:
        settings = load_settings(env={**FAST_ENV, "VEOTUI_DATA_DIR": str(tmp_path / "data")}).replace(
            token=ADMIN,
            users=users_with_tokens({"alice": ALICE}),
            webhooks=(Hook(receiver.url, SECRET), Hook(gone.url, SECRET)),
        )
        with server_thread(settings) as running:
            yield running, receiver, gone


def test_hooks_test_pings_every_hook_and_says_which_answered(hooked):
    server, receiver, gone = hooked
    result = veotui("hooks", "test", remote=server.url, token=ADMIN)
    assert result.returncode == 1, "one hook did not take the ping"
    ok_line, gone_line = result.stdout.strip().splitlines()
    assert ok_line.startswith(f"{receiver.url}: answered 200 (delivered) in ")
    assert gone_line.startswith(f"{gone.url}: answered 410 (not delivered) in ")
    assert [r.json["event"] for r in receiver.received] == ["ping"]

    as_json = json.loads(veotui("hooks", "test", "--json", remote=server.url, token=ADMIN).stdout)
    assert [(r["url"], r["delivered"]) for r in as_json] == [(receiver.url, True), (gone.url, False)]


def test_hooks_deliveries_lists_a_jobs_deliveries(hooked):
    server, receiver, gone = hooked
    headers = {"authorization": f"Bearer {ADMIN}"}
    job_id = httpx.post(
        f"{server.url}/api/generate", json={"prompt": "a fox"}, headers=headers, trust_env=False
    ).json()["job_id"]
    wait_until(lambda: receiver.delivered() and gone.received, what="both hooks to be tried")

    def listed() -> list[dict]:
        result = veotui("hooks", "deliveries", "--job", job_id[:8], "--json", remote=server.url, token=ADMIN)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["deliveries"]

    found = wait_until(lambda: [d for d in listed() if d["state"] == "delivered"] and listed())
    by_url = {d["url"]: d for d in found}
    assert by_url[receiver.url]["state"] == "delivered"
    assert by_url[gone.url]["state"] == "pending" and by_url[gone.url]["attempts"][0]["status"] == 410

    table = veotui("hooks", "deliveries", "--job", job_id, remote=server.url, token=ADMIN).stdout
    lines = {line.split()[0]: line for line in table.strip().splitlines()}
    delivered = lines[by_url[receiver.url]["delivery_id"]]
    assert "delivered" in delivered and "job.completed" in delivered and "last: 200" in delivered
    pending = lines[by_url[gone.url]["delivery_id"]]
    assert "pending" in pending and "last: 410" in pending and "next try" in pending


def test_a_user_may_not_read_the_deliveries(hooked):
    server, _, _ = hooked
    for verb, what in (
        (("hooks", "deliveries"), "read the webhook deliveries of"),
        (("hooks", "test"), "test the webhooks of"),
    ):
        result = veotui(*verb, remote=server.url, token=ALICE)
        assert result.returncode == 1
        assert result.stderr.strip() == f"veotui: alice may not {what} this server"

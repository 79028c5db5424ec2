"""A team on one server, over the real API: roles, refusals that change nothing, /api/me,
the audit log, an operator's move, and users that change while the server runs."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
import pytest

from tests.support.waiting import wait_for
from veotui.cli.users import run_users
from veotui.server import running_server
from veotui.settings import token_sha256

ADMIN = "admin-token-for-the-team"
TOKENS = {"alice": "alice-token-1", "bob": "bob-token-2", "vic": "vic-token-3"}
CONFIG = f"""# the team's server
[users.alice]
token_sha256 = "{token_sha256(TOKENS["alice"])}"
role = "operator"
daily_budget_usd = 25.0
max_concurrent = 1

# bob is an operator too
[users.bob]
token_sha256 = "{token_sha256(TOKENS["bob"])}"

[users.vic]
token_sha256 = "{token_sha256(TOKENS["vic"])}"
role = "viewer"
"""


def auth(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {ADMIN if name == 'admin' else TOKENS[name]}"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
async def team(make_settings, config):
    settings = make_settings(config=str(config), token=ADMIN)
    async with running_server(settings, keepalive=0.2) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=20, trust_env=False) as client:
            yield running, client


async def submit(client: httpx.AsyncClient, who: str, prompt: str) -> dict:
    response = await client.post("/api/generate", json={"prompt": prompt}, headers=auth(who))
    assert response.status_code == 202, response.text
    return response.json()


async def queue_ids(client: httpx.AsyncClient) -> list[str]:
    lists = (await client.get("/api/jobs", headers=auth("admin"))).json()
    return [job["job_id"] for job in lists["queued"]]


async def test_a_refusal_is_a_403_that_names_who_what_and_whose_and_changes_nothing(team):
    _, client = team
    assert (await client.post("/api/queue/pause", json={"reason": "hold"}, headers=auth("admin"))).status_code == 200
    first = await submit(client, "alice", "alice's first")
    second = await submit(client, "alice", "alice's second")
    mine = await submit(client, "bob", "bob's own")
    assert (first["user"], mine["user"]) == ("alice", "bob")
    order = await queue_ids(client)
    before = (await client.get(f"/api/status/{first['job_id']}", headers=auth("admin"))).json()

    job_id = first["job_id"]
    refused = [
        ("bob", "POST", f"/api/cancel/{job_id}", None, f"bob may not cancel alice's job {job_id}"),
        ("bob", "DELETE", f"/api/delete/{job_id}", None, f"bob may not delete alice's job {job_id}"),
        ("bob", "POST", f"/api/move/{job_id}", {"to": "top"}, f"bob may not move alice's job {job_id}"),
        ("bob", "POST", "/api/queue/resume", None, "bob may not resume the queue"),
        ("bob", "POST", "/api/queue/pause", {}, "bob may not pause the queue"),
        ("vic", "POST", f"/api/cancel/{job_id}", None, f"vic may not cancel alice's job {job_id}"),
        ("vic", "POST", "/api/generate", {"prompt": "no"}, "vic may not submit jobs"),
    ]
    for who, method, path, body, sentence in refused:
        response = await client.request(method, path, json=body, headers=auth(who))
        assert response.status_code == 403, (who, path, response.text)
        assert response.json() == {"detail": sentence, "kind": "forbidden"}

    after = (await client.get(f"/api/status/{job_id}", headers=auth("admin"))).json()
    assert after == before
    assert await queue_ids(client) == order
    assert (await client.get("/api/queue", headers=auth("admin"))).json()["paused"] is True
    lists = (await client.get("/api/jobs", headers=auth("admin"))).json()
    assert lists["queued_total"] == 3 and not lists["processing"]

    entries = (await client.get("/api/audit", params={"user": "bob"}, headers=auth("admin"))).json()["entries"]
    refusals = [e for e in entries if (e["detail"] or "").startswith("refused: ")]
    assert [e["action"] for e in reversed(refusals)] == ["cancel", "delete", "move", "resume", "pause"]
    assert all(e["role"] == "operator" and e["remote_addr"] == "127.0.0.1" for e in refusals)
    assert refusals[-1]["detail"] == f"refused: bob may not cancel alice's job {job_id}"

    # Their own jobs, they may: bob cancels his, alice deletes her second.
    assert (await client.post(f"/api/cancel/{mine['job_id']}", headers=auth("bob"))).status_code == 200
    assert (await client.delete(f"/api/delete/{second['job_id']}", headers=auth("alice"))).status_code == 200
    # And an admin may act on anyone's.
    assert (await client.post(f"/api/cancel/{job_id}", headers=auth("admin"))).status_code == 200


async def test_me_names_the_caller_with_their_own_budget_and_limit(team):
    _, client = team
    me = (await client.get("/api/me", headers=auth("alice"))).json()
    assert me == {
        "user": "alice",
        "role": "operator",
        "daily_budget_usd": 25.0,
        "spent_today_usd": 0.0,
        "max_concurrent": 1,
    }
    assert (await client.get("/api/me", headers=auth("vic"))).json()["role"] == "viewer"
    admin = (await client.get("/api/me", headers=auth("admin"))).json()
    assert (admin["user"], admin["role"]) == ("admin", "admin")


async def test_an_operator_moves_their_own_jobs_among_themselves_only(team):
    _, client = team
    await client.post("/api/queue/pause", headers=auth("admin"))
    a1 = (await submit(client, "alice", "a1"))["job_id"]
    b1 = (await submit(client, "bob", "b1"))["job_id"]
    a2 = (await submit(client, "alice", "a2"))["job_id"]
    b2 = (await submit(client, "bob", "b2"))["job_id"]
    response = await client.post(f"/api/move/{a2}", json={"to": "top"}, headers=auth("alice"))
    assert response.status_code == 200, response.text
    # a2 took a1's place, never ahead of b1's... and bob's jobs kept theirs.
    assert await queue_ids(client) == [a2, b1, a1, b2]
    response = await client.post(f"/api/move/{a1}", json={"position": 1}, headers=auth("alice"))
    assert response.status_code == 200
    assert await queue_ids(client) == [a1, b1, a2, b2]
    # An admin moves across users.
    assert (await client.post(f"/api/move/{b2}", json={"to": "top"}, headers=auth("admin"))).status_code == 200
    assert await queue_ids(client) == [b2, a1, b1, a2]
    moves = (await client.get("/api/audit", params={"job_id": a1}, headers=auth("admin"))).json()["entries"]
    assert [(e["action"], e["user"], e["detail"]) for e in moves] == [
        ("move", "alice", "to position 1"),
        ("submit", "alice", None),
    ]


async def test_the_audit_log_pages_newest_first_and_is_an_admins(team):
    _, client = team
    await client.post("/api/queue/pause", headers=auth("admin"))
    ids = [(await submit(client, "bob", f"p{n}"))["job_id"] for n in range(5)]
    page = (await client.get("/api/audit", params={"limit": 2}, headers=auth("admin"))).json()
    assert [e["job_id"] for e in page["entries"]] == [ids[4], ids[3]]
    page = (await client.get("/api/audit", params={"limit": 2, "offset": 2}, headers=auth("admin"))).json()
    assert [e["job_id"] for e in page["entries"]] == [ids[2], ids[1]]
    entry = page["entries"][0]
    assert set(entry) == {"id", "ts", "user", "role", "action", "job_id", "detail", "remote_addr"}
    assert (entry["user"], entry["role"], entry["action"]) == ("bob", "operator", "submit")
    refused = await client.get("/api/audit", headers=auth("bob"))
    assert refused.status_code == 403
    assert refused.json() == {"detail": "bob may not read the audit log of this server", "kind": "forbidden"}


async def test_a_removed_user_gets_401_and_a_new_one_gets_in_without_a_restart(team, config, capsys):
    running, client = team
    assert (await client.get("/api/me", headers=auth("bob"))).status_code == 200
    run_users(argparse.Namespace(users_action="remove", name="bob"), running.backend.settings)

    async def refused() -> bool:
        return (await client.get("/api/me", headers=auth("bob"))).status_code == 401

    await wait_for(refused, timeout=6, what="bob's token to stop working within 5 s")
    args = argparse.Namespace(users_action="add", name="carol", role="viewer", budget=None, max_concurrent=None)
    run_users(args, running.backend.settings)
    token = capsys.readouterr().out.strip().splitlines()[-1]
    running.app.state.users.check(force=True)  # what SIGHUP does
    me = await client.get("/api/me", headers={"authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["role"] == "viewer"
    assert "carol" in config.read_text() and token not in config.read_text()


async def test_the_servers_own_routes_refuse_a_viewer_and_an_operator_with_the_same_sentence(team):
    """The webhook routes and the server's log are an admin's, decided where every other
    route's rights are: the same 403, the refusal noted in the audit log."""
    _, client = team
    server_routes = [
        ("GET", "/api/webhooks/deliveries", "read the webhook deliveries of this server"),
        ("POST", "/api/webhooks/test", "test the webhooks of this server"),
        ("GET", "/api/logs", "read the log of this server"),
    ]
    for who in ("vic", "bob"):
        for method, path, what in server_routes:
            response = await client.request(method, path, headers=auth(who))
            assert response.status_code == 403, (who, path, response.text)
            assert response.json() == {"detail": f"{who} may not {what}", "kind": "forbidden"}

    assert (await client.get("/api/webhooks/deliveries", headers=auth("admin"))).json() == {"deliveries": []}
    assert (await client.post("/api/webhooks/test", headers=auth("admin"))).json() == {"results": []}
    assert (await client.get("/api/logs", headers=auth("admin"))).status_code == 200

    entries = (await client.get("/api/audit", params={"user": "vic"}, headers=auth("admin"))).json()["entries"]
    assert [(e["action"], e["role"], e["detail"]) for e in reversed(entries)] == [
        ("read_deliveries", "viewer", "refused: vic may not read the webhook deliveries of this server"),
        ("test_hooks", "viewer", "refused: vic may not test the webhooks of this server"),
        ("read_log", "viewer", "refused: vic may not read the log of this server"),
    ]


async def test_a_group_action_touches_only_the_callers_jobs_and_says_what_it_left(team):
    _, client = team
    assert (await client.post("/api/queue/pause", json={"reason": "hold"}, headers=auth("admin"))).status_code == 200
    body = {"prompt": "a kite", "group": "kites"}
    hers = (await client.post("/api/generate", json=body, headers=auth("alice"))).json()
    his = (await client.post("/api/generate", json=body, headers=auth("bob"))).json()

    cancelled = (await client.post("/api/groups/kites/cancel", headers=auth("bob"))).json()
    assert cancelled["done"] == [his["job_id"]]
    assert cancelled["left"] == [
        {"job_id": hers["job_id"], "reason": f"bob may not cancel alice's job {hers['job_id']}"}
    ]
    deleted = (await client.delete("/api/groups/kites", headers=auth("bob"))).json()
    assert deleted["done"] == [his["job_id"]]
    assert [entry["job_id"] for entry in deleted["left"]] == [hers["job_id"]]

    still = (await client.get(f"/api/status/{hers['job_id']}", headers=auth("admin"))).json()
    assert still["status"] == "queued"
    refused = await client.post("/api/groups/kites/cancel", headers=auth("vic"))
    assert refused.status_code == 200 and refused.json()["done"] == [], refused.text
    assert (await client.get(f"/api/status/{hers['job_id']}", headers=auth("admin"))).json()["status"] == "queued"

"""`veotui audit` against a real server: the entries of one user or one job, oldest of the
page first, as lines or JSON; `-f` printing new entries as they are written; and a user who
is not an admin refused with the server's sentence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import httpx
import pytest

from tests.cli.test_verbs import one_line, veotui
from tests.server.harness import server_thread
from tests.support.env import FAST_ENV
from tests.support.users import users_with_tokens
from tests.support.waiting import wait_until
from veotui.settings import load_settings

ADMIN, ALICE, BOB = "admin-token-for-audit", "alice-token-for-audit", "bob-token-for-audit"


@pytest.fixture
def team_server(tmp_path):
    env = {**FAST_ENV, "VEOTUI_DATA_DIR": str(tmp_path / "data"), "VEOTUI_SIM_SECONDS": "60"}
    settings = load_settings(env=env).replace(token=ADMIN, users=users_with_tokens({"alice": ALICE, "bob": BOB}))
    with server_thread(settings) as running:
        yield running


def submit(url: str, token: str, prompt: str) -> str:
    answer = httpx.post(f"{url}/api/generate", json={"prompt": prompt}, headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["job_id"])


def test_audit_shows_a_users_and_a_jobs_entries_and_refuses_a_non_admin(team_server):
    url = team_server.url
    alices = submit(url, ALICE, "alice's fox")
    bobs = submit(url, BOB, "bob's owl")
    refused = httpx.post(f"{url}/api/cancel/{alices}", headers={"authorization": f"Bearer {BOB}"})
    assert refused.status_code == 403

    by_user = veotui("audit", "--user", "bob", remote=url, token=ADMIN)
    assert by_user.returncode == 0, by_user.stderr
    submitted, cancel = by_user.stdout.strip().splitlines()
    assert submitted.endswith(f"  bob (operator)  submit  {bobs}  from 127.0.0.1")
    assert cancel.endswith(
        f"  bob (operator)  cancel  {alices}  refused: bob may not cancel alice's job {alices}  from 127.0.0.1"
    )

    by_job = veotui("audit", "--job", alices[:8], "--json", remote=url, token=ADMIN)
    entries = [json.loads(line) for line in by_job.stdout.splitlines()]
    assert [(e["user"], e["action"], e["job_id"]) for e in entries] == [
        ("alice", "submit", alices),
        ("bob", "cancel", alices),
    ]

    not_admin = veotui("audit", remote=url, token=ALICE)
    assert not_admin.returncode == 1
    assert one_line(not_admin.stderr) == "veotui: alice may not read the audit log of this server"


def test_audit_follow_prints_each_new_entry(team_server):
    url = team_server.url
    first = submit(url, ALICE, "alice's first")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEOTUI_")}
    env.update(VEOTUI_CONFIG="/nonexistent/veotui-test-config.toml", VEOTUI_REMOTE=url, VEOTUI_TOKEN=ADMIN)
    follower = subprocess.Popen(
        [sys.executable, "-m", "veotui", "audit", "-f", "--user", "alice", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    output = follower.stdout
    assert output is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(output.readline, "")), daemon=True)
    reader.start()
    try:
        wait_until(lambda: len(lines) >= 1, what="the entries so far")
        second = submit(url, ALICE, "alice's second")
        submit(url, BOB, "bob's, not followed")
        wait_until(lambda: len(lines) >= 2, what="the new entry")
        assert [json.loads(line)["job_id"] for line in lines] == [first, second]
    finally:
        follower.kill()
        follower.wait(10)
        reader.join(10)
    assert len(lines) == 2, "bob's entry is not alice's"

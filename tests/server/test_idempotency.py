"""Idempotent submits against the real server: a replay answers the first job, a different
request under a used key is refused, keys are per user and last 24 h, across a restart."""

from __future__ import annotations

import base64
import io
import sqlite3
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from PIL import Image

from tests.server.conftest import data_files
from tests.support.users import users_with_tokens
from veotui.core.access import Role
from veotui.core.idempotency import KeyClaim, KeyTaken
from veotui.core.ids import new_job_id
from veotui.core.job import Job, Status
from veotui.core.request import JobRequest
from veotui.server import running_server

ALICE, BOB, VIC = "alice-token-0123456789", "bob-token-0123456789", "vic-token-0123456789"


def png(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 36), color).save(out, "PNG")
    return out.getvalue()


async def jobs_count(http: httpx.AsyncClient) -> int:
    lists = (await http.get("/api/jobs")).json()
    return sum(len(lists[name]) for name in ("processing", "queued", "history"))


async def test_a_replay_answers_the_first_job_and_makes_nothing(server, http):
    body = {"prompt": "a red fox", "image_base64": base64.b64encode(png("red")).decode()}
    first = await http.post("/api/generate", json=body, headers={"Idempotency-Key": "order-17"})
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    # The same request spelled differently (a default given, the fields in another order).
    again = {"model": first.json()["model"], **body}
    replay = await http.post("/api/generate", json=again, headers={"Idempotency-Key": "order-17"})
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["job_id"] == first.json()["job_id"]
    assert await jobs_count(http) == 1
    # Without a key, the same request is a new job.
    assert (await http.post("/api/generate", json=body)).status_code == 202
    assert await jobs_count(http) == 2


async def test_a_different_request_under_a_used_key_is_refused_naming_the_key(server, http):
    first = await http.post("/api/generate", json={"prompt": "a red fox"}, headers={"Idempotency-Key": "k-1"})
    for changed in (
        {"prompt": "a blue fox"},
        {"prompt": "a red fox", "seed": 7},
        {"prompt": "a red fox", "image_base64": base64.b64encode(png("red")).decode()},
    ):
        refused = await http.post("/api/generate", json=changed, headers={"Idempotency-Key": "k-1"})
        assert refused.status_code == 409, changed
        assert "'k-1'" in refused.json()["detail"] and first.json()["job_id"] in refused.json()["detail"]
    # Another image under the key of an image job is another request too.
    with_red = {"prompt": "x", "image_base64": base64.b64encode(png("red")).decode()}
    with_blue = {"prompt": "x", "image_base64": base64.b64encode(png("blue")).decode()}
    assert (await http.post("/api/generate", json=with_red, headers={"Idempotency-Key": "k-2"})).status_code == 202
    assert (await http.post("/api/generate", json=with_blue, headers={"Idempotency-Key": "k-2"})).status_code == 409
    assert await jobs_count(http) == 2


@pytest.mark.parametrize(
    ("key", "problem"),
    [("", "empty"), ("x" * 201, "201 characters"), ("caf\u00e9", "U+00E9 at position 4")],
)
async def test_a_bad_key_is_refused_before_anything_is_made(server, http, key, problem):
    refused = await http.post(
        "/api/generate", json={"prompt": "a fox"}, headers={"Idempotency-Key": key.encode("latin-1")}
    )
    assert refused.status_code == 422 and problem in refused.json()["detail"]
    assert "Idempotency-Key" in refused.json()["detail"]
    assert await jobs_count(http) == 0


async def test_keys_are_per_user(settings):
    """alice and bob may both send the key "k": each gets their own job, each replay answers
    the sender's own job, and no answer under a key is ever another user's job."""
    admin = "admin-token-0123456789"
    users = users_with_tokens({"alice": ALICE, "bob": BOB, "vic": VIC}, roles={"vic": Role.VIEWER})
    settings = settings.replace(token=admin, users=users)
    async with running_server(settings, keepalive=0.2) as server:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:

            async def send(token: str, prompt: str) -> httpx.Response:
                return await http.post(
                    "/api/generate",
                    json={"prompt": prompt},
                    headers={"authorization": f"Bearer {token}", "Idempotency-Key": "k"},
                )

            alices, bobs = await send(ALICE, "a fox"), await send(BOB, "a fox")
            assert (alices.status_code, bobs.status_code) == (202, 202)
            assert (alices.json()["user"], bobs.json()["user"]) == ("alice", "bob")
            alice_job, bob_job = alices.json()["job_id"], bobs.json()["job_id"]
            assert alice_job != bob_job

            for token, own in ((BOB, bob_job), (ALICE, alice_job), (BOB, bob_job)):
                replay = await send(token, "a fox")
                assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
                assert replay.json()["job_id"] == own

            # Another request under bob's key names bob's job, never alice's.
            reused = await send(BOB, "an owl")
            assert reused.status_code == 409
            assert bob_job in reused.json()["detail"] and alice_job not in reused.json()["detail"]

            # The admin's key is the admin's own, and a viewer's refusal comes before any replay.
            admins = await send(admin, "a fox")
            assert admins.status_code == 202 and admins.json()["job_id"] not in (alice_job, bob_job)
            viewer = await send(VIC, "a fox")
            assert viewer.status_code == 403 and viewer.json()["kind"] == "forbidden"

            # alice's job deleted: her key answers 409, bob's still answers his job.
            await http.post(f"/api/cancel/{alice_job}", headers={"authorization": f"Bearer {ALICE}"})
            deleted = await http.delete(f"/api/delete/{alice_job}", headers={"authorization": f"Bearer {ALICE}"})
            assert deleted.status_code == 200
            assert (await send(ALICE, "a fox")).status_code == 409
            again = await send(BOB, "a fox")
            assert again.status_code == 200 and again.json()["job_id"] == bob_job

            listed = (await http.get("/api/jobs", headers={"authorization": f"Bearer {admin}"})).json()
            everyone = [*listed["processing"], *listed["queued"], *listed["history"]]
            assert sorted(job["job_id"] for job in everyone) == sorted([admins.json()["job_id"], bob_job])


async def test_a_key_holds_across_a_restart_and_expires_after_24_hours(settings):
    async with running_server(settings, keepalive=0.2) as server:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
            first = await http.post("/api/generate", json={"prompt": "a fox"}, headers={"Idempotency-Key": "k"})
            old = await http.post("/api/generate", json={"prompt": "an owl"}, headers={"Idempotency-Key": "old"})
    # A day later for the key "old": its hold has run out.
    with sqlite3.connect(settings.db_path) as db:
        yesterday = (datetime.now(UTC) - timedelta(hours=24, minutes=1)).isoformat().replace("+00:00", "Z")
        db.execute("UPDATE idempotency_keys SET created_at = ? WHERE idempotency_key = 'old'", (yesterday,))
    async with running_server(settings, keepalive=0.2) as server:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
            replay = await http.post("/api/generate", json={"prompt": "a fox"}, headers={"Idempotency-Key": "k"})
            reused = await http.post("/api/generate", json={"prompt": "a bee"}, headers={"Idempotency-Key": "old"})
    assert replay.status_code == 200 and replay.json()["job_id"] == first.json()["job_id"]
    assert reused.status_code == 202 and reused.json()["job_id"] != old.json()["job_id"]


async def test_a_replay_of_a_deleted_job_is_refused_rather_than_paid_again(server, http):
    first = await http.post("/api/generate", json={"prompt": "a fox"}, headers={"Idempotency-Key": "k"})
    job_id = first.json()["job_id"]
    await http.post(f"/api/cancel/{job_id}")
    assert (await http.delete(f"/api/delete/{job_id}")).status_code == 200
    again = await http.post("/api/generate", json={"prompt": "a fox"}, headers={"Idempotency-Key": "k"})
    assert again.status_code == 409
    assert "deleted" in again.json()["detail"] and job_id in again.json()["detail"]
    assert await jobs_count(http) == 0


def test_the_store_writes_a_job_only_with_a_free_key(open_store):
    """The key's primary key decides: the second insert under a held key writes nothing."""
    store = open_store()
    request = JobRequest.from_mapping({"prompt": "a fox"})
    claim = KeyClaim("alice", "k", "f" * 64)
    first = store.insert(Job(job_id=new_job_id(), status=Status.QUEUED, request=request), claim=claim)
    with pytest.raises(KeyTaken):
        store.insert(Job(job_id=new_job_id(), status=Status.QUEUED, request=request), claim=claim)
    assert [job.job_id for job in store.queued()] == [first.job_id]
    assert store.keyed_job("alice", "k") == (first.job_id, "f" * 64)
    assert store.keyed_job("bob", "k") is None
    assert store.count_by_status() == {"queued": 1}


async def test_racing_submits_in_one_server_make_one_job_and_leave_no_folder(settings):
    """Many submits of one key at once: all pass the look-up before any is written, and
    the store's unique key lets one through."""
    import anyio

    body = {"prompt": "a fox", "image_base64": base64.b64encode(png("green")).decode()}
    async with running_server(settings, keepalive=0.2) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30, trust_env=False) as http:
            answers: list[httpx.Response] = []

            async def send() -> None:
                answers.append(await http.post("/api/generate", json=body, headers={"Idempotency-Key": "race"}))

            async with anyio.create_task_group() as group:
                for _ in range(8):
                    group.start_soon(send)
            assert sorted(r.status_code for r in answers) == [200] * 7 + [202]
            assert len({r.json()["job_id"] for r in answers}) == 1
            assert await jobs_count(http) == 1
            job_id = answers[0].json()["job_id"]
    folders = {name.split("/")[1] for name in data_files(settings.data_dir) if name.startswith("temp_downloads/")}
    assert folders == {f"job_{job_id}"}
    # Some of them passed the look-up before the first was written: the key's unique index
    # turned them back, and they answered the winner's job.
    log_text = (settings.data_dir / "logs" / "veotui.log").read_text()
    assert log_text.count("job.key_taken") + log_text.count("racing another under the same key") >= 1

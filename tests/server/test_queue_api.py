"""The queue control endpoints over HTTP: answers, refusals and the ``queue`` event."""

from __future__ import annotations

import json

import anyio
import pytest

from tests.support.waiting import wait_for
from veotui.server.schemas import Error, JobOut, QueueOut

UNKNOWN = "00000000-0000-4000-8000-000000000000"


async def test_pause_resume_and_status_answer_the_queue_state(http):
    assert (await http.get("/api/queue")).json() == {
        "paused": False,
        "reason": None,
        "length": 0,
        "by_budget": False,
        "spent_today_usd": 0.0,
        "daily_budget_usd": None,
        "budget_override": False,
        "spend_simulated": True,
    }
    paused = await http.post("/api/queue/pause", json={"reason": "new prompts coming"})
    assert paused.status_code == 200 and QueueOut.model_validate(paused.json())
    assert paused.json()["reason"] == "new prompts coming"
    bare = await http.post("/api/queue/pause")  # no body at all
    assert (bare.status_code, bare.json()["paused"], bare.json()["reason"]) == (200, True, None)
    await http.post("/api/generate", json={"prompt": "waits"})
    assert (await http.get("/api/queue")).json()["length"] == 1
    resumed = await http.post("/api/queue/resume")
    assert (resumed.status_code, resumed.json()["paused"]) == (200, False)


@pytest.mark.parametrize(
    "body, status, names",
    [
        ("not json", 400, "not valid JSON"),
        ("[1]", 422, "JSON object"),
        ('{"reason": 3}', 422, "reason"),
        ('{"why": "x"}', 422, "why"),
        (json.dumps({"reason": "x" * 201}), 422, "reason"),
        (json.dumps({"reason": "x" * 5000}), 413, "larger than 4096 bytes; POST /api/queue/pause takes a small"),
    ],
)
async def test_pause_refuses_bad_bodies(http, body, status, names):
    answer = await http.post("/api/queue/pause", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status and names in Error.model_validate(answer.json()).detail
    assert (await http.get("/api/queue")).json()["paused"] is False


async def test_move_answers_the_job_with_its_new_position(http):
    await http.post("/api/queue/pause")
    first, second = [(await http.post("/api/generate", json={"prompt": p})).json()["job_id"] for p in "ab"]
    moved = await http.post(f"/api/move/{second}", json={"to": "top"})
    assert moved.status_code == 200
    job = JobOut.model_validate(moved.json())
    assert (job.job_id, job.queue_position) == (second, 1)
    again = await http.post(f"/api/move/{second}", json={"position": 2})
    assert again.json()["queue_position"] == 2
    assert [j["job_id"] for j in (await http.get("/api/jobs")).json()["queued"]] == [first, second]


@pytest.mark.parametrize(
    "body, status, names",
    [
        ({"to": "sideways"}, 422, "to must be"),
        ({"to": 1}, 422, "to must be"),
        ({"position": 0}, 422, "position"),
        ({"position": -1}, 422, "position"),
        ({"position": "2"}, 422, "position"),
        ({"position": True}, 422, "position"),
        ({"position": 1.5}, 422, "position"),
        ({}, 422, "either to"),
        ({"to": "top", "position": 1}, 422, "either to"),
        ({"where": "top"}, 422, "where"),
    ],
)
async def test_move_refuses_bad_bodies(http, body, status, names):
    await http.post("/api/queue/pause")
    job_id = (await http.post("/api/generate", json={"prompt": "p"})).json()["job_id"]
    answer = await http.post(f"/api/move/{job_id}", json=body)
    assert answer.status_code == status and names in Error.model_validate(answer.json()).detail


async def test_move_refuses_unknown_and_unqueued_jobs(http):
    assert (await http.post(f"/api/move/{UNKNOWN}", json={"to": "top"})).status_code == 404
    assert (await http.post("/api/move/not-a-job", json={"to": "top"})).status_code == 404
    empty = await http.post(f"/api/move/{UNKNOWN}", content=b"", headers={"content-type": "application/json"})
    assert empty.status_code == 422 and "needs a JSON object body" in empty.json()["detail"]
    job_id = (await http.post("/api/generate", json={"prompt": "runs at once"})).json()["job_id"]
    await http.post(f"/api/cancel/{job_id}")
    conflict = await http.post(f"/api/move/{job_id}", json={"to": "top"})
    assert conflict.status_code == 409 and "only queued jobs" in conflict.json()["detail"]


async def test_the_event_stream_says_when_the_queue_pauses_and_resumes(server, http):
    events: list[tuple[str | None, dict]] = []

    async def follow() -> None:
        async with http.stream("GET", "/api/events") as response:
            name = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((name, json.loads(line.removeprefix("data: "))))

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(follow)
        await wait_for(lambda: server.app.state.streams.count == 1, what="the stream to open")
        await http.post("/api/queue/pause", json={"reason": "budget review"})
        await wait_for(lambda: any(name == "queue" for name, _ in events), what="the queue event")
        await http.post("/api/queue/resume")
        await wait_for(lambda: len([1 for name, _ in events if name == "queue"]) == 2, what="the resume event")
        task_group.cancel_scope.cancel()
    states = [QueueOut.model_validate(data) for name, data in events if name == "queue"]
    assert [(s.paused, s.reason) for s in states] == [(True, "budget review"), (False, None)]


async def test_input_images_are_served_by_name_and_nothing_else(http):
    import io

    from PIL import Image

    await http.post("/api/queue/pause")
    picture = io.BytesIO()
    Image.new("RGB", (40, 30), "teal").save(picture, "PNG")
    job_id = (
        await http.post(
            "/api/generate", files={"image": ("a.png", picture.getvalue(), "image/png")}, data={"prompt": "p"}
        )
    ).json()["job_id"]
    served = await http.get(f"/api/jobs/{job_id}/inputs/uploaded_image.jpg")
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(served.content)).size == (40, 30)
    for name in ("last_frame.jpg", "reference_1.jpg", "..%2Fveotui.db", "veotui.db"):
        refused = await http.get(f"/api/jobs/{job_id}/inputs/{name}")
        assert refused.status_code == 404, name
    assert (await http.get(f"/api/jobs/{UNKNOWN}/inputs/uploaded_image.jpg")).status_code == 404

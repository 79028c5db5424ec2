"""The whole job lifecycle driven over HTTP against the real server."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import zipfile

import anyio
import httpx
from PIL import Image

from tests.support.waiting import wait_for
from veotui.server.running import bind

PROCESSING = {"starting", "uploading_image", "generating", "processing", "downloading"}


async def submit(http: httpx.AsyncClient, **fields) -> dict:
    response = await http.post("/api/generate", json={"prompt": "a test scene", **fields})
    assert response.status_code == 202, response.text
    return response.json()


async def status_of(http: httpx.AsyncClient, job_id: str) -> dict:
    response = await http.get(f"/api/status/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def until(http, job_id: str, *statuses: str) -> dict:
    async def reached() -> bool:
        return (await status_of(http, job_id))["status"] in statuses

    await wait_for(reached, what=f"job {job_id[:8]} to be {'/'.join(statuses)}")
    return await status_of(http, job_id)


async def test_two_slots_and_fifo_seen_from_outside(http):
    ids = [(await submit(http, prompt=f"scene {n}"))["job_id"] for n in range(5)]
    most = 0

    async def all_ended() -> bool:
        nonlocal most
        lists = (await http.get("/api/jobs")).json()
        assert len(lists["processing"]) <= 2
        assert all(j["status"] in PROCESSING for j in lists["processing"])
        assert [j["queue_position"] for j in lists["queued"]] == list(range(1, len(lists["queued"]) + 1))
        most = max(most, len(lists["processing"]))
        return len(lists["history"]) == 5

    await wait_for(all_ended, what="five jobs to end")
    assert most == 2
    jobs = [await status_of(http, job_id) for job_id in ids]
    assert {j["status"] for j in jobs} == {"completed"}
    assert [j["started_at"] for j in jobs] == sorted(j["started_at"] for j in jobs)
    history = (await http.get("/api/jobs", params={"limit": 2, "offset": 1})).json()
    assert len(history["history"]) == 2 and history["history_total"] == 5


async def test_job_json_has_every_documented_field(http):
    job = await submit(http, number_of_videos=2, seed=5, negative_prompt="rain")
    for field in [
        "job_id",
        "status",
        "progress",
        "queue_position",
        "prompt",
        "number_of_videos",
        "model",
        "aspect_ratio",
        "duration_seconds",
        "resolution",
        "negative_prompt",
        "seed",
        "has_image",
        "user",
        "created_at",
        "started_at",
        "finished_at",
        "attempts",
        "error",
        "operation",
        "videos",
    ]:
        assert field in job, field
    done = await until(http, job["job_id"], "completed")
    assert [v["url"] for v in done["videos"]] == [
        f"/api/download/{job['job_id']}/video/1",
        f"/api/download/{job['job_id']}/video/2",
    ]
    assert done["progress"] == 100 and done["finished_at"].endswith("Z")


async def test_cancel_retry_delete_answer_as_documented(http, settings):
    first, second = (await submit(http))["job_id"], (await submit(http))["job_id"]
    waiting = (await submit(http, prompt="third"))["job_id"]
    response = await http.post(f"/api/cancel/{waiting}")
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")
    response = await http.post(f"/api/cancel/{waiting}")
    assert response.status_code == 409 and "already ended" in response.json()["detail"]
    response = await http.post(f"/api/retry/{waiting}")
    assert (response.status_code, response.json()["status"]) == (200, "queued")
    response = await http.post(f"/api/retry/{waiting}")
    assert response.status_code == 409 and "only failed or cancelled" in response.json()["detail"]

    await until(http, first, "completed")
    response = await http.delete(f"/api/delete/{first}")
    assert (response.status_code, response.json()) == (200, {"job_id": first, "deleted": True})
    assert (await http.get(f"/api/status/{first}")).status_code == 404
    assert (await http.delete(f"/api/delete/{first}")).status_code == 404
    assert not (settings.jobs_dir / f"job_{first}").exists()
    await until(http, second, "completed")
    await until(http, waiting, "completed")


async def test_multipart_upload_with_an_image(http, settings):
    buffer = io.BytesIO()
    Image.new("RGBA", (40, 30), (0, 128, 255, 100)).save(buffer, "PNG")
    response = await http.post(
        "/api/generate",
        data={"prompt": "pan over the image", "number_of_videos": "1", "duration_seconds": "4"},
        files={"image": ("sky.png", buffer.getvalue(), "image/png")},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["has_image"] and job["duration_seconds"] == 4
    with Image.open(settings.jobs_dir / f"job_{job['job_id']}" / "uploaded_image.jpg") as stored:
        assert (stored.format, stored.size) == ("JPEG", (40, 30))
    await until(http, job["job_id"], "completed")


async def test_zip_download_streams_and_starts_auto_delete(make_settings):
    from veotui.server import running_server

    settings = make_settings(auto_delete_after_download="0.3")
    async with running_server(settings) as server, httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
        job_id = (await submit(http, number_of_videos=2))["job_id"]
        early = await http.get(f"/api/download/{job_id}")
        assert early.status_code == 409 and "only completed jobs" in early.json()["detail"]
        await until(http, job_id, "completed")
        response = await http.get(f"/api/download/{job_id}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/zip"
        assert response.headers["content-disposition"] == f'attachment; filename="veotui_{job_id[:8]}_videos.zip"'
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            assert sorted(archive.namelist()) == ["generated_video_1.mp4", "generated_video_2.mp4"]
            assert archive.read("generated_video_1.mp4")[4:8] == b"ftyp"

        async def deleted() -> bool:
            return (await http.get(f"/api/status/{job_id}")).status_code == 404

        await wait_for(deleted, what="auto-delete after the zip download")
        assert not (settings.jobs_dir / f"job_{job_id}").exists()


async def test_videos_support_range_and_only_full_downloads_count(make_settings):
    from veotui.server import running_server

    settings = make_settings(auto_delete_after_download="0.2")
    async with running_server(settings) as server, httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
        job_id = (await submit(http, number_of_videos=2))["job_id"]
        job = await until(http, job_id, "completed")
        url = f"/api/download/{job_id}/video/1"
        whole = (settings.jobs_dir / f"job_{job_id}" / "generated_video_1.mp4").read_bytes()

        part = await http.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
        assert part.content == whole[100:200]
        assert (await http.get(url, headers={"Range": f"bytes={len(whole) + 10}-"})).status_code == 416
        assert (await http.get(f"/api/download/{job_id}/video/3")).status_code == 404
        assert (await http.get(f"/api/download/{job_id}/video/0")).status_code == 404

        first = await http.get(url)
        assert first.status_code == 200 and first.content == whole
        assert first.headers["content-type"] == "video/mp4"
        assert first.headers["accept-ranges"] == "bytes"
        assert first.headers["content-disposition"].endswith(f'filename="veotui_{job_id[:8]}_generated_video_1.mp4"')
        await anyio.sleep(0.4)
        # Ranges and one of two videos: not a finished download, so the job stays.
        assert (await status_of(http, job_id))["downloaded_at"] is None

        assert (await http.get(f"/api/download/{job_id}/video/2")).status_code == 200

        async def deleted() -> bool:
            return (await http.get(f"/api/status/{job_id}")).status_code == 404

        await wait_for(deleted, what="auto-delete after every video was downloaded")
        assert len(job["videos"]) == 2


async def test_events_stream_jobs_deletions_and_keepalives(server, http):
    events: list[tuple[str | None, dict]] = []
    comments: list[str] = []

    async def follow() -> None:
        async with http.stream("GET", "/api/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            name = None
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    comments.append(line)
                elif line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((name, json.loads(line.removeprefix("data: "))))

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(follow)
        await wait_for(lambda: server.app.state.streams.count == 1, what="the stream to open")
        job_id = (await submit(http))["job_id"]
        await until(http, job_id, "completed")
        await wait_for(lambda: any(d.get("status") == "completed" for _, d in events), what="completed event")
        await http.delete(f"/api/delete/{job_id}")
        await wait_for(lambda: ("deleted", {"job_id": job_id}) in events, what="deleted event")
        await wait_for(lambda: ": keep-alive" in comments, what="a keep-alive")
        task_group.cancel_scope.cancel()
    # The client went away: its subscription is gone too.
    await wait_for(lambda: server.app.state.streams.count == 0, what="the stream to be released")
    assert server.backend.bus.subscriber_count == 0
    statuses = [d["status"] for name, d in events if name == "job" and d["job_id"] == job_id]
    assert statuses[0] == "queued" and statuses[-1] == "completed"
    # A slow client's mailbox may merge stages away, but never shows them out of order.
    lifecycle = ["queued", "starting", "uploading_image", "generating", "processing", "downloading", "completed"]
    assert [lifecycle.index(s) for s in statuses] == sorted(lifecycle.index(s) for s in statuses)


async def test_metrics_count_outcomes_users_and_error_kinds(http):
    good = (await submit(http, user="ana"))["job_id"]
    bad = (await submit(http, prompt="will [fail]", user="ben"))["job_id"]
    await until(http, good, "completed")
    await until(http, bad, "failed")
    metrics = (await http.get("/api/metrics")).json()
    assert metrics["completed"] == 1 and metrics["failed"] == 1 and metrics["success_rate"] == 0.5
    assert metrics["jobs_by_user"] == {"ana": 1, "ben": 1}
    assert sum(metrics["errors_by_kind"].values()) == 1
    for key in ("queue_length", "processing", "cancelled", "avg_processing_seconds"):
        assert key in metrics


async def test_timeline_info_resolve_and_health(http):
    job_id = (await submit(http))["job_id"]
    await until(http, job_id, "completed")
    events = (await http.get(f"/api/jobs/{job_id}/events")).json()["events"]
    assert events[0]["status"] == "queued" and events[-1]["status"] == "completed"
    assert (await http.get(f"/api/resolve/{job_id[:5]}")).json() == {"job_id": job_id}
    info = (await http.get("/api/info")).json()
    assert info["generator"] == "sim" and info["is_simulator"] is True and info["max_concurrent"] == 2
    assert (await http.get("/api/health")).json() == {"status": "ok"}


async def test_connections_the_server_accepts_have_nagle_off():
    """With Nagle's algorithm on, each response on a reused connection stalls ~40 ms for a
    delayed ACK. uvicorn serves the socket ``bind`` made through the loop's ``create_server``;
    asyncio turns Nagle off only on sockets made with ``IPPROTO_TCP``."""
    sock = bind("127.0.0.1", 0)
    nodelay: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            nodelay.append(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        await wait_for(lambda: nodelay, what="the server to accept the connection")
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert nodelay[0] != 0

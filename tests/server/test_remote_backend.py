"""RemoteBackend against real servers: changes() outlives a restart (it reconnects, and the
resync reports what changed meanwhile, deletions included); clear errors when it cannot
connect."""

from __future__ import annotations

import re

import anyio
import pytest
import uvicorn

from tests.support.waiting import wait_for
from veotui.backend.remote import RemoteBackend
from veotui.core.errors import BackendUnavailable, InvalidRequest
from veotui.core.job import Change, Status
from veotui.server import running_server
from veotui.server.running import bind, url_of, uvicorn_config


def free_port() -> int:
    probe = bind("127.0.0.1", 0)
    port = probe.getsockname()[1]
    probe.close()
    return port


async def test_changes_reconnect_and_resync_after_a_restart(settings):
    port = free_port()  # the restarted server comes back at the same URL
    seen: list[Change] = []
    follower = RemoteBackend(f"http://127.0.0.1:{port}")

    async def follow() -> None:
        async for change in follower.changes():
            seen.append(change)

    async with anyio.create_task_group() as task_group:
        async with running_server(settings, port=port, keepalive=0.2):
            await follower.start()
            kept = await follower.submit({"prompt": "kept"})
            doomed = await follower.submit({"prompt": "doomed"})
            task_group.start_soon(follow)
            await wait_for(lambda: any(c.job_id == doomed.job_id for c in seen), what="the first events")

        # The server is down and the follower keeps trying; the engine changes things meanwhile.
        seen.clear()
        async with running_server(settings, port=port, keepalive=0.2) as second:
            await second.backend.delete(doomed.job_id)
            await wait_for(
                lambda: any(c.kind == "deleted" and c.job_id == doomed.job_id for c in seen), what="the resynced delete"
            )
            await wait_for(
                lambda: any(c.job_id == kept.job_id and c.job and c.job.status == Status.COMPLETED for c in seen),
                what="the kept job completing after the restart",
            )
            fresh = await second.backend.submit({"prompt": "after"})
            await wait_for(lambda: any(c.job_id == fresh.job_id for c in seen), what="events on the new stream")
            task_group.cancel_scope.cancel()
    await follower.close()


async def test_start_says_plainly_when_nothing_listens():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BackendUnavailable) as caught:
        await RemoteBackend(url).start()
    assert str(caught.value) == (
        f"no veotui server is listening at {url}; start one with `veotui serve` "
        "or point --remote (VEOTUI_REMOTE) at one"
    )


def test_a_url_without_a_scheme_is_refused_at_once():
    with pytest.raises(InvalidRequest, match="not a server URL"):
        RemoteBackend("127.0.0.1:8765")


@pytest.mark.parametrize(
    "body, status", [(b"<html>hello</html>", 200), (b'{"ok": true}', 200), (b"<html>nope</html>", 404)]
)
async def test_another_kind_of_server_is_named_as_such(body, status):
    """--remote pointed at some other web server: one clear sentence, not a traceback."""

    async def other_server(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": body})

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(other_server))
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(lambda: server.serve(sockets=[sock]))
        await wait_for(lambda: server.started, what="the other server")
        url = url_of(sock)
        with pytest.raises(BackendUnavailable, match=rf"^{re.escape(url)} does not look like a veotui server"):
            await RemoteBackend(url).start()
        server.should_exit = True

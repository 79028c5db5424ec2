"""RemoteBackend against real servers: changes() outlives a restart (it reconnects, and the
resync reports what changed meanwhile, deletions included); clear errors when it cannot
connect."""

from __future__ import annotations

import anyio
import pytest

from tests.conftest import wait_for
from veotui.backend.remote import RemoteBackend
from veotui.errors import BackendUnavailable, InvalidRequest
from veotui.model import Change, Status
from veotui.server import running_server
from veotui.server.running import bind


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

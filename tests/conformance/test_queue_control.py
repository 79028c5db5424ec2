"""Pausing, resuming and reordering the queue, through LocalBackend and RemoteBackend alike
(see conftest), including across a restart."""

from __future__ import annotations

import anyio
import pytest

from tests.conformance.test_backend_conformance import until_status
from tests.support.waiting import wait_for
from veotui.core.errors import Conflict, InvalidRequest, JobNotFound
from veotui.core.job import ACTIVE_STATUSES, Change, Status

UNKNOWN = "00000000-0000-4000-8000-000000000000"


async def queued_ids(backend) -> list[str]:
    lists = await backend.list_jobs()
    assert [j.queue_position for j in lists.queued] == list(range(1, len(lists.queued) + 1))
    return [j.job_id for j in lists.queued]


async def test_a_paused_queue_starts_nothing_but_takes_jobs_and_lets_processing_go_on(backend_for, make_settings):
    async with backend_for(make_settings(sim_seconds=1)) as backend:
        running = await backend.submit({"prompt": "already running"})
        await until_status(backend, running.job_id, *ACTIVE_STATUSES)
        state = await backend.pause("lunch break")
        assert (state.paused, state.reason, state.by_budget) == (True, "lunch break", False)
        waiting = await backend.submit({"prompt": "submitted while paused"})
        assert waiting.status == Status.QUEUED
        await until_status(backend, running.job_id, Status.COMPLETED)
        # A slot is free and a job waits, yet nothing starts.
        await anyio.sleep(0.5)
        assert (await backend.get(waiting.job_id)).status == Status.QUEUED
        state = await backend.queue()
        assert (state.paused, state.reason, state.length) == (True, "lunch break", 1)
        resumed = await backend.resume()
        assert (resumed.paused, resumed.reason) == (False, None)
        await until_status(backend, waiting.job_id, Status.COMPLETED)
        assert (await backend.queue()).length == 0


async def test_the_pause_and_its_reason_survive_a_restart(backend_for, settings):
    async with backend_for(settings) as backend:
        await backend.pause("waiting for the client's approval")
        job = await backend.submit({"prompt": "after the restart"})
    async with backend_for(settings) as backend:
        state = await backend.queue()
        assert (state.paused, state.reason, state.length) == (True, "waiting for the client's approval", 1)
        await anyio.sleep(0.3)
        assert (await backend.get(job.job_id)).status == Status.QUEUED
        await backend.resume()
        await until_status(backend, job.job_id, Status.COMPLETED)
    async with backend_for(settings) as backend:
        assert not (await backend.queue()).paused


async def test_pause_without_a_reason_and_a_second_pause_updates_the_reason(backend):
    assert (await backend.pause()).reason is None
    assert (await backend.pause("  new reason  ")).reason == "new reason"
    assert (await backend.queue()).paused
    with pytest.raises(InvalidRequest, match="reason"):
        await backend.pause("x" * 201)
    assert not (await backend.resume()).paused
    assert not (await backend.resume()).paused  # resuming a running queue is harmless


async def test_moves_reorder_the_queue_and_answer_the_new_position(backend):
    await backend.pause()
    a, b, c, d = [(await backend.submit({"prompt": name})).job_id for name in "abcd"]
    moved = await backend.move(d, to="top")
    assert (moved.job_id, moved.status, moved.queue_position) == (d, Status.QUEUED, 1)
    assert await queued_ids(backend) == [d, a, b, c]
    assert (await backend.move(d, to="down")).queue_position == 2
    assert (await backend.move(b, to="up")).queue_position == 2
    assert await queued_ids(backend) == [a, b, d, c]
    assert (await backend.move(a, to="bottom")).queue_position == 4
    assert (await backend.move(c, position=2)).queue_position == 2
    assert await queued_ids(backend) == [b, c, d, a]
    assert (await backend.move(b, position=99)).queue_position == 4
    assert (await backend.move(c, to="up")).queue_position == 1  # already first: stays
    assert (await backend.move(b, to="down")).queue_position == 4  # already last: stays
    assert await queued_ids(backend) == [c, d, a, b]
    assert (await backend.get(a)).queue_position == 3
    # After the moves, the queue starts in its new order.
    await backend.resume()
    await until_status(backend, b, Status.COMPLETED)
    started = sorted([await backend.get(j) for j in (a, b, c, d)], key=lambda j: j.started_at)
    assert [j.job_id for j in started] == [c, d, a, b]


async def test_moves_are_refused_clearly(backend):
    await backend.pause()
    job = await backend.submit({"prompt": "to move"})
    for bad in ({"to": "sideways"}, {"position": 0}, {"position": -3}, {}, {"to": "top", "position": 1}):
        with pytest.raises(InvalidRequest):
            await backend.move(job.job_id, **bad)
    with pytest.raises(JobNotFound):
        await backend.move(UNKNOWN, to="top")
    await backend.cancel(job.job_id)
    with pytest.raises(Conflict, match="only queued jobs"):
        await backend.move(job.job_id, to="top")


async def test_moves_survive_a_restart(backend_for, settings):
    async with backend_for(settings) as backend:
        await backend.pause()
        a, b, c = [(await backend.submit({"prompt": name})).job_id for name in "abc"]
        await backend.move(c, position=2)
        await backend.move(a, to="bottom")
    async with backend_for(settings) as backend:
        assert await queued_ids(backend) == [c, b, a]


async def test_changes_report_pause_resume_and_the_moved_job(backend):
    seen: list[Change] = []

    async def follow() -> None:
        async for change in backend.changes():
            seen.append(change)

    def queue_changes() -> list[tuple[bool, str | None]]:
        return [(c.queue.paused, c.queue.reason) for c in seen if c.kind == "queue" and c.queue is not None]

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(follow)
        await anyio.sleep(0.3)  # the remote stream connects
        await backend.pause("maintenance")
        await wait_for(lambda: (True, "maintenance") in queue_changes(), what="the pause event")
        await backend.submit({"prompt": "first"})
        second = await backend.submit({"prompt": "second"})
        await backend.move(second.job_id, to="top")
        await wait_for(
            lambda: any(
                c.job_id == second.job_id and c.job and c.job.queue_position == 1 for c in seen if c.kind == "job"
            ),
            what="the moved job's event",
        )
        await backend.resume()
        await wait_for(lambda: queue_changes()[-1] == (False, None), what="the resume event")
        task_group.cancel_scope.cancel()


async def test_input_files_give_the_stored_images_for_edit_and_resubmit(backend, tmp_path):
    import io

    from PIL import Image

    from tests.conformance.test_backend_conformance import png

    await backend.pause()
    job = await backend.submit({"prompt": "with a start frame"}, png(64, 48), "start.png")
    files = await backend.input_files(job.job_id, tmp_path / "inputs")
    assert set(files) == {"uploaded_image.jpg"}
    with Image.open(io.BytesIO(files["uploaded_image.jpg"].read_bytes())) as image:
        assert (image.format, image.size) == ("JPEG", (64, 48))
    again = await backend.submit({"prompt": "the same frame, edited"}, files["uploaded_image.jpg"].read_bytes())
    assert again.has_image and again.job_id != job.job_id
    plain = await backend.submit({"prompt": "no inputs"})
    assert await backend.input_files(plain.job_id, tmp_path / "inputs") == {}
    with pytest.raises(JobNotFound):
        await backend.input_files(UNKNOWN, tmp_path / "inputs")

"""Jobs that wait for jobs, on LocalBackend and on RemoteBackend over the real server alike:
``after`` holds a job queued (saying why) until its job completes, never in a slot; an end
that is not a completion cancels the chain; ``extends`` on an unfinished job chains."""

from __future__ import annotations

import pytest

from tests.conformance.test_backend_conformance import until_status
from veotui.core.errors import Conflict, InvalidRequest
from veotui.core.job import Status


async def test_a_job_after_another_waits_saying_so_then_runs_once_it_completed(backend_for, make_settings):
    async with backend_for(make_settings(sim_seconds=1.5)) as backend:
        first = await backend.submit({"prompt": "first", "duration_seconds": 4})
        second = await backend.submit({"prompt": "second", "duration_seconds": 4, "after": first.job_id})
        assert second.status == Status.QUEUED and second.request.after == first.job_id
        assert second.waiting_for == first.job_id
        assert second.waiting_reason == f"waits for job {first.job_id} to complete"
        free = await backend.submit({"prompt": "free", "duration_seconds": 4})
        # Two slots: the free job starts beside the first; the waiting job takes none.
        await until_status(backend, free.job_id, Status.GENERATING, Status.PROCESSING, Status.COMPLETED)
        waiting = await backend.get(second.job_id)
        if (await backend.get(first.job_id)).status != Status.COMPLETED:
            assert waiting.status == Status.QUEUED and waiting.waiting_reason is not None
        done = await until_status(backend, second.job_id, Status.COMPLETED)
        first_done = await backend.get(first.job_id)
        assert done.started_at is not None and first_done.finished_at is not None
        assert done.started_at >= first_done.finished_at
        assert done.waiting_for is None and done.waiting_reason is None


async def test_cancelling_a_job_cancels_the_chain_waiting_for_it_naming_it(backend_for, make_settings):
    async with backend_for(make_settings(sim_seconds=30)) as backend:
        head = await backend.submit({"prompt": "head"})
        middle = await backend.submit({"prompt": "middle", "after": head.job_id})
        tail = await backend.submit({"prompt": "tail", "after": middle.job_id})
        await backend.cancel(head.job_id)
        middle_now = await until_status(backend, middle.job_id, Status.CANCELLED)
        assert f"job {head.job_id}" in (middle_now.error or "") and "cancelled" in (middle_now.error or "")
        tail_now = await until_status(backend, tail.job_id, Status.CANCELLED)
        assert f"job {middle.job_id}" in (tail_now.error or "")
        # A retry of the head does not bring back the chain; a retry of the middle waits again.
        await backend.retry(head.job_id)
        again = await backend.retry(middle.job_id)
        assert again.status == Status.QUEUED and again.waiting_for == head.job_id


async def test_a_job_waiting_for_a_job_that_fails_is_cancelled_with_an_error_naming_it(backend_for, make_settings):
    async with backend_for(make_settings(sim_seconds=0.5)) as backend:
        doomed = await backend.submit({"prompt": "goes wrong [fail]", "duration_seconds": 4})
        waiting = await backend.submit({"prompt": "after it", "after": doomed.job_id})
        cancelled = await until_status(backend, waiting.job_id, Status.CANCELLED)
        assert cancelled.error == (
            f"job {doomed.job_id}, which this job waited for, failed; it will not complete, so this job was cancelled"
        )
        with pytest.raises(Conflict, match=f"after: job {doomed.job_id} failed; it will not complete"):
            await backend.submit({"prompt": "too late", "after": doomed.job_id})
        with pytest.raises(Conflict, match=f"waits for job {doomed.job_id}, which failed"):
            await backend.retry(waiting.job_id)


async def test_deleting_a_job_cancels_the_jobs_waiting_for_it(backend_for, make_settings):
    async with backend_for(make_settings(sim_seconds=30)) as backend:
        head = await backend.submit({"prompt": "head"})
        waiting = await backend.submit({"prompt": "after it", "after": head.job_id})
        await backend.delete(head.job_id)
        cancelled = await until_status(backend, waiting.job_id, Status.CANCELLED)
        assert f"job {head.job_id}, which this job waited for, was deleted" in (cancelled.error or "")


async def test_after_must_name_a_job_that_exists(backend):
    with pytest.raises(InvalidRequest, match="after: there is no job 00000000-0000-4000-8000-000000000077"):
        await backend.submit({"prompt": "p", "after": "00000000-0000-4000-8000-000000000077"})
    with pytest.raises(InvalidRequest, match="after must be a job id"):
        await backend.submit({"prompt": "p", "after": "yesterday"})


async def test_extending_an_unfinished_job_chains_and_copies_its_video_when_it_completes(backend_for, make_settings):
    async with backend_for(make_settings(sim_seconds=1)) as backend:
        source = await backend.submit({"prompt": "a boat", "duration_seconds": 8})
        part_two = await backend.submit({"prompt": "the boat sails on", "extends_job_id": source.job_id})
        part_three = await backend.submit({"prompt": "it reaches the shore", "extends_job_id": part_two.job_id})
        assert part_two.request.after == source.job_id and part_two.waiting_for == source.job_id
        assert part_three.waiting_for == part_two.job_id
        # Lengths follow the chain: 8 s, then 15 s, then 22 s.
        assert part_two.request.extends is not None and part_two.request.extends.source_seconds == 8
        assert part_three.request.extends is not None and part_three.request.extends.source_seconds == 15
        done = await until_status(backend, part_three.job_id, Status.COMPLETED, Status.FAILED, timeout=120)
        assert done.status == Status.COMPLETED, done.error
        assert (await backend.get(part_two.job_id)).status == Status.COMPLETED


async def test_an_extension_that_would_grow_past_what_veo_extends_is_refused_at_submit(backend_for, make_settings):
    async with backend_for(make_settings(sim_seconds=30)) as backend:
        chain = [await backend.submit({"prompt": "start", "duration_seconds": 8})]
        for n in range(4):  # videos of 8, 15, 22, 29 and 36 s
            chain.append(await backend.submit({"prompt": f"part {n + 2}", "extends_job_id": chain[-1].job_id}))
        with pytest.raises(InvalidRequest, match="is 36.0 s long"):
            await backend.submit({"prompt": "one too many", "extends_job_id": chain[-1].job_id})

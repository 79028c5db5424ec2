"""A finished generation survives a restart of the engine: a retry afterwards still fetches
it again instead of buying it twice, and today's spend counts it once."""

from __future__ import annotations

from tests.support.waiting import wait_for, wait_status
from veotui.backend.local import LocalBackend
from veotui.core.job import Status


async def test_a_retry_after_a_restart_still_reuses_the_finished_operation(settings):
    async with LocalBackend(settings, env={}) as backend:
        job = await backend.submit({"prompt": "made but [unfetchable]", "number_of_videos": 2})

        async def failed() -> bool:
            return (await backend.get(job.job_id)).status == Status.FAILED

        await wait_for(failed, what="the fetch to fail")
        stranded = await backend.get(job.job_id)
        spent = (await backend.queue()).spent_today_usd
    assert stranded.retry_reuses_operation and spent == stranded.estimated_cost_usd

    async with LocalBackend(settings, env={}) as backend:
        kept = await backend.get(job.job_id)
        assert kept.retry_reuses_operation and kept.operation == stranded.operation
        await backend.retry(job.job_id)

        async def completed() -> bool:
            return (await backend.get(job.job_id)).status == Status.COMPLETED

        await wait_for(completed, what="the retry to complete")
        done = await backend.get(job.job_id)
        assert done.operation == stranded.operation and len(done.videos) == 2
        assert (await backend.queue()).spent_today_usd == spent
        operations = list((settings.sim_dir / "operations").glob("*.json"))
    assert len(operations) == 1


async def test_a_retry_that_only_fetches_goes_to_the_front_and_one_that_generates_to_the_back(settings):
    async with LocalBackend(settings, env={}) as backend:
        stranded = await backend.submit({"prompt": "made but [unfetchable]"})
        await wait_status(backend, stranded.job_id, Status.FAILED)
        await backend.pause("a long queue of paid generations")
        waiting = [(await backend.submit({"prompt": f"paid {n}"})).job_id for n in range(3)]
        cancelled = waiting.pop()
        await backend.cancel(cancelled)

        fetches = await backend.retry(stranded.job_id)
        assert fetches.retry_reuses_operation and fetches.queue_position == 1
        generates = await backend.retry(cancelled)
        assert not generates.retry_reuses_operation and generates.queue_position == 4

        lists = await backend.list_jobs()
        assert [job.job_id for job in lists.queued] == [stranded.job_id, *waiting, cancelled]
        timeline = await backend.timeline(stranded.job_id)
        assert any("no new charge" in (event.detail or "") for event in timeline)

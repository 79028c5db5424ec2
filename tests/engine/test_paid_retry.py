"""A finished generation survives a restart of the engine: a retry afterwards still fetches
it again instead of buying it twice, and today's spend counts it once."""

from __future__ import annotations

from tests.support.waiting import wait_for
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

"""The daily budget, through LocalBackend and RemoteBackend alike (see conftest). The
simulator prices jobs with the same table as Veo: one default job (8 s, 720p, with sound,
veo-3.1-generate-001) is estimated at $3.20, a 4 s one at $1.60."""

from __future__ import annotations

import anyio

from tests.conformance.test_backend_conformance import until_status
from tests.support.waiting import wait_for
from veotui.core.job import ACTIVE_STATUSES, Status


async def test_a_budget_that_holds_the_next_job_pauses_the_queue_and_says_why(backend_for, make_settings):
    async with backend_for(make_settings(daily_budget_usd="5", sim_seconds="0.2")) as backend:
        first = await backend.submit({"prompt": "fits the budget"})
        second = await backend.submit({"prompt": "would pass it"})
        await until_status(backend, first.job_id, Status.COMPLETED)

        async def held() -> bool:
            return (await backend.queue()).by_budget

        await wait_for(held, what="the budget to pause the queue")
        state = await backend.queue()
        assert state.paused and state.by_budget
        assert state.reason == "daily budget $5.00: $3.20 spent, next job $3.20"
        assert (state.daily_budget_usd, state.spent_today_usd, state.spend_simulated) == (5.0, 3.2, True)
        assert not state.budget_override
        await anyio.sleep(0.3)
        assert (await backend.get(second.job_id)).status == Status.QUEUED
        # Resume sets the budget aside for the rest of the day, and says so.
        resumed = await backend.resume()
        assert (resumed.paused, resumed.budget_override) == (False, True)
        await until_status(backend, second.job_id, Status.COMPLETED)
        third = await backend.submit({"prompt": "over budget, but overridden today"})
        await until_status(backend, third.job_id, Status.COMPLETED)
        assert (await backend.queue()).spent_today_usd == 9.6


async def test_a_budget_that_does_not_hold_lets_every_job_run(backend_for, make_settings):
    async with backend_for(make_settings(daily_budget_usd="10")) as backend:
        jobs = [await backend.submit({"prompt": f"job {n}", "duration_seconds": 4}) for n in range(3)]
        for job in jobs:
            await until_status(backend, job.job_id, Status.COMPLETED)
        state = await backend.queue()
        assert (state.paused, state.reason, state.spent_today_usd) == (False, None, 4.8)


async def test_raising_the_budget_lets_the_queue_continue_after_a_restart(backend_for, make_settings):
    async with backend_for(make_settings(daily_budget_usd="2")) as backend:
        first = await backend.submit({"prompt": "a short one", "duration_seconds": 4})
        held = await backend.submit({"prompt": "a long one"})
        await until_status(backend, first.job_id, Status.COMPLETED)

        async def paused() -> bool:
            return (await backend.queue()).by_budget

        await wait_for(paused, what="the budget to pause the queue")
        assert (await backend.queue()).reason == "daily budget $2.00: $1.60 spent, next job $3.20"
    async with backend_for(make_settings(daily_budget_usd="2")) as backend:
        state = await backend.queue()
        assert state.paused and state.by_budget, "the budget's pause survives a restart"
        assert (await backend.get(held.job_id)).status == Status.QUEUED
    async with backend_for(make_settings(daily_budget_usd="20")) as backend:
        await until_status(backend, held.job_id, *ACTIVE_STATUSES, Status.COMPLETED)
        assert not (await backend.queue()).paused


async def test_without_a_budget_the_queue_reports_the_spend_only(backend):
    job = await backend.submit({"prompt": "counted", "duration_seconds": 4})
    await until_status(backend, job.job_id, Status.COMPLETED)
    state = await backend.queue()
    assert (state.daily_budget_usd, state.spent_today_usd, state.budget_override) == (None, 1.6, False)

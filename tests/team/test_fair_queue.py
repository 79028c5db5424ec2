"""The fair queue and each user's budget and limit, on the real engine over both stores
(SQLite, and PostgreSQL, where a job starts through the fleet's claim): a user at their limit
or past their budget waits alone, with a sentence saying why."""

from __future__ import annotations

import dataclasses

from tests.support.fakes import ControlledGenerator
from tests.support.waiting import wait_for, wait_status
from veotui.backend.local import LocalBackend
from veotui.core.access import Actor, Role, UserEntry
from veotui.core.job import Status


def team_of(**users: UserEntry) -> dict[str, UserEntry]:
    return {name: dataclasses.replace(user, name=name) for name, user in users.items()}


def user(**limits: object) -> UserEntry:
    return UserEntry("", "0" * 64, Role.OPERATOR, **limits)  # type: ignore[arg-type]


async def started(backend: LocalBackend, generator: ControlledGenerator, count: int) -> list[str]:
    await wait_for(lambda: len(generator.submitted) >= count, what=f"{count} submit(s)")
    return list(generator.submitted)


async def test_fair_gives_the_next_slot_to_the_user_with_fewer_jobs_processing(make_settings, store_location):
    settings = make_settings(queue_policy="fair", max_concurrent=2, store=store_location)
    generator = ControlledGenerator()
    async with LocalBackend(settings, generator=generator, env={}) as engine:
        await engine.pause()
        alice = engine.acting_for(Actor("alice", Role.OPERATOR))
        bob = engine.acting_for(Actor("bob", Role.OPERATOR))
        hers = [(await alice.submit({"prompt": f"a{n}"})).job_id for n in range(5)]
        his = (await bob.submit({"prompt": "b"})).job_id
        await engine.resume()
        # FIFO would start a0 and a1; fair starts a0, then bob's one job.
        assert await started(engine, generator, 2) == [hers[0], his]
        generator.finish(hers[0])
        await wait_status(engine, hers[0], Status.COMPLETED)
        assert (await started(engine, generator, 3))[2] == hers[1]


async def test_fifo_stays_the_queue_order(make_settings, store_location):
    generator = ControlledGenerator()
    async with LocalBackend(
        make_settings(max_concurrent=2, store=store_location), generator=generator, env={}
    ) as engine:
        await engine.pause()
        alice = engine.acting_for(Actor("alice", Role.OPERATOR))
        bob = engine.acting_for(Actor("bob", Role.OPERATOR))
        hers = [(await alice.submit({"prompt": f"a{n}"})).job_id for n in range(3)]
        await bob.submit({"prompt": "b"})
        await engine.resume()
        assert await started(engine, generator, 2) == hers[:2]


async def test_a_user_at_their_limit_waits_alone_and_says_why(make_settings, store_location):
    settings = make_settings(max_concurrent=2, store=store_location).replace(
        users=team_of(alice=user(max_concurrent=1))
    )
    generator = ControlledGenerator()
    async with LocalBackend(settings, generator=generator, env={}) as engine:
        await engine.pause()
        alice = engine.acting_for(Actor("alice", Role.OPERATOR))
        bob = engine.acting_for(Actor("bob", Role.OPERATOR))
        hers = [(await alice.submit({"prompt": f"a{n}"})).job_id for n in range(3)]
        his = (await bob.submit({"prompt": "b"})).job_id
        await engine.resume()
        # The second slot goes to bob's job, behind two of alice's in the queue.
        assert await started(engine, generator, 2) == [hers[0], his]
        waiting = await engine.get(hers[1])
        assert waiting.status == Status.QUEUED
        assert waiting.waiting_reason is not None and "alice's limit: 1 of 1" in waiting.waiting_reason
        assert (await engine.queue()).paused is False
        generator.finish(his)
        await wait_status(engine, his, Status.COMPLETED)
        assert len(generator.submitted) == 2  # a free slot, but alice is still at her limit
        generator.finish(hers[0])
        assert (await started(engine, generator, 3))[2] == hers[1]


async def test_a_user_past_their_budget_waits_while_the_others_go_on(make_settings, store_location):
    settings = make_settings(max_concurrent=2, store=store_location).replace(
        users=team_of(alice=user(daily_budget_usd=1.0))
    )
    generator = ControlledGenerator()
    async with LocalBackend(settings, generator=generator, env={}) as engine:
        await engine.pause()
        alice = engine.acting_for(Actor("alice", Role.OPERATOR))
        bob = engine.acting_for(Actor("bob", Role.OPERATOR))
        costly = (await alice.submit({"prompt": "a", "duration_seconds": 8})).job_id
        his = (await bob.submit({"prompt": "b"})).job_id
        await engine.resume()
        await started(engine, generator, 1)
        assert generator.submitted == [his]
        job = await engine.get(costly)
        assert job.status == Status.QUEUED
        assert job.waiting_reason is not None
        assert job.waiting_reason.startswith("alice's daily budget $1.00: $0.00 spent today, next job $")
        assert (await engine.queue()).paused is False
        me = await alice.me()
        assert (me.user, me.daily_budget_usd, me.spent_today_usd) == ("alice", 1.0, 0.0)


async def test_a_paused_queue_is_the_waiting_reason(make_settings, store_location):
    async with LocalBackend(make_settings(store=store_location), generator=ControlledGenerator(), env={}) as engine:
        await engine.pause("lunch")
        job = await engine.submit({"prompt": "p"})
        assert job.waiting_reason == "the queue is paused: lunch"
        await engine.resume()
        assert (await engine.get(job.job_id)).waiting_reason is None

"""The follower on its own: a real LocalBackend, a Board, no widgets."""

from __future__ import annotations

import asyncio

from tests.support.waiting import wait_for
from veotui.backend.local import LocalBackend
from veotui.core.job import Change, Status
from veotui.tui.board import HISTORY, PROCESSING, QUEUE, Board
from veotui.tui.follow import Follower


async def test_the_board_follows_submissions_and_the_filter(make_settings):
    settings = make_settings(max_concurrent=1, sim_seconds=30)
    board = Board()
    loads: list[int] = []
    seen: list[tuple[str, bool]] = []
    async with LocalBackend(settings, env={}) as backend:
        follower = Follower(
            backend,
            board,
            on_change=lambda change, was_live: seen.append((change.job_id, was_live)),
            on_loaded=lambda: loads.append(1),
        )
        task = asyncio.create_task(follower.run())
        try:
            await wait_for(lambda: bool(loads), what="the first read")
            cat = await backend.submit({"prompt": "a cat"})
            dog = await backend.submit({"prompt": "a dog"})
            await wait_for(lambda: board.panel_of(dog.job_id) == QUEUE, what="the dog queued")
            assert board.panel_of(cat.job_id) == PROCESSING
            assert (dog.job_id, False) in seen
            board.filter_text = "dog"
            follower.reload(offset=0)
            await wait_for(lambda: board.panel_of(cat.job_id) is None, what="the cat filtered out")
            assert board.queue_length == 1 and board.processing_count == 1
            await backend.cancel(dog.job_id)
            await wait_for(lambda: board.panel_of(dog.job_id) == HISTORY, what="the dog in history")
            assert (dog.job_id, True) in seen
            found = board.find(dog.job_id)
            assert found is not None and found.status == Status.CANCELLED
        finally:
            task.cancel()


class CountingReads:
    """A backend whose ``list_jobs`` calls are recorded (the real one answers them)."""

    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend
        self.reads: list[dict[str, object]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._backend, name)

    async def list_jobs(self, **kwargs: object) -> object:
        self.reads.append(kwargs)
        return await self._backend.list_jobs(**kwargs)  # type: ignore[arg-type]  # passed on as the follower gave them


async def test_the_head_leaving_a_long_queue_reads_only_the_jobs_after_the_window(make_settings):
    settings = make_settings(max_concurrent=1, sim_seconds=30)
    board = Board(queue_limit=3)
    loads: list[int] = []
    async with LocalBackend(settings, env={}) as backend:
        counting = CountingReads(backend)
        follower = Follower(counting, board, on_loaded=lambda: loads.append(1))  # type: ignore[arg-type]  # a stand-in for the backend
        task = asyncio.create_task(follower.run())
        try:
            await wait_for(lambda: bool(loads), what="the first read")
            jobs = [await backend.submit({"prompt": f"shot {n}"}) for n in range(6)]
            waiting = jobs[1:]
            await wait_for(lambda: board.queued_total == 5, what="five queued")
            await wait_for(lambda: list(board.queued) == [j.job_id for j in waiting[:3]], what="the window")
            counting.reads.clear()
            await backend.cancel(waiting[0].job_id)
            expected = [j.job_id for j in waiting[1:4]]
            await wait_for(lambda: list(board.queued) == expected, what="the window refilled")
            assert [job.queue_position for job in board.queued.values()] == [1, 2, 3]
            assert board.queued_total == 4
            # One read, of the queue after the window's last job only.
            assert counting.reads == [{"history_limit": 0, "queue_limit": 2, "queue_offset": 1}]
        finally:
            task.cancel()


async def test_a_job_that_arrives_already_ended_is_news_only_if_it_ended_while_followed(make_settings):
    """A slow subscriber gets only a job's latest change: a job that failed at once reaches
    the board as failed, never having been live there, and is still announced."""
    settings = make_settings(max_concurrent=1, sim_seconds=30)
    seen: list[tuple[str, bool]] = []
    async with LocalBackend(settings, env={}) as backend:
        old = await backend.submit({"prompt": "ended before the app looked"})
        old = await backend.cancel(old.job_id)
        follower = Follower(backend, Board(), on_change=lambda change, was_live: seen.append((change.job_id, was_live)))
        fresh = await backend.submit({"prompt": "ends at once"})
        fresh = await backend.cancel(fresh.job_id)
        follower.apply(Change(kind="job", job_id=old.job_id, job=old))
        follower.apply(Change(kind="job", job_id=fresh.job_id, job=fresh))
        # The same change again: the board shows it ended now, so it is no news twice.
        follower.apply(Change(kind="job", job_id=fresh.job_id, job=fresh))
    assert seen == [(old.job_id, False), (fresh.job_id, True), (fresh.job_id, False)]

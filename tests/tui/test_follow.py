"""The follower on its own: a real LocalBackend, a Board, no widgets."""

from __future__ import annotations

import asyncio

from tests.support.waiting import wait_for
from veotui.backend.local import LocalBackend
from veotui.model import Status
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
            assert board.find(dog.job_id).status == Status.CANCELLED
        finally:
            task.cancel()

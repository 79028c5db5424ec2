"""The group grid under Pilot: it follows the group live (a tile gets its picture when its
job completes, a job joining the group gets a tile), arrows move between tiles, enter opens
details, and g on a job of no group says so."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from tests.tui.conftest import QUEUE, running_app, wait_for, wait_status
from tests.tui.test_pilot import select
from veotui.core.job import Status
from veotui.tui.details import DetailsScreen
from veotui.tui.grid import GroupScreen, Tile


@pytest.fixture
def settings(make_settings):
    return make_settings(pictures="halfblocks", max_concurrent=1, sim_seconds=1)


async def test_the_grid_follows_its_group_live(settings):
    async with running_app(settings) as (app, pilot):
        await app.backend.pause("hold the group")
        first = await app.backend.submit({"prompt": "a kite", "seed": 1, "duration_seconds": 4, "group": "kites"})
        second = await app.backend.submit({"prompt": "a kite", "seed": 2, "duration_seconds": 4, "group": "kites"})
        await select(app, pilot, QUEUE, first.job_id)
        await pilot.press("g")
        await wait_for(lambda: isinstance(app.screen, GroupScreen), what="the grid")
        grid = app.screen
        assert isinstance(grid, GroupScreen)
        await wait_for(lambda: len(grid.tiles) == 2, what="two tiles")
        assert app.focused is grid.tiles[first.job_id]
        status = str(grid.tiles[second.job_id].query_one(".tile-status", Static).content)
        assert status == "queued #2"
        assert [tile.caption for tile in grid.tiles.values()] == ["seed=1", "seed=2"]

        await app.backend.resume()
        await wait_for(lambda: all(tile.picture_shown for tile in grid.tiles.values()), what="a picture on each tile")
        assert str(grid.tiles[first.job_id].query_one(".tile-status", Static).content) == ""
        joined = await app.backend.submit({"prompt": "a kite", "seed": 3, "duration_seconds": 4, "group": "kites"})
        await wait_for(lambda: joined.job_id in grid.tiles, what="a tile for the job that joined")
        await wait_for(lambda: len(grid.tiles) == 3, what="three tiles")

        await pilot.press("right")
        assert isinstance(app.focused, Tile) and app.focused.job.job_id == second.job_id
        await pilot.press("left")
        assert app.focused.job.job_id == first.job_id
        await pilot.press("right", "enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen), what="the details")
        details = app.screen
        assert isinstance(details, DetailsScreen) and details.job_id == second.job_id
        await pilot.press("escape")
        await wait_for(lambda: app.screen is grid, what="back to the grid")
        await wait_status(app, joined.job_id, Status.COMPLETED)
        await app.backend.delete_group("kites")
        await wait_for(lambda: not grid.tiles, what="the grid to empty")
        assert "no jobs" in str(grid.query_one("#group-title", Static).content)


async def test_g_on_a_job_of_no_group_says_so(settings):
    async with running_app(settings) as (app, pilot):
        await app.backend.pause("hold it")
        job = await app.backend.submit({"prompt": "alone"})
        await select(app, pilot, QUEUE, job.job_id)
        await pilot.press("g")
        await pilot.pause()
        assert not isinstance(app.screen, GroupScreen)
        assert any("no group" in str(n.message) for n in app._notifications)

"""The header says "storage full" while the engine cannot write, and stops saying it once
the disk accepts writes again."""

from __future__ import annotations

import pytest

from tests.support.refusing import refuse_commits
from tests.tui.conftest import running_app, wait_for
from veotui.errors import StorageUnavailable


async def test_header_shows_storage_full_until_the_disk_accepts_writes(settings):
    async with running_app(settings) as (app, pilot):
        screen = app.main_screen
        assert "storage" not in str(screen.header.content)
        connection = refuse_commits(app.backend.store)
        connection.full = True
        with pytest.raises(StorageUnavailable):
            await app.backend.submit({"prompt": "no room"})
        screen.check_storage()
        await wait_for(lambda: "storage full" in str(screen.header.content), what="storage full in the header")

        connection.full = False
        screen.check_storage()
        await wait_for(lambda: "storage" not in str(screen.header.content), what="the header to clear")

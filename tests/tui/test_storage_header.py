"""The header says "storage full" while the engine cannot write, and stops saying it once
the disk accepts writes again."""

from __future__ import annotations

import pytest

from tests.support.refusing import refuse_commits
from tests.tui.conftest import running_app, wait_for
from veotui.core.errors import StorageUnavailable


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


async def test_header_shows_a_database_found_damaged_after_start_and_keeps_showing_it(settings):
    from veotui.datadir.health import DAMAGED

    async with running_app(settings) as (app, pilot):
        screen = app.main_screen
        guard = app.backend.store.guard
        guard.degrade(DAMAGED, "veotui.db is damaged (quick_check: page 7 is never used)")
        guard.recovered()  # a writable disk does not mend it
        screen.check_storage()
        await wait_for(lambda: "storage damaged" in str(screen.header.content), what="storage damaged in the header")
        assert app.backend.storage_state().state == DAMAGED


async def test_a_stored_pause_reason_reaches_the_header_as_visible_escapes(settings):
    from veotui.store.sqlite import SqliteStore

    # Stored as an older veotui accepted it: the pause reason was not checked then.
    store = SqliteStore(settings.db_path)
    store.set_paused(True, "lunch\x1b]0;owned\x07\x1b[2J\r\nbreak")
    store.close()
    async with running_app(settings) as (app, pilot):
        header = app.main_screen.header
        await wait_for(lambda: "paused" in str(header.content), what="the pause in the header")
        shown = str(header.content)
        assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown
        assert "lunch\\x1b]0;owned\\x07\\x1b[2J\\r\\nbreak" in shown

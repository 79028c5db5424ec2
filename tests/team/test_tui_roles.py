"""The TUI of a team member, driving a real server with per-user tokens: the header names the
user and role, the keys the role may not use on the selected job are disabled in the footer
and the palette and say why when pressed, and an Owner column appears once two users have
jobs. The server still refuses on its own: the TUI only shows its rules."""

from __future__ import annotations

from pathlib import Path

from tests.team.test_roles_api import ADMIN, CONFIG, TOKENS
from tests.tui.conftest import QUEUE, RecordingApp, running_app, wait_for, wait_shown
from veotui.backend.remote import RemoteBackend
from veotui.core.job import Status
from veotui.server import running_server
from veotui.tui.app import VeotuiApp
from veotui.tui.tables import OWNER_COLUMN


def footer_keys(app: VeotuiApp) -> dict[str, bool]:
    """Each key's action and whether it is enabled (the footer dims those that are not)."""
    return {active.binding.action: active.enabled for active in app.screen.active_bindings.values()}


def notices(app: RecordingApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app.notices]


async def test_an_operator_sees_whose_job_it_is_and_may_not_touch_another_users(make_settings, tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    settings = make_settings(config=str(config), token=ADMIN)
    async with running_server(settings, keepalive=0.2) as server:
        async with (
            RemoteBackend(server.url, ADMIN) as admin,
            RemoteBackend(server.url, TOKENS["alice"]) as alice,
            RemoteBackend(server.url, TOKENS["bob"]) as bob,
        ):
            await admin.pause("a quiet queue for the test")
            hers = await alice.submit({"prompt": "alice's sunrise"})
            app = RecordingApp(bob, settings)
            async with app.run_test(size=(150, 40)) as pilot:
                screen = app.main_screen
                await wait_for(lambda: screen.loaded.is_set(), what="the first snapshot")
                await wait_for(lambda: "bob · operator" in str(screen.header.content), what="the header's user")
                queue = screen.tables[QUEUE]
                await wait_shown(app, QUEUE, hers.job_id)
                # One user's jobs: no Owner column.
                assert OWNER_COLUMN not in queue.columns
                # The first panel with jobs takes the focus: In Queue.
                await wait_for(lambda: screen.active_panel == QUEUE, what="the queue panel")
                queue.select(hers.job_id)
                await pilot.pause()
                keys = footer_keys(app)
                assert keys["cancel"] is False and keys["delete"] is False
                assert keys["new_job"] is True  # bob may submit his own

                # Pressing a disabled key says why, and the job stays as it was.
                await pilot.press("c")
                await wait_for(
                    lambda: any("alice's job: only alice or an admin may cancel it" in n for n in notices(app))
                )
                assert (await admin.get(hers.job_id)).status == Status.QUEUED

                # The palette shows the same refusal and says it when picked.
                commands = {c.title: c.help for c in app.get_system_commands(screen)}
                assert commands["Delete job"] == "Not allowed: alice's job: only alice or an admin may delete it"
                assert commands["Pause or resume the queue"].startswith("Not allowed: only an admin may resume")
                await screen.run_from_palette("delete")
                await wait_for(lambda: any("Delete job: not allowed" in n for n in notices(app)))
                assert (await admin.get(hers.job_id)).status == Status.QUEUED

                # Bob's own job: his keys apply, and two owners bring the Owner column.
                his = await bob.submit({"prompt": "bob's sunset"})
                await wait_shown(app, QUEUE, his.job_id)
                await wait_for(lambda: OWNER_COLUMN in queue.columns, what="the Owner column")
                assert [str(cell) for cell in queue.get_row(hers.job_id)][-1] == "alice"
                queue.select(his.job_id)
                await pilot.pause()
                assert footer_keys(app)["cancel"] is True
                await pilot.press("c")
                await wait_for(lambda: _status(screen, his.job_id), what="bob's job cancelled")
                assert (await admin.get(his.job_id)).status == Status.CANCELLED
                assert (await admin.get(hers.job_id)).status == Status.QUEUED


async def test_a_viewer_may_look_and_save_but_not_submit(make_settings, tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    settings = make_settings(config=str(config), token=ADMIN)
    async with running_server(settings, keepalive=0.2) as server:
        async with RemoteBackend(server.url, TOKENS["vic"]) as vic:
            app = RecordingApp(vic, settings)
            async with app.run_test(size=(150, 40)) as pilot:
                screen = app.main_screen
                await wait_for(lambda: "vic · viewer" in str(screen.header.content), what="the header's user")
                await pilot.pause()
                assert footer_keys(app)["new_job"] is False
                await pilot.press("n")
                await wait_for(lambda: any("you may look and download, not submit" in n for n in notices(app)))
                assert app.screen is screen  # no form opened


async def test_the_local_tui_is_the_admin(make_settings):
    async with running_app(make_settings()) as (app, pilot):
        screen = app.main_screen
        await wait_for(lambda: screen.me is not None, what="who the TUI acts for")
        assert screen.me is not None and screen.me.role.value == "admin"
        assert footer_keys(app)["new_job"] is True and footer_keys(app)["pause"] is True
        assert "· admin" not in str(screen.header.content)  # the local header stays as it was


def _status(screen, job_id: str) -> bool:
    job = screen.board.find(job_id)
    return job is not None and job.status == Status.CANCELLED

"""The same TUI over ``--remote``: a real server (uvicorn on a loopback port) and the app on
a RemoteBackend. Changes arrive over ``/api/events``."""

from __future__ import annotations

from tests.tui.conftest import HISTORY, PROCESSING, wait_for, wait_shown, wait_status
from veotui.backend.remote import RemoteBackend
from veotui.model import Status
from veotui.server import running_server
from veotui.tui.app import VeotuiApp
from veotui.tui.form import NewJobScreen
from veotui.tui.screen import MainScreen


async def test_the_tui_drives_a_server(make_settings):
    settings = make_settings(sim_seconds=1)
    async with running_server(settings, keepalive=0.2) as server:
        async with RemoteBackend(server.url) as backend:
            app = VeotuiApp(backend, settings)
            async with app.run_test(size=(120, 40)) as pilot:
                await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
                header = str(app.main_screen.query_one("#header").content)
                assert server.url in header
                await pilot.press("n")
                await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
                await pilot.press(*"over the wire")
                await pilot.press("ctrl+s")
                await wait_for(lambda: isinstance(app.screen, MainScreen), what="the form to close")
                lists = await backend.list_jobs()
                job = next(j for j in [*lists.processing, *lists.queued, *lists.history])
                await wait_shown(app, PROCESSING, job.job_id)
                await wait_status(app, job.job_id, Status.COMPLETED)
                await wait_shown(app, HISTORY, job.job_id)
                # Remote mode quits without asking: the server keeps the jobs running.
                await pilot.press("q")
                await wait_for(lambda: not app.is_running, what="the app to exit")

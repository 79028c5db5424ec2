"""The same TUI over ``--remote``: a real server (uvicorn on a loopback port) and the app on
a RemoteBackend. Changes arrive over ``/api/events``."""

from __future__ import annotations

from contextlib import AsyncExitStack

from textual.widgets import Sparkline, Static

from tests.server.test_remote_backend import free_port
from tests.tui.conftest import HISTORY, PROCESSING, wait_for, wait_shown, wait_status
from veotui.backend.remote import RemoteBackend
from veotui.core.job import Status
from veotui.server import running_server
from veotui.tui.app import VeotuiApp
from veotui.tui.form import NewJobScreen
from veotui.tui.metrics import MetricsScreen
from veotui.tui.screen import MainScreen


async def test_the_tui_drives_a_server(make_settings):
    settings = make_settings(sim_seconds=1)
    async with running_server(settings, keepalive=0.2) as server:
        async with RemoteBackend(server.url) as backend:
            app = VeotuiApp(backend, settings)
            async with app.run_test(size=(120, 40)) as pilot:
                await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
                header = str(app.main_screen.query_one("#header", Static).content)
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


async def test_the_header_says_when_the_server_is_gone_and_when_it_is_back(make_settings):
    settings = make_settings(sim_seconds=1)
    port = free_port()  # the restarted server comes back at the same URL
    first = AsyncExitStack()
    server = await first.enter_async_context(running_server(settings, port=port, keepalive=0.2))
    async with RemoteBackend(server.url) as backend:
        app = VeotuiApp(backend, settings)
        async with app.run_test(size=(120, 40)):
            screen = app.main_screen
            await wait_for(lambda: screen.loaded.is_set(), what="the first snapshot")
            assert "disconnected" not in str(screen.header.content)
            await first.aclose()
            await wait_for(lambda: "disconnected — retrying" in str(screen.header.content), what="the lost server")
            assert screen.query_one("#panels").has_class("-stale")
            async with running_server(settings, port=port, keepalive=0.2) as second:
                job = await second.backend.submit({"prompt": "made while the TUI was away"})
                await wait_for(lambda: "disconnected" not in str(screen.header.content), what="the server back")
                assert not screen.query_one("#panels").has_class("-stale")
                await wait_for(lambda: screen.board.find(job.job_id) is not None, what="the job made meanwhile")


async def test_the_metrics_screen_works_over_the_api_and_updates_live(make_settings):
    settings = make_settings(sim_seconds=0.3)
    async with running_server(settings, keepalive=0.2) as server:
        async with RemoteBackend(server.url) as backend:
            first = await backend.submit({"prompt": "measured [fail]"})
            await wait_for(lambda: _ended(backend, first.job_id), what="the first job to end")
            app = VeotuiApp(backend, settings)
            async with app.run_test(size=(110, 42)) as pilot:
                await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
                await pilot.press("m")
                await wait_for(lambda: isinstance(app.screen, MetricsScreen), what="the metrics screen")
                screen = app.screen
                assert isinstance(screen, MetricsScreen)
                await wait_for(lambda: screen.loaded, what="the first figures")
                assert screen.figures["failed"] == 1 and screen.figures["completed"] == 0
                assert len(screen.series) == 24 and screen.series[-1]["failed"] == 1
                assert sum(screen.query_one("#finished").query_one("Sparkline", Sparkline).data or ()) == 1
                # A job that completes while the screen is open shows up without a key press.
                await backend.submit({"prompt": "measured live"})
                await wait_for(lambda: screen.figures.get("completed") == 1, what="the live update")
                assert screen.series[-1]["completed"] == 1
                await pilot.press("escape")
                await wait_for(lambda: isinstance(app.screen, MainScreen), what="back to the main screen")


async def _ended(backend, job_id: str) -> bool:
    return (await backend.get(job_id)).status.is_final

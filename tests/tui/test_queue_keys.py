"""The queue control keys under Pilot (p pause/resume, K J T move, e edit and resubmit), the
header's pause and spend, on a real LocalBackend and the simulator."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from textual.widgets import Input, Select, Static, TextArea

from tests.tui.conftest import HISTORY, PROCESSING, QUEUE, running_app, wait_for, wait_shown, wait_status
from tests.tui.test_pilot import captured_notices, select, static_text
from veotui.core.job import Status
from veotui.tui.details import DetailsScreen
from veotui.tui.form import NewJobScreen
from veotui.tui.screen import MainScreen


def header_text(app) -> str:
    return str(app.main_screen.header.content)


async def test_p_pauses_and_resumes_the_queue_and_the_header_says_so(settings):
    async with running_app(settings) as (app, pilot):
        await pilot.press("p")
        await wait_for(lambda: " paused" in header_text(app), what="the header to say paused")
        assert (await app.backend.queue()).paused
        job = await app.backend.submit({"prompt": "waits for the resume"})
        await wait_shown(app, QUEUE, job.job_id)
        await pilot.pause(0.3)
        assert (await app.backend.get(job.job_id)).status == Status.QUEUED
        await pilot.press("p")
        await wait_for(lambda: " paused" not in header_text(app), what="the header to drop paused")
        await wait_status(app, job.job_id, Status.COMPLETED)


async def test_a_pause_made_elsewhere_reaches_the_header_with_its_reason(settings):
    async with running_app(settings) as (app, pilot):
        await app.backend.pause("the client is reviewing")
        await wait_for(lambda: "paused (the client is reviewing)" in header_text(app), what="the pause and its reason")
        await app.backend.resume()
        await wait_for(lambda: "paused" not in header_text(app), what="the resume")


async def test_capital_k_j_t_move_the_selected_queued_job(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        await app.backend.submit({"prompt": "holds the slot"})
        a, b, c = [(await app.backend.submit({"prompt": name})).job_id for name in "abc"]
        queue = app.main_screen.tables[QUEUE]

        def order() -> list[str]:
            """The jobs as the panel lists them, top to bottom."""
            shown = queue.row_keys
            return [job_id for job_id in shown if job_id in (a, b, c)]

        await wait_shown(app, QUEUE, c)
        await select(app, pilot, QUEUE, c)
        await pilot.press("T")
        await wait_for(lambda: order() == [c, a, b], what="c at the top")
        assert app.main_screen.selected_id == c, "the selection follows the moved job"
        await pilot.press("J")
        await wait_for(lambda: order() == [a, c, b], what="c one down")
        await pilot.press("K")
        await wait_for(lambda: order() == [c, a, b], what="c one up")
        assert [j.job_id for j in (await app.backend.list_jobs()).queued] == [c, a, b]
        positions = [str(queue.get_row(job_id)[0]) for job_id in (c, a, b)]
        assert positions == ["1", "2", "3"]


async def test_move_keys_do_nothing_outside_the_queue(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        running = await app.backend.submit({"prompt": "processing"})
        await wait_status(app, running.job_id, Status.GENERATING)
        await select(app, pilot, PROCESSING, running.job_id)
        screen: MainScreen = app.main_screen
        assert screen.check_action("move_top", ()) is None
        await pilot.press("T")
        assert (await app.backend.get(running.job_id)).status == Status.GENERATING


async def test_e_fills_the_form_with_the_job_and_submits_a_new_one(settings, tmp_path: Path):
    picture = tmp_path / "start.png"
    Image.new("RGB", (64, 36), "orange").save(picture)
    async with running_app(settings) as (app, pilot):
        with picture.open("rb") as image:
            old = await app.backend.submit(
                {
                    "prompt": "a lighthouse at dusk",
                    "number_of_videos": 2,
                    "duration_seconds": 4,
                    "aspect_ratio": "9:16",
                    "seed": 77,
                    "negative_prompt": "fog",
                    "generate_audio": False,
                },
                image.read(),
                "start.png",
            )
        await wait_status(app, old.job_id, Status.COMPLETED)
        await select(app, pilot, HISTORY, old.job_id)
        await pilot.press("e")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
        form = app.screen
        await pilot.pause()
        assert form.query_one("#prompt", TextArea).text == "a lighthouse at dusk"
        assert form.query_one("#count", Select).value == 2
        assert form.query_one("#duration", Select).value == 4
        assert form.query_one("#aspect", Select).value == "9:16"
        assert form.query_one("#seed", Input).value == "77"
        assert form.query_one("#negative", Input).value == "fog"
        assert form.query_one("#audio", Select).value == "off"
        await wait_for(lambda: Path(form.query_one("#image", Input).value).is_file(), what="the input image")
        assert "Edit and resubmit job" in str(form.query_one("#form-title", Static).content)
        form.query_one("#prompt", TextArea).text = "a lighthouse at dawn"
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="the form to close")
        lists = await app.backend.list_jobs()
        jobs = [*lists.processing, *lists.queued, *lists.history]
        new = next(j for j in jobs if j.prompt == "a lighthouse at dawn")
        assert new.job_id != old.job_id and new.has_image
        request = new.request
        assert (request.number_of_videos, request.duration_seconds, request.aspect_ratio) == (2, 4, "9:16")
        assert (request.seed, request.negative_prompt, request.generate_audio) == (77, "fog", False)
        untouched = await app.backend.get(old.job_id)
        assert (untouched.status, untouched.prompt) == (Status.COMPLETED, "a lighthouse at dusk")


async def test_a_failure_that_asks_for_a_new_prompt_points_at_e(settings):
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "this will [fail]"})
        await wait_status(app, job.job_id, Status.FAILED)
        await select(app, pilot, HISTORY, job.job_id)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen), what="the details")

        body = app.screen.query_one("#details-body", Static)
        await wait_for(lambda: "Press e to edit the job and submit it again." in static_text(body), what="the hint")
        stored = await app.backend.get(job.job_id)
        assert "Press e" not in (stored.error or ""), "the engine states facts; the key is the TUI's"
        await pilot.press("e")  # works from the details too
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
        assert app.screen.query_one("#prompt", TextArea).text == "this will [fail]"


async def test_the_budget_pause_and_the_spend_are_in_the_header(make_settings):
    async with running_app(make_settings(daily_budget_usd="2")) as (app, pilot):
        job = await app.backend.submit({"prompt": "too dear"})
        await wait_for(
            lambda: "paused (daily budget $2.00: $0.00 spent, next job $3.20)" in header_text(app),
            what="the budget's pause in the header",
        )
        assert "today $0.00 of $2.00 simulated" in header_text(app)
        await pilot.press("p")
        await wait_status(app, job.job_id, Status.COMPLETED)
        await wait_for(lambda: "today $3.20 of $2.00" in header_text(app), what="the spend to grow")
        assert " paused" not in header_text(app)


async def test_over_remote_p_pauses_the_server_k_j_t_move_and_e_fetches_the_inputs(make_settings, tmp_path):
    from tests.conformance.test_backend_conformance import png
    from veotui.backend.remote import RemoteBackend
    from veotui.server import running_server
    from veotui.tui.app import VeotuiApp

    settings = make_settings(max_concurrent=1, sim_seconds=30)
    async with running_server(settings, keepalive=0.2) as server:
        async with RemoteBackend(server.url) as backend:
            app = VeotuiApp(backend, settings)
            async with app.run_test(size=(120, 40)) as pilot:
                await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
                await pilot.press("p")
                await wait_for(lambda: server.backend.store.is_paused(), what="the server's queue to pause")
                await wait_for(lambda: " paused" in header_text(app), what="the header to say paused")
                a = (await backend.submit({"prompt": "first"}, png(), "a.png")).job_id
                b = (await backend.submit({"prompt": "second"})).job_id
                await select(app, pilot, QUEUE, b)
                await pilot.press("T")
                await wait_for(
                    lambda: app.main_screen.tables[QUEUE].row_keys == [b, a],
                    what="b at the top",
                )
                await select(app, pilot, QUEUE, a)
                await pilot.press("e")
                await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
                form = app.screen
                await wait_for(lambda: Path(form.query_one("#image", Input).value).is_file(), what="the fetched image")
                await pilot.press("escape")
                await wait_for(lambda: isinstance(app.screen, MainScreen), what="back")
                await pilot.press("p")
                await wait_for(lambda: not server.backend.store.is_paused(), what="the server's queue to resume")


async def test_a_cancel_key_waits_when_the_selection_just_moved_to_another_job(slow_settings, monkeypatch):
    import veotui.tui.screen as main_screen

    # A wide window, so a loaded machine cannot let it pass before the key is pressed.
    monkeypatch.setattr(main_screen, "SETTLE_SECONDS", 60.0)
    async with running_app(slow_settings) as (app, pilot):
        running = await app.backend.submit({"prompt": "runs"})
        head = await app.backend.submit({"prompt": "head"})
        neighbour = await app.backend.submit({"prompt": "neighbour"})
        await wait_shown(app, QUEUE, neighbour.job_id)
        screen = app.main_screen
        screen._activate(QUEUE)
        screen.tables[QUEUE].select(head.job_id)
        await pilot.pause()
        # The head starts: the selection stays in the panel and lands on its neighbour.
        await app.backend.cancel(running.job_id)
        await wait_for(lambda: screen.selected_id == neighbour.job_id, what="the selection on the neighbour")
        notes = captured_notices(app)
        await pilot.press("c")
        await wait_for(lambda: notes, what="the word that nothing was done")
        assert "The selection just moved" in notes[0][0]
        assert (await app.backend.get(neighbour.job_id)).status == Status.QUEUED
        # Once it has settled, the same key cancels the job now selected.
        monkeypatch.setattr(main_screen, "SETTLE_SECONDS", 0.0)
        await pilot.press("c")
        await wait_for(lambda: app.backend.store.get(neighbour.job_id).status == Status.CANCELLED, what="the cancel")

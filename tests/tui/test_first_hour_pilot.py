"""What a new operator met in their first hour with the TUI, under Pilot on a real
LocalBackend (or a real server over loopback) and the simulator: the first save's question,
where a retried job went, toasts that wait while the form, the help or the details are
open, the panels standing still while the server is away, and the smaller things (the
form's word on a reference image beside an input image, the delete question, the timeline
of a job without an image, the open notification, tabbing round the extend form)."""

from __future__ import annotations

import dataclasses
import os
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Collapsible, Input, Select, Static, TextArea

from tests.server.test_remote_backend import free_port
from tests.tui.conftest import HISTORY, PROCESSING, QUEUE, running_app, wait_for, wait_shown, wait_status
from tests.tui.test_pilot import captured_notices, rendered, select, texts
from veotui.backend.remote import RemoteBackend
from veotui.core.job import DISCONNECTED, Job, Status
from veotui.server import running_server
from veotui.tui.app import VeotuiApp
from veotui.tui.details import DetailsScreen
from veotui.tui.dialogs import ConfirmScreen, HelpScreen, SaveQuestion
from veotui.tui.form import NewJobScreen
from veotui.tui.screen import MainScreen


def picture(path: Path, colour: str = "teal") -> Path:
    Image.new("RGB", (64, 36), colour).save(path)
    return path


@pytest.fixture(autouse=True)
def settled(monkeypatch):
    """Keys act at once: these tests select a job and press a key at machine speed, which
    the wait after a change moved the selection is not about (tests/tui/test_queue_keys.py)."""
    import veotui.tui.screen as main_screen

    monkeypatch.setattr(main_screen, "SETTLE_SECONDS", 0.0)


# -- the header at 80 columns, and a pause from another client ---------------------------


async def test_a_pause_from_another_client_is_said_and_leads_the_header_at_80_columns(settings):
    async with running_app(settings, size=(80, 24)) as (app, pilot):
        screen = app.main_screen
        notes = captured_notices(app)
        await app.backend.pause("client review at 4pm")
        await wait_for(lambda: "Queue paused elsewhere" in [title for _, title in notes], what="the word of it")
        assert notes[-1][0] == "Nothing new starts: client review at 4pm. p resumes."
        await wait_for(lambda: "paused" in screen.header.shown, what="the header")
        assert screen.header.shown.startswith(" veotui  paused (client review at 4pm) · slots 0/")

        await app.backend.resume()
        await wait_for(lambda: notes[-1] == ("New jobs start again.", "Queue resumed elsewhere"), what="the resume")
        # This screen's own pause is said once, as its own.
        await pilot.press("p")
        await wait_for(lambda: notes[-1][1] == "Queue paused", what="the own pause")
        await wait_for(lambda: "paused" in screen.header.shown, what="the header to say paused")
        await pilot.pause(0.3)
        assert [title for _, title in notes].count("Queue paused elsewhere") == 1


async def test_the_header_gives_way_by_importance_at_80_columns(settings):
    async with running_app(settings, size=(80, 24)) as (app, pilot):
        screen = app.main_screen
        header = screen.header
        assert screen.info is not None
        url = "http://render-box-07.studio.example.internal:8799"
        screen.follower.info = dataclasses.replace(screen.info, location=url)
        screen.update_header()
        header.spend_today = 48.4
        await pilot.pause()
        # All is well: the slots and queue, the spend, and the server's host shortened to
        # the room left.
        line = header.shown
        assert len(line) <= 80 and "slots" in line and "$48.40" in line
        assert line.endswith("· render-box-…ple.internal"), line

        # Over budget, and then the server lost: the states come first, then slots and queue;
        # the location goes first, then the spend.
        header.daily_budget = 50.0
        header.paused, header.pause_reason = True, "daily budget $50.00: $48.40 spent, next job $3.20"
        header.connection = DISCONNECTED
        await pilot.pause()
        line = header.shown
        assert len(line) <= 80, line
        assert line.startswith(" veotui  disconnected — retrying · paused (daily budget"), line
        assert line.index("paused") < line.index("slots") < line.index("queue")
        assert "render-box" not in line


# -- the first save of a session asks once ----------------------------------------------


async def test_the_first_save_asks_once_and_each_answer_does_what_it_says(make_settings):
    settings = make_settings(auto_delete_after_download="600")
    saved = settings.downloads_dir

    async def save(app, pilot, job: Job, answer: str | None) -> Job:
        """``s`` on ``job``; ``answer`` the key pressed at the question (None: none is asked)."""
        await select(app, pilot, HISTORY, job.job_id)
        before = len(app.notices)
        await pilot.press("s")
        if answer is not None:
            await wait_for(lambda: isinstance(app.screen, SaveQuestion), what="the first save's question")
            assert f"Saving removes job {job.job_id[:8]} after 600 s; keep it?" in texts(app.screen)
            await pilot.press(answer)
        assert isinstance(app.screen, MainScreen), "asked when it should not have"
        await wait_for(
            lambda: any(n.title == "Saved 1 video" for n in app.notices[before:]), what=f"job {job.job_id[:8]} saved"
        )
        assert (saved / f"veotui_{job.job_id[:8]}_{'generated_video_1.mp4'}").is_file()
        return await app.backend.get(job.job_id)

    async with running_app(settings) as (app, pilot):
        jobs = [await app.backend.submit({"prompt": f"harbour {n}"}) for n in range(3)]
        for job in jobs:
            await wait_status(app, job.job_id, Status.COMPLETED)
            await wait_shown(app, HISTORY, job.job_id)

        # escape: nothing is saved, and the question comes again.
        await select(app, pilot, HISTORY, jobs[0].job_id)
        await pilot.press("s")
        await wait_for(lambda: isinstance(app.screen, SaveQuestion), what="the question")
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="the question to close")
        assert not saved.exists() or not list(saved.iterdir())

        # k: saved, and this job stays; the next save asks again.
        kept = await save(app, pilot, jobs[0], "k")
        assert kept.downloaded_at is None
        assert any("stays (not deleted after this save)" in n.message for n in app.notices)
        # o: saved and let go (its auto-delete has started); not asked again this session.
        let_go = await save(app, pilot, jobs[1], "o")
        assert let_go.downloaded_at is not None
        unasked = await save(app, pilot, jobs[2], None)
        assert unasked.downloaded_at is not None
        assert any(f"Job {jobs[2].job_id[:8]} will be removed in" in n.message for n in app.notices)

    # a: a new session asks again; "always keep" keeps this job and every later one.
    async with running_app(settings) as (app, pilot):
        more = [await app.backend.submit({"prompt": f"dock {n}"}) for n in range(2)]
        for job in more:
            await wait_status(app, job.job_id, Status.COMPLETED)
        always = await save(app, pilot, more[0], "a")
        assert always.downloaded_at is None
        later = await save(app, pilot, more[1], None)
        assert later.downloaded_at is None
        assert (await app.backend.get(jobs[0].job_id)).downloaded_at is None  # still kept


# -- a retry says where it went -----------------------------------------------------------


async def test_a_retry_says_where_it_went_and_one_that_only_fetches_goes_to_the_front(settings):
    async with running_app(settings) as (app, pilot):
        stranded = await app.backend.submit({"prompt": "made but [unfetchable]"})
        await wait_status(app, stranded.job_id, Status.FAILED)
        # A paused queue of paid generations, with slots free: nothing starts.
        await app.backend.pause("a long queue of paid generations")
        paid = [(await app.backend.submit({"prompt": f"paid {n}"})).job_id for n in range(3)]
        await app.backend.cancel(paid[2])
        await wait_shown(app, HISTORY, paid[2])
        notes = captured_notices(app)

        async def retry(job_id: str) -> str:
            await select(app, pilot, HISTORY, job_id)
            await pilot.press("r")
            await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the retry question")
            count = len(notes)
            await pilot.press("y")
            await wait_for(lambda: len(notes) > count and notes[-1][1] == "Retried", what="the retry's notification")
            return notes[-1][0]

        # A retry that generates again joins the back of the queue, and says at which place.
        assert await retry(paid[2]) == f"Job {paid[2][:8]}: queued at position 3"
        # One that only fetches the finished videos goes to the front, and says why.
        assert await retry(stranded.job_id) == (
            f"Job {stranded.job_id[:8]}: queued at position 1 (at the front: it fetches, it does not generate)"
        )
        queue = app.main_screen.tables[QUEUE]
        await wait_for(lambda: queue.row_keys == [stranded.job_id, *paid], what="the fetch at the head of the queue")
        assert [str(queue.get_row(job_id)[0]) for job_id in queue.row_keys] == ["1", "2", "3", "4"]


# -- toasts never cover the form, the help or the details --------------------------------


async def test_toasts_wait_while_the_form_the_help_or_the_details_are_open(settings):
    async with running_app(settings, size=(80, 24), toasts=True) as (app, pilot):
        job = await app.backend.submit({"prompt": "a quiet harbour"})
        await wait_status(app, job.job_id, Status.COMPLETED)
        await wait_shown(app, HISTORY, job.job_id)
        screen = app.main_screen

        def toasts() -> list[Widget]:
            return list(app.screen.query("Toast"))

        def shown(title: str) -> bool:
            return any(n.title == title for n in app.notices)

        # A toast up when the form opens leaves with it, and comes back with the panels.
        app.notify("it was up before the form", title="Up already", timeout=60)
        await wait_for(lambda: toasts(), what="the toast over the panels")
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
        form = app.screen
        form.query_one("#seed", Input).value = "not a seed"
        # Another client pauses the queue while the form is open.
        await app.backend.pause("client review at 4pm")
        await wait_for(lambda: screen.header.paused, what="the pause to reach the main screen")
        await pilot.pause(0.3)
        assert not toasts(), "a toast over the form"
        assert not shown("Queue paused elsewhere")
        assert "Estimated cost" in str(form.query_one("#form-status", Static).content)

        await pilot.press("escape")  # the seed typed, not the prompt: closes at once
        await wait_for(lambda: app.screen is screen, what="back to the panels")
        await wait_for(lambda: shown("Queue paused elsewhere"), what="the held toast")
        await wait_for(lambda: len(toasts()) == 2, what="both toasts over the panels")

        # The help.
        await pilot.press("question_mark")
        await wait_for(lambda: isinstance(app.screen, HelpScreen), what="the help")
        assert not toasts()
        await app.backend.resume()
        await wait_for(lambda: not screen.header.paused, what="the resume to reach the main screen")
        await pilot.pause(0.3)
        assert not toasts() and not shown("Queue resumed elsewhere")
        await pilot.press("escape")
        await wait_for(lambda: shown("Queue resumed elsewhere"), what="the held toast after the help")

        # The details.
        await select(app, pilot, HISTORY, job.job_id)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen), what="the details")
        await app.backend.pause("lunch")
        await wait_for(lambda: screen.header.paused, what="the second pause")
        await pilot.pause(0.3)
        assert not toasts() and not any("lunch" in n.message for n in app.notices)
        await pilot.press("escape")
        await wait_for(lambda: any("lunch" in n.message for n in app.notices), what="the held toast after the details")


# -- while the server is away, the Processing rows stand still ------------------


async def test_while_the_server_is_away_percentage_elapsed_and_left_all_stand_still(make_settings):
    settings = make_settings(sim_seconds=120)
    port = free_port()  # the restarted server comes back at the same URL
    moment = [datetime.now(UTC)]
    first = AsyncExitStack()
    server = await first.enter_async_context(running_server(settings, port=port, keepalive=0.2))
    try:
        async with RemoteBackend(server.url) as backend:
            app = VeotuiApp(backend, settings, clock=lambda: moment[0])
            async with app.run_test(size=(120, 40)) as pilot:
                screen = app.main_screen
                await wait_for(lambda: screen.loaded.is_set(), what="the first snapshot")
                job = await backend.submit({"prompt": "a long generation"})
                table = screen.tables[PROCESSING]

                def cells() -> list[str]:
                    """Progress, Elapsed and Left."""
                    row = table.get_row(job.job_id)
                    return [str(row[3]), str(row[4]), str(row[5])]

                await wait_for(
                    lambda: job.job_id in table.rows and str(table.get_row(job.job_id)[2]) == "generating",
                    what="the job generating",
                )

                await first.aclose()
                await wait_for(lambda: "disconnected" in screen.header.shown, what="the lost server")
                frozen = cells()
                moment[0] += timedelta(minutes=2)
                screen.tick()
                screen.render_board(screen.selected_id)
                await pilot.pause()
                assert cells() == frozen, "the Processing row moved while the server was away"
                assert screen.query_one("#panels").has_class("-stale")

                async with running_server(settings, port=port, keepalive=0.2):
                    await wait_for(lambda: "disconnected" not in screen.header.shown, what="the server back")
                    await wait_for(lambda: cells()[1] != frozen[1], what="Elapsed to move again")
                    assert not screen.query_one("#panels").has_class("-stale")
    finally:
        await first.aclose()


# -- the smaller things ----------------------------------------------------------


async def test_a_reference_image_beside_an_input_image_is_refused_as_the_second_is_chosen(settings, tmp_path):
    start, reference = picture(tmp_path / "start.png"), picture(tmp_path / "mug.png", "orange")
    async with running_app(settings) as (app, pilot):
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
        form = app.screen
        rule = form.query_one("#form-rule", Static)
        refusal = "takes reference images only without an input image, a last frame or an extension"

        form.query_one("#prompt", TextArea).text = "a mug on a table"
        form.query_one("#image", Input).value = str(start)
        await pilot.pause()
        assert not rule.display
        form.query_one("#advanced", Collapsible).collapsed = False
        form.query_one("#reference-1", Input).value = str(reference)
        await wait_for(lambda: rule.display and refusal in str(rule.content), what="the refusal as it is chosen")

        # Either way round.
        form.query_one("#image", Input).value = ""
        await wait_for(lambda: not rule.display, what="the refusal to go with the input image")
        form.query_one("#image", Input).value = str(start)
        await wait_for(lambda: rule.display and refusal in str(rule.content), what="the refusal again")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form
        lists = await app.backend.list_jobs()
        assert not (lists.processing or lists.queued or lists.history)


async def test_the_delete_question_joins_what_goes_with_and(settings, tmp_path):
    async with running_app(settings) as (app, pilot):
        with_image = await app.backend.submit({"prompt": "pictured"}, picture(tmp_path / "a.png").read_bytes(), "a.png")
        plain = await app.backend.submit({"prompt": "plain"})
        failed = await app.backend.submit({"prompt": "nothing made [fail]"})
        for job in (with_image, plain):
            await wait_status(app, job.job_id, Status.COMPLETED)
        await wait_status(app, failed.job_id, Status.FAILED)

        async def question(job: Job) -> str:
            await select(app, pilot, HISTORY, job.job_id)
            await pilot.press("d")
            await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the delete question")
            text = str(app.screen.query_one("#detail", Static).content)
            await pilot.press("n")
            await wait_for(lambda: isinstance(app.screen, MainScreen), what="the question to close")
            return text

        assert "removes the job, its 1 video and its input image on this machine." in await question(with_image)
        assert "removes the job and its 1 video on this machine." in await question(plain)
        assert "removes the job and its folder on this machine." in await question(failed)


async def test_the_timeline_of_a_job_without_an_image_shows_no_upload(settings, tmp_path):
    async with running_app(settings) as (app, pilot):
        plain = await app.backend.submit({"prompt": "nothing to upload"})
        pictured = await app.backend.submit({"prompt": "an image to upload"}, picture(tmp_path / "a.png").read_bytes())
        for job in (plain, pictured):
            await wait_status(app, job.job_id, Status.COMPLETED)
        # The engine passes the stage in the same commit as the next; the store keeps it.
        assert Status.UPLOADING_IMAGE in [event.status for event in await app.backend.timeline(plain.job_id)]

        async def timeline(job: Job) -> str:
            await select(app, pilot, HISTORY, job.job_id)
            await pilot.press("enter")
            await wait_for(lambda: isinstance(app.screen, DetailsScreen), what="the details")
            body = app.screen.query_one("#details-body", Static)
            await wait_for(lambda: "Timeline" in rendered(body.content), what="the timeline")
            text = rendered(body.content)
            await pilot.press("escape")
            await wait_for(lambda: isinstance(app.screen, MainScreen), what="back")
            return text[text.index("Timeline") : text.index("Files")]

        plain_timeline = await timeline(plain)
        assert "generating" in plain_timeline and "completed" in plain_timeline
        assert "uploading_image" not in plain_timeline
        assert "uploading_image" in await timeline(pictured)


async def test_the_open_notification_keeps_the_file_name_and_its_folder_each_on_one_line(
    settings, monkeypatch, tmp_path
):
    # A stand-in player, and a home the data directory is under (the folder reads ~/…).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    opener = bin_dir / "xdg-open"
    opener.write_text("#!/bin/sh\nexit 0\n")
    opener.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("HOME", str(tmp_path))
    async with running_app(settings, size=(80, 24), toasts=True) as (app, pilot):
        job = await app.backend.submit({"prompt": "play me"})
        await wait_status(app, job.job_id, Status.COMPLETED)
        await select(app, pilot, HISTORY, job.job_id)
        await pilot.press("o")
        path = app.backend.local_video_path(await app.backend.get(job.job_id), 1)
        assert path is not None
        folder = "~/" + str(path.parent.relative_to(tmp_path))

        def lines() -> list[str]:
            """The toast's lines as the screen shows them, its left edge and padding aside."""
            shown = []
            for toast in app.screen.query("Toast"):
                width, height = toast.region.size
                for strip in toast.render_lines(Region(0, 0, width, height)):
                    shown.append("".join(segment.text for segment in strip).strip("▌ "))
            return shown

        seen: list[str] = []

        def folder_whole() -> bool:
            seen[:] = lines()
            return f"in {folder}" in seen

        await wait_for(folder_whole, what=f"'in {folder}' on a line of its own")
        assert path.name in seen


async def test_in_the_extend_form_tabbing_round_comes_back_to_the_prompt(settings):
    async with running_app(settings) as (app, pilot):
        source = await app.backend.submit({"prompt": "a boat sets off", "number_of_videos": 2})
        await wait_status(app, source.job_id, Status.COMPLETED)
        await select(app, pilot, HISTORY, source.job_id)
        await pilot.press("x")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the extend form")
        form = app.screen
        prompt = form.query_one("#prompt", TextArea)
        await wait_for(lambda: prompt.has_focus, what="the prompt focused")
        await pilot.press(*"it reaches")
        # Tab from the last field round to the top: the prompt, never the list of videos
        # (where the space of the next word would open it) nor the scroller (where it is lost).
        form.focus_chain[-1].focus()
        await pilot.pause()
        await pilot.press("tab")
        assert prompt.has_focus
        await pilot.press(*" the island")
        assert prompt.text == "it reaches the island"
        assert not form.query_one("#extends-video", Select).expanded

"""Every key and flow of the TUI under Pilot, on a real LocalBackend and the simulator."""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import re
from pathlib import Path
from typing import Any

from PIL import Image
from rich.console import Console
from textual.command import CommandList, CommandPalette
from textual.widget import Widget
from textual.widgets import Input, Select, Static, TextArea

from tests.support.fakes import ControlledGenerator
from tests.tui.conftest import HISTORY, PROCESSING, QUEUE, running_app, wait_for, wait_shown, wait_status
from tests.tui.history import ended_jobs
from veotui.backend.local import LocalBackend
from veotui.core.errors import JobNotFound
from veotui.core.job import RETRY_REFETCHES, RETRY_RESUBMITS, Job, Status, format_usd
from veotui.generators.base import TransientFault
from veotui.store.sqlite import SqliteStore
from veotui.tui.app import VeotuiApp
from veotui.tui.details import DetailsScreen
from veotui.tui.dialogs import ConfirmScreen, HelpScreen, SaveQuestion
from veotui.tui.form import NewJobScreen
from veotui.tui.metrics import MetricsScreen
from veotui.tui.screen import MainScreen
from veotui.tui.tables import CELL_PADDING


async def select(app, pilot, panel: str, job_id: str) -> None:
    screen: MainScreen = app.main_screen
    await wait_shown(app, panel, job_id)
    screen._activate(panel)
    screen.tables[panel].select(job_id)
    await pilot.pause()
    assert screen.selected_id == job_id


def rendered(content) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(content)
    return console.export_text()


def texts(screen) -> str:
    return "\n".join(str(static.content) for static in screen.query(Static))


# -- the panels ---------------------------------------------------------------------------


async def test_jobs_move_live_from_queue_to_processing_to_history(make_settings):
    async with running_app(make_settings(max_concurrent=1)) as (app, pilot):
        first = await app.backend.submit({"prompt": "a heron at dawn"})
        second = await app.backend.submit({"prompt": "a fox in snow"})
        tables = app.main_screen.tables
        queue = tables[QUEUE]

        def second_is_next() -> bool:
            # Once the first has started, the second is first in line (until it starts too).
            if first.job_id in queue.rows:
                return False
            return second.job_id not in queue.rows or "Queue position: 1" in str(queue.get_row(second.job_id)[0])

        await wait_for(second_is_next, what="the second job to be first in line")
        await wait_shown(app, HISTORY, first.job_id)
        await wait_shown(app, HISTORY, second.job_id)
        assert not tables[PROCESSING].row_count and not tables[QUEUE].row_count
        # newest first
        assert tables[HISTORY].row_keys == [second.job_id, first.job_id]


async def test_queue_positions_shift_when_a_job_leaves(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        jobs = [await app.backend.submit({"prompt": f"job {n}"}) for n in range(4)]
        await wait_shown(app, QUEUE, jobs[3].job_id)
        await app.backend.cancel(jobs[1].job_id)
        queue = app.main_screen.tables[QUEUE]
        await wait_for(lambda: jobs[1].job_id not in queue.rows, what="the cancelled job to leave")
        positions = [str(queue.get_row(job.job_id)[0]) for job in jobs[2:]]
        assert positions == ["1", "2"]


async def test_header_names_backend_generator_and_slots(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "slot taker"})
        await wait_shown(app, PROCESSING, job.job_id)
        header = str(app.main_screen.query_one("#header", Static).content)
        assert "local" in header and "simulator (sim)" in header and "slots 1/1" in header


async def test_header_shows_what_its_attributes_say(settings):
    async with running_app(settings) as (app, pilot):
        header = app.main_screen.header
        header.paused, header.pause_reason = True, "budget reached"
        header.spend_today = 12.5
        header.storage = "full"
        header.connection = "disconnected"
        await pilot.pause()
        text = str(header.content)
        assert "paused (budget reached)" in text and "today $12.50" in text and "storage full" in text
        assert "disconnected — retrying" in text


async def test_header_follows_todays_spend_and_says_it_is_simulated(settings):
    async with running_app(settings) as (app, pilot):
        header = app.main_screen.header
        await wait_for(lambda: header.spend_today == 0, what="today's spend read at start")
        first = await app.backend.submit({"prompt": "bought", "duration_seconds": 4})
        second = await app.backend.submit({"prompt": "bought too", "number_of_videos": 2})
        await wait_status(app, first.job_id, Status.COMPLETED)
        await wait_status(app, second.job_id, Status.COMPLETED)
        assert first.estimated_cost_usd is not None and second.estimated_cost_usd is not None
        bought = round(first.estimated_cost_usd + second.estimated_cost_usd, 2)
        await wait_for(lambda: header.spend_today == bought, what="the header to count both operations")
        await pilot.pause()
        assert f"today {format_usd(bought)} simulated" in str(header.content)


async def test_progress_ticks_while_processing(make_settings):
    async with running_app(make_settings(sim_seconds=4)) as (app, pilot):
        job = await app.backend.submit({"prompt": "slow burn"})
        await wait_status(app, job.job_id, Status.GENERATING)
        table = app.main_screen.tables[PROCESSING]
        await wait_shown(app, PROCESSING, job.job_id)
        before = str(table.get_row(job.job_id)[3])
        await wait_for(lambda: str(table.get_row(job.job_id)[3]) != before, timeout=30, what="the bar to move")


async def test_an_ended_job_is_told_on_the_processing_line_and_only_a_failure_is_a_toast(settings):
    async with running_app(settings) as (app, pilot):
        screen = app.main_screen
        processing = screen.tables[PROCESSING]
        done = await app.backend.submit({"prompt": "a quiet harbour"})
        await wait_status(app, done.job_id, Status.COMPLETED)
        await wait_for(
            lambda: f"✓ {done.job_id[:8]} completed" in str(processing.border_subtitle), what="the completion line"
        )
        failed = await app.backend.submit({"prompt": "a storm [fail]"})
        await wait_status(app, failed.job_id, Status.FAILED)
        await wait_for(lambda: f"✗ {failed.job_id[:8]} failed" in str(processing.border_subtitle), what="the failure")

        def notified(title: str, severity: str) -> bool:
            return any(n.title == title and n.severity == severity for n in app.notices)

        await wait_for(lambda: notified(f"Failed {failed.job_id[:8]}", "error"), what="the failure's toast")
        assert not any(n.title.startswith("Completed") for n in app.notices)
        # Short, and plain text: "[fail]" in the error is shown, not taken for markup.
        notice = next(n for n in app.notices if n.title.startswith("Failed"))
        assert "[fail]" in notice.message and not notice.markup and notice.timeout <= 6


# -- the new job form ---------------------------------------------------------------------


async def test_submit_via_the_form(settings):
    async with running_app(settings) as (app, pilot):
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
        await pilot.press(*"a calm lake")
        form = app.screen
        form.query_one("#seed", Input).value = "42"
        form.query_one("#negative", Input).value = "boats"
        form.query_one("#count", Select).value = 3
        form.query_one("#model", Select).value = "veo-3.1-fast-generate-001"
        form.query_one("#aspect", Select).value = "9:16"
        form.query_one("#duration", Select).value = 6
        form.query_one("#resolution", Select).value = "720p"
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="the form to close")
        lists = await app.backend.list_jobs()
        job = next(j for j in [*lists.processing, *lists.queued, *lists.history] if j.prompt == "a calm lake")
        request = job.request
        assert (request.seed, request.negative_prompt, request.number_of_videos) == (42, "boats", 3)
        assert (request.model, request.aspect_ratio) == ("veo-3.1-fast-generate-001", "9:16")
        assert (request.duration_seconds, request.resolution) == (6, "720p")

        # The next form starts from these choices; the prompt and seed start empty.
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the next form")
        form = app.screen
        chosen = [form.query_one(f"#{name}", Select).value for name in ("count", "model", "aspect", "duration")]
        assert chosen == [3, "veo-3.1-fast-generate-001", "9:16", 6]
        assert form.query_one("#resolution", Select).value == "720p"
        assert form.query_one("#prompt", TextArea).text == "" and form.query_one("#seed", Input).value == ""


async def test_escape_asks_before_discarding_a_typed_prompt(settings):
    async with running_app(settings) as (app, pilot):
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
        await pilot.press("escape")  # nothing typed: closes at once
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="the empty form to close")
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form again")
        form = app.screen
        await pilot.press(*"a long careful prompt")
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("n")
        await wait_for(lambda: app.screen is form, what="back to the form")
        assert form.query_one("#prompt", TextArea).text == "a long careful prompt"
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the question again")
        await pilot.press("y")
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="the form to be discarded")
        assert (await app.backend.list_jobs()).queued == []


async def test_the_form_shows_the_estimate_as_fields_change(settings):
    from veotui.core.prices import DEFAULT_PRICES

    async with running_app(settings) as (app, pilot):
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
        form = app.screen
        estimate = form.query_one("#form-status", Static)
        per_second = DEFAULT_PRICES["veo-3.1-generate-001"].per_second(audio=True, resolution="720p")
        assert per_second is not None
        await wait_for(lambda: "simulated" in str(estimate.content), what="the engine's prices")
        assert format_usd(8 * per_second) in str(estimate.content)
        form.query_one("#count", Select).value = 3
        form.query_one("#duration", Select).value = 4
        await wait_for(
            lambda: format_usd(round(3 * 4 * per_second, 2)) in str(estimate.content), what="the new estimate"
        )
        form.query_one("#model", Select).value = "veo-3.1-lite-generate-001"
        lite = DEFAULT_PRICES["veo-3.1-lite-generate-001"].per_second(audio=True, resolution="720p")
        assert lite is not None
        await wait_for(lambda: format_usd(round(3 * 4 * lite, 2)) in str(estimate.content), what="the lite estimate")
        await pilot.press("escape")


async def test_form_with_an_image(settings, tmp_path: Path):
    picture = tmp_path / "frame.png"
    Image.new("RGB", (64, 36), "teal").save(picture)
    async with running_app(settings) as (app, pilot):
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
        app.screen.query_one("#prompt", TextArea).text = "pan over the frame"
        app.screen.query_one("#image", Input).value = str(picture)
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="the form to close")
        lists = await app.backend.list_jobs()
        assert any(j.has_image for j in [*lists.processing, *lists.queued, *lists.history])


async def test_invalid_form_submits_nothing_and_says_why(settings, tmp_path: Path):
    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    async with running_app(settings) as (app, pilot):
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
        form = app.screen
        await pilot.press("ctrl+s")
        assert "Prompt is required" in str(form.query_one("#prompt-error", Static).content)
        form.query_one("#prompt", TextArea).text = "fine prompt"
        form.query_one("#image", Input).value = str(tmp_path / "missing.png")
        await pilot.pause()
        assert "No file at" in str(form.query_one("#image-error", Static).content)
        form.query_one("#image", Input).value = str(not_image)
        await pilot.pause()
        assert "is not an image" in str(form.query_one("#image-error", Static).content)
        form.query_one("#image", Input).value = ""
        form.query_one("#seed", Input).value = "minus one"
        await pilot.pause()
        assert "whole number" in str(form.query_one("#seed-error", Static).content)
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, NewJobScreen)
        lists = await app.backend.list_jobs()
        assert not (lists.processing or lists.queued or lists.history)
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the form to ask before discarding")
        await pilot.press("y")
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="escape to close the form")


# -- cancel, retry, delete ----------------------------------------------------------------


async def test_cancel_a_queued_job_without_asking(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        await app.backend.submit({"prompt": "runs"})
        waiting = await app.backend.submit({"prompt": "waits"})
        await select(app, pilot, QUEUE, waiting.job_id)
        await pilot.press("c")
        await wait_status(app, waiting.job_id, Status.CANCELLED)
        assert not isinstance(app.screen, ConfirmScreen)


async def test_cancel_a_processing_job_asks_first(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "expensive"})
        await select(app, pilot, PROCESSING, job.job_id)
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="no")
        assert (await app.backend.get(job.job_id)).status.is_active
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the question again")
        await pilot.press("escape")
        await pilot.pause()
        assert (await app.backend.get(job.job_id)).status.is_active
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the question a third time")
        await pilot.press("y")
        await wait_status(app, job.job_id, Status.CANCELLED)


async def test_retry_a_failed_job(settings):
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "doomed [fail]"})
        await wait_status(app, job.job_id, Status.FAILED)
        await select(app, pilot, HISTORY, job.job_id)
        assert "[fail]" in str(app.main_screen.tables[HISTORY].get_row(job.job_id)[3])
        await pilot.press("r")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        question = texts(app.screen)
        assert RETRY_RESUBMITS in question and format_usd(job.estimated_cost_usd) in question
        assert "simulator" in question
        await pilot.press("y")
        await wait_for(lambda: app.backend.store.get(job.job_id).attempts == 2, what="a second attempt")


async def test_retry_of_a_finished_generation_says_it_costs_nothing(settings):
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "made but [unfetchable]"})
        await wait_status(app, job.job_id, Status.FAILED)
        failed = await app.backend.get(job.job_id)
        await select(app, pilot, HISTORY, job.job_id)
        await pilot.press("r")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert RETRY_REFETCHES in texts(app.screen)
        await pilot.press("y")
        await wait_status(app, job.job_id, Status.COMPLETED)
        assert app.backend.store.get(job.job_id).operation == failed.operation


async def test_metrics_call_a_fetch_failure_fetch_and_mark_the_simulators_spend(settings):
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "made but [unfetchable]"})
        await wait_status(app, job.job_id, Status.FAILED)
        assert (await app.backend.get(job.job_id)).error_kind == "fetch"
        await pilot.press("m")
        await wait_for(lambda: isinstance(app.screen, MetricsScreen), what="the metrics screen")
        screen = app.screen
        assert isinstance(screen, MetricsScreen)
        await wait_for(lambda: screen.loaded, what="the first figures")
        now, errors = (rendered(screen.query_one(name, Static).content) for name in ("#now", "#errors"))
        assert re.search(r"Spend today.*simulated", now) and re.search(r"Spend in all.*simulated", now)
        assert "fetch" in errors and "storage" not in errors


async def test_retry_is_greyed_out_for_a_queued_job(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        await app.backend.submit({"prompt": "runs"})
        waiting = await app.backend.submit({"prompt": "waits"})
        await select(app, pilot, QUEUE, waiting.job_id)
        screen = app.main_screen
        assert screen.check_action("retry", ()) is None
        assert screen.check_action("save", ()) is None
        assert screen.check_action("cancel", ()) is True
        await pilot.press("r")
        await pilot.pause()
        assert (await app.backend.get(waiting.job_id)).status == Status.QUEUED


async def test_delete_always_asks_and_names_what_goes(settings):
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "to be removed"})
        await wait_status(app, job.job_id, Status.COMPLETED)
        await select(app, pilot, HISTORY, job.job_id)
        await pilot.press("d")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert "1 video" in texts(app.screen) and job.job_id[:8] in texts(app.screen)
        await pilot.press("n")
        await pilot.pause()
        await app.backend.get(job.job_id)
        await pilot.press("d")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the question again")
        await pilot.press("y")

        async def gone() -> bool:
            try:
                await app.backend.get(job.job_id)
            except JobNotFound:
                return True
            return False

        await wait_for(gone, what="the job to be deleted")
        await wait_for(lambda: job.job_id not in app.main_screen.tables[HISTORY].rows, what="its row to go")


# -- files --------------------------------------------------------------------------------


async def test_save_puts_the_videos_in_the_downloads_folder(make_settings):
    settings = make_settings(auto_delete_after_download="off")
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "keep me", "number_of_videos": 2})
        await wait_status(app, job.job_id, Status.COMPLETED)
        await select(app, pilot, HISTORY, job.job_id)
        await pilot.press("s")
        await wait_for(lambda: len(list(settings.downloads_dir.glob("*.mp4"))) == 2, what="two saved videos")
        await wait_for(lambda: any(str(settings.downloads_dir) in n.message for n in app.notices), what="where")


async def test_save_says_when_auto_delete_removes_the_job_and_how_to_keep_it(make_settings):
    settings = make_settings(auto_delete_after_download="600")
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "watch me go"})
        await wait_status(app, job.job_id, Status.COMPLETED)
        await select(app, pilot, HISTORY, job.job_id)
        notes = captured_notices(app)
        await pilot.press("s")
        await wait_for(lambda: isinstance(app.screen, SaveQuestion), what="the first save's question")
        await pilot.press("o")
        await wait_for(lambda: notes, what="the save notification")
        (message, title) = notes[0]
        assert title == "Saved 1 video"
        assert f"Job {job.job_id[:8]} will be removed in 600 s" in message or "removed in 599 s" in message
        assert "auto_delete_after_download = off" in message


async def test_open_without_a_display_shows_the_path(settings, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "watch me"})
        await wait_status(app, job.job_id, Status.COMPLETED)
        await select(app, pilot, HISTORY, job.job_id)
        await pilot.press("o")
        path = app.backend.local_video_path(await app.backend.get(job.job_id), 1)
        await wait_for(
            lambda: any("No display" in n.message and str(path) in n.message for n in app.notices),
            what="the no-display notice",
        )


async def test_open_with_a_display_starts_the_player(settings, monkeypatch, tmp_path: Path):
    # A stand-in xdg-open on PATH records what it was asked to open, then exits.
    record = tmp_path / "opened.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    opener = bin_dir / "xdg-open"
    opener.write_text(f'#!/bin/sh\necho "$1" > {record}\n')
    opener.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DISPLAY", ":0")
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "play me"})
        await wait_status(app, job.job_id, Status.COMPLETED)
        await select(app, pilot, HISTORY, job.job_id)
        await pilot.press("o")
        await wait_for(record.exists, what="the player to be started")
        await wait_for(lambda: record.read_text().strip().endswith(".mp4"), what="the video's path")


# -- filter, help, details, navigation ----------------------------------------------------


async def test_filter_narrows_every_panel(settings):
    async with running_app(settings) as (app, pilot):
        cat = await app.backend.submit({"prompt": "a cat on a wall"})
        dog = await app.backend.submit({"prompt": "a dog in the park"})
        await wait_shown(app, HISTORY, cat.job_id)
        await wait_shown(app, HISTORY, dog.job_id)
        await pilot.press("slash")
        await pilot.press(*"cat", "enter")
        history = app.main_screen.tables[HISTORY]
        await wait_for(lambda: dog.job_id not in history.rows, what="the dog to be filtered out")
        assert cat.job_id in history.rows
        # A new job that does not match stays hidden; one that matches shows up live.
        other = await app.backend.submit({"prompt": "a horse"})
        second_cat = await app.backend.submit({"prompt": "another cat"})
        await wait_shown(app, HISTORY, second_cat.job_id)
        await wait_status(app, other.job_id, Status.COMPLETED)
        assert other.job_id not in history.rows
        await pilot.press("escape")
        await wait_for(lambda: dog.job_id in history.rows, what="escape to clear the filter")
        # tab leaves the filter field for the panels
        await pilot.press("slash")
        focused: Widget | None = app.focused
        assert isinstance(focused, Input)
        await pilot.press("tab")
        assert app.focused in app.main_screen.tables.values()


async def test_help_lists_every_key(settings):
    async with running_app(settings) as (app, pilot):
        await pilot.press("question_mark")
        await wait_for(lambda: isinstance(app.screen, HelpScreen), what="help")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        listed = {row[2] for row in help_screen.rows}
        assert {
            "new_job",
            "cancel",
            "retry",
            "delete",
            "save",
            "open",
            "filter",
            "help",
            "quit",
            "next_panel",
            "previous_panel",
            "details",
        } <= listed
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="help to close")


async def test_details_show_parameters_timeline_and_error(settings):
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "a storm [fail]", "seed": 7, "aspect_ratio": "9:16"})
        await wait_status(app, job.job_id, Status.FAILED)
        await select(app, pilot, HISTORY, job.job_id)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen), what="details")
        body = app.screen.query_one("#details-body", Static)
        await wait_for(lambda: "Timeline" in static_text(body), what="the timeline")
        text = static_text(body)
        for expected in ("a storm [fail]", "9:16", "Seed", "7", "queued", "generating", "failed", "INVALID_ARGUMENT"):
            assert expected in text
        assert re.search(rf"Estimated cost +{re.escape(format_usd(job.estimated_cost_usd))}", text)
        assert RETRY_RESUBMITS in text
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="back")


def static_text(static: Static) -> str:
    from rich.console import Console

    with open(os.devnull, "w") as sink:
        console = Console(width=200, record=True, file=sink)
        console.print(static.content)
        return console.export_text()


async def test_tab_and_j_k_move_between_panels_and_rows(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        await app.backend.submit({"prompt": "runs"})
        queued = [await app.backend.submit({"prompt": f"waits {n}"}) for n in range(2)]
        await wait_shown(app, QUEUE, queued[1].job_id)
        screen = app.main_screen
        screen._activate(PROCESSING)
        await pilot.pause()
        await pilot.press("tab")
        assert app.focused is screen.tables[QUEUE]
        assert screen.selected_id == queued[0].job_id
        await pilot.press("j")
        assert screen.selected_id == queued[1].job_id
        await pilot.press("k")
        assert screen.selected_id == queued[0].job_id
        await pilot.press("tab")
        assert app.focused is screen.tables[HISTORY]
        await pilot.press("shift+tab", "shift+tab")
        assert app.focused is screen.tables[PROCESSING]


async def test_selection_follows_the_job_into_another_panel(make_settings):
    async with running_app(make_settings(max_concurrent=1, sim_seconds=1)) as (app, pilot):
        await app.backend.submit({"prompt": "first"})
        follow = await app.backend.submit({"prompt": "followed"})
        await select(app, pilot, QUEUE, follow.job_id)
        await wait_shown(app, PROCESSING, follow.job_id)
        await pilot.pause()
        assert app.main_screen.active_panel == PROCESSING
        assert app.main_screen.selected_id == follow.job_id
        await wait_shown(app, HISTORY, follow.job_id)
        await pilot.pause()
        assert app.main_screen.active_panel == HISTORY
        assert app.main_screen.selected_id == follow.job_id


async def test_a_moving_selection_never_takes_focus_from_an_open_form(make_settings):
    async with running_app(make_settings(max_concurrent=1, sim_seconds=1)) as (app, pilot):
        await app.backend.submit({"prompt": "first"})
        follow = await app.backend.submit({"prompt": "followed"})
        await select(app, pilot, QUEUE, follow.job_id)
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
        await wait_status(app, follow.job_id, Status.COMPLETED)
        await pilot.pause()
        await pilot.press(*"typed meanwhile")
        assert app.screen.query_one("#prompt", TextArea).text == "typed meanwhile"
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the form to ask before discarding")
        await pilot.press("y")
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="the form to close")
        assert app.main_screen.selected_id == follow.job_id


async def test_keymap_from_settings_remaps_a_key(make_settings):
    settings = make_settings(max_concurrent=1, sim_seconds=30).replace(keymap={"cancel": "x"})
    async with running_app(settings) as (app, pilot):
        await app.backend.submit({"prompt": "runs"})
        waiting = await app.backend.submit({"prompt": "waits"})
        await select(app, pilot, QUEUE, waiting.job_id)
        await pilot.press("c")
        await pilot.pause()
        assert (await app.backend.get(waiting.job_id)).status == Status.QUEUED
        await pilot.press("x")
        await wait_status(app, waiting.job_id, Status.CANCELLED)


async def test_command_palette_offers_every_action(settings):
    async with running_app(settings) as (app, pilot):
        titles = {command.title for command in app.get_system_commands(app.main_screen)}
        assert {
            "New job",
            "Cancel job",
            "Retry job",
            "Delete job",
            "Save videos",
            "Open video",
            "Job details",
            "Filter jobs",
            "Keys",
            "Quit veotui",
        } <= titles
        await pilot.press("ctrl+p")
        await pilot.press(*"New job")
        # The palette searches in a worker: wait for it to offer the command, then take it.
        await wait_for(
            lambda: (
                isinstance(app.screen, CommandPalette)
                and app.screen.query_one(CommandList).option_count > 0
                and "New job" in str(app.screen.query_one(CommandList).get_option_at_index(0).prompt)
            ),
            what="the palette to offer New job",
        )
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the palette to open the form")


# -- history paging -----------------------------------------------------------------------


async def test_history_is_paged_from_the_backend(settings):
    SqliteStore(settings.db_path).insert_many(ended_jobs(250))
    async with running_app(settings) as (app, pilot):
        screen = app.main_screen
        history = screen.tables[HISTORY]
        await wait_for(lambda: history.row_count == 100, what="the first page")
        assert "1–100 of 250" in str(history.border_title)
        screen._activate(HISTORY)
        await pilot.pause()
        history.move_cursor(row=99)
        await pilot.press("down")
        await wait_for(lambda: "101–200 of 250" in str(history.border_title), what="the second page")
        assert history.cursor_row == 0
        await pilot.press("up")
        await wait_for(lambda: "1–100 of 250" in str(history.border_title), what="back to the first")
        assert history.cursor_row == 99


# -- quitting -----------------------------------------------------------------------------


async def test_quit_asks_while_jobs_are_processing(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "busy"})
        await wait_shown(app, PROCESSING, job.job_id)
        await pilot.press("q")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert "processing" in texts(app.screen)
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running
        await pilot.press("q")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the question again")
        await pilot.press("y")
        await wait_for(lambda: not app.is_running, what="the app to exit")


async def test_quit_at_once_when_idle(settings):
    async with running_app(settings) as (app, pilot):
        await pilot.press("q")
        await wait_for(lambda: not app.is_running, what="the app to exit")


# -- errors -------------------------------------------------------------------------------


async def test_a_backend_refusal_is_a_notification(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "ends under our feet"})
        await select(app, pilot, PROCESSING, job.job_id)
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        # While the question is open the job ends elsewhere; the answer then comes too late.
        await app.backend.cancel(job.job_id)
        await pilot.press("y")
        await wait_for(
            lambda: any(
                n.title == "Could not cancel job " + job.job_id[:8] and n.severity == "error" for n in app.notices
            ),
            what="the refusal as a notification",
        )
        assert app.is_running and isinstance(app.screen, MainScreen)


async def test_a_failing_opener_is_reported_with_the_path(settings, monkeypatch, tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    opener = bin_dir / "xdg-open"
    opener.write_text("#!/bin/sh\nexit 3\n")
    opener.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DISPLAY", ":0")
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "no player"})
        await wait_status(app, job.job_id, Status.COMPLETED)
        await select(app, pilot, HISTORY, job.job_id)
        await pilot.press("o")
        await wait_for(
            lambda: any("exited with status 3" in n.message and ".mp4" in n.message for n in app.notices),
            what="the opener's failure",
        )


async def test_a_resize_gives_the_prompt_the_width_and_keeps_rows_and_selection(slow_settings):
    async with running_app(slow_settings, size=(140, 40)) as (app, pilot):
        await app.backend.submit({"prompt": "runs"})
        waiting = [await app.backend.submit({"prompt": f"waits {n}"}) for n in range(3)]
        await select(app, pilot, QUEUE, waiting[1].job_id)
        queue = app.main_screen.tables[QUEUE]
        wide = queue.widths["prompt"]
        await pilot.resize_terminal(80, 24)
        await wait_for(lambda: queue.widths["prompt"] < wide, what="a narrower prompt column")
        assert set(queue.rows) == {job.job_id for job in waiting}
        assert app.main_screen.selected_id == waiting[1].job_id
        total = sum(width + 2 * CELL_PADDING for width in queue.widths.values())
        assert total <= queue.scrollable_content_region.width  # no horizontal scrolling


async def test_footer_greys_out_the_keys_that_do_not_apply_to_the_selection(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        await app.backend.submit({"prompt": "runs"})
        waiting = [await app.backend.submit({"prompt": f"waits {n}"}) for n in range(2)]
        screen = app.main_screen

        async def footer_agrees() -> None:
            await pilot.pause()
            footer_keys: list[Any] = list(screen.query("FooterKey"))  # Textual does not export FooterKey
            keys = {key.action.removeprefix("screen."): key for key in footer_keys}
            assert {"cancel", "retry", "delete", "save", "open", "details"} <= keys.keys()
            for action, key in keys.items():
                applies = screen.check_action(action, ()) is True
                assert key.has_class("-disabled") is not applies, action

        await select(app, pilot, QUEUE, waiting[0].job_id)
        await footer_agrees()
        assert screen.check_action("retry", ()) is None
        await app.backend.cancel(waiting[0].job_id)
        await wait_shown(app, HISTORY, waiting[0].job_id)
        await select(app, pilot, HISTORY, waiting[0].job_id)
        await footer_agrees()
        assert screen.check_action("retry", ()) is True and screen.check_action("cancel", ()) is None


async def test_a_click_selects_the_row_under_the_pointer_after_rows_moved(slow_settings):
    async with running_app(slow_settings, size=(140, 40)) as (app, pilot):
        await app.backend.submit({"prompt": "runs"})
        waiting = [await app.backend.submit({"prompt": f"waits {n}"}) for n in range(4)]
        await select(app, pilot, QUEUE, waiting[3].job_id)
        queue = app.main_screen.tables[QUEUE]
        await app.backend.cancel(waiting[0].job_id)
        await wait_for(lambda: waiting[0].job_id not in queue.rows, what="the cancelled job to leave")
        await pilot.pause()
        # The border, then the header: the second row (waiting[2]) is on the fourth line.
        await pilot.click(queue, offset=(30, 3))
        await pilot.pause()
        assert app.main_screen.selected_id == waiting[2].job_id


async def test_a_resize_keeps_history_newest_first(settings):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    SqliteStore(settings.db_path).insert_many(ended_jobs(5))
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "the newest"})
        await wait_shown(app, HISTORY, job.job_id)
        history = app.main_screen.tables[HISTORY]
        before = history.row_keys
        assert before[0] == job.job_id
        await pilot.resize_terminal(100, 30)
        await wait_for(lambda: history.size.width < 100, what="the table to take the new width")
        await pilot.pause()
        assert history.row_keys == before


def captured_notices(app) -> list[tuple[str, str]]:
    notes: list[tuple[str, str]] = []
    original = app.notify

    def notify(message: str, **kwargs) -> None:
        notes.append((message, kwargs.get("title", "")))
        original(message, **kwargs)

    app.notify = notify
    return notes


async def test_the_palette_lists_each_command_once_and_says_why_one_does_not_apply(settings):
    async with running_app(settings) as (app, pilot):
        titles = [command.title for command in app.get_system_commands(app.main_screen)]
        assert len(titles) == len(set(titles))
        assert "Quit" not in titles and titles.count("Keys") == 1
        job = await app.backend.submit({"prompt": "a [fail] run"})
        await wait_status(app, job.job_id, Status.FAILED)
        await select(app, pilot, HISTORY, job.job_id)
        notes = captured_notices(app)
        await app.main_screen.run_from_palette("save")
        assert notes == [
            (f"Job {job.job_id[:8]} is failed; only a completed job has videos to save.", "Save videos: nothing to do")
        ]


async def test_ctrl_c_says_how_to_quit_in_plain_text(settings):
    async with running_app(settings) as (app, pilot):
        notes = captured_notices(app)
        await pilot.press("ctrl+c")
        await wait_for(lambda: bool(notes), what="the notice")
        assert "[b]" not in notes[0][0] and "q to quit" in notes[0][0]


async def test_a_job_that_starts_at_once_is_not_called_queue_position_1(settings):
    async with running_app(settings) as (app, pilot):
        notes = captured_notices(app)
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
        await pilot.press(*"straight in")
        await pilot.press("ctrl+s")
        await wait_for(lambda: any(title == "Submitted" for _, title in notes), what="the notice")
        message = next(message for message, title in notes if title == "Submitted")
        assert "starting now" in message and "queue position" not in message


async def test_cancelling_a_queued_job_keeps_the_cursor_in_the_queue(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        await app.backend.submit({"prompt": "holds the slot"})
        waiting = [await app.backend.submit({"prompt": f"waiting {n}"}) for n in range(3)]
        await select(app, pilot, QUEUE, waiting[1].job_id)
        await pilot.press("c")
        await wait_for(lambda: waiting[1].job_id not in app.main_screen.tables[QUEUE].rows, what="the cancel")
        await pilot.pause()
        assert app.main_screen.active_panel == QUEUE
        assert app.main_screen.selected_id == waiting[2].job_id


async def test_an_empty_screen_says_how_to_begin(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        history = app.main_screen.tables[HISTORY]
        await wait_for(lambda: "press n to submit your first job" in str(history.border_subtitle), what="the hint")
        job = await app.backend.submit({"prompt": "the first"})
        await wait_shown(app, PROCESSING, job.job_id)
        await wait_for(lambda: not history.border_subtitle, what="the hint to go")


async def test_a_job_waiting_out_a_rate_limit_says_so_and_its_bar_holds(settings):
    generator = ControlledGenerator()
    generator.submit_faults.append(TransientFault("429 RESOURCE_EXHAUSTED: slow down", retry_after=30))
    async with LocalBackend(settings, generator=generator, env={}) as backend:
        app = VeotuiApp(backend, settings)
        async with app.run_test(size=(120, 40)):
            await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
            job = await backend.submit({"prompt": "a busy day"})
            table = app.main_screen.tables[PROCESSING]

            def cells() -> tuple[str, str]:
                if job.job_id not in table.rows:
                    return ("", "")
                row = table.get_row(job.job_id)
                return (str(row[2]), str(row[3]))

            await wait_for(lambda: cells()[0] == "rate limited", what="the stage to say rate limited")
            assert re.fullmatch(r"retry(ing)? in (29|30) s", cells()[1]), cells()
            waiting = await backend.get(job.job_id)
            assert waiting.retry_reason == "rate limited" and waiting.retry_at is not None
            # A remote client reads the same from the job's JSON.
            read = Job.from_dict(waiting.to_dict())
            assert read.retry_reason == "rate limited" and read.retry_at is not None
            assert abs((read.retry_at - waiting.retry_at).total_seconds()) < 0.001
            assert (await backend.get(job.job_id)).progress == waiting.progress


async def test_at_80x24_queue_and_history_share_the_height_and_the_selected_one_keeps_5_rows(make_settings):
    settings = make_settings(max_concurrent=4, sim_seconds=600)
    async with running_app(settings, size=(80, 24)) as (app, pilot):
        jobs = [await app.backend.submit({"prompt": f"job {n}"}) for n in range(40)]
        await wait_shown(app, QUEUE, jobs[-1].job_id)
        tables = app.main_screen.tables

        def rows(panel: str) -> int:
            return tables[panel].region.height - 3  # its border and header row

        def focused_with_five_rows(panel: str) -> bool:
            return tables[panel].has_focus and rows(panel) >= 5

        for panel in (QUEUE, HISTORY):
            tables[panel].focus()
            await wait_for(functools.partial(focused_with_five_rows, panel), what=f"{panel} 5 rows")
        assert rows(QUEUE) >= 4 and rows(HISTORY) >= 4
        assert abs(rows(QUEUE) - rows(HISTORY)) <= 2


async def test_the_delete_dialog_names_cloud_files_only_with_a_bucket_and_a_server_by_its_host(make_settings):
    async with running_app(make_settings(sim_seconds=600)) as (app, pilot):
        job = await app.backend.submit({"prompt": "to delete"})
        await select(app, pilot, PROCESSING, job.job_id)
        screen = app.main_screen

        async def detail() -> str:
            await pilot.press("d")
            await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the delete dialog")
            text = str(app.screen.query_one("#detail", Static).content)
            await pilot.press("n")
            await wait_for(lambda: app.screen is screen, what="the dialog to close")
            return text

        plain = await detail()
        assert "on this machine." in plain and "cloud" not in plain.lower()
        assert screen.info is not None
        screen.follower.info = dataclasses.replace(screen.info, cloud_bucket=True, location="http://10.1.2.3:8765")
        remote = await detail()
        assert "on the server at 10.1.2.3:8765, and its files in the Cloud Storage bucket." in remote
        assert "http://" not in remote


async def test_the_footer_is_rebuilt_only_when_the_keys_that_apply_change(slow_settings):
    async with running_app(slow_settings) as (app, pilot):
        await app.backend.submit({"prompt": "runs"})
        waiting = [await app.backend.submit({"prompt": f"waits {n}"}) for n in range(2)]
        screen = app.main_screen
        await select(app, pilot, QUEUE, waiting[0].job_id)
        rebuilt: list[int] = []
        original = screen.refresh_bindings

        def counting() -> None:
            rebuilt.append(1)
            original()

        screen.refresh_bindings = counting  # type: ignore[method-assign]  # counts the screen's rebuilds
        await pilot.press("down")
        await pilot.pause()
        # Another queued job: the same keys apply.
        assert screen.selected_id == waiting[1].job_id and not rebuilt
        await app.backend.cancel(waiting[1].job_id)
        await wait_for(lambda: screen.selected_id == waiting[0].job_id, what="the cursor on the neighbour")
        assert not rebuilt
        await select(app, pilot, HISTORY, waiting[1].job_id)
        # A cancelled job: retry applies, cancel no longer.
        assert rebuilt
        assert screen.check_action("retry", ()) is True and screen.check_action("cancel", ()) is None


async def test_after_the_first_frame_the_heap_is_frozen_and_full_collections_are_rarer(settings):
    import gc

    from veotui.tui.app import FULL_COLLECTION_THRESHOLD

    before = gc.get_threshold()
    try:
        async with running_app(settings) as (app, pilot):
            await wait_for(lambda: gc.get_threshold()[2] == FULL_COLLECTION_THRESHOLD, what="the heap frozen")
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold()[:2] == before[:2]
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()

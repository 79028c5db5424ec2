"""The Veo 3.1 modes in the TUI under Pilot: the form's Advanced section and path completion,
`x` to extend a completed job's video, and the pictures on the details screen."""

from __future__ import annotations

import pytest
from PIL import Image
from textual.widgets import Collapsible, Input, OptionList, Select, Static, TextArea

from tests.tui.conftest import HISTORY, QUEUE, running_app, wait_for, wait_status
from tests.tui.test_pilot import select, texts
from veotui.core.job import Status
from veotui.tui.details import DetailsScreen
from veotui.tui.form import ChoiceSelect, NewJobScreen, complete_path
from veotui.tui.screen import MainScreen


@pytest.fixture
def settings(make_settings):
    return make_settings(pictures="halfblocks")


def picture(path, colour):
    Image.new("RGB", (64, 36), colour).save(path)
    return path


def test_path_completion(tmp_path):
    (tmp_path / "frames").mkdir()
    picture(tmp_path / "first.png", (1, 2, 3))
    assert complete_path(f"{tmp_path}/fi") == f"{tmp_path}/first.png"
    assert complete_path(f"{tmp_path}/fr") == f"{tmp_path}/frames/"
    assert complete_path(f"{tmp_path}/zz") is None
    assert complete_path("/no/such/folder/x") is None


async def test_the_advanced_section_submits_the_modes(settings, tmp_path):
    first = picture(tmp_path / "first.png", (250, 0, 0))
    last = picture(tmp_path / "last.png", (0, 0, 250))
    async with running_app(settings) as (app, pilot):
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
        form = app.screen
        assert form.query_one("#advanced", Collapsible).collapsed
        form.query_one("#prompt", TextArea).text = "a door opens"
        form.query_one("#image", Input).value = str(first)
        form.query_one("#last-frame", Input).value = str(last)
        await pilot.pause()

        def cost() -> float:
            text = str(form.query_one("#form-status", Static).content)
            return float(text.removeprefix("Estimated cost: $").split()[0])

        with_sound = cost()
        form.query_one("#audio", Select).value = "off"
        form.query_one("#people", Select).value = "dont_allow"
        form.query_one("#enhance", Select).value = "on"
        await pilot.pause()
        assert cost() < with_sound  # the estimate follows the form: silence costs less
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="the form to close")
        lists = await app.backend.list_jobs()
        job = next(j for j in [*lists.processing, *lists.queued, *lists.history] if j.prompt == "a door opens")
        assert (job.has_image, job.has_last_frame) == (True, True)
        request = job.request
        assert (request.generate_audio, request.person_generation, request.enhance_prompt) == (
            False,
            "dont_allow",
            True,
        )


async def test_a_bad_reference_path_opens_the_advanced_section(settings, tmp_path):
    async with running_app(settings) as (app, pilot):
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
        form = app.screen
        form.query_one("#prompt", TextArea).text = "a mug"
        form.query_one("#reference-2", Input).value = str(tmp_path / "missing.png")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not form.query_one("#advanced", Collapsible).collapsed
        assert "No file at" in str(form.query_one("#reference-2-error", Static).content)
        assert app.screen is form


async def test_x_extends_the_selected_completed_job(settings, tmp_path):
    async with running_app(settings) as (app, pilot):
        source = await app.backend.submit(
            {"prompt": "a boat sets off", "aspect_ratio": "9:16"},
            picture(tmp_path / "a.png", (200, 200, 0)).read_bytes(),
            "a.png",
        )
        await wait_status(app, source.job_id, Status.COMPLETED)
        await select(app, pilot, HISTORY, source.job_id)
        await pilot.press("x")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the extend form")
        form = app.screen
        assert isinstance(form, NewJobScreen)
        assert form.extends is not None and form.extends.job_id == source.job_id
        assert "Extend job" in texts(form)
        assert not form.query("#image")  # an extension takes no input image
        assert form.query_one("#aspect", Select).value == "9:16"
        await wait_for(lambda: form.query("#extends-picture > *"), what="the last frame's picture")
        assert "starts on this frame" in str(form.query_one("#extends-note", Static).content)
        # What the extension makes, and the choices an extension cannot take, with the reason.
        status = str(form.query_one("#form-status", Static).content)
        assert "the result: about 15 s (the 8 s video and 7 s more)" in status
        durations = form.query_one("#duration", ChoiceSelect).query_one(OptionList).options
        assert [(str(o.prompt), o.disabled) for o in durations] == [
            ("4 s — 8 s for an extension", True),
            ("6 s — 8 s for an extension", True),
            ("8 s", False),
        ]
        # No Google page says an extension keeps its video's aspect ratio: the other one is
        # offered, and chosen, a caution says so.
        aspects = form.query_one("#aspect", ChoiceSelect).query_one(OptionList).options
        assert [(str(o.prompt), o.disabled) for o in aspects] == [("16:9", False), ("9:16", False)]
        caution = form.query_one("#form-caution", Static)
        assert not caution.display
        form.query_one("#aspect", Select).value = "16:9"
        await pilot.pause()
        assert caution.display and not form.query_one("#form-rule", Static).display
        assert str(caution.content) == (
            "Caution: the extension asks for 16:9 of a 9:16 video, and no Google page read says Veo extends a video "
            "into another aspect ratio; if Google refuses the job, it answers 400 and charges nothing"
        )
        form.query_one("#prompt", TextArea).text = "it reaches the island"
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="the form to close")
        lists = await app.backend.list_jobs()
        extension = next(j for j in [*lists.processing, *lists.queued, *lists.history] if j.request.extends)
        extends = extension.request.extends
        assert extends is not None and extends.job_id == source.job_id and extends.video == 1
        assert (extension.request.aspect_ratio, extends.source_aspect_ratio) == ("16:9", "9:16")

        # x does nothing on a job that failed: it will make no video.
        failed = await app.backend.submit({"prompt": "nope [fail]"})
        await wait_status(app, failed.job_id, Status.FAILED)
        await select(app, pilot, HISTORY, failed.job_id)
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


async def test_the_extend_form_refuses_a_video_over_30_s_by_name(settings):
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit({"prompt": "a boat sets off"})
        await wait_status(app, job.job_id, Status.COMPLETED)
        for step in range(4):  # 15, 22, 29 and 36 s
            job = await app.backend.submit({"prompt": f"and on {step}", "extends_job_id": job.job_id})
            await wait_status(app, job.job_id, Status.COMPLETED)
        assert job.request.video_seconds == 36
        await select(app, pilot, HISTORY, job.job_id)
        await pilot.press("x")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the extend form")
        form = app.screen
        form.query_one("#prompt", TextArea).text = "too far"
        await pilot.pause()
        rule = form.query_one("#form-rule", Static)
        assert rule.display
        assert str(rule.content) == (
            f"Not accepted: extends_video: video 1 of job {job.job_id[:8]} is 36.0 s long; "
            "veo-3.1-generate-001 extends videos of 1 to 30 s"
        )
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form
        lists = await app.backend.list_jobs()
        assert not [j for j in [*lists.processing, *lists.queued, *lists.history] if j.prompt == "too far"]


async def test_x_on_a_queued_job_queues_an_extension_that_waits_for_it(make_settings):
    settings = make_settings(pictures="halfblocks", max_concurrent=1, sim_seconds=30)
    async with running_app(settings) as (app, pilot):
        running = await app.backend.submit({"prompt": "takes the slot"})
        source = await app.backend.submit({"prompt": "a boat sets off", "number_of_videos": 2})
        await select(app, pilot, QUEUE, source.job_id)
        await pilot.press("x")
        await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the extend form")
        form = app.screen
        # The videos it will make, and where the extension will start.
        assert form.query_one("#extends-video", Select).value == 1
        await wait_for(lambda: "waits for job" in str(form.query_one("#extends-note", Static).content), what="note")
        assert f"waits for job {source.job_id[:8]} (queued) to complete" in str(
            form.query_one("#extends-note", Static).content
        )
        form.query_one("#extends-video", Select).value = 2
        form.query_one("#prompt", TextArea).text = "it reaches the island"
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, MainScreen), what="the form to close")
        lists = await app.backend.list_jobs()
        extension = next(j for j in lists.queued if j.request.extends)
        extends = extension.request.extends
        assert extends is not None and extends.job_id == source.job_id and extends.video == 2
        assert extension.waiting_for == source.job_id
        # The queue says what it waits for.
        queue = app.main_screen.tables[QUEUE]

        def prompt_cell() -> str:
            return str(queue.get_row(extension.job_id)[2]) if extension.job_id in queue.rows else ""

        await wait_for(lambda: f"after {source.job_id[:8]}" in prompt_cell(), what="the wait in the queue")
        assert prompt_cell().endswith("it reaches the island")
        await app.backend.cancel(running.job_id)


async def test_details_show_the_input_pictures_and_a_strip_per_video(settings, tmp_path):
    async with running_app(settings) as (app, pilot):
        job = await app.backend.submit(
            {"prompt": "a door opens", "number_of_videos": 2, "duration_seconds": 4},
            picture(tmp_path / "a.png", (250, 0, 0)).read_bytes(),
            "a.png",
            last_frame=(picture(tmp_path / "b.png", (0, 0, 250)).read_bytes(), "b.png"),
        )
        await wait_status(app, job.job_id, Status.COMPLETED)
        await select(app, pilot, HISTORY, job.job_id)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen), what="details")
        screen = app.screen
        await wait_for(lambda: len(screen.query(".picture-image")) == 8, what="2 inputs and 2 strips of 3")
        captions = [str(c.content) for c in screen.query(".picture-caption").results(Static)]
        assert captions[:2] == ["Inputs · input image", "Inputs · last frame"]
        assert captions[2:5] == ["Video 1 · first", "Video 1 · middle", "Video 1 · last"]
        cache = app.backend.files.folder(job.job_id) / ".thumbnails"
        assert (cache / "generated_video_2_last.png").is_file()


async def test_x_and_the_pictures_work_over_remote(make_settings, tmp_path):
    from veotui.backend.remote import RemoteBackend
    from veotui.server import running_server
    from veotui.tui.app import VeotuiApp

    settings = make_settings(pictures="halfblocks")
    async with running_server(settings, keepalive=0.2) as server, RemoteBackend(server.url) as backend:
        job = await backend.submit(
            {"prompt": "far away"}, picture(tmp_path / "a.png", (0, 200, 0)).read_bytes(), "a.png"
        )
        app = VeotuiApp(backend, settings.replace(data_dir=tmp_path / "client"))
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
            await wait_status(app, job.job_id, Status.COMPLETED)
            await select(app, pilot, HISTORY, job.job_id)
            await pilot.press("enter")
            await wait_for(lambda: isinstance(app.screen, DetailsScreen), what="details")
            await wait_for(lambda: len(app.screen.query(".picture-image")) == 4, what="1 input and 1 strip")
            # Fetched from the server into this machine's cache.
            assert (tmp_path / "client" / "cache" / "pictures" / job.job_id / "generated_video_1_last.png").is_file()
            await pilot.press("escape")
            await wait_for(lambda: isinstance(app.screen, MainScreen), what="the main screen")
            await pilot.press("x")
            await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the extend form")
            await wait_for(lambda: app.screen.query("#extends-picture > *"), what="the last frame's picture")


def test_the_pictures_setting_names_its_choices(make_settings):
    from veotui.core.errors import SettingsError

    assert make_settings().pictures == "auto"
    with pytest.raises(SettingsError, match="VEOTUI_PICTURES"):
        make_settings(pictures="ascii-art")

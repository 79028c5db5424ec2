"""Snapshots of the screens (pytest-textual-snapshot; made with textual 8.2.8, pinned in
pyproject.toml: regenerate them with ``--snapshot-update`` when Textual is bumped).

They run a real LocalBackend on the simulator under a frozen wall clock (time-machine):
submitted jobs reach ``generating`` and stay there, so progress, elapsed time and ETA are
the same on every run. Job and operation ids come from counters. ``snap_compare`` only
works in plain ``def`` tests.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from types import SimpleNamespace

import pytest
import time_machine
from PIL import Image
from textual.widgets import Collapsible, Input, TextArea

from tests.support.waiting import wait_for
from tests.tui.history import ended_jobs
from veotui.backend.local import LocalBackend
from veotui.core.job import Job, Status
from veotui.core.request import JobRequest
from veotui.store.jobs import JobStore
from veotui.store.sqlite import SqliteStore
from veotui.tui.app import VeotuiApp
from veotui.tui.board import HISTORY, PROCESSING, QUEUE
from veotui.tui.details import DetailsScreen
from veotui.tui.dialogs import ConfirmScreen
from veotui.tui.form import ChoiceSelect, NewJobScreen
from veotui.tui.grid import GroupScreen
from veotui.tui.header import HeaderBar
from veotui.tui.metrics import MetricsScreen

#: The Textual release the SVGs under __snapshots__ were made with.
SNAPSHOT_TEXTUAL = "8.2.8"
FROZEN = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PROMPTS = (
    "A heron lifts off a misty lake at dawn, slow motion",
    "Timelapse of a city skyline from dusk to night [flaky]",
    "A paper boat drifting down a rain gutter",
    "Macro shot of frost growing on a window pane",
)


@pytest.fixture
def frozen(monkeypatch):
    """UTC, a clock that does not move, and ids from counters."""
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    jobs = itertools.count(1)
    operations = itertools.count(1)
    monkeypatch.setattr(
        "veotui.backend.local.new_job_id", lambda: f"c0ffee{next(jobs):02x}-5eed-4000-8000-000000000000"
    )
    monkeypatch.setattr(
        "veotui.generators.sim.uuid", SimpleNamespace(uuid4=lambda: SimpleNamespace(hex=f"op{next(operations):04d}"))
    )
    # Stage times run on the monotonic clock, which time_machine leaves running.
    monkeypatch.setattr("veotui.store.jobs.time", SimpleNamespace(monotonic=lambda: 1000.0))
    with time_machine.travel(FROZEN, tick=False):
        yield
    if old_tz is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old_tz
    time.tzset()


@pytest.fixture
def snapshot_app(make_settings, frozen):
    """The app on a fresh data dir holding nine ended jobs; it starts its own backend."""
    settings = make_settings(sim_seconds=600)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(settings.db_path)
    store.insert_many(ended_jobs(9, base=FROZEN - timedelta(hours=2)))
    store.close()
    return VeotuiApp(LocalBackend(settings, env={}), settings, start_backend=True)


async def fill_panels(pilot) -> None:
    """Four jobs: two generating (both slots), two queued."""
    app: VeotuiApp = pilot.app
    await app.backend_ready()
    await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
    for prompt in PROMPTS:
        await app.backend.submit({"prompt": prompt})
    tables = app.main_screen.tables
    header = app.main_screen.query_one(HeaderBar)

    async def settled() -> bool:
        lists = await app.backend.list_jobs()
        spent = (await app.backend.queue()).spent_today_usd
        return (
            [job.status for job in lists.processing] == [Status.GENERATING] * 2
            and tables[PROCESSING].row_count == 2
            and tables[QUEUE].row_count == 2
            and all(job.status == Status.GENERATING for job in app.main_screen.board.jobs(PROCESSING))
            and (header.processing, header.queued, header.spend_today) == (2, 2, spent)
        )

    await wait_for(settled, what="two generating and two queued")
    await pilot.pause()


def no_blink(screen) -> None:
    for widget in screen.query("Input, TextArea"):
        widget.cursor_blink = False


def test_the_snapshots_match_the_installed_textual():
    installed = version("textual")
    assert installed == SNAPSHOT_TEXTUAL, (
        f"the snapshots were made with textual {SNAPSHOT_TEXTUAL}, not {installed}: review the new "
        "rendering, regenerate them with --snapshot-update and change SNAPSHOT_TEXTUAL"
    )


def test_main_screen_80x24(snap_compare, snapshot_app):
    assert snap_compare(snapshot_app, terminal_size=(80, 24), run_before=fill_panels)


def test_main_screen_140x40(snap_compare, snapshot_app):
    assert snap_compare(snapshot_app, terminal_size=(140, 40), run_before=fill_panels)


async def new_job_form(pilot, prompt: str) -> NewJobScreen:
    """The panels filled, then the form opened with ``prompt`` typed."""
    await fill_panels(pilot)
    await pilot.press("n")
    await wait_for(lambda: isinstance(pilot.app.screen, NewJobScreen), what="the form")
    form = pilot.app.screen
    no_blink(form)
    form.query_one("#prompt", TextArea).text = prompt
    return form


def test_new_job_form(snap_compare, snapshot_app):
    async def open_form(pilot) -> None:
        form = await new_job_form(pilot, "A lighthouse beam sweeping through fog")
        form.query_one("#seed", Input).value = "not a number"
        await pilot.pause()

    assert snap_compare(snapshot_app, terminal_size=(100, 40), run_before=open_form)


def test_new_job_form_rules_out_what_the_model_does_not_take(snap_compare, snapshot_app):
    """Lite chosen with 4k: the refusal above the footer, and in the open list of resolutions
    4k greyed out with its reason."""

    async def open_form(pilot) -> None:
        form = await new_job_form(pilot, "A lighthouse beam sweeping through fog")
        form.query_one("#resolution", ChoiceSelect).value = "4k"
        form.query_one("#model", ChoiceSelect).value = "veo-3.1-lite-generate-001"
        await pilot.pause()
        form.query_one("#resolution", ChoiceSelect).expanded = True
        await pilot.pause()

    assert snap_compare(snapshot_app, terminal_size=(100, 40), run_before=open_form)


def test_details_screen(snap_compare, snapshot_app):
    async def open_details(pilot) -> None:
        await fill_panels(pilot)
        pilot.app.main_screen._activate(PROCESSING)
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(lambda: isinstance(pilot.app.screen, DetailsScreen), what="details")
        body = pilot.app.screen.query_one("#details-body")
        await wait_for(lambda: "Reading" not in str(body.content), what="the job to be read")
        await pilot.pause()

    assert snap_compare(snapshot_app, terminal_size=(100, 40), run_before=open_details)


def test_delete_confirm_dialog(snap_compare, snapshot_app):
    async def ask_delete(pilot) -> None:
        await fill_panels(pilot)
        screen = pilot.app.main_screen
        screen._activate(HISTORY)
        await pilot.pause()
        await pilot.press("d")
        await wait_for(lambda: isinstance(pilot.app.screen, ConfirmScreen), what="the question")
        await pilot.pause()

    assert snap_compare(snapshot_app, terminal_size=(80, 24), run_before=ask_delete)


def test_new_job_form_80x24_with_advanced_open(snap_compare, snapshot_app):
    async def open_form(pilot) -> None:
        form = await new_job_form(pilot, "The same red mug on a desk, then in a kitchen")
        form.query_one("#advanced", Collapsible).collapsed = False
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        advanced = form.query_one("#advanced")
        form.query_one("#form-fields").scroll_to_widget(advanced, animate=False, top=True, immediate=True)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    assert snap_compare(snapshot_app, terminal_size=(80, 24), run_before=open_form)


def local_backend_of(app: VeotuiApp) -> LocalBackend:
    """The engine in-process that a snapshot's app runs on."""
    assert isinstance(app.backend, LocalBackend)
    return app.backend


def ended(store: JobStore, job_id: str) -> Callable[[], bool]:
    """Whether the job has reached an end status, asked each time it is called."""

    def check() -> bool:
        job = store.get(job_id)
        return job is not None and job.status.is_final

    return check


@pytest.fixture
def frames(tmp_path) -> tuple[bytes, bytes]:
    """A first and a last frame, as PNG files hold them."""
    first, last = tmp_path / "first.png", tmp_path / "last.png"
    Image.new("RGB", (64, 36), (230, 60, 20)).save(first)
    Image.new("RGB", (64, 36), (20, 60, 230)).save(last)
    return first.read_bytes(), last.read_bytes()


@pytest.fixture
def pictures_app(make_settings, frozen):
    """The app with one completed first + last frame job (a finished simulation, frozen clock)
    and half-block pictures, which draw the same on every terminal."""
    settings = make_settings(sim_seconds=0, pictures="halfblocks")
    return VeotuiApp(LocalBackend(settings, env={}), settings, start_backend=True)


def test_details_screen_with_pictures(snap_compare, pictures_app, frames):
    async def open_details(pilot) -> None:
        app: VeotuiApp = pilot.app
        await app.backend_ready()
        await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
        first, last = frames
        job = await app.backend.submit(
            {"prompt": "A door swings open onto the sea", "duration_seconds": 4},
            first,
            "first.png",
            last_frame=(last, "last.png"),
        )
        store = local_backend_of(app).store
        await wait_for(lambda: store.get(job.job_id).status == Status.COMPLETED, what="completion")
        await wait_for(lambda: job.job_id in app.main_screen.tables[HISTORY].rows, what="its row")
        app.main_screen._activate(HISTORY)
        app.main_screen.tables[HISTORY].select(job.job_id)
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen), what="details")
        await wait_for(lambda: len(app.screen.query(".picture-image")) == 5, what="the pictures")
        app.clear_notifications()
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    # At 80×24 the pictures come first, without a scroll.
    assert snap_compare(pictures_app, terminal_size=(80, 24), run_before=open_details)


def a_day_of_jobs(settings) -> None:
    """Jobs that ran over the last day, each hour's queued together and then run one by one,
    made through the store's own transitions at their own (travelled) times."""
    kinds = ("operation_error", "safety_filter", "transient")
    store = SqliteStore(settings.db_path)
    try:
        for hour in range(23, -1, -1):
            count = (hour * 5) % 4 + (1 if hour % 6 else 0)
            with time_machine.travel(FROZEN - timedelta(hours=hour, minutes=55), tick=False) as traveller:
                jobs = [
                    store.insert(
                        Job(
                            job_id=f"da{hour:02x}{n:04x}-0000-4000-8000-000000000000",
                            status=Status.QUEUED,
                            request=JobRequest(prompt=f"hour {hour} job {n}"),
                        )
                    )
                    for n in range(count)
                ]
                for n, job in enumerate(jobs):
                    traveller.shift(5)
                    for stage, seconds in (
                        (Status.STARTING, 1),
                        (Status.UPLOADING_IMAGE, 2),
                        (Status.GENERATING, 70 + 20 * n),
                        (Status.PROCESSING, 1),
                        (Status.DOWNLOADING, 6),
                    ):
                        store.transition(job.job_id, stage)
                        traveller.shift(seconds)
                    if (hour + n) % 5 == 0:
                        store.transition(job.job_id, Status.FAILED, error="x", error_kind=kinds[(hour + n) % 3])
                    else:
                        store.transition(job.job_id, Status.COMPLETED, seconds=80.0 + 20 * n)
    finally:
        store.close()


@pytest.fixture
def metrics_app(make_settings, frozen, monkeypatch):
    """The app on a data dir with a day of jobs; the data directory measures 700 MB."""
    settings = make_settings(sim_seconds=600)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with monkeypatch.context() as patch:
        # Stage times from the travelled wall clock (time-machine leaves the monotonic one).
        patch.setattr(SqliteStore, "stage_elapsed", lambda self, job: None)
        a_day_of_jobs(settings)
    monkeypatch.setattr("veotui.datadir.sizes.directory_bytes", lambda root: 700 * 1024 * 1024)
    return VeotuiApp(LocalBackend(settings, env={}), settings, start_backend=True)


def test_metrics_screen(snap_compare, metrics_app):
    async def open_metrics(pilot) -> None:
        app: VeotuiApp = pilot.app
        await app.backend_ready()
        await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
        dir_size = local_backend_of(app).dir_size
        await wait_for(lambda: dir_size.value() > 0, what="the data directory's size")
        await pilot.press("m")
        await wait_for(lambda: isinstance(app.screen, MetricsScreen), what="the metrics screen")
        screen = app.screen
        assert isinstance(screen, MetricsScreen)
        await wait_for(lambda: screen.loaded, what="the first figures")
        await pilot.pause()

    assert snap_compare(metrics_app, terminal_size=(110, 42), run_before=open_metrics)


def test_group_grid(snap_compare, pictures_app):
    """A sweep of four jobs: three completed (a frame each), one failed, one still queued."""

    async def open_grid(pilot) -> None:
        app: VeotuiApp = pilot.app
        await app.backend_ready()
        await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
        jobs = [
            await app.backend.submit({"prompt": prompt, "seed": seed, "duration_seconds": 4, "group": "foxes"})
            for prompt, seed in (("A red fox in the snow", 1), ("A red fox in the snow", 2), ("A red fox [fail]", 1))
        ]
        store = local_backend_of(app).store
        for job in jobs:
            await wait_for(ended(store, job.job_id), what="its end")
        await app.backend.pause("snapshot")
        await app.backend.submit({"prompt": "A red fox at dusk", "seed": 1, "duration_seconds": 4, "group": "foxes"})
        await wait_for(lambda: jobs[0].job_id in app.main_screen.tables[HISTORY].rows, what="its row")
        app.main_screen._activate(HISTORY)
        app.main_screen.tables[HISTORY].select(jobs[0].job_id)
        await pilot.pause()
        await pilot.press("g")
        await wait_for(lambda: isinstance(app.screen, GroupScreen), what="the grid")
        grid = app.screen
        assert isinstance(grid, GroupScreen)
        await wait_for(lambda: len(grid.tiles) == 4, what="four tiles")
        await wait_for(lambda: sum(t.picture_shown for t in grid.tiles.values()) == 2, what="the pictures")
        app.clear_notifications()
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    assert snap_compare(pictures_app, terminal_size=(100, 30), run_before=open_grid)

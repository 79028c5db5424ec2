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
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from types import SimpleNamespace

import pytest
import time_machine
from textual.widgets import Input, TextArea

from tests.support.waiting import wait_for
from tests.tui.history import ended_jobs
from veotui.backend.local import LocalBackend
from veotui.model import Status
from veotui.store import Store
from veotui.tui.app import VeotuiApp
from veotui.tui.board import HISTORY, PROCESSING, QUEUE
from veotui.tui.details import DetailsScreen
from veotui.tui.dialogs import ConfirmScreen
from veotui.tui.form import NewJobScreen

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
    store = Store(settings.db_path)
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

    async def settled() -> bool:
        lists = await app.backend.list_jobs()
        return (
            [job.status for job in lists.processing] == [Status.GENERATING] * 2
            and tables[PROCESSING].row_count == 2
            and tables[QUEUE].row_count == 2
            and all(job.status == Status.GENERATING for job in app.main_screen.board.jobs(PROCESSING))
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


def test_new_job_form(snap_compare, snapshot_app):
    async def open_form(pilot) -> None:
        await fill_panels(pilot)
        await pilot.press("n")
        await wait_for(lambda: isinstance(pilot.app.screen, NewJobScreen), what="the form")
        form = pilot.app.screen
        no_blink(form)
        form.query_one("#prompt", TextArea).text = "A lighthouse beam sweeping through fog"
        form.query_one("#seed", Input).value = "not a number"
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

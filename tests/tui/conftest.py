"""Helpers for the TUI tests: a real LocalBackend on the simulator, the app on top of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

import pytest
from textual.message import Message
from textual.notifications import Notification, Notify
from textual.pilot import Pilot

from tests.support import waiting
from tests.support.waiting import wait_for
from veotui.backend.base import Backend
from veotui.backend.local import LocalBackend
from veotui.core.job import Status
from veotui.settings import Settings
from veotui.tui.app import VeotuiApp
from veotui.tui.board import HISTORY, PROCESSING, QUEUE

__all__ = ["HISTORY", "PROCESSING", "QUEUE", "running_app", "wait_for", "wait_status"]


#: The app's backend as the test knows it: a LocalBackend lets a test reach the engine's store
#: and files, a RemoteBackend drives a server.
B = TypeVar("B", bound=Backend)


class RecordingApp(VeotuiApp, Generic[B]):
    """The app, keeping every notification it shows in ``notices``: a toast expires after a
    few seconds, sooner than a test on a busy machine may look."""

    backend: B

    def __init__(self, backend: B, settings: Settings) -> None:
        super().__init__(backend, settings)
        self.notices: list[Notification] = []

    def post_message(self, message: Message) -> bool:
        if isinstance(message, Notify):
            self.notices.append(message.notification)
        return super().post_message(message)


@asynccontextmanager
async def running_app(
    settings: Settings, size: tuple[int, int] = (120, 40), *, toasts: bool = False
) -> AsyncIterator[tuple[RecordingApp[LocalBackend], Pilot[int]]]:
    """A started LocalBackend and the app on it, under Pilot; yields (app, pilot).
    ``toasts``: put the notifications on the screen too (Pilot leaves them off)."""
    async with LocalBackend(settings, env={}) as backend:
        app = RecordingApp(backend, settings)
        async with app.run_test(size=size, notifications=toasts) as pilot:
            await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
            yield app, pilot


async def wait_status(app: VeotuiApp, job_id: str, *statuses: Status) -> None:
    await waiting.wait_status(app.backend, job_id, *statuses)


async def wait_shown(app: VeotuiApp, panel: str, job_id: str) -> None:
    """Until the job's row is in ``panel``'s table."""
    table = app.main_screen.tables[panel]
    await wait_for(lambda: job_id in table.rows, what=f"job {job_id[:8]} in {panel}")


@pytest.fixture
def slow_settings(make_settings: Callable[..., Settings]) -> Settings:
    """One slot and a 30 s generation: jobs stay processing / queued while a test acts."""
    return make_settings(max_concurrent=1, sim_seconds=30)

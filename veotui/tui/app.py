"""The Textual application: the main screen over a started backend, the keymap from the
settings, and every main-screen action in the command palette."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from textual.app import App, ScreenStackError, SystemCommand
from textual.notifications import Notification, Notify, SeverityLevel
from textual.screen import Screen

from veotui.backend.base import Backend
from veotui.core.text import printable
from veotui.settings import Settings
from veotui.tui.screen import MainScreen

#: Collections of the middle generation between two full ones, once the heap is frozen
#: (Python's default is 10).
FULL_COLLECTION_THRESHOLD = 100


def utc_now() -> datetime:
    return datetime.now(UTC)


def freeze_heap() -> None:
    """Once the first frame is out: everything built so far (Textual, the styles, the
    first page) lives as long as the app, so take it out of the collector's full passes,
    which otherwise grow into visible stalls while the panels churn. Collect first, so
    no garbage is frozen with it.

    Then full passes are made ten times rarer: they scan everything made since (the
    rendered lines the tables and Textual keep), 10–50 ms each, and every second or two
    they fell on a change being painted. Their garbage (mostly Textual's strips, which
    cache themselves) waits a little longer: a few MB at most."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_THRESHOLD)


class VeotuiApp(App[int]):
    TITLE = "veotui"

    # A toast is as wide as its longest line, up to the screen's width: a path (the video
    # ``o`` opens) then stays on one line, where Textual's 60 columns (half the screen at
    # most) folded it.
    CSS = """
    Toast {
        width: auto;
        max-width: 100%;
    }
    """

    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        *,
        start_backend: bool = False,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """``backend`` is normally started by the caller; with ``start_backend`` the app
        starts it when it mounts and closes it when it exits (snapshot tests run the app
        in an event loop of its own)."""
        super().__init__()
        self.backend = backend
        self.settings = settings
        self.clock = clock
        self._start_backend = start_backend
        self._backend_ready = asyncio.Event()
        #: The toasts raised here, and those held back while another screen is in front.
        self._raised: list[Notification] = []
        self._held: list[Notification] = []

    def get_default_screen(self) -> Screen[Any]:
        return MainScreen(self.backend, self.settings, self.clock, self._backend_ready)

    @property
    def main_screen(self) -> MainScreen:
        return next(screen for screen in self.screen_stack if isinstance(screen, MainScreen))

    async def on_mount(self) -> None:
        self.set_keymap(dict(self.settings.keymap))
        self.screen_change_signal.subscribe(self, self._screen_changed)
        if self._start_backend:
            await self.backend.start()
        self._backend_ready.set()

    def on_main_screen_first_paint(self, _: MainScreen.FirstPaint) -> None:
        freeze_heap()

    async def backend_ready(self) -> None:
        await self._backend_ready.wait()

    async def on_unmount(self) -> None:
        if self._start_backend:
            await self.backend.close()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """As Textual's, but plain text by default: messages carry prompts and error
        sentences, and a prompt saying ``[fail]`` must not vanish as a markup tag, nor a
        control character reach the terminal. Shown over the panels only (below)."""
        if timeout is None:
            timeout = self.NOTIFICATION_TIMEOUT
        notification = Notification(printable(message), printable(title), severity, timeout, markup=markup)
        if self._over_the_panels():
            self._raise(notification)
        else:
            self._held.append(notification)

    # Toasts are shown over the panels only. The form, the details, the help and the other
    # screens are read or typed in: a toast there would cover the form's error line and its
    # cost, or the text being read. What comes meanwhile waits, and is shown, for as long as
    # it was meant to be, once the panels are back.

    def _over_the_panels(self) -> bool:
        try:
            return isinstance(self.screen, MainScreen)
        except ScreenStackError:  # starting: the main screen is not up yet
            return True

    def _raise(self, notification: Notification) -> None:
        self._raised = [n for n in self._raised if not n.has_expired]
        self._raised.append(notification)
        self.post_message(Notify(notification))

    def _screen_changed(self, screen: Screen[Any]) -> None:
        if not isinstance(screen, MainScreen):
            # The toasts still up go away, and come back with the time they had left.
            showing = [n for n in self._raised if not n.has_expired]
            if showing:
                self.clear_notifications()
                self._raised = []
                self._held += [dataclasses.replace(n, timeout=n.time_left) for n in showing]
            return
        held, self._held = self._held, []
        for notification in held:
            self._raise(dataclasses.replace(notification, raised_at=time.time(), identity=str(uuid.uuid4())))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        # Textual's own "Keys" and "Quit" would stand beside the main screen's.
        ours = {title for _, title, _ in MainScreen.COMMANDS_OFFERED} | {"Keys", "Quit"}
        yield from (command for command in super().get_system_commands(screen) if command.title not in ours)
        main = self.main_screen
        for action, title, help_text in MainScreen.COMMANDS_OFFERED:
            refused = main.role_refusal(action)
            shown = f"Not allowed: {refused}" if refused is not None else help_text
            yield SystemCommand(title, shown, partial(main.run_from_palette, action))

    def action_help_quit(self) -> None:
        """ctrl+c (the reflex to quit) says how to quit, in plain text."""
        self.notify("Press q to quit, or ctrl+q to quit at once.", title="Do you want to quit?")

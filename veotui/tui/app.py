"""The Textual application: the main screen over a started backend, the keymap from the
settings, and every main-screen action in the command palette."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from textual.app import App, SystemCommand
from textual.notifications import SeverityLevel
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

    def get_default_screen(self) -> Screen[Any]:
        return MainScreen(self.backend, self.settings, self.clock, self._backend_ready)

    @property
    def main_screen(self) -> MainScreen:
        return next(screen for screen in self.screen_stack if isinstance(screen, MainScreen))

    async def on_mount(self) -> None:
        self.set_keymap(dict(self.settings.keymap))
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
        control character reach the terminal."""
        message, title = printable(message), printable(title)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

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

"""The header line of the main screen: where the jobs run and how busy it is.

Each fact is a reactive attribute the screen sets; the line is built again only when one
of them changed. To show a new fact, add a reactive here and a few lines to ``line``.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from veotui.backend.base import BackendInfo
from veotui.core.job import CONNECTED, DISCONNECTED
from veotui.core.text import printable


class HeaderBar(Static):
    DEFAULT_CSS = """
    HeaderBar {
        dock: top;
        height: 1;
        background: $panel;
    }
    """

    #: What the backend said about itself; None until it answered.
    info: reactive[BackendInfo | None] = reactive(None, layout=False, init=False)
    #: Jobs holding a slot, and jobs waiting, filter or not.
    processing: reactive[int] = reactive(0, layout=False, init=False)
    queued: reactive[int] = reactive(0, layout=False, init=False)
    filter_text: reactive[str] = reactive("", layout=False, init=False)
    #: CONNECTED or DISCONNECTED (a remote backend lost its server and keeps retrying).
    connection: reactive[str] = reactive(CONNECTED, layout=False, init=False)
    #: The queue is paused (nothing new starts), and why.
    paused: reactive[bool] = reactive(False, layout=False, init=False)
    pause_reason: reactive[str] = reactive("", layout=False, init=False)
    #: Dollars spent today, when known.
    spend_today: reactive[float | None] = reactive(None, layout=False, init=False)
    #: The daily budget, when one is set.
    daily_budget: reactive[float | None] = reactive(None, layout=False, init=False)
    #: The storage's state when it is not fine (e.g. "full", "read-only"); "" when fine.
    storage: reactive[str] = reactive("", layout=False, init=False)
    #: How many workers serve the queue, when more than one machine does.
    fleet: reactive[int | None] = reactive(None, layout=False, init=False)

    FIELDS = (
        "info",
        "processing",
        "queued",
        "filter_text",
        "connection",
        "paused",
        "pause_reason",
        "spend_today",
        "daily_budget",
        "storage",
        "fleet",
    )

    def __init__(self, *, id: str = "header") -> None:
        super().__init__(id=id)
        self._shown = Text()

    def on_mount(self) -> None:
        for name in self.FIELDS:
            self.watch(self, name, self._changed, init=False)
        self._changed()

    def _changed(self) -> None:
        line = self.line()
        if line != self._shown:
            # One line of fixed height: no need to lay the screen out again.
            self._shown = line
            self.update(line, layout=False)

    def line(self) -> Text:
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append(" veotui ", style="bold reverse")
        info = self.info
        if info is None:
            header.append("  connecting…", style="dim")
        else:
            header.append(f" {info.location}", style="bold")
            if self.connection == DISCONNECTED:
                header.append(" · disconnected — retrying", style="bold red")
            header.append(" · ")
            stale = "dim" if self.connection != CONNECTED else ""
            if info.is_simulator:
                header.append(f"simulator ({info.generator})", style=stale or "yellow")
            else:
                header.append(f"generator {info.generator}", style=stale or "green")
            header.append(f" · slots {self.processing}/{info.max_concurrent}", style=stale or "dodger_blue1")
            header.append(f" · queue {self.queued}", style=stale or "dark_orange")
            if self.fleet is not None:
                header.append(f" · fleet {self.fleet}", style=stale)
        if self.paused:
            header.append(" · paused", style="bold red")
            if self.pause_reason:
                header.append(f" ({printable(self.pause_reason, keep='')})", style="red")
        if self.spend_today is not None:
            header.append(f" · today ${self.spend_today:,.2f}")
            if self.daily_budget is not None:
                header.append(f" of ${self.daily_budget:,.2f}")
            if info is not None and info.is_simulator:
                header.append(" simulated", style="dim")
        if self.storage:
            header.append(f" · storage {self.storage}", style="bold red")
        if self.filter_text:
            header.append(" · filter ")
            header.append(repr(self.filter_text), style="bold")
        return header

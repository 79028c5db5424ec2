"""The header line of the main screen: what state the queue is in, how busy it is, what it
cost today, where the jobs run and who acts there.

Each fact is a reactive attribute the screen sets; the line is built again only when one
of them (or the width) changed. When the line is too long for the terminal it gives way by
importance: the state (paused and why, disconnected, storage full) comes first and stays,
then the slots and the queue, then the filter and the spend, then the location (a long URL
shortens first). To show a new fact, add a reactive here and a part in ``parts``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from textual.content import Content
from textual.events import Resize
from textual.reactive import reactive
from textual.widgets import Static

from veotui.backend.base import BackendInfo, Me
from veotui.core.job import CONNECTED, DISCONNECTED
from veotui.core.text import printable

SEPARATOR = " · "
#: What the state words look like: they must be seen.
ALERT = "bold $text-error"


@dataclass(frozen=True)
class Part:
    """One fact of the header: its forms from the fullest to the shortest (an empty last
    form lets the part go), or ``fit``, which shortens it to any width it is given."""

    forms: Sequence[Content]
    #: Given a width, the fullest text within it; None: only ``forms``.
    fit: Callable[[int], Content] | None = None

    def best(self, width: int) -> Content:
        if self.fit is not None:
            return self.fit(width)
        return next((form for form in self.forms if form.cell_length <= width), self.forms[-1])

    @property
    def shortest(self) -> Content:
        return self.forms[-1]


def fit_line(badge: Content, parts: Sequence[Part], width: int) -> Content:
    """``badge`` and the parts, in importance order, in at most ``width`` cells: each part
    starts at its shortest form, then each, the most important first, takes the fullest
    form the room left allows."""
    chosen = [part.shortest for part in parts]

    def used() -> int:
        shown = [c for c in chosen if c.cell_length]
        return badge.cell_length + sum(c.cell_length for c in shown) + len(SEPARATOR) * max(0, len(shown) - 1) + 1

    for index, part in enumerate(parts):
        mine = chosen[index].cell_length
        room = width - (used() - mine) - (len(SEPARATOR) if not mine else 0)
        chosen[index] = part.best(room)
    line = Content.assemble(badge, " ", Content(SEPARATOR).join(c for c in chosen if c.cell_length))
    return line.truncate(width, ellipsis=True) if line.cell_length > width else line


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, its middle left out (``http://render…:8799``)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def where(location: str) -> list[str]:
    """Where the jobs run, from the fullest to the shortest: ``http://host:port``,
    ``host:port``, ``host``."""
    if location == "local":
        return ["local"]
    parts = urlsplit(location)
    forms = [location]
    if parts.netloc and parts.netloc != location:
        forms.append(parts.netloc)
    if parts.hostname and parts.hostname not in forms:
        forms.append(parts.hostname)
    return forms


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
    #: Who the backend acts for (GET /api/me); None until it answered, or when it cannot say.
    me: reactive[Me | None] = reactive(None, layout=False, init=False)
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
        "me",
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
        self._shown = Content()

    def on_mount(self) -> None:
        for name in self.FIELDS:
            self.watch(self, name, self._changed, init=False)
        self._changed()

    def on_resize(self, _: Resize) -> None:
        self._changed()

    def _changed(self) -> None:
        line = self.line(self.size.width or 80)
        if line != self._shown:
            # One line of fixed height: no need to lay the screen out again.
            self._shown = line
            self.update(line, layout=False)

    @property
    def shown(self) -> str:
        """The line as it reads now."""
        return self._shown.plain

    def line(self, width: int) -> Content:
        badge = Content.styled(" veotui ", "bold reverse")
        if self.info is None:
            return fit_line(badge, [Part([Content.styled("connecting…", "dim")])], width)
        return fit_line(badge, self.parts(self.info), width)

    def parts(self, info: BackendInfo) -> list[Part]:
        """The facts, the most important first."""
        live = self.connection == CONNECTED
        parts = [self._state()] if self._states() else []
        counts = Content.assemble(
            (f"slots {self.processing}/{info.max_concurrent}", "$text-primary" if live else "dim"),
            SEPARATOR,
            (f"queue {self.queued:,}", "$text-accent" if live else "dim"),
        )
        fleet = Content.styled(f"{SEPARATOR}fleet {self.fleet}", "" if live else "dim") if self.fleet else Content()
        parts.append(Part([counts + fleet, counts]))
        if self.filter_text:
            parts.append(self._filter())
        if self.spend_today is not None:
            parts.append(self._spend(info))
        parts.append(self._where(info, live))
        return parts

    def _where(self, info: BackendInfo, live: bool) -> Part:
        """Where the jobs run and on what: ``local · simulator (sim)``; a URL shortens."""
        if info.is_simulator:
            generator = Content.styled(f"simulator ({info.generator})", "$text-warning" if live else "dim")
        else:
            generator = Content.styled(f"generator {info.generator}", "$text-success" if live else "dim")
        places = where(info.location)
        style = "bold" if live else "dim"
        # In remote mode, who the TUI acts for and their role; locally the person is the admin.
        who = Content()
        if self.me is not None and info.location != "local":
            who = Content.styled(f"{SEPARATOR}{self.me.user} · {self.me.role.value}", "bold magenta" if live else "dim")
        forms = [Content.assemble((place, style), who, SEPARATOR, generator) for place in places]
        forms += [Content.assemble((place, style), SEPARATOR, generator) for place in places]
        forms += [Content.styled(place, style) for place in places[1:]]

        def fit(width: int) -> Content:
            for form in forms:
                if form.cell_length <= width:
                    return form
            return Content.styled(shorten(places[-1], width), style) if width >= 6 else Content()

        return Part([*forms, Content()], fit=fit)

    def _states(self) -> list[tuple[str, str]]:
        """What is wrong or held, each as (word, why)."""
        states = []
        if self.connection == DISCONNECTED:
            states.append(("disconnected — retrying", ""))
        if self.paused:
            # The daily budget's reason says so ("daily budget $50.00: $48.40 spent, …").
            states.append(("paused", printable(self.pause_reason, keep="") if self.pause_reason else ""))
        if self.storage:
            states.append((f"storage {self.storage}", ""))
        return states

    def _state(self) -> Part:
        states = self._states()
        words = Content(SEPARATOR).join(Content.styled(word, ALERT) for word, _ in states)

        def fit(width: int) -> Content:
            # Every word stays; the reasons take what room is left, the first first.
            room = width - words.cell_length
            pieces: list[Content] = []
            for word, why in states:
                piece = Content.styled(word, ALERT)
                if why and room >= 6:
                    reason = f" ({why})"
                    if len(reason) > room:
                        reason = f" ({why[: max(1, room - 4)]}…)"
                    room -= len(reason)
                    piece = Content.assemble(piece, (reason, "$text-error"))
                pieces.append(piece)
            return Content(SEPARATOR).join(pieces)

        return Part([words], fit=fit)

    def _filter(self) -> Part:
        text = repr(self.filter_text)

        def fit(width: int) -> Content:
            if width < len("filter ") + 3:
                return Content("filtered")
            return Content.assemble("filter ", (shorten(text, width - len("filter ")), "bold"))

        return Part([Content("filtered")], fit=fit)

    def _spend(self, info: BackendInfo) -> Part:
        spent = f"${self.spend_today:,.2f}" if self.spend_today is not None else ""
        budget = f" of ${self.daily_budget:,.2f}" if self.daily_budget is not None else ""
        simulated = (" simulated", "dim") if info.is_simulator else ""
        return Part(
            [
                Content.assemble(f"today {spent}{budget}", simulated),
                Content.assemble(f"{spent}{budget}", simulated),
                Content(f"{spent}{budget}"),
                Content(),
            ]
        )

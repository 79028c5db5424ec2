"""The filter field of the main screen: hidden until asked for, it posts ``FilterBar.Set``
with the text to filter by (typing settles for a moment first; enter sets it at once)."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.message import Message
from textual.widgets import Input

#: Seconds of quiet typing before the filter is applied.
FILTER_DEBOUNCE_SECONDS = 0.2


class FilterBar(Input):
    DEFAULT_CSS = """
    FilterBar, FilterBar:focus {
        dock: bottom;
        display: none;
        height: 1;
        border: none;
        padding: 0 1;
        margin-bottom: 1;
        background: $boost;
    }
    """

    class Set(Message):
        """Filter every panel by ``text`` ("" shows everything)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Done(Message):
        """Enter was pressed: the panels may take the focus back."""

    def __init__(self, *, id: str = "filter") -> None:
        super().__init__(id=id, placeholder="filter by prompt, id, status or user · enter keeps it · escape clears it")
        self._timer: Any = None

    def open(self) -> None:
        self.display = True
        self.focus()

    def clear_and_close(self) -> None:
        self._stop_timer()
        self.value = ""
        self.display = False
        self.post_message(self.Set(""))

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        self._stop_timer()
        value = event.value
        self._timer = self.set_timer(FILTER_DEBOUNCE_SECONDS, lambda: self.post_message(self.Set(value)))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._stop_timer()
        self.post_message(self.Set(event.value))
        if not event.value.strip():
            self.display = False
        self.post_message(self.Done())

"""Small modal screens: a yes/no question, the question a first save asks, and the list of
keys."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from veotui.core.text import printable
from veotui.tui.cells import rich_style


class ConfirmScreen(ModalScreen[bool]):
    """Ask one question; ``y`` answers yes, ``n`` or ``escape`` no."""

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
    }
    ConfirmScreen #dialog {
        width: 70;
        max-width: 100%;
        height: auto;
        border: thick $error;
        background: $surface;
        padding: 1 2;
    }
    ConfirmScreen #question {
        margin-bottom: 1;
    }
    ConfirmScreen #buttons {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    ConfirmScreen #buttons Button {
        margin-left: 2;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm_yes"),
        Binding("n", "answer(False)", "No", id="confirm_no"),
        Binding("escape", "answer(False)", "No", show=False, id="confirm_escape"),
    ]

    def __init__(self, question: str, detail: str = "", yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.detail = detail
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.question, style="bold"), id="question")
            if self.detail:
                yield Static(Text(printable(self.detail)), id="detail")
            with Horizontal(id="buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


#: The answers to the first save's question.
KEEP, OK, ALWAYS_KEEP = "keep", "ok", "always keep"


class SaveQuestion(ModalScreen[str | None]):
    """Asked at the first save of a session when the engine deletes jobs after a download:
    ``k`` keeps this job, ``o`` lets it go (and stops asking), ``a`` keeps every job saved
    this session; ``escape`` saves nothing."""

    DEFAULT_CSS = """
    SaveQuestion {
        align: center middle;
    }
    SaveQuestion #dialog {
        width: 70;
        max-width: 100%;
        height: auto;
        border: thick $warning;
        background: $surface;
        padding: 1 2;
    }
    SaveQuestion #question {
        margin-bottom: 1;
    }
    SaveQuestion #buttons {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    SaveQuestion #buttons Button {
        margin-left: 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", f"answer('{KEEP}')", "Keep", id="save_keep"),
        Binding("o", f"answer('{OK}')", "OK", id="save_ok"),
        Binding("a", f"answer('{ALWAYS_KEEP}')", "Always keep", id="save_always_keep"),
        Binding("escape", "answer('')", "Do not save", id="save_cancel"),
    ]

    def __init__(self, seconds: float, job: str) -> None:
        super().__init__()
        self.seconds = seconds
        self.job = job

    def compose(self) -> ComposeResult:
        after = f"{self.seconds:g} s"
        with Vertical(id="dialog"):
            yield Static(Text(f"Saving removes job {self.job} after {after}; keep it?", style="bold"), id="question")
            yield Static(
                Text(
                    f"The engine deletes a job {after} after its videos are saved (auto_delete_after_download). "
                    "Keep: save and keep this job. OK: save, let it go, and stop asking. "
                    "Always keep: keep every job saved this session."
                ),
                id="detail",
            )
            with Horizontal(id="buttons"):
                yield Button("Keep (k)", variant="primary", id="keep")
                yield Button("OK (o)", variant="warning", id="ok")
                yield Button("Always keep (a)", id="always")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss({"keep": KEEP, "ok": OK, "always": ALWAYS_KEEP}.get(event.button.id or ""))

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer or None)


class HelpScreen(ModalScreen[None]):
    """Every key of the main screen, as remapped by the keymap."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen #dialog {
        width: 90;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    HelpScreen #question {
        margin-bottom: 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close", id="help_close"),
    ]

    def __init__(self, rows: Iterable[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = list(rows)

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        table.add_column(style=rich_style("bold $text-accent"), no_wrap=True)
        table.add_column()
        table.add_column(style="dim")
        for keys, what, binding_id in self.rows:
            table.add_row(keys, what, binding_id)
        with VerticalScroll(id="dialog"):
            yield Static(Text("Keys", style="bold"), id="question")
            yield Static(table)
            yield Static(
                Text(
                    "The last column is the id to remap a key by, in the [keymap] table of the config file.",
                    style="dim",
                )
            )

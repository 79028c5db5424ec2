"""The three job tables. Each is a ``DataTable`` keyed by job id and updated by keyed diffs:
rows that left are removed, changed cells updated, new rows added, and the order fixed with
one sort only when it changed. Volatile columns have fixed widths and the prompt column takes
what is left, so nothing is ever re-measured.

A table never holds more than the board does: every processing job, the head of the queue
and one page of history. However long the queue and the history grow, a change costs the
same. Only Textual's public API is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from veotui import format as fmt
from veotui.model import Job

Cells = tuple[object, ...]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int = 0
    #: Share of the width left over by the fixed columns (0: fixed width).
    flex: int = 0


class JobTable(DataTable):
    """A panel of jobs. Subclasses name their columns and how a job fills them."""

    DEFAULT_CSS = """
    JobTable {
        border: round $panel-lighten-2;
        border-title-style: bold;
        border-subtitle-color: $text-muted;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        height: 1fr;
    }
    JobTable:focus {
        border: heavy $panel-lighten-3;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "screen.details",
            "Details",
            id="details",
            key_display="⏎",
            tooltip="Details: parameters, status timeline, error, files",
        ),
        Binding("j", "cursor_down", "Down", show=False, id="cursor_down", tooltip="Move the selection down"),
        Binding("k", "cursor_up", "Up", show=False, id="cursor_up", tooltip="Move the selection up"),
    ]
    COLUMNS: ClassVar[Sequence[Column]] = ()
    #: Cells that depend on the clock are recomputed on every tick.
    TICKS: ClassVar[bool] = False
    TITLE: ClassVar[str] = ""

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, cell_padding=1)
        self.border_title = self.TITLE
        self._shown: dict[str, tuple[Job, Cells]] = {}
        self._widths: tuple[int, ...] = ()

    # -- what a row shows -----------------------------------------------------------------

    def cells(self, job: Job, now: datetime) -> Cells:
        raise NotImplementedError

    def cells_after(self, shown: Job, shown_cells: Cells, job: Job, now: datetime) -> Cells:
        """The cells of ``job``, which replaces ``shown`` (shown as ``shown_cells``)."""
        return self.cells(job, now)

    # -- the keyed diff -------------------------------------------------------------------

    def show(self, jobs: Sequence[Job], now: datetime) -> None:
        """Make the table show ``jobs`` in this order, touching only what changed."""
        wanted = {job.job_id: job for job in jobs}
        for key in [key for key in self._shown if key not in wanted]:
            del self._shown[key]
            self.remove_row(key)
        column_keys = [column.key for column in self.COLUMNS]
        for job in jobs:
            shown = self._shown.get(job.job_id)
            if shown is not None and shown[0] is job and not self.TICKS:
                continue
            if shown is None:
                cells = self.cells(job, now)
                self.add_row(*cells, key=job.job_id)
            else:
                cells = self.cells_after(shown[0], shown[1], job, now)
                for column_key, old, new in zip(column_keys, shown[1], cells):
                    if old != new:
                        self.update_cell(job.job_id, column_key, new)
            self._shown[job.job_id] = (job, cells)
        order = [job.job_id for job in jobs]
        if [row.key.value for row in self.ordered_rows] != order:
            # ``DataTable.sort`` hands the key function cell values only; the "job" column
            # holds a JobCell that knows its full job id.
            rank = {job_id: index for index, job_id in enumerate(order)}
            self.sort("job", key=lambda cell: rank[cell.job_id])

    # -- selection ------------------------------------------------------------------------

    @property
    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        row = min(self.cursor_row, self.row_count - 1)
        return self.ordered_rows[row].key.value

    def select(self, job_id: str) -> bool:
        if job_id not in self._shown:
            return False
        row = self.get_row_index(job_id)
        if row != self.cursor_row:
            self.move_cursor(row=row, animate=False)
        return True

    # -- widths ---------------------------------------------------------------------------

    def on_resize(self) -> None:
        widths = self._column_widths(self.scrollable_content_region.width)
        if widths != self._widths:
            self._widths = widths
            self._rebuild()

    def _column_widths(self, available: int) -> tuple[int, ...]:
        padding = 2 * self.cell_padding * len(self.COLUMNS)
        fixed = sum(column.width for column in self.COLUMNS if not column.flex)
        spare = max(8, available - fixed - padding - 1)
        shares = sum(column.flex for column in self.COLUMNS) or 1
        return tuple(column.width or max(4, spare * column.flex // shares) for column in self.COLUMNS)

    def _rebuild(self) -> None:
        selected = self.selected_id
        # In the order shown now (newest first in History), not the order rows were added.
        shown = [self._shown[row.key.value] for row in self.ordered_rows if row.key.value in self._shown]
        self.clear(columns=True)
        for column, width in zip(self.COLUMNS, self._widths):
            self.add_column(column.label, width=width, key=column.key)
        for job, cells in shown:
            self.add_row(*cells, key=job.job_id)
        if selected is not None:
            self.select(selected)

    def on_mount(self) -> None:
        if not self.columns:
            self._widths = self._column_widths(max(40, self.app.size.width - 4))
            for column, width in zip(self.COLUMNS, self._widths):
                self.add_column(column.label, width=width, key=column.key)


class JobCell:
    """The short id of a job, carrying the full id (the sort key of the row)."""

    __slots__ = ("job_id", "text")

    def __init__(self, job_id: str, style: str = "bold") -> None:
        self.job_id = job_id
        self.text = Text(fmt.short_id(job_id), style=style, end="")

    def __rich__(self) -> Text:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobCell) and other.job_id == self.job_id and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.job_id)


class ProcessingTable(JobTable):
    DEFAULT_CSS = """
    ProcessingTable {
        height: auto;
        min-height: 4;
        max-height: 9;
        border: round dodgerblue;
        border-title-color: dodgerblue;
    }
    ProcessingTable:focus {
        border: heavy dodgerblue;
    }
    """
    TITLE = "Processing"
    TICKS = True
    COLUMNS = (
        Column("job", "Job", fmt.SHORT_ID),
        Column("prompt", "Prompt", flex=1),
        Column("stage", "Stage", 12),
        Column("progress", "Progress", fmt.BAR_WIDTH + 5),
        Column("elapsed", "Elapsed", 7),
        Column("left", "Left", 6),
    )

    def cells(self, job: Job, now: datetime) -> Cells:
        remaining = "—" if job.eta_seconds is None else "~" + fmt.duration(job.eta_seconds)
        waiting = fmt.waiting(job, now)
        return (
            JobCell(job.job_id, "bold dodger_blue1"),
            fmt.plain(fmt.one_line(job.prompt)),
            Text(waiting[0], style="yellow", end="")
            if waiting
            else Text(fmt.stage_label(job.status), style="dodger_blue1", end=""),
            Text(waiting[1], style="yellow", end="") if waiting else fmt.progress_bar(job.progress),
            Text(fmt.elapsed(job.started_at, now), end=""),
            Text(remaining, style="dim", end=""),
        )


class QueueTable(JobTable):
    DEFAULT_CSS = """
    QueueTable {
        border: round darkorange;
        border-title-color: darkorange;
    }
    QueueTable:focus {
        border: heavy darkorange;
        min-height: 8;  /* 5 rows under its border and header, however small the terminal */
    }
    """
    TITLE = "In Queue"
    COLUMNS = (
        Column("position", "Position", 18),
        Column("job", "Job", fmt.SHORT_ID),
        Column("prompt", "Prompt", flex=1),
        Column("model", "Model", 8),
        Column("videos", "Videos", 6),
        Column("submitted", "Submitted", 12),
    )

    def cells(self, job: Job, now: datetime) -> Cells:
        return (
            self._position(job),
            JobCell(job.job_id, "bold dark_orange"),
            fmt.plain(fmt.one_line(job.prompt)),
            Text(fmt.model_label(job.request.model), end=""),
            Text(str(job.request.number_of_videos), end=""),
            self._submitted(job, now),
        )

    def cells_after(self, shown: Job, shown_cells: Cells, job: Job, now: datetime) -> Cells:
        # A job that left the queue moves every later one up a place: only their position
        # changed, and the cells that depend on nothing else are kept (the queue can be long).
        if vars(job) == {**vars(shown), "queue_position": job.queue_position}:
            return (self._position(job), *shown_cells[1:5], self._submitted(job, now))
        return self.cells(job, now)

    @staticmethod
    def _position(job: Job) -> Text:
        return Text(f"Queue position: {job.queue_position or '?'}", style="dark_orange", end="")

    @staticmethod
    def _submitted(job: Job, now: datetime) -> Text:
        return Text(fmt.local_time(job.created_at, now), style="dim", end="")


class HistoryTable(JobTable):
    DEFAULT_CSS = """
    /* Queue and History share the height left by Processing evenly. */
    HistoryTable {
        height: 1fr;
    }
    HistoryTable:focus {
        min-height: 8;
    }
    """
    TITLE = "History"
    COLUMNS = (
        Column("status", "Status", 11),
        Column("job", "Job", fmt.SHORT_ID),
        Column("finished", "Finished", 12),
        Column("prompt", "Prompt", flex=3),
        Column("result", "Result", flex=2),
    )

    class PageRequest(Message):
        """The cursor ran off the end of the page shown: read the next (or previous) one."""

        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    #: Set by the screen: whether pages lie before / after the one shown.
    has_previous = False
    has_next = False

    def cells(self, job: Job, now: datetime) -> Cells:
        return (
            fmt.status_cell(job),
            JobCell(job.job_id),
            Text(fmt.local_time(job.finished_at or job.created_at, now), style="dim", end=""),
            fmt.plain(fmt.one_line(job.prompt)),
            fmt.result_cell(job),
        )

    def action_cursor_down(self) -> None:
        if self.has_next and self.cursor_row >= self.row_count - 1:
            self.post_message(self.PageRequest(+1))
        else:
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.has_previous and self.cursor_row <= 0:
            self.post_message(self.PageRequest(-1))
        else:
            super().action_cursor_up()

    def action_page_down(self) -> None:
        if self.has_next and self.cursor_row >= self.row_count - 1:
            self.post_message(self.PageRequest(+1))
        else:
            super().action_page_down()

    def action_page_up(self) -> None:
        if self.has_previous and self.cursor_row <= 0:
            self.post_message(self.PageRequest(-1))
        else:
            super().action_page_up()

"""The three job tables: virtual tables over the board's lists.

A table holds the jobs it shows (the board's list for its panel) and renders only the rows in
view, through Textual's Line API: each row is one cached ``Strip``, made again only when its
job, the width or the cursor changed. A change costs the rows it touched and in view, however
long the panel's list; nothing is ever re-measured (volatile columns have fixed widths, the
prompt column takes what is left). Only Textual's public API is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from veotui.core import display as fmt
from veotui.core.job import Job
from veotui.tui import cells as cell

Cells = tuple[object, ...]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int = 0
    #: Share of the width left over by the fixed columns (0: fixed width).
    flex: int = 0


#: Added at the end of every table when the jobs shown belong to more than one user.
OWNER_COLUMN = Column("owner", "Owner", 10)
#: Spaces on either side of a cell.
CELL_PADDING = 1
#: Rendered cells a table keeps (a few screens' worth); all are dropped when full.
CELL_RENDERS = 4000


class RowTable(ScrollView, can_focus=True):
    """A header line over rows keyed by job id, with a row cursor; rows are rendered on
    demand from the jobs it holds. Subclasses name their columns and how a job fills them."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"row-table--header", "row-table--cursor"}
    DEFAULT_CSS = """
    RowTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .row-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .row-table--header {
                background-tint: $foreground 5%;
            }
        }
        & > .row-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .row-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .row-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first_row", "First", show=False),
        Binding("end", "last_row", "Last", show=False),
    ]
    COLUMNS: ClassVar[Sequence[Column]] = ()
    #: Cells that depend on the clock are made again at every ``show``.
    TICKS: ClassVar[bool] = False

    class Highlighted(Message):
        """The cursor moved to another row (or the row under it changed)."""

        def __init__(self, table: RowTable, job_id: str | None) -> None:
            super().__init__()
            self.table = table
            self.job_id = job_id

        @property
        def control(self) -> RowTable:
            return self.table

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        #: The jobs shown, in order, and where each is.
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        self._jobs: dict[str, Job] = {}
        self._now: datetime | None = None
        #: Cells made for a job (by identity: the board replaces a job that changed).
        self._cells: dict[str, tuple[Job, Cells]] = {}
        #: One rendered line per row, and what it was rendered from.
        self._strips: dict[str, tuple[tuple[object, ...], Strip]] = {}
        self._header: tuple[tuple[object, ...], Strip] | None = None
        #: Rendered cells by identity (holding the cell keeps its id from being reused).
        self._cell_renders: dict[int, tuple[object, int, list[Segment]]] = {}
        self.cursor_row = 0
        self._highlighted: str | None = None
        self._widths: tuple[int, tuple[int, ...]] = (-1, ())
        #: Read at each rendering: the width, and the base, header and cursor styles.
        self._pass: tuple[int, Style, Style, Style] = (0, Style(), Style(), Style())
        self._styles: tuple[Style, Style, Style] | None = None
        #: Whether each row says whose job it is (the Owner column).
        self._owners = False

    # -- what a row shows -----------------------------------------------------------------

    def cells(self, job: Job, now: datetime) -> Cells:
        raise NotImplementedError

    def cells_after(self, shown: Job, shown_cells: Cells, job: Job, now: datetime) -> Cells:
        """The cells of ``job``, which replaces ``shown`` (shown as ``shown_cells``)."""
        return self.cells(job, now)

    @property
    def columns(self) -> Sequence[Column]:
        return (*self.COLUMNS, OWNER_COLUMN) if self._owners else self.COLUMNS

    def show_owners(self, owners: bool) -> None:
        """Add or remove the Owner column; every row is made again."""
        if owners == self._owners:
            return
        self._owners = owners
        self._cells.clear()
        self._strips.clear()
        self._header = None
        self._widths = (-1, ())
        self.refresh()

    def get_row(self, job_id: str) -> Cells:
        """The cells of the job's row."""
        return self._cells_of(self._jobs[job_id])

    def _cells_of(self, job: Job) -> Cells:
        made = self._cells.get(job.job_id)
        if made is not None and made[0] is job:
            return made[1]
        now = self._now or datetime.now().astimezone()
        shown = made[1][: len(self.COLUMNS)] if made is not None else ()
        cells = self.cells(job, now) if made is None else self.cells_after(made[0], shown, job, now)
        if self._owners:
            owner = made[1][-1] if made is not None and made[0].request.user == job.request.user else None
            cells = (*cells, owner or Content.styled(job.request.user, "magenta"))
        self._cells[job.job_id] = (job, cells)
        return cells

    # -- the rows ---------------------------------------------------------------------------

    @property
    def rows(self) -> dict[str, Job]:
        """The jobs shown, by id (in no particular order: see ``row_keys``)."""
        return self._jobs

    @property
    def row_keys(self) -> list[str]:
        """The job ids shown, top to bottom."""
        return list(self._order)

    @property
    def row_count(self) -> int:
        return len(self._order)

    def get_row_index(self, job_id: str) -> int:
        return self._index[job_id]

    def show(self, jobs: Sequence[Job], now: datetime) -> None:
        """Show ``jobs`` in this order. Only rows whose job changed are rendered again, and
        only once they are in view."""
        order = [job.job_id for job in jobs]
        held = self._jobs
        # A fresh read of the lists brings new objects for unchanged jobs: keep the ones
        # held, whose rows are rendered already.
        kept = {
            job.job_id: old if (old := held.get(job.job_id)) is not None and (old is job or old == job) else job
            for job in jobs
        }
        changed = order != self._order or any(held.get(job_id) is not job for job_id, job in kept.items())
        # A ticking table's cells show the clock to the second.
        ticked = self.TICKS and (self._now is None or int(now.timestamp()) != int(self._now.timestamp()))
        self._now = now
        if not changed and not ticked:
            return
        if order != self._order:
            self._order = order
            self._index = {job_id: index for index, job_id in enumerate(order)}
            self.virtual_size = Size(0, len(order) + 1)
        self._jobs = kept
        for cache in (self._cells, self._strips):
            for job_id in [job_id for job_id in cache if job_id not in self._jobs]:
                del cache[job_id]
        if ticked:
            # The clock moved: every cell is made again (a ticking table holds few rows).
            self._cells.clear()
        self._clamp_cursor()
        self.refresh()

    # -- selection ------------------------------------------------------------------------

    @property
    def selected_id(self) -> str | None:
        if not self._order:
            return None
        return self._order[min(self.cursor_row, len(self._order) - 1)]

    def select(self, job_id: str) -> bool:
        row = self._index.get(job_id)
        if row is None:
            return False
        if row != self.cursor_row:
            self.move_cursor(row=row)
        return True

    def move_cursor(self, *, row: int, animate: bool = False) -> None:
        """Put the cursor on ``row`` (clamped to the rows) and keep it in view."""
        self.cursor_row = max(0, min(row, len(self._order) - 1))
        self._scroll_to_cursor()
        self.refresh()
        self._clamp_cursor()

    def _clamp_cursor(self) -> None:
        self.cursor_row = max(0, min(self.cursor_row, len(self._order) - 1))
        selected = self.selected_id
        if selected != self._highlighted:
            self._highlighted = selected
            self.post_message(self.Highlighted(self, selected))

    def _scroll_to_cursor(self) -> None:
        shown = max(1, self.scrollable_content_region.height - 1)
        top = round(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + shown:
            self.scroll_to(y=self.cursor_row - shown + 1, animate=False, immediate=True)

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 2)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self.cursor_row - self._page())

    def action_page_down(self) -> None:
        self.move_cursor(row=self.cursor_row + self._page())

    def action_first_row(self) -> None:
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self.move_cursor(row=len(self._order) - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        row = offset.y - 1 + round(self.scroll_y)
        if row < len(self._order):
            self.move_cursor(row=row)

    def on_focus(self) -> None:
        self._styles = None
        self.refresh()

    def on_blur(self) -> None:
        self._styles = None
        self.refresh()

    def on_resize(self) -> None:
        self._scroll_to_cursor()

    # -- rendering --------------------------------------------------------------------------

    def column_widths(self, available: int) -> tuple[int, ...]:
        columns = self.columns
        padding = 2 * CELL_PADDING * len(columns)
        fixed = sum(column.width for column in columns if not column.flex)
        spare = max(8, available - fixed - padding - 1)
        shares = sum(column.flex for column in columns) or 1
        return tuple(column.width or max(4, spare * column.flex // shares) for column in columns)

    @property
    def widths(self) -> dict[str, int]:
        """Each column's width at the table's width now (its padding aside)."""
        widths = self.column_widths(self.scrollable_content_region.width)
        return {column.key: width for column, width in zip(self.columns, widths)}

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        # The cells' colours come from the theme's variables: a new theme draws them again.
        self._cell_renders.clear()
        self._strips.clear()
        self._header = None

    def render_lines(self, crop: Region) -> list[Strip]:
        # The width is read once for all the lines asked for; the styles (walking every
        # ancestor) only after they changed.
        if self._styles is None:
            base = self.rich_style
            self._styles = (
                base,
                base + self.get_component_rich_style("row-table--header"),
                base + self.get_component_rich_style("row-table--cursor"),
            )
        self._pass = (self.scrollable_content_region.width, *self._styles)
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width, base, header_style, cursor_style = self._pass
        if y == 0:
            if self._header is None or self._header[0] != (width, header_style):
                labels = [Content(column.label) for column in self.columns]
                self._header = ((width, header_style), self._line(labels, width, header_style))
            return self._header[1]
        row = y - 1 + round(self.scroll_y)
        if row >= len(self._order):
            return Strip.blank(width, base)
        job_id = self._order[row]
        cells = self._cells_of(self._jobs[job_id])
        style = cursor_style if row == self.cursor_row else base
        made = self._strips.get(job_id)
        if made is None or made[0][0] is not cells or made[0][1:] != (width, style):
            made = ((cells, width, style), self._line(cells, width, style))
            self._strips[job_id] = made
        return made[1]

    def _line(self, cells: Sequence[object], width: int, style: Style) -> Strip:
        if self._widths[0] != width:
            self._widths = (width, self.column_widths(width))
        segments: list[Segment] = []
        for cell_width, value in zip(self._widths[1], cells):
            segments += self._cell_segments(value, cell_width)
        return Strip(Segment.apply_style(segments, style)).adjust_cell_length(width, style)

    def _cell_segments(self, cell: object, width: int) -> list[Segment]:
        """A cell padded and cut to ``width``; kept by the cell's identity, so a row whose
        job changed in one cell (a queue position) renders that cell only."""
        made = self._cell_renders.get(id(cell))
        if made is not None and made[0] is cell and made[1] == width:
            return made[2]
        content = _as_content(cell).truncate(width, ellipsis=True, pad=True)
        pad = Segment(" " * CELL_PADDING)
        # The cell's theme variables ($primary…) are read from the running app's theme.
        segments = [pad, *content.render_segments(), pad]
        if len(self._cell_renders) >= CELL_RENDERS:
            self._cell_renders.clear()
        self._cell_renders[id(cell)] = (cell, width, segments)
        return segments


def _as_content(cell: object) -> Content:
    if isinstance(cell, Content):
        return cell
    if isinstance(cell, JobCell):
        return cell.content
    return Content(str(cell))


class JobTable(RowTable):
    """A panel of jobs."""

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
    TITLE: ClassVar[str] = ""

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.border_title = self.TITLE


class JobCell:
    """The short id of a job, carrying the full id (the sort key of the row)."""

    __slots__ = ("content", "job_id")

    def __init__(self, job_id: str, style: str = "bold") -> None:
        self.job_id = job_id
        self.content = Content.styled(fmt.short_id(job_id), style)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobCell) and other.job_id == self.job_id and other.content == self.content

    def __hash__(self) -> int:
        return hash(self.job_id)


class ProcessingTable(JobTable):
    DEFAULT_CSS = """
    ProcessingTable {
        height: auto;
        min-height: 4;
        max-height: 9;
        border: round $primary;
        border-title-color: $text-primary;
    }
    ProcessingTable:focus {
        border: heavy $primary;
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
            JobCell(job.job_id, f"bold {cell.PROCESSING_STYLE}"),
            cell.plain(fmt.one_line(job.prompt)),
            cell.styled(waiting[0], cell.WAITING_STYLE)
            if waiting
            else cell.styled(fmt.stage_label(job.status), cell.PROCESSING_STYLE),
            cell.styled(waiting[1], cell.WAITING_STYLE) if waiting else cell.progress_bar(job.progress),
            Content(fmt.elapsed(job.started_at, now)),
            cell.styled(remaining, cell.MUTED_STYLE),
        )


class QueueTable(JobTable):
    DEFAULT_CSS = """
    QueueTable {
        border: round $accent;
        border-title-color: $text-accent;
    }
    QueueTable:focus {
        border: heavy $accent;
        min-height: 8;  /* 5 rows under its border and header, however small the terminal */
    }
    """
    TITLE = "In Queue"
    COLUMNS = (
        # The number alone: the words are the column's (positions run past 100,000).
        Column("position", "Queue position", 14),
        Column("job", "Job", fmt.SHORT_ID),
        Column("prompt", "Prompt", flex=1),
        Column("model", "Model", 8),
        Column("videos", "Videos", 6),
        Column("submitted", "Submitted", 12),
    )

    def cells(self, job: Job, now: datetime) -> Cells:
        return (
            self._position(job),
            JobCell(job.job_id, f"bold {cell.QUEUE_STYLE}"),
            cell.plain(fmt.one_line(job.prompt)),
            Content(fmt.model_label(job.request.model)),
            Content(str(job.request.number_of_videos)),
            self._submitted(job, now),
        )

    def cells_after(self, shown: Job, shown_cells: Cells, job: Job, now: datetime) -> Cells:
        # A job that left the queue moves every later one up a place: only their position
        # changed, and the cells that depend on nothing else are kept (the queue can be long).
        if vars(job) == {**vars(shown), "queue_position": job.queue_position}:
            return (self._position(job), *shown_cells[1:5], self._submitted(job, now))
        return self.cells(job, now)

    @staticmethod
    def _position(job: Job) -> Content:
        position = f"{job.queue_position:,}" if job.queue_position else "?"
        return cell.styled(position, cell.QUEUE_STYLE)

    @staticmethod
    def _submitted(job: Job, now: datetime) -> Content:
        return cell.styled(fmt.local_time(job.created_at, now), cell.MUTED_STYLE)


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
            cell.status_cell(job),
            JobCell(job.job_id),
            cell.styled(fmt.local_time(job.finished_at or job.created_at, now), cell.MUTED_STYLE),
            cell.plain(fmt.one_line(job.prompt)),
            cell.result_cell(job),
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

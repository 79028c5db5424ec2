"""The three job tables. Each is a ``DataTable`` keyed by job id and updated by keyed diffs:
rows that left are removed, changed cells updated, new rows added, and the order fixed with
one sort only when it changed. Volatile columns have fixed widths and the prompt column takes
what is left, so nothing is ever re-measured (``update_width`` costs O(rows) per call).

DataTable renders every visible cell again after any change to a table (its render caches
are keyed on a count of changes). These tables keep each cell's and each row line's
rendering by row key until that row changes, so a repaint after a change renders only the
rows that changed; a row that merely moved gets its new index in the segments' meta.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._types import SegmentLines
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets._data_table import ColumnKey, RowKey

from veotui import format as fmt
from veotui.model import Job

Cells = tuple[object, ...]
#: Render cache size: a tall terminal's worth of rows.
ROW_CACHE = 200
#: Renderings kept per cell (cursor, hover, focus...): beyond it they are dropped.
KEPT_VARIANTS = 8


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
        # Any change to a table invalidates its render caches (their keys hold an update
        # count), so entries beyond one screenful only keep garbage alive: with DataTable's
        # default 10,000 cells a full GC pass took ~300 ms here, a visible stall.
        # DataTable's own cell cache is only reached when ``_kept`` misses.
        self._cell_render_cache.maxsize = 1
        self._row_renderable_cache.maxsize = ROW_CACHE
        self._row_render_cache.maxsize = ROW_CACHE
        self._line_cache.maxsize = ROW_CACHE
        self._shown: dict[str, tuple[Job, Cells]] = {}
        self._widths: tuple[int, ...] = ()
        # DataTable keys every render cache on a count of all changes, so any change to a
        # table re-renders each visible cell (rich's Padding/Styled pipeline, the bulk of
        # the cost of a repaint). Here each cell's rendering is kept, by row and column key
        # and then by its state (style, width, cursor, hover, focus), until the cell changes.
        self._kept: dict[Any, dict[Any, dict[tuple[object, ...], tuple[int, SegmentLines]]]] = {}
        #: And each row's finished line, by row key and then its state, until the row changes.
        self._kept_lines: dict[Any, dict[tuple[object, ...], tuple[int, Strip]]] = {}
        self._renders_of = -1

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
        changed = False
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
                        self._set_cell(job.job_id, column_key, new)
                        changed = True
            self._shown[job.job_id] = (job, cells)
        if changed:
            self.refresh()  # once, where ``update_cell`` repaints the table for each cell
        order = [job.job_id for job in jobs]
        if [row.key.value for row in self.ordered_rows] != order:
            # ``DataTable.sort`` hands the key function cell values only; the "job" column
            # holds a JobCell that knows its full job id.
            rank = {job_id: index for index, job_id in enumerate(order)}
            self.sort("job", key=lambda cell: rank[cell.job_id])
        self._drop_stale_renders()

    # -- rendering ------------------------------------------------------------------------

    def add_row(self, *cells: Any, key: str | None = None, **kwargs: Any) -> RowKey:
        row_key = super().add_row(*cells, key=key, **kwargs)
        self._kept.pop(row_key.value, None)
        self._kept_lines.pop(row_key.value, None)
        return row_key

    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: Any, **kwargs: Any) -> None:
        super().update_cell(row_key, column_key, value, **kwargs)
        key = row_key.value if isinstance(row_key, RowKey) else row_key
        self._kept_lines.pop(key, None)
        row = self._kept.get(key)
        if row is not None:
            row.pop(column_key.value if isinstance(column_key, ColumnKey) else column_key, None)

    def _set_cell(self, row: str, column: str, value: object) -> None:
        """``update_cell`` of a cell known to exist, without its repaint of the table."""
        self._data[RowKey(row)][ColumnKey(column)] = value
        self._update_count += 1
        self._kept_lines.pop(row, None)
        cells = self._kept.get(row)
        if cells is not None:
            cells.pop(column, None)

    def remove_row(self, row_key: RowKey | str) -> None:
        super().remove_row(row_key)
        self._kept.pop(row_key.value if isinstance(row_key, RowKey) else row_key, None)
        self._kept_lines.pop(row_key.value if isinstance(row_key, RowKey) else row_key, None)

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._kept.clear()
        self._kept_lines.clear()

    def notify_style_update(self) -> None:
        self._kept.clear()
        self._kept_lines.clear()
        super().notify_style_update()

    def _drop_stale_renders(self) -> None:
        """DataTable's own render caches are keyed on its count of changes: after a change
        none of their entries is ever read again. Dropping them at once frees them by
        reference counting, instead of keeping thousands of objects alive until they age
        out (a full garbage collection walks all of them: a stall of tens of ms)."""
        if self._update_count != self._renders_of:
            self._renders_of = self._update_count
            self._cell_render_cache.clear()
            self._row_renderable_cache.clear()
            self._row_render_cache.clear()
            self._line_cache.clear()

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """DataTable's line of a row, kept like its cells (a row's line depends on the row's
        cells, the cursor and hover being on it or not, the crop and the widget's state)."""
        if self.cursor_type != "row" or self.fixed_columns or self.fixed_rows or self._should_render_row_labels:
            return super()._render_line(y, x1, x2, base_style)
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:
            return super()._render_line(y, x1, x2, base_style)
        row_index = -1 if row_key is self._header_row_key else self._row_locations.get(row_key)
        if row_index is None:
            return super()._render_line(y, x1, x2, base_style)
        row = None if row_index == -1 else row_key.value
        state = (
            line_no,
            x1,
            x2,
            self.size.width,
            base_style,
            self.cursor_coordinate.row == row_index,
            self.hover_coordinate.row == row_index,
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
        )
        lines = self._kept_lines.get(row)
        if lines is None:
            lines = self._kept_lines[row] = {}
        kept = lines.get(state)
        if kept is None:
            strip = super()._render_line(y, x1, x2, base_style)
        elif kept[0] == row_index:
            return kept[1]
        else:
            # Only the row index in the meta changed: set it, leaving the column (and the
            # out-of-bounds mark of the padding past the last column) as they are.
            meta = Style.from_meta({"row": row_index})
            strip = Strip(
                [
                    Segment(text, style + meta, control) if style is not None and style.meta else segment
                    for segment in kept[1]
                    for text, style, control in (segment,)
                ],
                kept[1].cell_length,
            )
        if len(lines) >= KEPT_VARIANTS:
            lines.clear()
        lines[state] = (row_index, strip)
        return strip

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> SegmentLines:
        """DataTable's rendering of a cell, kept while the cell's content, width and state
        stay the same (DataTable itself renders every visible cell again after any change
        to the table). Only the row index in the segments' meta (what a click selects)
        moves with the row, so a kept cell of a row that moved gets its new index."""
        if column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        # The header row (-1) changes only with the columns, which clear every cache.
        row_key = self._row_locations.get_key(row_index) if row_index >= 0 else None
        row = row_key.value if row_key is not None else None
        column_key = self._column_locations.get_key(column_index)
        column = column_key.value if column_key is not None else None
        state = (base_style, width, cursor, hover, self._show_hover_cursor, self._pseudo_class_state)
        cells = self._kept.get(row)
        if cells is None:
            cells = self._kept[row] = {}
        variants = cells.get(column)
        if variants is None:
            variants = cells[column] = {}
        kept = variants.get(state)
        if kept is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        elif kept[0] == row_index:
            return kept[1]
        else:
            meta = Style.from_meta({"row": row_index, "column": column_index})
            lines = [
                [Segment(text, style + meta if style else meta, control) for text, style, control in line]
                for line in kept[1]
            ]
        if len(variants) >= KEPT_VARIANTS:
            variants.clear()
        variants[state] = (row_index, lines)
        return lines

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
        shown = list(self._shown.values())
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
        Column("stage", "Stage", 11),
        Column("progress", "Progress", fmt.BAR_WIDTH + 5),
        Column("elapsed", "Elapsed", 7),
        Column("left", "Left", 6),
    )

    def cells(self, job: Job, now: datetime) -> Cells:
        remaining = "—" if job.eta_seconds is None else "~" + fmt.duration(job.eta_seconds)
        return (
            JobCell(job.job_id, "bold dodger_blue1"),
            fmt.plain(fmt.one_line(job.prompt)),
            Text(fmt.stage_label(job.status), style="dodger_blue1", end=""),
            fmt.progress_bar(job.progress),
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
    HistoryTable {
        height: 2fr;
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

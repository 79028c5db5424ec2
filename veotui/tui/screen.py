"""The main screen: a header line, the three live panels, the filter and the footer.

All data comes through the backend interface. One task, ``follow``, decides which jobs the
board holds: it applies each change from ``backend.changes()`` the moment it arrives and,
between changes, re-reads the lists when a page, the filter or a row leaving the history page
asks for it. So a slow answer can never overwrite a newer change. The only other writer is
the once-a-second progress reading, which the board takes only while the job's status still
matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.events import DescendantFocus
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from veotui.backend.base import BackendInfo
from veotui.errors import JobNotFound, VeotuiError
from veotui.model import Change, Job, Status
from veotui.tui import format as fmt
from veotui.tui.board import HISTORY, PANELS, PROCESSING, QUEUE, Board
from veotui.tui.details import DetailsScreen
from veotui.tui.dialogs import ConfirmScreen, HelpScreen
from veotui.tui.footer import KeysFooter
from veotui.tui.form import NewJobScreen
from veotui.tui.opener import open_with_player, player_command
from veotui.tui.tables import HistoryTable, JobTable, ProcessingTable, QueueTable

if TYPE_CHECKING:
    from veotui.tui.app import VeotuiApp

#: Seconds between re-reads of the processing jobs' progress, and after a failed stream.
TICK_SECONDS = 1.0
RECONNECT_SECONDS = 2.0
FILTER_DEBOUNCE_SECONDS = 0.2


class MainScreen(Screen[None]):
    app: VeotuiApp

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_job", "New", id="new_job", tooltip="Open the new job form"),
        Binding("c", "cancel", "Cancel", id="cancel", tooltip="Cancel the selected job (a processing one asks first)"),
        Binding("r", "retry", "Retry", id="retry", tooltip="Queue the selected failed or cancelled job again"),
        Binding("d", "delete", "Delete", id="delete", tooltip="Delete the selected job and all its files (asks first)"),
        Binding(
            "s", "save", "Save", id="save", tooltip="Save the selected completed job's videos to the downloads folder"
        ),
        Binding("o", "open", "Open", id="open", tooltip="Open the selected job's first video with the system's player"),
        Binding("slash", "filter", "Filter", id="filter", key_display="/", tooltip="Filter every panel by text"),
        Binding("escape", "clear_filter", "Clear filter", id="clear_filter", tooltip="Clear the filter"),
        Binding("question_mark", "help", "Help", id="help", key_display="?", tooltip="List every key"),
        Binding("q", "quit", "Quit", id="quit", tooltip="Quit (asks first while jobs are processing here)"),
        Binding("tab", "next_panel", "Next panel", show=False, id="next_panel", tooltip="Move to the next panel"),
        Binding(
            "shift+tab",
            "previous_panel",
            "Previous panel",
            show=False,
            id="previous_panel",
            tooltip="Move to the previous panel",
        ),
    ]

    #: (action, title, help) of every command the palette offers.
    COMMANDS_OFFERED: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("new_job", "New job", "Open the form for a new video generation job"),
        ("cancel", "Cancel job", "Cancel the selected queued or processing job"),
        ("retry", "Retry job", "Queue the selected failed or cancelled job again"),
        ("delete", "Delete job", "Delete the selected job and all its files"),
        ("save", "Save videos", "Save the selected completed job's videos to the downloads folder"),
        ("open", "Open video", "Open the selected job's first video with the system's player"),
        ("details", "Job details", "Parameters, timeline, error and files of the selected job"),
        ("filter", "Filter jobs", "Show only jobs whose prompt, id, status or user contains a text"),
        ("help", "Keys", "List every key"),
        ("quit", "Quit veotui", "Quit (processing jobs resume at the next start)"),
    )

    def __init__(self) -> None:
        super().__init__()
        self.board = Board()
        self.info: BackendInfo | None = None
        self.tables: dict[str, JobTable] = {
            PROCESSING: ProcessingTable(id="processing"),
            QUEUE: QueueTable(id="queue"),
            HISTORY: HistoryTable(id="history"),
        }
        self.active_panel = PROCESSING
        self.loaded = asyncio.Event()
        self._reload_wanted = asyncio.Event()
        self._wanted_offset = 0
        #: After a page move, where the cursor lands: "top" or "bottom".
        self._land: str | None = None
        self._filter_timer: Any = None
        self._keys_state: tuple[object, ...] = ()
        self._header = Text()
        self._titles: dict[str, tuple[str, str]] = {}

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Vertical(id="panels"):
            yield from self.tables.values()
        yield Input(id="filter", placeholder="filter by prompt, id, status or user · enter keeps it · escape clears it")
        yield KeysFooter(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.update_header()
        self.follow()
        self.set_interval(TICK_SECONDS, self.tick)

    # -- following the backend ------------------------------------------------------------

    @work(exclusive=True, group="follow")
    async def follow(self) -> None:
        await self.app.backend_ready()
        while True:
            try:
                await self._follow_stream()
                return  # the backend closed its stream: the app is shutting down
            except Exception as exc:  # noqa: BLE001 - whatever broke the stream, say so and go on
                self.app.notify(f"{exc}; reconnecting", title="Lost the event stream", severity="warning")
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _follow_stream(self) -> None:
        stream = self.app.backend.changes().__aiter__()
        pending: asyncio.Future[Change] = asyncio.ensure_future(stream.__anext__())
        # Let the subscription register before the first snapshot is read, so no change
        # committed in between is lost (one committed before is applied twice, harmlessly).
        await asyncio.sleep(0)
        if self.info is None:
            self.info = await self.app.backend.info()
        self._reload_wanted.set()
        try:
            while True:
                if self._reload_wanted.is_set():
                    self._reload_wanted.clear()
                    await self._reload()
                wanted = asyncio.ensure_future(self._reload_wanted.wait())
                await asyncio.wait({pending, wanted}, return_when=asyncio.FIRST_COMPLETED)
                wanted.cancel()
                if pending.done():
                    try:
                        change = pending.result()
                    except StopAsyncIteration:
                        return
                    pending = asyncio.ensure_future(stream.__anext__())
                    self.apply(change)
        finally:
            pending.cancel()
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(RuntimeError, VeotuiError):
                    await aclose()

    async def _reload(self) -> None:
        text = self.board.filter_text or None
        backend = self.app.backend
        try:
            lists = await backend.list_jobs(
                history_limit=self.board.page_size, history_offset=self._wanted_offset, text=text
            )
            if self._wanted_offset and self._wanted_offset >= lists.history_total:
                # The page emptied (rows were deleted): show the last one that has rows.
                last = max(0, (lists.history_total - 1) // self.board.page_size * self.board.page_size)
                self._wanted_offset = last
                lists = await backend.list_jobs(history_limit=self.board.page_size, history_offset=last, text=text)
            unfiltered = await backend.list_jobs(history_limit=0) if text else None
        except VeotuiError as exc:
            self.app.notify(str(exc), title="Could not read the jobs", severity="error")
            return
        pinned = self.selected_id
        self.board.load(lists, offset=self._wanted_offset, unfiltered=unfiltered)
        self.render_board(pinned)
        if self._land is not None:
            history = self.tables[HISTORY]
            history.move_cursor(row=0 if self._land == "top" else history.row_count - 1, animate=False)
            self._land = None
        if not self.loaded.is_set():
            self.call_after_refresh(self._freeze_heap)
            self.loaded.set()
            first = next((p for p in PANELS if self.board.jobs(p)), PROCESSING)
            self._activate(first, take_focus=not isinstance(self.focused, Input))

    @staticmethod
    def _freeze_heap() -> None:
        """Once the first frame is out: everything built so far (Textual, the styles, the
        first page) lives as long as the app, so take it out of the collector's full passes,
        which otherwise grow into visible stalls while the panels churn. Collect first, so
        no garbage is frozen with it."""
        gc.collect()
        gc.freeze()

    def apply(self, change: Change) -> None:
        """One change from the backend, shown at once."""
        if change.kind == "queue":
            return
        pinned = self.selected_id
        was_live = change.job_id in self.board.live
        applied = self.board.apply(change)
        if applied.needs_reload:
            self._reload_wanted.set()
        self.render_board(pinned)
        job = change.job
        if job is not None and was_live:
            self._announce(job)
        screen = self.app.screen
        if isinstance(screen, DetailsScreen) and screen.job_id == change.job_id:
            screen.reload()

    def _announce(self, job: Job) -> None:
        prompt = fmt.one_line(job.prompt)
        prompt = prompt if len(prompt) <= 40 else prompt[:39] + "…"
        if job.status == Status.COMPLETED:
            self.app.notify(f"{prompt} — {fmt.videos_summary(job)}", title=f"Completed {fmt.short_id(job.job_id)}")
        elif job.status == Status.FAILED:
            self.app.notify(
                f"{prompt} — {fmt.one_line(job.error)}", title=f"Failed {fmt.short_id(job.job_id)}", severity="error"
            )

    def tick(self) -> None:
        """About once a second: elapsed times move, and processing jobs' progress is re-read."""
        if self.board.processing:
            self.render_board(self.selected_id, panels=(PROCESSING,))
            self.refresh_progress()

    @work(exclusive=True, group="progress")
    async def refresh_progress(self) -> None:
        changed = False
        for job_id in list(self.board.processing):
            try:
                fresh = await self.app.backend.get(job_id)
            except JobNotFound:
                continue
            except Exception:  # noqa: BLE001 - the stream's own error says it; one notice is enough
                return
            changed |= self.board.refresh(fresh)
        if changed:
            self.render_board(self.selected_id, panels=(PROCESSING,))

    # -- rendering ------------------------------------------------------------------------

    def render_board(self, pinned: str | None, panels: tuple[str, ...] = PANELS) -> None:
        now = self.app.clock()
        board = self.board
        with self.app.batch_update():
            for panel in panels:
                self.tables[panel].show(board.jobs(panel), now)
            history = self.tables[HISTORY]
            history.has_previous = board.history_offset > 0
            history.has_next = board.has_next_page
            self._pin(pinned)
            self._update_titles()
            self.update_header()
        self._refresh_keys()

    def _refresh_keys(self) -> None:
        """Re-check which keys apply, only when the selected job or its status changed:
        refreshing the bindings recomposes the footer, too dear for every change."""
        job = self.selected_job
        state = (self.active_panel, job.job_id if job else None, job.status if job else None, self.board.filter_text)
        if state != self._keys_state:
            self._keys_state = state
            self.refresh_bindings()

    def _update_titles(self) -> None:
        board = self.board
        slots = self.info.max_concurrent if self.info else "?"
        history = "History"
        if board.history:
            first, last = board.history_offset + 1, board.history_offset + len(board.history)
            history = f"History {first}–{last} of {board.history_total:,}"
        paged = board.history_total > len(board.history)
        titles = {
            PROCESSING: (f"Processing {len(board.processing)}/{slots}", ""),
            QUEUE: (f"In Queue {len(board.queued)}", ""),
            HISTORY: (history, "↑ at the top / ↓ at the bottom turns the page" if paged else ""),
        }
        for panel, (title, subtitle) in titles.items():
            # Setting a border title repaints the whole table, even to the same text.
            if self._titles.get(panel) != (title, subtitle):
                self._titles[panel] = (title, subtitle)
                table = self.tables[panel]
                table.border_title, table.border_subtitle = title, subtitle

    def update_header(self) -> None:
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append(" veotui ", style="bold reverse")
        info = self.info
        if info is None:
            header.append("  connecting…", style="dim")
        else:
            header.append(f" {info.location}", style="bold")
            header.append(" · ")
            if info.is_simulator:
                header.append(f"simulator ({info.generator})", style="yellow")
            else:
                header.append(f"generator {info.generator}", style="green")
            header.append(f" · slots {self.board.processing_count}/{info.max_concurrent}", style="dodger_blue1")
            header.append(f" · queue {self.board.queue_length}", style="dark_orange")
        if self.board.filter_text:
            header.append(" · filter ")
            header.append(repr(self.board.filter_text), style="bold")
        if header != self._header:
            # One line of fixed height: no need to lay the screen out again.
            self._header = header
            self.query_one("#header", Static).update(header, layout=False)

    # -- selection ------------------------------------------------------------------------

    @property
    def active_table(self) -> JobTable:
        return self.tables[self.active_panel]

    @property
    def selected_id(self) -> str | None:
        return self.active_table.selected_id

    @property
    def selected_job(self) -> Job | None:
        job_id = self.selected_id
        return self.board.find(job_id) if job_id else None

    def _pin(self, job_id: str | None) -> None:
        """Keep the selection on the same job, into whichever panel it moved."""
        if job_id is None:
            return
        panel = self.board.panel_of(job_id)
        if panel is None:
            return
        if panel != self.active_panel:
            # Follow the job, but never pull the cursor out of the filter while typing.
            self._activate(panel, take_focus=not isinstance(self.focused, Input))
        self.tables[panel].select(job_id)

    def _activate(self, panel: str, *, take_focus: bool = True) -> None:
        self.active_panel = panel
        if take_focus:
            self.tables[panel].focus()

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        if isinstance(event.widget, JobTable):
            self.active_panel = next(p for p, t in self.tables.items() if t is event.widget)
            self._refresh_keys()

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._refresh_keys()

    @on(HistoryTable.PageRequest)
    def _turn_page(self, event: HistoryTable.PageRequest) -> None:
        size = self.board.page_size
        offset = max(0, self.board.history_offset + event.step * size)
        if offset == self.board.history_offset:
            return
        self._wanted_offset = offset
        self._land = "top" if event.step > 0 else "bottom"
        self._reload_wanted.set()

    def action_next_panel(self) -> None:
        self._activate(PANELS[(PANELS.index(self.active_panel) + 1) % len(PANELS)])

    def action_previous_panel(self) -> None:
        self._activate(PANELS[(PANELS.index(self.active_panel) - 1) % len(PANELS)])

    # -- which keys apply -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        job = self.selected_job
        if action == "cancel":
            return True if job is not None and not job.status.is_final else None
        if action == "retry":
            return True if job is not None and job.status in (Status.FAILED, Status.CANCELLED) else None
        if action in ("delete", "details"):
            return True if job is not None else None
        if action in ("save", "open"):
            return True if job is not None and job.status == Status.COMPLETED else None
        if action == "clear_filter":
            return bool(self.board.filter_text) or self.query_one("#filter", Input).display
        return True

    # -- actions --------------------------------------------------------------------------

    def action_new_job(self) -> None:
        def submitted(job: Job | None) -> None:
            if job is not None:
                where = f"queue position {job.queue_position}" if job.queue_position else job.status.value
                self.app.notify(f"Job {fmt.short_id(job.job_id)}: {where}", title="Submitted", timeout=3)

        self.app.push_screen(NewJobScreen(self.app.backend), submitted)

    def action_cancel(self) -> None:
        job = self.selected_job
        if job is None or job.status.is_final:
            return
        if job.status == Status.QUEUED:
            self._call(f"cancel job {fmt.short_id(job.job_id)}", lambda: self.app.backend.cancel(job.job_id))
            return
        self._confirm(
            f"Cancel processing job {fmt.short_id(job.job_id)}?",
            "It is generating now: cancelling abandons the work already started (and paid for). "
            "The job ends cancelled and can be retried.",
            "Cancel job",
            lambda: self._call(f"cancel job {fmt.short_id(job.job_id)}", lambda: self.app.backend.cancel(job.job_id)),
        )

    def action_retry(self) -> None:
        job = self.selected_job
        if job is not None and job.status in (Status.FAILED, Status.CANCELLED):
            self._call(f"retry job {fmt.short_id(job.job_id)}", lambda: self.app.backend.retry(job.job_id))

    def action_delete(self) -> None:
        job = self.selected_job
        if job is None:
            return
        files = [f"{len(job.videos)} video{'s' if len(job.videos) != 1 else ''}"] if job.videos else []
        if job.has_image:
            files.append("its input image")
        what = " and ".join(files) if files else "its folder"
        where = "on this machine" if self.is_local else f"on {self.info.location if self.info else 'the server'}"
        stop = " It is processing: it stops and frees its slot." if job.status.is_active else ""
        self._confirm(
            f"Delete job {fmt.short_id(job.job_id)}?",
            f"“{fmt.one_line(job.prompt)[:60]}” — removes the job, {what} {where}, and its cloud files. "
            f"This cannot be undone.{stop}",
            "Delete",
            lambda: self._call(f"delete job {fmt.short_id(job.job_id)}", lambda: self.app.backend.delete(job.job_id)),
        )

    def action_save(self) -> None:
        job = self.selected_job
        if job is not None and job.status == Status.COMPLETED:
            self.save(job)

    @work(group="files")
    async def save(self, job: Job) -> None:
        target = self.app.settings.downloads_dir
        try:
            target.mkdir(parents=True, exist_ok=True)
            paths = await self.app.backend.download_all(job.job_id, target)
        except Exception as exc:  # noqa: BLE001 - VeotuiError, OSError, or a dropped connection
            self.app.notify(str(exc), title=f"Could not save job {fmt.short_id(job.job_id)}", severity="error")
            return
        names = ", ".join(path.name for path in paths)
        self.app.notify(
            f"Saved to {target}: {names}", title=f"Saved {len(paths)} video{'s' if len(paths) != 1 else ''}"
        )

    def action_open(self) -> None:
        job = self.selected_job
        if job is not None and job.status == Status.COMPLETED:
            self.open_video(job)

    @work(group="files")
    async def open_video(self, job: Job) -> None:
        if not job.videos:
            self.app.notify("This job has no videos.", severity="warning")
            return
        path = self.app.backend.local_video_path(job, job.videos[0].index)
        try:
            if path is None:
                target = self.app.settings.downloads_dir
                target.mkdir(parents=True, exist_ok=True)
                path = await self.app.backend.download_video(job.job_id, job.videos[0].index, target)
            command = player_command(path)
            if isinstance(command, str):
                self.app.notify(command, title="Cannot open a player", severity="warning", timeout=15)
                return
            self.app.notify(str(path), title="Opening in the system's player")
            status = await open_with_player(command)
        except Exception as exc:  # noqa: BLE001 - VeotuiError, OSError, or a dropped connection
            self.app.notify(str(exc), title="Could not open the video", severity="error")
            return
        if status != 0:
            self.app.notify(
                f"{Path(command[0]).name} exited with status {status}. The video is at {path}",
                title="The player did not open",
                severity="warning",
                timeout=15,
            )

    def action_details(self) -> None:
        job = self.selected_job
        if job is not None:
            self.app.push_screen(DetailsScreen(self.app.backend, job.job_id))

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.value = ""
        field.display = False
        self._set_filter("")
        self.active_table.focus()

    @on(Input.Changed, "#filter")
    def _filter_typed(self, event: Input.Changed) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(FILTER_DEBOUNCE_SECONDS, lambda: self._set_filter(event.value))

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self._set_filter(event.value)
        if not event.value.strip():
            event.input.display = False
        self.active_table.focus()

    def _set_filter(self, text: str) -> None:
        text = text.strip()
        if text == self.board.filter_text:
            return
        self.board.filter_text = text
        self._wanted_offset = 0
        self._reload_wanted.set()
        self.update_header()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.key_rows()))

    def key_rows(self) -> list[tuple[str, str, str]]:
        """Every key of the main screen as the keymap has it: (keys, what it does, id)."""
        rows = []
        for binding in (*JobTable.BINDINGS, *self.BINDINGS):
            if not isinstance(binding, Binding):
                continue
            keys = self.app.settings.keymap.get(binding.id or "", binding.key)
            shown = ", ".join(
                self.app.get_key_display(binding if key == binding.key else Binding(key.strip(), ""))
                for key in keys.split(",")
            )
            rows.append((shown, binding.tooltip or binding.description, binding.id or ""))
        rows += [
            ("↑ ↓ pgup pgdn", "Move the selection (History turns its pages at either end)", ""),
            (self.app.get_key_display(Binding("ctrl+p", "")), "Command palette: every action by name", ""),
            (self.app.get_key_display(Binding("ctrl+q", "")), "Quit at once", ""),
        ]
        return rows

    @property
    def is_local(self) -> bool:
        return self.info is not None and self.info.location == "local"

    def action_quit(self) -> None:
        busy = self.board.processing_count
        if not (self.is_local and busy):
            self.app.exit(0)
            return
        self._confirm(
            "Quit veotui?",
            f"{busy} job{'s are' if busy != 1 else ' is'} processing. "
            "They pause now and resume where they stand when veotui starts again.",
            "Quit",
            lambda: self.app.exit(0),
        )

    # -- helpers --------------------------------------------------------------------------

    def _confirm(self, question: str, detail: str, yes: str, then: Callable[[], object]) -> None:
        def answered(answer: bool | None) -> None:
            if answer:
                then()

        self.app.push_screen(ConfirmScreen(question, detail, yes), answered)

    def _call(self, what: str, call: Callable[[], Awaitable[object]]) -> None:
        self._run_call(what, call)

    @work(group="actions")
    async def _run_call(self, what: str, call: Callable[[], Awaitable[object]]) -> None:
        try:
            await call()
        except VeotuiError as exc:
            self.app.notify(str(exc), title=f"Could not {what}", severity="error")
        except Exception as exc:  # noqa: BLE001 - an operator sees a sentence, never a traceback
            self.app.notify(f"{type(exc).__name__}: {exc}", title=f"Could not {what}", severity="error")

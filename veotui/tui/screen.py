"""The main screen: a header line, the three live panels, the filter and the footer.

All data comes through the backend interface, which the app hands down with the settings
and the clock. A ``Follower`` keeps the board in step with the backend's change stream; the
screen renders the board after each change. The only other writer is the once-a-second
progress reading, which the board takes only while the job's status still matches.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.events import DescendantFocus
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer, Input

from veotui.backend.base import Backend, BackendInfo, Me
from veotui.core import display as fmt
from veotui.core.access import JOB_ACTIONS as ROLE_JOB_ACTIONS
from veotui.core.access import Action, key_refusal
from veotui.core.errors import JobNotFound, VeotuiError
from veotui.core.job import (
    DISCONNECTED,
    RETRY_REFETCHES,
    RETRY_RESUBMITS,
    Change,
    Job,
    QueueState,
    Status,
    format_usd,
    utcnow,
)
from veotui.settings import Settings
from veotui.tui.board import HISTORY, PANELS, PROCESSING, QUEUE, Board
from veotui.tui.details import DetailsScreen
from veotui.tui.dialogs import ALWAYS_KEEP, KEEP, ConfirmScreen, HelpScreen, SaveQuestion
from veotui.tui.filter import FilterBar
from veotui.tui.follow import Follower
from veotui.tui.form import NewJobScreen
from veotui.tui.grid import GroupScreen
from veotui.tui.header import HeaderBar
from veotui.tui.metrics import MetricsScreen
from veotui.tui.opener import open_with_player, player_command
from veotui.tui.tables import HistoryTable, JobTable, ProcessingTable, QueueTable

#: Seconds between re-reads of the processing jobs' progress.
TICK_SECONDS = 1.0
#: How often the header asks whether the data directory accepts writes.
STORAGE_SECONDS = 3.0
#: How often the screen asks who it acts for (a server's users can change while it runs).
ME_SECONDS = 30.0
#: The role-bound action each key takes (the rest are open to every role: reading, saving).
ROLE_ACTIONS: dict[str, Action] = {
    "new_job": Action.SUBMIT,
    "extend": Action.SUBMIT,
    "edit": Action.EDIT,
    "cancel": Action.CANCEL,
    "retry": Action.RETRY,
    "delete": Action.DELETE,
    "move_up": Action.MOVE,
    "move_down": Action.MOVE,
    "move_top": Action.MOVE,
    "pause": Action.PAUSE,
}
#: A destructive key does nothing when a change moved the selection to another job this
#: recently: the key was meant for the job that was there (the head of the queue that just
#: started, say), not for its neighbour.
SETTLE_SECONDS = 0.3
#: How long a warning toast stays; an error's stays a little longer. Both are short.
NOTICE_SECONDS = 4.0
ERROR_SECONDS = 6.0


def palette_commands(bindings: Iterable[BindingType], titles: Mapping[str, str]) -> tuple[tuple[str, str, str], ...]:
    """(action, title, help) for each binding id in ``titles``, the help being its tooltip."""
    tooltips = {b.id: b.tooltip for b in bindings if isinstance(b, Binding) and b.id and b.tooltip}
    return tuple((action, title, tooltips[action]) for action, title in titles.items())


class MainScreen(Screen[None]):
    class FirstPaint(Message):
        """The panels' first frame with the jobs is out: what is built now lives as long
        as the app."""

    DEFAULT_CSS = """
    MainScreen #panels {
        height: 1fr;
    }
    MainScreen #panels.-stale {
        opacity: 50%;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_job", "New", id="new_job", tooltip="Open the form for a new video generation job"),
        Binding("c", "cancel", "Cancel", id="cancel", tooltip="Cancel the selected job (a processing one asks first)"),
        Binding("r", "retry", "Retry", id="retry", tooltip="Queue the selected failed or cancelled job again"),
        Binding("d", "delete", "Delete", id="delete", tooltip="Delete the selected job and all its files (asks first)"),
        Binding(
            "s", "save", "Save", id="save", tooltip="Save the selected completed job's videos to the downloads folder"
        ),
        Binding("o", "open", "Open", id="open", tooltip="Open the selected job's first video with the system's player"),
        Binding(
            "x",
            "extend",
            "Extend",
            id="extend",
            show=False,  # the footer is full at 80 columns; ? and the palette list it
            tooltip="Continue a video of the selected completed job (a new job)",
        ),
        # Shown in ? and the palette: the footer is full at 80 columns.
        Binding(
            "e",
            "edit",
            "Edit",
            id="edit",
            show=False,
            tooltip="Open the form filled with the selected job's parameters and inputs (submits a new job)",
        ),
        Binding(
            "p",
            "pause",
            "Pause",
            id="pause",
            show=False,
            tooltip="Pause the queue, or resume it (processing jobs go on)",
        ),
        Binding("K", "move_up", "Move up", id="move_up", show=False, tooltip="Move the selected queued job up"),
        Binding("J", "move_down", "Move down", id="move_down", show=False, tooltip="Move the selected queued job down"),
        Binding("T", "move_top", "To the top", id="move_top", show=False, tooltip="Move the selected queued job first"),
        Binding("slash", "filter", "Filter", id="filter", key_display="/", tooltip="Filter every panel by text"),
        Binding("escape", "clear_filter", "Clear filter", id="clear_filter", tooltip="Clear the filter"),
        Binding("question_mark", "help", "Help", id="help", key_display="?", tooltip="List every key"),
        Binding(
            "g",
            "group",
            "Group",
            show=False,
            id="group",
            tooltip="Open the selected job's group as a grid of pictures, one per job",
        ),
        Binding(
            "m",
            "metrics",
            "Metrics",
            show=False,
            id="metrics",
            tooltip="Jobs per hour, success rate, queue, errors, stage times, spend and storage",
        ),
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

    #: (action, title, help) of every command the palette offers, in its order; the help is
    #: the tooltip of the action's key, so ``?``, the footer and the palette say the same.
    COMMANDS_OFFERED: ClassVar[tuple[tuple[str, str, str], ...]] = palette_commands(
        (*JobTable.BINDINGS, *BINDINGS),
        {
            "new_job": "New job",
            "cancel": "Cancel job",
            "retry": "Retry job",
            "delete": "Delete job",
            "save": "Save videos",
            "open": "Open video",
            "extend": "Extend video",
            "edit": "Edit and resubmit",
            "pause": "Pause or resume the queue",
            "move_up": "Move job up",
            "move_down": "Move job down",
            "move_top": "Move job to the top",
            "details": "Job details",
            "filter": "Filter jobs",
            "metrics": "Metrics",
            "help": "Keys",
            "quit": "Quit veotui",
        },
    )

    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        clock: Callable[[], datetime],
        ready: asyncio.Event | None = None,
    ) -> None:
        """``ready`` is set once the backend has started (not set: started already)."""
        super().__init__()
        #: What the last new job was submitted with; a new form starts from it (this session).
        self.form_memory: dict[str, Any] = {}
        self.backend = backend
        self.settings = settings
        self.clock = clock
        self._ready = ready
        self.board = Board()
        self.follower = Follower(
            backend,
            self.board,
            on_change=self.apply,
            on_loaded=self._loaded,
            on_error=self._error,
            on_connection=self._connection,
            on_queue=self._queue_changed,
        )
        self.tables: dict[str, JobTable] = {
            PROCESSING: ProcessingTable(id="processing"),
            QUEUE: QueueTable(id="queue"),
            HISTORY: HistoryTable(id="history"),
        }
        self.header = HeaderBar()
        self.filter_bar = FilterBar()
        self.active_panel = PROCESSING
        self.loaded = asyncio.Event()
        #: After a page move, where the cursor lands: "top" or "bottom".
        self._land: str | None = None
        self._keys_state: tuple[object, ...] = ()
        self._titles: dict[str, tuple[str, str]] = {}
        #: Who the backend acts for; None until it said (the backend refuses what it must).
        self.me: Me | None = None
        #: When a change last moved the selection to another job (the monotonic clock).
        self._selection_moved_at = -SETTLE_SECONDS
        #: The last job that ended, as the Processing panel's bottom line says it.
        self.last_ended = ""
        #: The state of the queue the engine told us last, to tell another client's pause.
        self._queue_state: QueueState | None = None
        #: A pause or resume this screen asked for, until the engine says it is done.
        self._own_pause: bool | None = None
        #: The answer to the first save's question this session: None asks (again).
        self.save_choice: str | None = None
        #: While the server is away, the time the panels stand still at.
        self._frozen_at: datetime | None = None

    @property
    def info(self) -> BackendInfo | None:
        return self.follower.info

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self.header
        with Vertical(id="panels"):
            yield from self.tables.values()
        yield self.filter_bar
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.update_header()
        self.follow()
        self.set_interval(TICK_SECONDS, self.tick)
        self.set_interval(STORAGE_SECONDS, self.check_storage)
        self.set_interval(ME_SECONDS, self.load_me)

    # -- following the backend ------------------------------------------------------------

    @work(exclusive=True, group="follow")
    async def follow(self) -> None:
        if self._ready is not None:
            await self._ready.wait()
        self.load_me()
        await self.follower.run()

    @work(exclusive=True, group="me")
    async def load_me(self) -> None:
        """Who the backend acts for: the header names them, and the keys their role may not
        use are shown disabled."""
        try:
            me = await self.backend.me()
        except VeotuiError:
            return  # a server that cannot say leaves the keys as they are; it still refuses
        if me != self.me:
            self.me = self.header.me = me
            self.refresh_bindings()

    def _error(self, title: str, message: str, severity: str) -> None:
        self.notice(message, title=title, severity="warning" if severity == "warning" else "error")

    def notice(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information", timeout: float | None = None
    ) -> None:
        """A toast, for what needs attention. Short: warnings and errors stay a few seconds;
        the rest goes by faster."""
        if timeout is None:
            timeout = {"error": ERROR_SECONDS, "warning": NOTICE_SECONDS}.get(severity, 3.0)
        self.app.notify(message, title=title, severity=severity, timeout=timeout)

    def _connection(self, state: str) -> None:
        """The remote server went away, or came back: say so, grey out the panels and stop
        their clocks while they cannot be trusted."""
        self.header.connection = state
        lost = state == DISCONNECTED
        self.query_one("#panels").set_class(lost, "-stale")
        self._frozen_at = self.clock() if lost else None
        where = self.info.location if self.info else "the server"
        if lost:
            self.notice(
                f"Lost {where}; retrying. The panels show the last known state.",
                title="Disconnected",
                severity="warning",
            )
        else:
            self.notice(f"Connected to {where} again.", title="Reconnected")
            self.render_board(self.selected_id, panels=(PROCESSING,))

    def _queue_changed(self, state: QueueState) -> None:
        """Paused or running (and why), and today's spend, in the header; a pause or resume
        that another client (or the daily budget) made is also said."""
        header = self.header
        before, self._queue_state = self._queue_state, state
        if before is not None and state.paused != before.paused:
            if self._own_pause is not None and self._own_pause == state.paused:
                self._own_pause = None  # this screen's own pause or resume: it says so itself
            elif state.by_budget:
                self.notice(state.reason or "", title="The daily budget paused the queue", severity="warning")
            elif state.paused:
                reason = f": {state.reason}" if state.reason else ""
                self.notice(
                    f"Nothing new starts{reason}. p resumes.", title="Queue paused elsewhere", severity="warning"
                )
            else:
                self.notice("New jobs start again.", title="Queue resumed elsewhere")
        header.paused, header.pause_reason = state.paused, state.reason or ""
        header.spend_today = state.spent_today_usd
        header.daily_budget = state.daily_budget_usd

    def _loaded(self) -> None:
        """The lists were read afresh."""
        pinned = self.selected_id
        first_read = not self.loaded.is_set()
        # After the first read the focus moves to the first panel with jobs, and Textual
        # refreshes the bindings for that: the keys are checked once, not twice (each
        # check that changes them rebuilds the footer).
        self.render_board(pinned, keys=not first_read)
        if self._land is not None:
            history = self.tables[HISTORY]
            history.move_cursor(row=0 if self._land == "top" else history.row_count - 1, animate=False)
            self._land = None
        if first_read:
            self.call_after_refresh(self.post_message, self.FirstPaint())
            self.loaded.set()
            self._update_titles()
            first = next((p for p in PANELS if self.board.jobs(p)), PROCESSING)
            take_focus = not isinstance(self.focused, Input)
            focus_moves = take_focus and self.focused is not self.tables[first]
            self._activate(first, take_focus=take_focus)
            if focus_moves:
                self._keys_state = self._keys_now()
            else:
                self._refresh_keys()

    def apply(self, change: Change, was_live: bool = False) -> None:
        """One change from the backend (already on the board), shown at once."""
        pinned = self.selected_id
        self.render_board(pinned)
        job = change.job
        if job is not None and was_live:
            self._announce(job)
        screen = self.app.screen
        if isinstance(screen, DetailsScreen) and screen.job_id == change.job_id:
            screen.reload()
        for grid in self.app.screen_stack:
            if isinstance(grid, GroupScreen) and change.job_id:
                grid.job_changed(job, change.job_id)

    def _announce(self, job: Job) -> None:
        """A job ended: the Processing panel's bottom line says so (a toast would cover the
        rows being read). A failure needs attention: it is also a short toast, on this
        screen (the form, the details and the help keep theirs clear)."""
        when = fmt.local_time(job.finished_at, self.clock()) if job.finished_at else ""
        short = fmt.short_id(job.job_id)
        if job.status == Status.COMPLETED:
            self.last_ended = f"✓ {short} completed {when} · {fmt.videos_summary(job)}"
        elif job.status == Status.FAILED:
            self.last_ended = f"✗ {short} failed {when}"
            if self.app.screen is self:
                error = _first_sentence(fmt.one_line(job.error))
                hint = f" {fmt.EDIT_HINT}" if fmt.asks_for_edit(job.error) else ""
                self.notice(f"{error}{hint}", title=f"Failed {short}", severity="error")
        else:
            return
        self._update_titles()

    def tick(self) -> None:
        """About once a second: elapsed times move, and processing jobs' progress is re-read
        (not while the server is away: the panels then stand still, greyed out)."""
        if self.board.processing and self._frozen_at is None:
            self.render_board(self.selected_id, panels=(PROCESSING,))
            self.refresh_progress()

    @work(exclusive=True, group="progress")
    async def refresh_progress(self) -> None:
        changed = False
        for job_id in list(self.board.processing):
            try:
                fresh = await self.backend.get(job_id)
            except JobNotFound:
                continue
            except Exception:  # noqa: BLE001 - the stream's own error says it; one notice is enough
                return
            changed |= self.board.refresh(fresh)
        if changed:
            self.render_board(self.selected_id, panels=(PROCESSING,))

    # -- rendering ------------------------------------------------------------------------

    def render_board(self, pinned: str | None, panels: tuple[str, ...] = PANELS, *, keys: bool = True) -> None:
        now = self._frozen_at or self.clock()
        board = self.board
        with self.app.batch_update():
            owners = self._several_owners()
            for panel in panels:
                table = self.tables[panel]
                table.show_owners(owners)
                table.show(board.jobs(panel), now)
            history = self.tables[HISTORY]
            assert isinstance(history, HistoryTable)
            history.has_previous = board.history_offset > 0
            history.has_next = board.has_next_page
            self._pin(pinned)
            if pinned is not None and self.selected_id not in (pinned, None):
                self._selection_moved_at = time.monotonic()
            self._update_titles()
            self.update_header()
        if keys:
            self._refresh_keys()

    def _several_owners(self) -> bool:
        """Whether the jobs at hand belong to more than one user (then each row says whose)."""
        board = self.board
        first: str | None = None
        for jobs in (board.processing.values(), board.queued.values(), board.history):
            for job in jobs:
                if first is None:
                    first = job.request.user
                elif job.request.user != first:
                    return True
        return False

    #: The actions whose keys apply or not depending on the selected job and the filter.
    JOB_ACTIONS: ClassVar[tuple[str, ...]] = (
        "cancel",
        "retry",
        "delete",
        "details",
        "save",
        "open",
        "move_up",
        "move_down",
        "move_top",
        "edit",
        "extend",
        "clear_filter",
        "new_job",
        "pause",
    )

    def _keys_now(self) -> tuple[object, ...]:
        return (self.active_panel, *(self.check_action(action, ()) for action in self.JOB_ACTIONS))

    def _refresh_keys(self) -> None:
        """Re-check which keys apply, only when that changed (not merely the selected job):
        refreshing the bindings recomposes the footer, too dear for every change."""
        state = self._keys_now()
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
        empty = not (board.processing or board.queued or board.history or board.filter_text)
        hint = "press n to submit your first job" if empty and self.loaded.is_set() else ""
        titles = {
            PROCESSING: (f"Processing {len(board.processing)}/{slots}", self.last_ended),
            QUEUE: (
                f"In Queue {board.queued_total:,}",
                f"the first {len(board.queued):,} shown" if board.queued_total > len(board.queued) else "",
            ),
            HISTORY: (history, "↑ at the top / ↓ at the bottom turns the page" if paged else hint),
        }
        for panel, (title, subtitle) in titles.items():
            # Setting a border title repaints the whole table, even to the same text.
            if self._titles.get(panel) != (title, subtitle):
                self._titles[panel] = (title, subtitle)
                table = self.tables[panel]
                table.border_title, table.border_subtitle = title, subtitle

    @work(exclusive=True, group="storage")
    async def check_storage(self) -> None:
        """Whether the engine's storage takes writes; in a fleet, also how many servers live."""
        try:
            if self.info is not None and self.info.fleet is not None:
                info = self.follower.info = await self.backend.info()
                self.header.fleet = info.fleet_size
                state = info.storage
            else:
                state = await self.backend.storage_status()
        except VeotuiError:
            return  # the connection state says why; the next check tries again
        self.header.storage = "" if state.ok else state.label.removeprefix("storage ")

    def update_header(self) -> None:
        header = self.header
        header.info = self.info
        header.fleet = self.info.fleet_size if self.info is not None else None
        header.processing = self.board.processing_count
        header.queued = self.board.queue_length
        header.filter_text = self.board.filter_text

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
        """Keep the selection on the same job while it stays in its panel. When it leaves
        (cancelled, started, ended), the cursor stays in the panel on the row that took its
        place, so a second key acts on a neighbour rather than nothing; it follows the job
        only out of a panel left empty."""
        if job_id is None:
            return
        panel = self.board.panel_of(job_id)
        if panel is None:
            return
        if panel != self.active_panel and self.active_table.row_count:
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
            # Textual refreshed the bindings for the focus change already (the footer is
            # rebuilt after the next refresh, so it sees this panel): one rebuild is enough.
            self._keys_state = self._keys_now()

    @on(JobTable.Highlighted)
    def _highlighted(self) -> None:
        self._refresh_keys()

    @on(HistoryTable.PageRequest)
    def _turn_page(self, event: HistoryTable.PageRequest) -> None:
        size = self.board.page_size
        offset = max(0, self.board.history_offset + event.step * size)
        if offset == self.board.history_offset:
            return
        self._land = "top" if event.step > 0 else "bottom"
        self.follower.reload(offset=offset)

    def action_next_panel(self) -> None:
        self._activate(PANELS[(PANELS.index(self.active_panel) + 1) % len(PANELS)])

    def action_previous_panel(self) -> None:
        self._activate(PANELS[(PANELS.index(self.active_panel) - 1) % len(PANELS)])

    # -- which keys apply -----------------------------------------------------------------

    def role_refusal(self, action: str) -> str | None:
        """Why the user's role may not take ``action`` (on the selected job), or None."""
        rule = ROLE_ACTIONS.get(action)
        if self.me is None or rule is None:
            return None
        if rule == Action.PAUSE and self.header.paused:
            rule = Action.RESUME
        if rule not in ROLE_JOB_ACTIONS:
            return key_refusal(self.me.actor, rule)
        job = self.selected_job
        return None if job is None else key_refusal(self.me.actor, rule, job.request.user)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.role_refusal(action) is not None:
            return None  # shown disabled; pressing it says why (on_key)
        job = self.selected_job
        if action == "cancel":
            return True if job is not None and not job.status.is_final else None
        if action == "retry":
            return True if job is not None and job.status in (Status.FAILED, Status.CANCELLED) else None
        if action in ("delete", "details"):
            return True if job is not None else None
        if action in ("save", "open"):
            return True if job is not None and job.status == Status.COMPLETED else None
        if action in ("move_up", "move_down", "move_top"):
            return True if job is not None and job.status == Status.QUEUED and not self.board.filter_text else None
        if action == "edit":
            return True if job is not None else None
        if action == "extend":
            return True if job is not None and _extendable(job) else None
        if action == "clear_filter":
            return bool(self.board.filter_text) or self.filter_bar.display
        return True

    def _where(self, job: Job) -> str:
        """Where a job just submitted stands: a job a free slot takes at once is not
        "queue position 1"."""
        if job.job_id in self.board.active or job.status.is_active:
            return "starting now"
        if job.status != Status.QUEUED or not job.queue_position:
            return job.status.value
        slots = self.info.max_concurrent if self.info else 0
        busy = sum(1 for job_id in self.board.active if job_id != job.job_id)
        paused = self._queue_state is not None and self._queue_state.paused  # nothing starts
        if job.queue_position <= slots - busy and not paused:
            return "starting now (a slot is free)"
        return f"queue position {job.queue_position:,}"

    #: Why an action does not apply to the selected job, said when the palette asks for it.
    NOT_APPLICABLE: ClassVar[dict[str, str]] = {
        "cancel": "only a queued or processing job can be cancelled",
        "retry": "only a failed or cancelled job can be retried",
        "save": "only a completed job has videos to save",
        "open": "only a completed job has a video to open",
        "extend": "only a completed job with a video, or a queued or processing one, can be extended",
    }

    async def run_from_palette(self, action: str) -> None:
        """An action picked in the command palette: run it, or say why it does not apply
        (a key that does not apply is greyed out in the footer; the palette cannot be)."""
        if self._say_refusal(action):
            return
        if self.check_action(action, ()) is True:
            await self.run_action(action)
            return
        job = self.selected_job
        if job is None:
            reason = "select a job first"
        else:
            rule = self.NOT_APPLICABLE.get(action, "it does not apply to the selected job")
            reason = f"job {fmt.short_id(job.job_id)} is {job.status.value}; {rule}"
        title = next((title for name, title, _ in self.COMMANDS_OFFERED if name == action), action)
        self.app.notify(reason[0].upper() + reason[1:] + ".", title=f"{title}: nothing to do", severity="warning")

    def on_key(self, event: events.Key) -> None:
        """A key shown disabled because the role may not use it: say why. (Textual passes a
        disabled key on as a plain key press.)"""
        active = self.active_bindings.get(event.key)
        if active is not None and not active.enabled and self._say_refusal(active.binding.action):
            event.stop()

    def _say_refusal(self, action: str) -> bool:
        reason = self.role_refusal(action)
        if reason is None:
            return False
        title = next((title for name, title, _ in self.COMMANDS_OFFERED if name == action), action)
        # Not capitalised: the sentence may begin with a user's name, which is theirs to spell.
        self.app.notify(reason + ".", title=f"{title}: not allowed", severity="warning")
        return True

    # -- actions --------------------------------------------------------------------------

    def action_new_job(self) -> None:
        def submitted(job: Job | None) -> None:
            if job is not None:
                self.app.notify(f"Job {fmt.short_id(job.job_id)}: {self._where(job)}", title="Submitted", timeout=3)

        self.app.push_screen(
            NewJobScreen(self.backend, prices=self.settings.price_table, memory=self.form_memory), submitted
        )

    def action_extend(self) -> None:
        job = self.selected_job
        if job is None or not _extendable(job):
            return

        def submitted(extension: Job | None) -> None:
            if extension is not None:
                waits = " once it completes" if extension.waiting_for == job.job_id else ""
                self.app.notify(
                    f"Job {fmt.short_id(extension.job_id)} continues job {fmt.short_id(job.job_id)}{waits}",
                    title="Extension submitted",
                    timeout=3,
                )

        self.app.push_screen(NewJobScreen(self.backend, extends=job, prices=self.settings.price_table), submitted)

    def action_edit(self) -> None:
        job = self.selected_job
        if job is not None:
            self.edit(job)

    @work(group="edit")
    async def edit(self, job: Job) -> None:
        """The form, filled with ``job``'s parameters and inputs; submitting makes a new job."""
        source = None
        if job.request.extends is not None:
            try:
                source = await self.backend.get(job.request.extends.job_id)
            except VeotuiError as exc:
                self.app.notify(f"{exc}", title="The job it extends is gone", severity="error")
                return

        def submitted(new: Job | None) -> None:
            if new is not None:
                self.app.notify(
                    f"Job {fmt.short_id(new.job_id)}, edited from job {fmt.short_id(job.job_id)}",
                    title="Submitted",
                    timeout=3,
                )

        form = NewJobScreen(self.backend, extends=source, template=job, prices=self.settings.price_table)
        self.app.push_screen(form, submitted)

    def action_pause(self) -> None:
        self.toggle_pause()

    @work(exclusive=True, group="pause")
    async def toggle_pause(self) -> None:
        self._own_pause = not self.header.paused
        try:
            if self.header.paused:
                state = await self.backend.resume()
                message = "New jobs start again."
                if state.budget_override:
                    message += " The daily budget is set aside until 00:00 UTC."
                self.app.notify(message, title="Queue resumed", timeout=4)
            else:
                state = await self.backend.pause()
                self.app.notify("Nothing new starts; processing jobs go on. p resumes.", title="Queue paused")
        except VeotuiError as exc:
            self._own_pause = None
            self.notice(str(exc), title="Could not pause or resume the queue", severity="error")
            return
        self._queue_changed(state)

    def action_move_up(self) -> None:
        self._move("up")

    def action_move_down(self) -> None:
        self._move("down")

    def action_move_top(self) -> None:
        self._move("top")

    def _move(self, to: str) -> None:
        job = self.selected_job
        if job is not None and job.status == Status.QUEUED:
            self._call(f"move job {fmt.short_id(job.job_id)}", lambda: self.backend.move(job.job_id, to=to))

    def _unsettled(self, key: str, what: str) -> bool:
        """True (and it says so) when a change moved the selection to another job just now:
        a destructive key then waits to be pressed again."""
        if time.monotonic() - self._selection_moved_at >= SETTLE_SECONDS:
            return False
        job = self.selected_job
        name = f"job {fmt.short_id(job.job_id)}" if job is not None else "another job"
        self.notice(
            f"The selection just moved to {name}. Press {key} again to {what} it.",
            title="Nothing done",
            severity="warning",
            timeout=3,
        )
        return True

    def _key_of(self, action: str) -> str:
        """The key that runs ``action`` (the first, as the keymap has it)."""
        default = next((b.key for b in self.BINDINGS if isinstance(b, Binding) and b.id == action), action)
        return self.settings.keymap.get(action, default).split(",")[0].strip()

    def action_cancel(self) -> None:
        job = self.selected_job
        if job is None or job.status.is_final:
            return
        if self._unsettled(self._key_of("cancel"), "cancel"):
            return
        if job.status == Status.QUEUED:
            self._call(f"cancel job {fmt.short_id(job.job_id)}", lambda: self.backend.cancel(job.job_id))
            return
        self._confirm(
            f"Cancel processing job {fmt.short_id(job.job_id)}?",
            "It is generating now: cancelling abandons the work already started (and paid for). "
            "The job ends cancelled and can be retried.",
            "Cancel job",
            lambda: self._call(f"cancel job {fmt.short_id(job.job_id)}", lambda: self.backend.cancel(job.job_id)),
        )

    def action_retry(self) -> None:
        job = self.selected_job
        if job is None or job.status not in (Status.FAILED, Status.CANCELLED):
            return
        if self._unsettled(self._key_of("retry"), "retry"):
            return
        short = fmt.short_id(job.job_id)
        if job.retry_reuses_operation:
            detail = f"It {RETRY_REFETCHES}: the generation already finished at Google."
        else:
            cost = f" (about {format_usd(job.estimated_cost_usd)})" if job.estimated_cost_usd is not None else ""
            simulated = " The simulator only pretends: nothing is paid." if self.info and self.info.is_simulator else ""
            detail = f"It {RETRY_RESUBMITS}{cost}.{simulated}"
        self._confirm(f"Retry job {short}?", detail, "Retry", lambda: self.retry(job))

    @work(group="actions")
    async def retry(self, job: Job) -> None:
        """Queue the job again and say where it went: a long queue hides it otherwise."""
        short = fmt.short_id(job.job_id)
        try:
            queued = await self.backend.retry(job.job_id)
        except Exception as exc:  # noqa: BLE001 - VeotuiError or a dropped connection: a sentence, never a traceback
            self.notice(str(exc), title=f"Could not retry job {short}", severity="error")
            return
        where = self._where(queued)
        if queued.retry_reuses_operation and where.startswith("queue position"):
            where += " (at the front: it fetches, it does not generate)"
        self.notice(f"Job {short}: {where.replace('queue position', 'queued at position')}", title="Retried")

    def action_delete(self) -> None:
        job = self.selected_job
        if job is None:
            return
        if self._unsettled(self._key_of("delete"), "delete"):
            return
        things = ["the job"]
        things += [f"its {len(job.videos)} video{'s' if len(job.videos) != 1 else ''}"] if job.videos else []
        things += ["its input image"] if job.has_image else []
        things += [] if len(things) > 1 else ["its folder"]
        what = ", ".join(things[:-1]) + " and " + things[-1]
        if self.is_local:
            where = "on this machine"
        else:
            host = urlsplit(self.info.location).netloc if self.info else ""
            where = f"on the server at {host}" if host else "on the server"
        cloud = ", and its files in the Cloud Storage bucket" if self.info and self.info.cloud_bucket else ""
        stop = " It is processing: it stops and frees its slot." if job.status.is_active else ""
        self._confirm(
            f"Delete job {fmt.short_id(job.job_id)}?",
            f"“{fmt.one_line(job.prompt)[:60]}” — removes {what} {where}{cloud}. This cannot be undone.{stop}",
            "Delete",
            lambda: self._call(f"delete job {fmt.short_id(job.job_id)}", lambda: self.backend.delete(job.job_id)),
        )

    def action_save(self) -> None:
        job = self.selected_job
        if job is None or job.status != Status.COMPLETED:
            return
        after = self.info.auto_delete_after_download if self.info else None
        if after is None or self.save_choice is not None:
            self.save(job, keep=self.save_choice == ALWAYS_KEEP)
            return

        def answered(answer: str | None) -> None:
            if answer is None:
                return
            if answer != KEEP:
                self.save_choice = answer  # OK or ALWAYS_KEEP: not asked again this session
            self.save(job, keep=answer in (KEEP, ALWAYS_KEEP))

        self.app.push_screen(SaveQuestion(after, fmt.short_id(job.job_id)), answered)

    @work(group="files")
    async def save(self, job: Job, *, keep: bool = False) -> None:
        target = self.settings.downloads_dir
        short = fmt.short_id(job.job_id)
        try:
            target.mkdir(parents=True, exist_ok=True)
            paths = await self.backend.download_all(job.job_id, target, keep=keep)
        except Exception as exc:  # noqa: BLE001 - VeotuiError, OSError, or a dropped connection
            self.notice(str(exc), title=f"Could not save job {short}", severity="error")
            return
        names = ", ".join(path.name for path in paths)
        message = f"Saved to {_home(target)}: {names}"
        after = self.info.auto_delete_after_download if self.info else None
        if keep:
            message += f"\nJob {short} stays (not deleted after this save)."
        elif after is not None:
            try:
                notice = fmt.auto_delete_notice(await self.backend.get(job.job_id), after, utcnow())
            except VeotuiError:
                notice = f"job {short} was deleted after download"
            if notice:
                message += f"\n{notice[0].upper()}{notice[1:]}."
        self.notice(message, title=f"Saved {len(paths)} video{'s' if len(paths) != 1 else ''}", timeout=NOTICE_SECONDS)

    def action_open(self) -> None:
        job = self.selected_job
        if job is not None and job.status == Status.COMPLETED:
            self.open_video(job)

    @work(group="files")
    async def open_video(self, job: Job) -> None:
        if not job.videos:
            self.app.notify("This job has no videos.", severity="warning")
            return
        path = self.backend.local_video_path(job, job.videos[0].index)
        try:
            if path is None:
                target = self.settings.downloads_dir
                target.mkdir(parents=True, exist_ok=True)
                # Looking at a video is not a download: it must not start the auto-delete.
                path = await self.backend.view_video(job.job_id, job.videos[0].index, target)
            command = player_command(path)
            if isinstance(command, str):
                self.app.notify(command, title="Cannot open a player", severity="warning", timeout=15)
                return
            self.notice(f"{path.name}\nin {_home(path.parent)}", title="Opening in the system's player")
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
            self.app.push_screen(DetailsScreen(self.backend, job.job_id))

    def action_group(self) -> None:
        job = self.selected_job
        if job is None:
            return
        if job.request.group is None:
            self.app.notify("This job belongs to no group. submit --vary or --group makes one.", severity="warning")
            return
        self.app.push_screen(GroupScreen(self.backend, job.request.group, job.job_id))

    def action_metrics(self) -> None:
        self.app.push_screen(MetricsScreen(self.backend, self.clock))

    def action_filter(self) -> None:
        self.filter_bar.open()

    def action_clear_filter(self) -> None:
        self.filter_bar.clear_and_close()
        self.active_table.focus()

    @on(FilterBar.Set)
    def _filter_set(self, event: FilterBar.Set) -> None:
        text = event.text.strip()
        if text == self.board.filter_text:
            return
        self.board.filter_text = text
        self.follower.reload(offset=0)
        self.update_header()

    @on(FilterBar.Done)
    def _filter_done(self) -> None:
        self.active_table.focus()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.key_rows()))

    def key_rows(self) -> list[tuple[str, str, str]]:
        """Every key of the main screen as the keymap has it: (keys, what it does, id)."""
        rows = []
        for binding in (*JobTable.BINDINGS, *self.BINDINGS):
            if not isinstance(binding, Binding):
                continue
            keys = self.settings.keymap.get(binding.id or "", binding.key)
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


def _home(path: Path) -> str:
    """A path as an operator types it: ``~/Downloads`` rather than ``/home/ana/Downloads``."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _first_sentence(text: str, limit: int = 100) -> str:
    """What a toast says of an error: its first sentence, at most ``limit`` characters (the
    details screen has all of it)."""
    end = text.find(". ")
    sentence = text[: end + 1] if end >= 0 else text
    return sentence if len(sentence) <= limit else sentence[: limit - 1] + "…"


def _extendable(job: Job) -> bool:
    """A completed job's videos can be continued; a queued or processing job's too (the
    extension waits for it to complete)."""
    return (job.status == Status.COMPLETED and bool(job.videos)) or not job.status.is_final

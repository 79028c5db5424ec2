"""A group (a sweep) as a grid: one tile per job, with a frame of its first video drawn
through the details screen's picture path, captioned with the values in which the jobs
differ and, until a job completes, its status. It stays live: the main screen hands it each
change of a job of the group."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from veotui.backend.base import Backend
from veotui.core import display as fmt
from veotui.core.errors import JobNotFound
from veotui.core.job import Job, Status
from veotui.core.sweep import varying_values
from veotui.core.text import printable
from veotui.tui.details import DetailsScreen
from veotui.tui.pictures import mode_of, picture_cache, picture_class

TILE_WIDTH = 28


class Tile(Vertical, can_focus=True):
    """One job of the group: its caption, its picture (or a word on why there is none yet)
    and, while it is not done, its status."""

    DEFAULT_CSS = """
    Tile {
        width: 28;
        height: 11;
        border: round $panel-lighten-2;
        padding: 0 1;
    }
    Tile:focus {
        border: round $accent;
    }
    Tile .tile-caption, Tile .tile-status {
        height: 1;
        width: 100%;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    Tile .tile-status {
        color: $text-muted;
    }
    Tile .tile-picture {
        width: 24;
        height: 7;
    }
    """

    def __init__(self, job: Job, caption: str) -> None:
        super().__init__(id=f"tile-{job.job_id}")
        self.job = job
        self.caption = caption
        self.picture_shown = False

    def compose(self) -> ComposeResult:
        yield Static(Text(printable(self.caption) or fmt.short_id(self.job.job_id)), classes="tile-caption")
        yield Static(Text(_waiting_word(self.job), style="dim"), classes="tile-picture")
        yield Static(_status_line(self.job), classes="tile-status")

    def update_job(self, job: Job, caption: str | None = None) -> None:
        self.job = job
        if caption is not None and caption != self.caption:
            self.caption = caption
            self.query_one(".tile-caption", Static).update(Text(printable(caption) or fmt.short_id(job.job_id)))
        self.query_one(".tile-status", Static).update(_status_line(job))
        if not self.picture_shown:
            placeholder = self.query_one(".tile-picture")
            if isinstance(placeholder, Static):
                placeholder.update(Text(_waiting_word(job), style="dim"))

    async def show_picture(self, path: Path) -> None:
        widget_class = picture_class(mode_of(self.app))
        if widget_class is None:
            return
        await self.query_one(".tile-picture").remove()
        await self.mount(widget_class(str(path), classes="tile-picture"), before=self.query_one(".tile-status"))
        self.picture_shown = True


class GroupScreen(Screen[None]):
    """The jobs of one group side by side; arrows move between tiles, enter opens details."""

    DEFAULT_CSS = """
    GroupScreen #group-title {
        padding: 0 1;
        height: 1;
    }
    GroupScreen #tiles {
        layout: grid;
        grid-size: 3;
        grid-gutter: 0 1;
        grid-rows: 11;
        height: auto;
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Back", id="group_close"),
        Binding("enter", "details", "Details", id="group_details"),
        Binding("left", "step(-1, 0)", "Left", show=False, id="group_left"),
        Binding("right", "step(1, 0)", "Right", show=False, id="group_right"),
        Binding("up", "step(0, -1)", "Up", show=False, id="group_up"),
        Binding("down", "step(0, 1)", "Down", show=False, id="group_down"),
    ]

    def __init__(self, backend: Backend, group: str, job_id: str | None = None) -> None:
        super().__init__()
        self.backend = backend
        self.group = group
        self._focus_id = job_id
        self.tiles: dict[str, Tile] = {}

    def compose(self) -> ComposeResult:
        yield Static(Text(printable(f"Group {self.group}"), style="bold"), id="group-title")
        yield VerticalScroll(id="tiles")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def on_resize(self) -> None:
        self.query_one("#tiles").styles.grid_size_columns = self.columns

    @property
    def columns(self) -> int:
        return max(1, (self.size.width - 2) // (TILE_WIDTH + 1))

    @work(exclusive=True, group="group-grid")
    async def reload(self) -> None:
        """Read the group and lay its tiles out again (a job joined or left it)."""
        title = self.query_one("#group-title", Static)
        try:
            jobs = await self.backend.group_jobs(self.group)
        except JobNotFound:
            self._drop(list(self.tiles))
            title.update(Text(printable(f"Group {self.group} has no jobs: they were deleted."), style="yellow"))
            return
        except Exception as exc:  # noqa: BLE001 - VeotuiError or a dropped connection: say it here
            title.update(Text(printable(f"Could not read group {self.group}: {exc}"), style="red"))
            return
        container = self.query_one("#tiles")
        captions = dict(zip((j.job_id for j in jobs), varying_values(j.request for j in jobs), strict=True))
        self._drop([job_id for job_id in self.tiles if job_id not in captions])
        fresh: list[Tile] = []
        for job in jobs:
            known = self.tiles.get(job.job_id)
            if known is None:
                fresh.append(Tile(job, captions[job.job_id]))
                self.tiles[job.job_id] = fresh[-1]
            else:
                known.update_job(job, captions[job.job_id])
        await container.mount_all(fresh)
        self.tiles = {job.job_id: self.tiles[job.job_id] for job in jobs}
        container.styles.grid_size_columns = self.columns
        self._retitle()
        if not isinstance(self.focused, Tile):
            (self.tiles.get(self._focus_id or "") or next(iter(self.tiles.values()))).focus()
        for tile in fresh:
            if tile.job.status == Status.COMPLETED:
                await self._draw(tile)

    def _drop(self, job_ids: list[str]) -> None:
        # Not awaited: a worker that waits on a removal can be cancelled by the next
        # change's reload halfway, and the removal goes on by itself.
        for job_id in job_ids:
            self.tiles.pop(job_id).remove()

    def _retitle(self) -> None:
        done = sum(tile.job.status == Status.COMPLETED for tile in self.tiles.values())
        title = f"Group {self.group} · {len(self.tiles)} jobs, {done} completed"
        self.query_one("#group-title", Static).update(Text(printable(title), style="bold"))

    async def _draw(self, tile: Tile) -> None:
        try:
            rows = await self.backend.job_pictures(tile.job.job_id, picture_cache(self.app))
        except Exception:  # noqa: BLE001 - a damaged video or a lost server leaves the tile without a picture
            return
        frame = next((pictures[0][1] for title, pictures in rows if title.startswith("Video") and pictures), None)
        if frame is not None and tile.is_attached:
            await tile.show_picture(frame)

    def job_changed(self, job: Job | None, job_id: str) -> None:
        """A job changed (None: it was deleted): its tile follows, or the grid is read again
        when the group gained or lost a job."""
        tile = self.tiles.get(job_id)
        if tile is None or job is None or job.request.group != self.group:
            if tile is not None or (job is not None and job.request.group == self.group):
                self.reload()
            return
        tile.update_job(job)
        if job.status == Status.COMPLETED and not tile.picture_shown:
            self.draw_later(tile)
        self._retitle()

    @work(group="group-pictures")
    async def draw_later(self, tile: Tile) -> None:
        await self._draw(tile)

    def action_details(self) -> None:
        if isinstance(self.focused, Tile):
            self.app.push_screen(DetailsScreen(self.backend, self.focused.job.job_id))

    def action_step(self, across: int, down: int) -> None:
        tiles = list(self.tiles.values())
        if not tiles:
            return
        at = tiles.index(self.focused) if isinstance(self.focused, Tile) and self.focused in tiles else 0
        target = at + across + down * self.columns
        if 0 <= target < len(tiles):
            tiles[target].focus()
            tiles[target].scroll_visible()


def _status_line(job: Job) -> Text:
    if job.status == Status.COMPLETED:
        return Text("")
    if job.status == Status.QUEUED:
        return Text(f"queued #{job.queue_position}" if job.queue_position else "queued")
    if job.status.is_active:
        return Text(f"{job.status.value} {job.progress}%")
    return Text(job.status.value, style="red" if job.status == Status.FAILED else "yellow")


def _waiting_word(job: Job) -> str:
    if job.status == Status.COMPLETED:
        return "drawing…"
    if job.status.is_final:
        return "no video"
    return "not done yet"

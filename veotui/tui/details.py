"""The details of one job: its pictures, every parameter, the status timeline, the attempts,
the error in full and the files. It reads the job and its timeline from the backend, and
again whenever the app tells it the job changed.

Where the terminal is wide the pictures stand beside the fields; otherwise they come first,
so they show without scrolling. Either way they are sized to the room they have."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, VerticalScroll
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer, Static

from veotui.backend.base import Backend
from veotui.core import display as fmt
from veotui.core.errors import JobNotFound
from veotui.core.job import Job, JobEvent, Status, format_usd
from veotui.core.text import printable
from veotui.tui import cells
from veotui.tui.cells import rich_style
from veotui.tui.pictures import Pictures

#: From this many columns the pictures stand beside the fields.
WIDE_COLUMNS = 120


class DetailsScreen(Screen[None]):
    DEFAULT_CSS = """
    DetailsScreen #details {
        padding: 0 1;
    }
    DetailsScreen #details-title {
        margin-bottom: 1;
    }
    DetailsScreen #details-layout {
        layout: vertical;
        height: auto;
    }
    DetailsScreen #pictures {
        margin-bottom: 1;
    }
    DetailsScreen.-wide #details-layout {
        layout: horizontal;
    }
    DetailsScreen.-wide #details-body {
        width: 1fr;
        min-width: 56;
    }
    DetailsScreen.-wide #pictures {
        width: 1fr;
        margin-bottom: 0;
        margin-left: 2;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "dismiss", "Back", id="details_close"),
        Binding("j", "scroll('down')", "Down", show=False, id="details_down"),
        Binding("k", "scroll('up')", "Up", show=False, id="details_up"),
        Binding("e", "edit", "Edit", show=False, id="details_edit", tooltip="Edit this job and submit it again"),
    ]

    def __init__(self, backend: Backend, job_id: str) -> None:
        super().__init__()
        self.backend = backend
        self.job_id = job_id
        self.job: Job | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details"):
            yield Static(Text(f"Job {self.job_id}", style="bold"), id="details-title")
            with Container(id="details-layout"):
                yield Pictures(self.backend, id="pictures")
                yield Static("Reading the job…", id="details-body")
        yield Footer()

    def on_mount(self) -> None:
        self._lay_out(self.size.width)
        self.reload()

    def on_resize(self, event: Resize) -> None:
        self._lay_out(event.size.width)

    def _lay_out(self, width: int) -> None:
        """Wide: the fields, and the pictures beside them. Narrow: the pictures first."""
        wide = width >= WIDE_COLUMNS
        if wide == self.has_class("-wide"):
            return
        self.set_class(wide, "-wide")
        layout = self.query_one("#details-layout", Container)
        pictures = self.query_one(Pictures)
        if wide:
            layout.move_child(pictures, after=self.query_one("#details-body"))
        else:
            layout.move_child(pictures, before=0)

    def action_edit(self) -> None:
        """Back to the main screen, with the form filled from this job (the main screen's e)."""
        job = self.job
        if job is None:
            return
        self.dismiss()
        main = getattr(self.app, "main_screen", None)
        if main is not None:
            main.edit(job)

    def action_scroll(self, direction: str) -> None:
        scroller = self.query_one("#details", VerticalScroll)
        scroller.scroll_relative(y=1 if direction == "down" else -1, animate=False)

    @work(exclusive=True, group="details")
    async def reload(self) -> None:
        body = self.query_one("#details-body", Static)
        try:
            job = await self.backend.get(self.job_id)
            events = await self.backend.timeline(self.job_id)
            self.job = job
        except JobNotFound:
            body.update(Text("This job no longer exists: it was deleted.", style=rich_style("$text-warning")))
            return
        except Exception as exc:  # noqa: BLE001 - VeotuiError or a dropped connection: say it here
            body.update(Text(printable(f"Could not read the job: {exc}"), style=rich_style("$text-error")))
            return
        keymap = getattr(getattr(self.app, "settings", None), "keymap", {})
        body.update(render_details(job, events, retry_key=keymap.get("retry", "r")))
        await self.query_one(Pictures).show(job)


def render_details(job: Job, events: list[JobEvent], retry_key: str | None = None) -> Group:
    """The job's parameters, timeline, error and files; ``retry_key`` (the main screen's
    retry key) adds how to retry a failed or cancelled job."""
    request = job.request
    params = Table.grid(padding=(0, 2))
    params.add_column(style="bold", no_wrap=True)
    params.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("Status", Text(_status_word(job), style=rich_style(cells.STATUS_STYLE.get(job.status, "")))),
        ("Prompt", Text(printable(request.prompt))),
        ("Negative prompt", Text(printable(request.negative_prompt or "—"))),
        ("Videos", str(request.number_of_videos)),
        ("Model", request.model),
        ("Aspect ratio", request.aspect_ratio),
        ("Duration", f"{request.duration_seconds} s"),
        ("Resolution", request.resolution),
        ("Seed", "—" if request.seed is None else str(request.seed)),
        ("Input image", "yes" if job.has_image else "no"),
        *_mode_rows(job),
        ("User", Text(printable(request.user))),
        ("Created", fmt.full_time(job.created_at)),
        ("Started", fmt.full_time(job.started_at)),
        ("Finished", fmt.full_time(job.finished_at)),
        ("Attempts", str(job.attempts)),
        ("Operation", Text(job.operation or "—")),
        ("Estimated cost", "—" if job.estimated_cost_usd is None else format_usd(job.estimated_cost_usd)),
    ]
    if job.status in (Status.FAILED, Status.CANCELLED):
        style = "$text-success" if job.retry_reuses_operation else "$text-warning"
        rows.append(("Retry (r)", Text(job.retry_effect, style=rich_style(style))))
    if job.status.is_active:
        remaining = "" if job.eta_seconds is None else f", about {fmt.duration(job.eta_seconds)} left"
        rows.insert(1, ("Progress", f"{job.progress}%{remaining}"))
    if job.queue_position is not None:
        rows.insert(1, ("Queue position", str(job.queue_position)))
    for name, value in rows:
        params.add_row(name, value)

    timeline = Table(box=None, padding=(0, 2, 0, 0), show_header=True, header_style="bold")
    timeline.add_column("When", no_wrap=True, style="dim")
    timeline.add_column("Status", no_wrap=True)
    timeline.add_column("Detail")
    for event in fmt.shown_timeline(job, events):
        timeline.add_row(fmt.full_time(event.at), event.status.value, Text(printable(event.detail or "")))

    parts: list[RenderableType] = [params, Text(""), Text("Timeline", style="bold underline"), timeline]
    if job.error:
        parts += [
            Text(""),
            Text("Error", style=rich_style("bold underline $text-error")),
            Text(printable(fmt.with_edit_hint(job.error) or ""), style=rich_style("$text-error")),
        ]
    if retry_key and job.status in (Status.FAILED, Status.CANCELLED):
        parts.append(Text(f"Press {retry_key} in the job list to queue it again.", style="dim"))
    parts += [Text(""), Text("Files", style="bold underline")]
    if job.videos:
        files = Table(box=None, padding=(0, 2, 0, 0), show_header=False)
        files.add_column(no_wrap=True)
        files.add_column(justify="right", no_wrap=True)
        for video in job.videos:
            files.add_row(Text(video.filename), fmt.size(video.size_bytes))
        parts.append(files)
    else:
        parts.append(Text("No videos yet.", style="dim"))
    return Group(*parts)


def _status_word(job: Job) -> str:
    mark = fmt.STATUS_MARK.get(job.status)
    return f"{mark} {job.status.value}" if mark else job.status.value


def _mode_rows(job: Job) -> list[tuple[str, str | Text]]:
    """The Veo 3.1 modes the job uses (none for a plain job)."""
    request = job.request
    rows: list[tuple[str, str | Text]] = []
    if job.has_last_frame:
        rows.append(("Last frame", "yes"))
    if job.reference_count:
        rows.append(("References", f"{job.reference_count} ({request.reference_type or 'asset'})"))
    if request.extends:
        rows.append(("Extends", f"video {request.extends.video} of {request.extends.job_id[:8]}"))
        rows.append(("Result", fmt.extension_result(request)))
    switches = (
        ("Sound", request.generate_audio, "model default (on)"),
        ("People", request.person_generation, "model default"),
        ("Enhance prompt", request.enhance_prompt, "model default"),
    )
    for label, value, default in switches:
        shown = default if value is None else ("on" if value is True else "off" if value is False else value)
        rows.append((label, shown))
    return rows

"""Pictures in the terminal: a job's input images and a strip of frames (first, middle,
last) from each of its videos, drawn with textual-image.

The ``pictures`` setting (``VEOTUI_PICTURES``) picks how: ``auto`` (the default: the Kitty graphics protocol or Sixel
where the terminal answers that it has one, coloured half-blocks elsewhere, tmux included),
``kitty``, ``sixel``, ``halfblocks``, or ``off``. textual-image asks the terminal what it
can do when it is imported, which must happen before the app takes the terminal over:
:func:`prepare` does it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Static

from veotui.backend.base import Backend
from veotui.core.job import Job


def mode_of(app: object) -> str:
    """The ``pictures`` setting of the running app."""
    return str(getattr(getattr(app, "settings", None), "pictures", "auto"))


def prepare(mode: str) -> None:
    """Let textual-image ask the terminal what it supports, while it still can."""
    if mode != "off":
        picture_class(mode)


def picture_class(mode: str) -> Callable[..., Widget] | None:
    """The textual-image widget class for ``mode`` (None: pictures are off)."""
    if mode == "off":
        return None
    import textual_image.widget as images

    return {
        "kitty": images.TGPImage,
        "sixel": images.SixelImage,
        "halfblocks": images.HalfcellImage,
    }.get(mode, images.Image)


def picture_cache(app: object) -> Path:
    """Where pictures fetched from a server are kept on this machine."""
    settings = getattr(app, "settings", None)
    data_dir = getattr(settings, "data_dir", None)
    return Path(data_dir) / "cache" / "pictures" if data_dir is not None else Path.home() / ".cache" / "veotui"


class Pictures(Vertical):
    """The pictures section of the details screen. The backend makes the PNG files (in a
    worker thread, cached in the job folder; remote: on the server, fetched once)."""

    DEFAULT_CSS = """
    Pictures {
        height: auto;
    }
    Pictures .picture-row {
        height: auto;
    }
    Pictures .picture {
        width: auto;
        height: auto;
        margin-right: 1;
    }
    Pictures .picture-image {
        width: 24;
        height: 7;
    }
    Pictures .picture-caption, Pictures .picture-title {
        height: 1;
        color: $text-muted;
    }
    """

    def __init__(self, backend: Backend, **kwargs) -> None:
        super().__init__(**kwargs)
        self.backend = backend
        self._shown: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Pictures", style="bold underline"), classes="picture-title")
        yield Static(Text("…", style="dim"), id="pictures-note")

    async def show(self, job: Job) -> None:
        """Draw the job's pictures (again only when its inputs or videos changed)."""
        key = (job.job_id, job.has_image, job.has_last_frame, job.reference_count, job.videos)
        if key == self._shown:
            return
        self._shown = key
        widget_class = picture_class(mode_of(self.app))
        note = self.query_one("#pictures-note", Static)
        if widget_class is None:
            note.update(Text("Pictures are off (the pictures setting, VEOTUI_PICTURES).", style="dim"))
            return
        try:
            rows = await self.backend.job_pictures(job.job_id, picture_cache(self.app))
        except Exception as exc:  # noqa: BLE001 - a damaged video or a lost server must not break the screen
            self._shown = None
            note.update(Text(f"Could not draw the pictures: {exc}", style="red"))
            return
        await self.query(".picture-row").remove()
        if not rows:
            note.update(Text("No pictures yet: the job has no input images or videos.", style="dim"))
            return
        note.update("")
        for title, pictures in rows:
            row = Horizontal(classes="picture-row")
            await self.mount(row)
            for caption, path in pictures:
                cell = Vertical(classes="picture")
                await row.mount(cell)
                await cell.mount(
                    Static(f"{title} · {caption}", classes="picture-caption"),
                    widget_class(str(path), classes="picture-image"),
                )

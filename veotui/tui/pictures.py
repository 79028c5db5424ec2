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
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import Static

from veotui.backend.base import Backend
from veotui.core.job import Job
from veotui.tui.cells import rich_style


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


#: A picture's width in cells: never smaller (a caption must fit) nor larger than this.
MIN_PICTURE_WIDTH = 14
MAX_PICTURE_WIDTH = 48
#: At most this many rows tall, whatever the aspect ratio.
MAX_PICTURE_HEIGHT = 14
#: A terminal cell is about twice as tall as it is wide.
CELL_ASPECT = 2.0


def picture_size(room: int, count: int, aspect: float) -> tuple[int, int]:
    """Width and height in cells of each of ``count`` pictures side by side in ``room``
    columns (one column between them), for pictures ``aspect`` wide to 1 tall."""
    count = max(1, count)
    width = max(MIN_PICTURE_WIDTH, min(MAX_PICTURE_WIDTH, (room - (count - 1)) // count))
    height = round(width / aspect / CELL_ASPECT)
    if height > MAX_PICTURE_HEIGHT:
        height = MAX_PICTURE_HEIGHT
        width = max(MIN_PICTURE_WIDTH, round(height * aspect * CELL_ASPECT))
    return width, max(3, height)


def aspect_of(job: Job) -> float:
    """The job's frames, wide to tall (``16:9`` is 1.78)."""
    wide, _, tall = job.request.aspect_ratio.partition(":")
    try:
        return int(wide) / int(tall)
    except (ValueError, ZeroDivisionError):
        return 16 / 9


class Pictures(Vertical):
    """The pictures section of the details screen. The backend makes the PNG files (in a
    worker thread, cached in the job folder; remote: on the server, fetched once). Each row
    shares the section's width: the pictures grow and shrink with it."""

    DEFAULT_CSS = """
    Pictures {
        height: auto;
        display: none;  /* until there is a picture to show */
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

    def __init__(self, backend: Backend, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backend = backend
        self._shown: tuple[object, ...] | None = None
        self._aspect = 16 / 9

    def compose(self) -> ComposeResult:
        yield Static(Text("Pictures", style="bold underline"), classes="picture-title")
        yield Static(id="pictures-note")

    def on_resize(self, event: Resize) -> None:
        self._size_pictures(event.size.width)

    def _size_pictures(self, room: int) -> None:
        if room <= 0:
            return  # not laid out yet
        for row in self.query(".picture-row"):
            cells = list(row.query(".picture-image"))
            width, height = picture_size(room, len(cells), self._aspect)
            for cell in cells:
                cell.styles.width, cell.styles.height = width, height
            for caption in row.query(".picture-caption"):
                caption.styles.width = width

    async def show(self, job: Job) -> None:
        """Draw the job's pictures (again only when its inputs or videos changed)."""
        key = (job.job_id, job.has_image, job.has_last_frame, job.reference_count, job.videos)
        if key == self._shown:
            return
        self._shown = key
        self._aspect = aspect_of(job)
        widget_class = picture_class(mode_of(self.app))
        note = self.query_one("#pictures-note", Static)
        note.display = True
        if widget_class is None:
            self.display = False  # the pictures setting (VEOTUI_PICTURES) is off
            return
        try:
            rows = await self.backend.job_pictures(job.job_id, picture_cache(self.app))
        except Exception as exc:  # noqa: BLE001 - a damaged video or a lost server must not break the screen
            self._shown = None
            self.display = True
            note.update(Text(f"Could not draw the pictures: {exc}", style=rich_style("$text-error")))
            return
        await self.query(".picture-row").remove()
        # A job without input images or videos yet has nothing to show: no section at all.
        self.display = bool(rows)
        if not rows:
            return
        note.update("")
        note.display = False
        built = [
            Horizontal(
                *(
                    Vertical(
                        Static(f"{title} · {caption}", classes="picture-caption"),
                        widget_class(str(path), classes="picture-image"),
                        classes="picture",
                    )
                    for caption, path in pictures
                ),
                classes="picture-row",
            )
            for title, pictures in rows
        ]
        # Mounted whole, at once, and only while the details are open: they may have been
        # closed while the pictures were made (mounting then would end the app).
        if not self.is_attached:
            return
        await self.mount_all(built)
        # Sized once laid out: the section had no width while it was hidden.
        self.call_after_refresh(lambda: self._size_pictures(self.size.width))

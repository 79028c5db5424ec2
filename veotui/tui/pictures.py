"""Pictures in the terminal: a job's input images and a strip of frames (first, middle,
last) from each of its videos, drawn with textual-image.

``VEOTUI_PICTURES`` picks how: ``auto`` (the default: the Kitty graphics protocol or Sixel
where the terminal answers that it has one, coloured half-blocks elsewhere, tmux included),
``kitty``, ``sixel``, ``halfblocks``, or ``off``. textual-image asks the terminal what it
can do when it is imported, which must happen before the app takes the terminal over:
:func:`prepare` does it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import anyio
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Static

from veotui.backend.base import Backend
from veotui.files import IMAGE_NAME, LAST_FRAME_NAME, THUMBNAILS_DIR, reference_name
from veotui.frames import input_picture, video_strip
from veotui.model import Job

MODES = ("auto", "kitty", "sixel", "halfblocks", "off")


def mode() -> str:
    value = (os.environ.get("VEOTUI_PICTURES") or "auto").strip().lower()
    return value if value in MODES else "auto"


def prepare() -> None:
    """Let textual-image ask the terminal what it supports, while it still can."""
    if mode() != "off":
        picture_class()


def picture_class() -> Callable[..., Widget] | None:
    """The textual-image widget class for the chosen mode (None: pictures are off)."""
    chosen = mode()
    if chosen == "off":
        return None
    import textual_image.widget as images

    return {
        "auto": images.Image,
        "kitty": images.TGPImage,
        "sixel": images.SixelImage,
        "halfblocks": images.HalfcellImage,
    }[chosen]


def input_images(folder: Path, job: Job) -> list[tuple[str, Path]]:
    """The job's input images with a label each, as they lie in its folder."""
    found = []
    if job.has_image:
        found.append(("input image", folder / IMAGE_NAME))
    if job.has_last_frame:
        found.append(("last frame", folder / LAST_FRAME_NAME))
    for number in range(1, job.reference_count + 1):
        found.append((f"reference {number}", folder / reference_name(number)))
    return [(label, path) for label, path in found if path.is_file()]


def make_pictures(backend: Backend, job: Job) -> list[tuple[str, list[tuple[str, Path]]]]:
    """Rows of (title, [(caption, picture)]): the inputs, then each video's strip. Blocking:
    decodes videos (run it in a worker thread)."""
    folder = backend.local_folder(job)
    if folder is None:
        return []
    cache = folder / THUMBNAILS_DIR
    rows = []
    inputs = [(label, input_picture(path, cache)) for label, path in input_images(folder, job)]
    if inputs:
        rows.append(("Inputs", inputs))
    for video in job.videos:
        path = backend.local_video_path(job, video.index)
        if path is None:
            continue
        strip = video_strip(path, cache)
        rows.append((f"Video {video.index}", list(zip(("first", "middle", "last"), strip, strict=True))))
    return rows


class Pictures(Vertical):
    """The pictures section of the details screen; it fills itself in a worker thread."""

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
        widget_class = picture_class()
        note = self.query_one("#pictures-note", Static)
        if widget_class is None:
            note.update(Text("Pictures are off (VEOTUI_PICTURES=off).", style="dim"))
            return
        try:
            rows = await anyio.to_thread.run_sync(make_pictures, self.backend, job)
        except Exception as exc:  # noqa: BLE001 - a damaged video must not break the screen
            note.update(Text(f"Could not draw the pictures: {exc}", style="red"))
            return
        await self.query(".picture-row").remove()
        if not rows:
            here = self.backend.local_folder(job) is not None
            note.update(
                Text(
                    "No pictures yet: the job has no input images or videos."
                    if here
                    else "Pictures need the job's files on this machine: they show in local mode.",
                    style="dim",
                )
            )
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

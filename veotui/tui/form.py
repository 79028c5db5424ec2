"""The new job form. Each field is checked as it is typed and its problem shown beneath it;
``ctrl+s`` submits only when every field is valid, ``escape`` closes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import anyio
from PIL import Image, UnidentifiedImageError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Select, Static, TextArea

from veotui import format as fmt
from veotui.backend.base import Backend
from veotui.errors import VeotuiError
from veotui.files import MAX_IMAGE_BYTES
from veotui.model import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_DURATION,
    DEFAULT_MODEL,
    DEFAULT_RESOLUTION,
    DURATIONS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_VIDEOS,
    MODELS,
    RESOLUTIONS,
    Job,
)


def check_prompt(text: str) -> str | None:
    length = len(text.strip())
    if not length:
        return "Write what the video should show."
    if length > MAX_PROMPT_CHARS:
        return f"The prompt is {length} characters; the limit is {MAX_PROMPT_CHARS}."
    return None


def check_negative(text: str) -> str | None:
    if len(text.strip()) > MAX_PROMPT_CHARS:
        return f"The negative prompt is longer than {MAX_PROMPT_CHARS} characters."
    return None


def check_seed(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > MAX_SEED:
        return f"The seed is a whole number from 0 to {MAX_SEED}."
    return None


def image_path(text: str) -> Path | None:
    text = text.strip()
    return Path(text).expanduser() if text else None


def check_image(text: str) -> str | None:
    """An image path is optional; given, it must be a readable image of at most 10 MB."""
    path = image_path(text)
    if path is None:
        return None
    if not path.exists():
        return f"No file at {path}."
    if not path.is_file():
        return f"{path} is not a file."
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        return f"{path.name} is {fmt.size(size)}; the limit is {fmt.size(MAX_IMAGE_BYTES)}."
    try:
        with Image.open(path) as image:
            image_format = image.format
    except (UnidentifiedImageError, OSError):
        return f"{path.name} is not an image (PNG, JPEG, WebP, GIF, AVIF…)."
    if image_format is None:  # pragma: no cover - Pillow names every format it opens
        return f"{path.name} is not an image."
    return None


class NewJobScreen(ModalScreen[Job | None]):
    DEFAULT_CSS = """
    NewJobScreen {
        align: center middle;
    }
    NewJobScreen #form {
        width: 100;
        max-width: 100%;
        height: 100%;
        max-height: 40;
        border: thick dodgerblue;
        background: $surface;
        padding: 0 1;
    }
    NewJobScreen #form-title {
        text-style: bold;
        height: 1;
    }
    NewJobScreen #form-fields {
        height: 1fr;
    }
    NewJobScreen #form-fields Label {
        margin-top: 1;
        color: $text-muted;
    }
    NewJobScreen #prompt {
        height: 5;
    }
    NewJobScreen #form .row {
        height: auto;
    }
    NewJobScreen #form .field {
        width: 1fr;
        height: auto;
        margin-right: 1;
    }
    NewJobScreen #form .field.wide {
        width: 2fr;
    }
    NewJobScreen #form .error {
        color: $error;
        height: auto;
    }
    NewJobScreen #form .invalid {
        border: tall $error;
    }
    NewJobScreen #form-error {
        height: auto;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Submit", id="form_submit", priority=True),
        Binding("escape", "close", "Close", id="form_close"),
    ]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static("New job", id="form-title")
            with VerticalScroll(id="form-fields"):
                yield Label("Prompt")
                yield TextArea(id="prompt", soft_wrap=True, show_line_numbers=False)
                yield Static(id="prompt-error", classes="error")
                yield Label("Input image (optional): a path to PNG, JPEG, WebP, GIF, AVIF… ≤ 10 MB")
                yield Input(id="image", placeholder="~/pictures/start-frame.png")
                yield Static(id="image-error", classes="error")
                with Horizontal(classes="row"):
                    with Vertical(classes="field"):
                        yield Label("Videos")
                        yield Select(
                            [(str(n), n) for n in range(1, MAX_VIDEOS + 1)], value=1, allow_blank=False, id="count"
                        )
                    with Vertical(classes="field"):
                        yield Label("Aspect ratio")
                        yield Select(
                            [(r, r) for r in ASPECT_RATIOS], value=DEFAULT_ASPECT_RATIO, allow_blank=False, id="aspect"
                        )
                    with Vertical(classes="field"):
                        yield Label("Duration")
                        yield Select(
                            [(f"{d} s", d) for d in DURATIONS], value=DEFAULT_DURATION, allow_blank=False, id="duration"
                        )
                    with Vertical(classes="field"):
                        yield Label("Resolution")
                        yield Select(
                            [(r, r) for r in RESOLUTIONS], value=DEFAULT_RESOLUTION, allow_blank=False, id="resolution"
                        )
                with Horizontal(classes="row"):
                    with Vertical(classes="field wide"):
                        yield Label("Model")
                        yield Select([(m, m) for m in MODELS], value=DEFAULT_MODEL, allow_blank=False, id="model")
                    with Vertical(classes="field"):
                        yield Label("Seed (optional)")
                        yield Input(id="seed", placeholder="random")
                yield Static(id="seed-error", classes="error")
                yield Label("Negative prompt (optional)")
                yield Input(id="negative", placeholder="what to avoid")
                yield Static(id="negative-error", classes="error")
            yield Static(id="form-error", classes="error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#prompt", TextArea).focus()

    # -- checking as the user types -------------------------------------------------------

    def _show(self, field: str, problem: str | None) -> bool:
        self.query_one(f"#{field}-error", Static).update(problem or "")
        self.query_one(f"#{field}").set_class(problem is not None, "invalid")
        return problem is None

    @on(TextArea.Changed, "#prompt")
    def _prompt_changed(self) -> None:
        self._show("prompt", check_prompt(self.query_one("#prompt", TextArea).text))

    @on(Input.Changed, "#image")
    def _image_changed(self, event: Input.Changed) -> None:
        self._show("image", check_image(event.value))

    @on(Input.Changed, "#seed")
    def _seed_changed(self, event: Input.Changed) -> None:
        self._show("seed", check_seed(event.value))

    @on(Input.Changed, "#negative")
    def _negative_changed(self, event: Input.Changed) -> None:
        self._show("negative", check_negative(event.value))

    def validate(self) -> bool:
        """Check every field; focus the first one that is wrong."""
        checks = [
            ("prompt", check_prompt(self.query_one("#prompt", TextArea).text)),
            ("image", check_image(self.query_one("#image", Input).value)),
            ("seed", check_seed(self.query_one("#seed", Input).value)),
            ("negative", check_negative(self.query_one("#negative", Input).value)),
        ]
        valid = [self._show(field, problem) for field, problem in checks]
        for (field, _), ok in zip(checks, valid):
            if not ok:
                self.query_one(f"#{field}").focus()
                return False
        return True

    def fields(self) -> dict[str, Any]:
        seed = self.query_one("#seed", Input).value.strip()
        return {
            "prompt": self.query_one("#prompt", TextArea).text.strip(),
            "number_of_videos": self.query_one("#count", Select).value,
            "model": self.query_one("#model", Select).value,
            "aspect_ratio": self.query_one("#aspect", Select).value,
            "duration_seconds": self.query_one("#duration", Select).value,
            "resolution": self.query_one("#resolution", Select).value,
            "negative_prompt": self.query_one("#negative", Input).value.strip() or None,
            "seed": int(seed) if seed else None,
        }

    # -- actions --------------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        self.query_one("#form-error", Static).update("")
        if self.validate():
            self.submit(self.fields(), image_path(self.query_one("#image", Input).value))

    @work(exclusive=True, group="submit")
    async def submit(self, fields: dict[str, Any], image: Path | None) -> None:
        try:
            data = await anyio.Path(image).read_bytes() if image is not None else None
            job = await self.backend.submit(fields, image=data, image_name=image.name if image else None)
        except (VeotuiError, OSError) as exc:
            self.query_one("#form-error", Static).update(f"Not submitted: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a sentence in the form, never a traceback
            self.query_one("#form-error", Static).update(f"Not submitted: {type(exc).__name__}: {exc}")
            return
        self.dismiss(job)

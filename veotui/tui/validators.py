"""The new job form's checks, as Textual ``Validator``s over the job model's own rules: a
field is checked by ``JobRequest.from_mapping`` (the rule the engine applies at submit), an
image by ``check_image`` (the rule the engine applies to every input image), the models'
modes by ``check_modes``. The form holds no rule of its own; each message is the rule's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.validation import ValidationResult, Validator

from veotui.core.errors import VeotuiError
from veotui.core.request import JobRequest
from veotui.datadir.files import MAX_IMAGE_BYTES
from veotui.datadir.images import check_image


def sentence(message: str) -> str:
    """A rule's message as the form shows it: ``Seed must be 0 to 4294967295, got -1.``"""
    message = message.strip()
    return (message[:1].upper() + message[1:]).rstrip(".") + "."


class JobField(Validator):
    """One field of a job, checked as the engine checks it (the other fields at their
    defaults). ``fields`` gives the fields it is checked with, when they matter."""

    def __init__(self, field: str, fields: Callable[[], dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.field = field
        self.fields = fields

    def validate(self, value: str) -> ValidationResult:
        given: dict[str, Any] = {"prompt": "x", **(self.fields() if self.fields else {}), self.field: value}
        try:
            JobRequest.from_mapping(given)
        except VeotuiError as exc:
            return self.failure(sentence(exc.message), value)
        return self.success()


def image_path(text: str) -> Path | None:
    text = text.strip()
    return Path(text).expanduser() if text else None


class ImageFile(Validator):
    """An optional path to an input image: given, it must be a file, and an image the engine
    takes. What was read is kept, so the same file is checked once."""

    def __init__(self) -> None:
        super().__init__()
        self._checked: dict[tuple[Path, int, int], str | None] = {}

    def validate(self, value: str) -> ValidationResult:
        problem = self.problem(value)
        return self.success() if problem is None else self.failure(problem, value)

    def problem(self, value: str) -> str | None:
        path = image_path(value)
        if path is None:
            return None
        try:
            stat = path.stat()
        except OSError:
            return f"No file at {path}."
        if not path.is_file():
            return f"{path} is not a file."
        key = (path, stat.st_mtime_ns, stat.st_size)
        if key not in self._checked:
            self._checked[key] = self._read(path, stat.st_size)
        return self._checked[key]

    @staticmethod
    def _read(path: Path, size: int) -> str | None:
        try:
            # Past the limit the size alone answers: such a file is not read.
            data = path.read_bytes() if size <= MAX_IMAGE_BYTES else b""
            check_image(data, path.name, size)
        except OSError as exc:
            return f"Cannot read {path}: {exc.strerror or exc}."
        except VeotuiError as exc:
            return sentence(exc.message)
        return None

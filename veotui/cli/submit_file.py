"""``veotui submit --from FILE``: JSON Lines of jobs, read and checked whole before anything
is sent.

Each line is one job with the fields of ``POST /api/generate``'s JSON body. Inputs are given
as files, relative to the batch file: ``image``, ``last_frame`` and ``reference_images`` (a
list); the ``*_base64`` spellings of the REST body work too. Every line is validated as the
server would (fields, the model's modes, the images decoded) so that an invalid line stops
the batch before its first job is queued. A line may carry ``"idempotency_key"``: sending
the file again then queues none of the lines already queued (within 24 h).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veotui.core.capabilities import MAX_REFERENCES
from veotui.core.errors import InvalidRequest, VeotuiError
from veotui.core.idempotency import check_key
from veotui.core.request import JobRequest, check_modes
from veotui.datadir.files import MAX_IMAGE_BYTES
from veotui.datadir.images import convert_image

#: A batch file larger than this is surely not a list of jobs.
MAX_BATCH_BYTES = 64 * 1024 * 1024

Upload = tuple[bytes, str | None]


@dataclass
class BatchJob:
    line: int
    fields: dict[str, Any]
    image: Upload | None = None
    last_frame: Upload | None = None
    references: list[Upload] = field(default_factory=list)
    idempotency_key: str | None = None


class BatchError(InvalidRequest):
    """A line of the batch file is not a valid job (a bad value, exit status 2); nothing was
    submitted."""


def read_batch(path: Path) -> list[BatchJob]:
    """Every job of the file, or :class:`BatchError` naming the first bad line (a file that
    cannot be read, or holds no job, is a :class:`VeotuiError`)."""
    try:
        if path.stat().st_size > MAX_BATCH_BYTES:
            raise VeotuiError(f"{path} is larger than {MAX_BATCH_BYTES // 1048576} MB; is it a list of jobs?")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise VeotuiError(f"{path} is not UTF-8 text; nothing was submitted") from None
    except OSError as exc:
        raise VeotuiError(f"cannot read {path}: {exc.strerror or exc}") from None
    jobs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            jobs.append(_job(number, line, path.parent))
        except VeotuiError as exc:
            raise BatchError(f"{path.name} line {number}: {exc}; nothing was submitted") from None
    if not jobs:
        raise VeotuiError(f"{path} holds no jobs (one JSON object a line)")
    return jobs


def _job(number: int, line: str, folder: Path) -> BatchJob:
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidRequest('a line must be a JSON object of job fields, like {"prompt": "..."}')
    name = data.pop("image_name", None)
    if name is not None and not isinstance(name, str):
        raise InvalidRequest("image_name must be text")
    key = data.pop("idempotency_key", None)
    if key is not None and not isinstance(key, str):
        raise InvalidRequest("idempotency_key must be text")
    key = check_key(key) if key is not None else None
    image = _input(data, "image", folder, name or "the image")
    last_frame = _input(data, "last_frame", folder, "the last frame")
    references = _references(data, folder)
    request = JobRequest.from_mapping(data)
    request = dataclasses.replace(request, reference_type=(request.reference_type or "asset") if references else None)
    check_modes(
        request, has_image=image is not None, has_last_frame=last_frame is not None, reference_count=len(references)
    )
    return BatchJob(number, data, image, last_frame, references, key)


def _input(data: dict[str, Any], key: str, folder: Path, name: str) -> Upload | None:
    path_value, encoded = data.pop(key, None), data.pop(f"{key}_base64", None)
    if path_value is not None and encoded is not None:
        raise InvalidRequest(f"give {key} or {key}_base64, not both")
    if path_value is not None:
        return _file(key, path_value, folder)
    if encoded is not None:
        return _checked(key, _decoded(f"{key}_base64", encoded), name)
    return None


def _references(data: dict[str, Any], folder: Path) -> list[Upload]:
    paths, encoded = data.pop("reference_images", None), data.pop("reference_images_base64", None)
    if paths is not None and encoded is not None:
        raise InvalidRequest("give reference_images or reference_images_base64, not both")
    items = paths if paths is not None else encoded
    if items is None:
        return []
    key = "reference_images" if paths is not None else "reference_images_base64"
    if not isinstance(items, list):
        raise InvalidRequest(f"{key} must be a list")
    if len(items) > MAX_REFERENCES:
        raise InvalidRequest(f"{key}: at most {MAX_REFERENCES} reference images, got {len(items)}")
    if paths is not None:
        return [_file(f"{key}[{n}]", item, folder) for n, item in enumerate(items)]
    return [
        _checked(f"{key}[{n}]", _decoded(f"{key}[{n}]", item), f"reference image {n + 1}")
        for n, item in enumerate(items)
    ]


def _file(key: str, value: Any, folder: Path) -> Upload:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{key} must be the path of an image file")
    path = (folder / Path(value).expanduser()).resolve()
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise InvalidRequest(f"{key}: {value} is {size / 1048576:.1f} MB; input images may be at most 10 MB")
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"{key}: cannot read {value}: {exc.strerror or exc}") from None
    return _checked(key, data, path.name)


def _decoded(key: str, encoded: Any) -> bytes:
    if not isinstance(encoded, str):
        raise InvalidRequest(f"{key} must be a base64 string")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{key} is not valid base64") from None


def _checked(key: str, data: bytes, name: str) -> Upload:
    """The image must decode here as it will on the server."""
    try:
        convert_image(data, name)
    except VeotuiError as exc:
        raise InvalidRequest(f"{key}: {exc}") from None
    return data, name

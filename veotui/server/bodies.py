"""Reading ``POST /api/generate``: a bounded body, then JSON or multipart job fields.

The body is counted while it streams in and refused the moment it passes the limit (at
once when ``Content-Length`` already says so), so a 1 GB upload costs the server a few
megabytes of reading, never a gigabyte of memory.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message

from veotui.backend.base import Upload
from veotui.core.capabilities import MAX_PROMPT_CHARS, MAX_REFERENCES
from veotui.core.errors import InvalidRequest, TooLarge, clipped
from veotui.datadir.files import MAX_IMAGE_BYTES

#: Room for the job fields (a 4000-character prompt and negative prompt) beside the images.
FIELDS_ALLOWANCE = 64 * 1024
#: The most images one valid job takes: three reference images (or an image and a last frame).
MAX_BODY_IMAGES = MAX_REFERENCES
MAX_MULTIPART_BODY = MAX_BODY_IMAGES * MAX_IMAGE_BYTES + FIELDS_ALLOWANCE
#: base64 carries 3 bytes in 4 characters.
MAX_JSON_BODY = MAX_BODY_IMAGES * ((MAX_IMAGE_BYTES + 2) // 3 * 4) + FIELDS_ALLOWANCE
#: Commas, colons and brackets a JSON job body may hold: its fields, and its two texts made
#: of nothing else (two prompts of 4000 characters).
MAX_JSON_SEPARATORS = 2 * MAX_PROMPT_CHARS + 1000
#: Fields that travel beside the job's own fields.
IMAGE_FIELD = "image"
IMAGE_BASE64_FIELD = "image_base64"
IMAGE_NAME_FIELD = "image_name"
LAST_FRAME_FIELD = "last_frame"
REFERENCE_FIELD = "reference_image"
LAST_FRAME_BASE64_FIELD = "last_frame_base64"
REFERENCES_BASE64_FIELD = "reference_images_base64"
FILE_FIELDS = (IMAGE_FIELD, LAST_FRAME_FIELD, REFERENCE_FIELD)


class MalformedBody(InvalidRequest):
    """The body cannot be read at all (broken JSON, broken multipart)."""

    http_status = 400


class UnsupportedMediaType(InvalidRequest):
    http_status = 415


@dataclass
class Submission:
    fields: dict[str, Any]
    image: bytes | None = None
    image_name: str | None = None
    last_frame: Upload | None = None
    references: list[Upload] = field(default_factory=list)


async def read_submission(request: Request) -> Submission:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        body = await read_bounded(request, MAX_JSON_BODY)
        # Tens of megabytes of base64 take a while to parse: not on the event loop.
        return await anyio.to_thread.run_sync(_from_json, body)
    if media_type == "multipart/form-data":
        body = await read_bounded(request, MAX_MULTIPART_BODY)
        return await _from_form(request, body)
    # A url-encoded form is what any web page can send to any server: not taken.
    raise UnsupportedMediaType(
        f"POST /api/generate takes multipart/form-data or application/json, not {media_type or 'no content type'}"
    )


_IMAGES_LIMIT = f"input images may be at most {MAX_IMAGE_BYTES // 1048576} MB each, {MAX_BODY_IMAGES} in one request"


async def read_bounded(request: Request, limit: int, why: str = _IMAGES_LIMIT) -> bytes:
    """The whole body, or :class:`TooLarge` (naming ``why`` the limit is what it is) as soon
    as it exceeds ``limit`` bytes."""
    size_text = f"{limit / 1048576:.1f} MB" if limit >= 1048576 else f"{limit} bytes"
    too_large = TooLarge(f"the request is larger than {size_text}; {why}")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large
        except ValueError:
            raise MalformedBody(f"Content-Length {clipped(declared)} is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _from_json(body: bytes) -> Submission:
    _check_shape(body)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"the request body is not valid JSON ({exc})") from None
    except RecursionError:
        raise MalformedBody("the request body nests JSON too deeply; job fields are a flat object") from None
    if not isinstance(data, dict):
        raise InvalidRequest('the JSON body must be an object of job fields, like {"prompt": "..."}')
    name = _image_name(data.pop(IMAGE_NAME_FIELD, None))
    image = _decoded(IMAGE_BASE64_FIELD, data.pop(IMAGE_BASE64_FIELD, None))
    last_frame = _decoded(LAST_FRAME_BASE64_FIELD, data.pop(LAST_FRAME_BASE64_FIELD, None))
    encoded_references = data.pop(REFERENCES_BASE64_FIELD, None) or []
    if not isinstance(encoded_references, list):
        raise InvalidRequest(f"{REFERENCES_BASE64_FIELD} must be a list of base64 strings")
    if len(encoded_references) > MAX_REFERENCES:
        raise InvalidRequest(f"{REFERENCES_BASE64_FIELD}: at most {MAX_REFERENCES} reference images")
    references: list[Upload] = []
    for number, encoded in enumerate(encoded_references, 1):
        decoded = _decoded(f"{REFERENCES_BASE64_FIELD}[{number - 1}]", encoded)
        if decoded is not None:
            references.append((decoded, f"reference image {number}"))
    return Submission(
        data,
        image,
        (name or "the image") if image is not None else None,
        (last_frame, "the last frame") if last_frame is not None else None,
        references,
    )


def _check_shape(body: bytes) -> None:
    """Refuse, before parsing, a body with more values than any job has: parsed, a list of
    millions of small numbers takes twenty times its size in memory. The job's fields are a
    flat object; only its texts (which may hold commas) and its images (base64: none) are long."""
    separators = sum(body.count(mark) for mark in (b",", b":", b"[", b"{"))
    if separators > MAX_JSON_SEPARATORS:
        raise InvalidRequest(
            f"the JSON body holds too many values ({separators:,} commas, colons and brackets; "
            f"a job takes at most {MAX_JSON_SEPARATORS:,}): its fields are a flat object"
        )


def _decoded(name: str, encoded: Any) -> bytes | None:
    if encoded is None or encoded == "":
        return None
    if not isinstance(encoded, str):
        raise InvalidRequest(f"{name} must be a base64 string")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{name} is not valid base64") from None
    _check_size(name, data)
    return data


def _check_size(name: str, data: bytes) -> None:
    if len(data) > MAX_IMAGE_BYTES:
        raise TooLarge(f"{name} is {len(data) / 1048576:.1f} MB; input images may be at most 10 MB")


def _image_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 255:
        raise InvalidRequest(f"{IMAGE_NAME_FIELD} must be a file name of at most 255 characters")
    return value


async def _from_form(request: Request, body: bytes) -> Submission:
    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    buffered = Request(request.scope, replay)
    fields: dict[str, Any] = {}
    files: dict[str, list[Upload]] = {name: [] for name in FILE_FIELDS}
    # Starlette answers a broken multipart body with an HTTPException(400) of its own.
    async with buffered.form(max_files=MAX_REFERENCES + 2, max_fields=32, max_part_size=FIELDS_ALLOWANCE) as form:
        for key, value in form.multi_items():
            if key in fields or (key in (IMAGE_FIELD, LAST_FRAME_FIELD) and files[key]):
                raise InvalidRequest(f"the form field {clipped(key)} was given more than once")
            if isinstance(value, UploadFile):
                if key not in FILE_FIELDS:
                    raise InvalidRequest(
                        f"the form field {clipped(key)} is a file; only {', '.join(map(repr, FILE_FIELDS))} may be files"
                    )
                data = await value.read()
                if not data and not value.filename:
                    continue  # a browser form with no file chosen
                _check_size(value.filename or key, data)
                default = {IMAGE_FIELD: "the image", LAST_FRAME_FIELD: "the last frame"}.get(
                    key, f"reference image {len(files[REFERENCE_FIELD]) + 1}"
                )
                files[key].append((data, _image_name(value.filename) or default))
                if len(files[REFERENCE_FIELD]) > MAX_REFERENCES:
                    raise InvalidRequest(f"{REFERENCE_FIELD}: at most {MAX_REFERENCES} reference images")
            elif key in FILE_FIELDS:
                raise InvalidRequest(
                    f"{clipped(key)} must be a file part; to send an image as text use JSON and its _base64 field"
                )
            else:
                fields[key] = value
    image = files[IMAGE_FIELD][0] if files[IMAGE_FIELD] else (None, None)
    last_frame = files[LAST_FRAME_FIELD][0] if files[LAST_FRAME_FIELD] else None
    return Submission(fields, image[0], image[1], last_frame, files[REFERENCE_FIELD])


#: Bodies of the small control requests (pause, move).
MAX_CONTROL_BODY = 4096


async def read_control(request: Request, what: str, *, required: bool) -> dict[str, Any]:
    """A small JSON object body; an empty body is ``{}`` unless ``required``."""
    body = await read_bounded(request, MAX_CONTROL_BODY, f"{what} takes a small JSON object")
    if not body.strip():
        if required:
            raise InvalidRequest(f"{what} needs a JSON object body")
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedBody(f"the request body is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"the body of {what} must be a JSON object")
    return data

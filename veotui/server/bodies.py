"""Reading ``POST /api/generate``: a bounded body, then JSON or multipart job fields.

The body is counted while it streams in and refused the moment it passes the limit (at
once when ``Content-Length`` already says so), so a 1 GB upload costs the server a few
megabytes of reading, never a gigabyte of memory.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message

from veotui.errors import InvalidRequest, TooLarge
from veotui.files import MAX_IMAGE_BYTES

#: Room for the job fields (a 4000-character prompt and negative prompt) beside the image.
FIELDS_ALLOWANCE = 64 * 1024
MAX_MULTIPART_BODY = MAX_IMAGE_BYTES + FIELDS_ALLOWANCE
#: base64 carries 3 bytes in 4 characters.
MAX_JSON_BODY = (MAX_IMAGE_BYTES + 2) // 3 * 4 + FIELDS_ALLOWANCE
#: Fields that travel beside the job's own fields.
IMAGE_FIELD = "image"
IMAGE_BASE64_FIELD = "image_base64"
IMAGE_NAME_FIELD = "image_name"


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


async def read_submission(request: Request) -> Submission:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        return _from_json(await read_bounded(request, MAX_JSON_BODY))
    if media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        # A plain HTML form (or curl -d) without an image arrives url-encoded.
        body = await read_bounded(request, MAX_MULTIPART_BODY)
        return await _from_form(request, body)
    raise UnsupportedMediaType(
        f"POST /api/generate takes multipart/form-data or application/json, not {media_type or 'no content type'}"
    )


async def read_bounded(request: Request, limit: int) -> bytes:
    """The whole body, or :class:`TooLarge` as soon as it exceeds ``limit`` bytes."""
    too_large = TooLarge(
        f"the request is larger than {limit / 1048576:.1f} MB; input images may be at most "
        f"{MAX_IMAGE_BYTES // 1048576} MB"
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large
        except ValueError:
            raise MalformedBody(f"Content-Length {declared!r} is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _from_json(body: bytes) -> Submission:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"the request body is not valid JSON ({exc})") from None
    except RecursionError:
        raise MalformedBody("the request body nests JSON too deeply; job fields are a flat object") from None
    if not isinstance(data, dict):
        raise InvalidRequest('the JSON body must be an object of job fields, like {"prompt": "..."}')
    encoded = data.pop(IMAGE_BASE64_FIELD, None)
    name = _image_name(data.pop(IMAGE_NAME_FIELD, None))
    if encoded is None or encoded == "":
        return Submission(data, None, None)
    if not isinstance(encoded, str):
        raise InvalidRequest(f"{IMAGE_BASE64_FIELD} must be a base64 string")
    try:
        image = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{IMAGE_BASE64_FIELD} is not valid base64") from None
    return Submission(data, image, name or "the image")


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
    image: bytes | None = None
    image_name: str | None = None
    # Starlette answers a broken multipart body with an HTTPException(400) of its own.
    async with buffered.form(max_files=1, max_fields=32, max_part_size=FIELDS_ALLOWANCE) as form:
        for key, value in form.multi_items():
            if key in fields or (key == IMAGE_FIELD and image is not None):
                raise InvalidRequest(f"the form field {key!r} was given more than once")
            if isinstance(value, UploadFile):
                if key != IMAGE_FIELD:
                    raise InvalidRequest(f"the form field {key!r} is a file; only {IMAGE_FIELD!r} may be one")
                data = await value.read()
                if not data and not value.filename:
                    continue  # a browser form with no file chosen
                image, image_name = data, _image_name(value.filename) or "the image"
            elif key == IMAGE_FIELD:
                raise InvalidRequest(
                    f"{IMAGE_FIELD!r} must be a file part; to send the image as text use JSON and {IMAGE_BASE64_FIELD!r}"
                )
            else:
                fields[key] = value
    return Submission(fields, image, image_name)


#: Bodies of the small control requests (pause, move).
MAX_CONTROL_BODY = 4096


async def read_control(request: Request, what: str, *, required: bool) -> dict[str, Any]:
    """A small JSON object body; an empty body is ``{}`` unless ``required``."""
    body = await read_bounded(request, MAX_CONTROL_BODY)
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

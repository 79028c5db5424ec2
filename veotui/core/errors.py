"""Errors that cross the backend interface. Each maps to one HTTP status and one exit code."""

from __future__ import annotations

import reprlib
from enum import StrEnum
from typing import Any

#: The response header that names the error's class, so the remote backend raises the same
#: exception the local one would (two 404s: unknown job, unknown video).
ERROR_HEADER = "x-veotui-error"

#: How much of a refused value an error message quotes.
_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxlist, _QUOTE.maxtuple, _QUOTE.maxdict = 2, 4, 4, 4
_QUOTE.maxstring, _QUOTE.maxlong, _QUOTE.maxother = 80, 40, 80


def clipped(value: Any, limit: int = 100) -> str:
    """``repr(value)`` for an error message, at most about ``limit`` characters, built
    without walking a huge value whole: a message never echoes a body back."""
    text = _QUOTE.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class VeotuiError(Exception):
    """Base of every error veotui explains to a person. ``str()`` is that explanation."""

    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(VeotuiError):
    """Bad input: a field out of range, an unknown model, an unreadable image."""

    http_status = 422


class JobNotFound(VeotuiError):
    http_status = 404

    def __init__(self, job_id: str, message: str | None = None) -> None:
        super().__init__(message or f"job {job_id} not found")
        self.job_id = job_id


class VideoNotFound(VeotuiError):
    http_status = 404


class Conflict(VeotuiError):
    """The action does not apply to the job's status (retry a completed job, ...)."""

    http_status = 409


class TooLarge(VeotuiError):
    http_status = 413


class Unauthorized(VeotuiError):
    http_status = 401


class DownloadFailed(VeotuiError):
    """A download could not be written where it was asked to go (a local problem)."""

    http_status = 500


class StorageUnavailable(VeotuiError):
    """The data directory's disk is full (507) or cannot be written (503): nothing could be
    recorded. The engine keeps running and carries on once the disk accepts writes again."""

    http_status = 507

    def __init__(self, message: str, state: str = "full") -> None:
        super().__init__(message)
        self.state = state
        if state != "full":
            self.http_status = 503


class BucketUnavailable(VeotuiError):
    """The bucket that holds a fleet's job files could not be reached or refused the call."""

    http_status = 503


class BackendUnavailable(VeotuiError):
    """The remote server cannot be reached, or answered something unexpected."""

    http_status = 503


class SettingsError(VeotuiError):
    """A setting has a value veotui cannot use; the message names the setting."""


class DataDirBusy(VeotuiError):
    """Another veotui process owns the data directory."""

    def __init__(self, message: str, pid: int | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.url = url


class DataUnusable(VeotuiError):
    """The data directory or its database cannot be used (a file, read-only, damaged, not
    veotui's). The message names the path, what is wrong and what to do."""


class ErrorKind(StrEnum):
    """Why a job failed, as a short machine word (a job's ``error_kind``). docs/api.md lists them."""

    AUTH = "auth"  # the Google Cloud credentials were refused or could not be refreshed
    BAD_REQUEST = "bad_request"  # Google refused a parameter of the request
    BAD_VIDEO_URI = "bad_video_uri"  # a video address is not gs://bucket/object
    DEADLINE = "deadline"  # the operation did not finish within VEOTUI_VEO_DEADLINE
    DISK_FULL = "disk_full"  # the data directory's disk is full
    FETCH = "fetch"  # the finished generation's videos could not be fetched; a retry fetches them
    GENERATOR = "generator"  # another fault talking to the generator
    INTERNAL = "internal"  # a fault in veotui itself
    MISSING_IMAGE = "missing_image"  # the job's input image is gone from its folder
    MODEL_NOT_FOUND = "model_not_found"  # the model is not available to the project
    NO_VIDEOS = "no_videos"  # the operation finished without a video
    OPERATION_ERROR = "operation_error"  # the operation ended with an error
    OPERATION_LOST = "operation_lost"  # the operation is unknown to the service
    PERMANENT = "permanent"  # a refusal retrying would not change
    PERMISSION_DENIED = "permission_denied"  # the project may not use the model or bucket
    REJECTED = "rejected"  # another refusal from the service
    SAFETY_FILTER = "safety_filter"  # every video was filtered for safety
    STORAGE = "storage"  # Cloud Storage could not be read or written
    STORAGE_NOT_FOUND = "storage_not_found"  # the bucket or object does not exist
    STORAGE_PERMISSION = "storage_permission"  # no permission on the bucket or object
    SUBMIT_UNKNOWN = "submit_unknown"  # sent, but no answer: it may have been accepted and billed
    TRANSIENT = "transient"  # retried faults (rate limits, 5xx, timeouts) that did not clear


class Forbidden(VeotuiError):
    """The caller's role does not allow the action (on that job): nothing was changed."""

    http_status = 403
    kind = "forbidden"

"""Errors that cross the backend interface. Each maps to one HTTP status and one exit code."""

from __future__ import annotations


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

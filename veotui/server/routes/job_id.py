"""The ``{job_id}`` path parameter: documented once, refused early when it is not a UUID."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from veotui.core.errors import JobNotFound
from veotui.core.ids import is_job_id

JobId = Annotated[str, Path(description="a job id (UUID4)")]

#: The job id parameter as FastAPI documents one declared as ``JobId``, for a route that
#: documents its parameters by hand.
JOB_ID_PARAMETER: dict[str, Any] = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "description": "a job id (UUID4)",
    "schema": {"type": "string", "title": "Job Id", "description": "a job id (UUID4)"},
}


def checked(job_id: str) -> str:
    """Refuse anything but a UUID before it reaches the store or a file path."""
    if not is_job_id(job_id):
        raise JobNotFound(job_id, f"{job_id[:60]!r} is not a job id; job ids are UUIDs (use GET /api/resolve/PREFIX)")
    return job_id

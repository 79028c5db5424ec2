"""A job as a row of the ``jobs`` table and back: the one place a column is named."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from veotui.core.job import Job, Status, Video, isoformat, parse_time, utcnow
from veotui.core.prices import estimate_cost
from veotui.core.request import Extends, JobRequest

_TIME_FIELDS = {"created_at", "started_at", "finished_at", "stage_started_at", "downloaded_at"}
#: Job fields that ``transition`` and ``update`` may change; each is a column of the same name.
_UPDATABLE = {
    "started_at",
    "finished_at",
    "stage_started_at",
    "attempts",
    "error",
    "error_kind",
    "operation",
    "submitting",
    "videos",
    "downloaded_at",
    "queue_seq",
    "finished_seq",
    "operation_done",
    "result",
}


def as_job_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Written values as the Job dataclass holds them."""
    unknown = fields.keys() - _UPDATABLE
    if unknown:
        raise ValueError(f"field {sorted(unknown)[0]} cannot be updated")
    converted = dict(fields)
    if "videos" in converted:
        converted["videos"] = tuple(converted["videos"])
    for name in ("submitting", "operation_done"):
        if name in converted:
            converted[name] = bool(converted[name])
    for name in _TIME_FIELDS & converted.keys():
        if isinstance(converted[name], str):
            converted[name] = parse_time(converted[name])
    return converted


#: Each column of the ``jobs`` table and how a job gives its value: the one place a column is named.
_COLUMN_VALUES: dict[str, Callable[[Job], Any]] = {
    "job_id": lambda job: job.job_id,
    "queue_seq": lambda job: job.queue_seq,
    "finished_seq": lambda job: job.finished_seq,
    "status": lambda job: job.status.value,
    "prompt": lambda job: job.request.prompt,
    "number_of_videos": lambda job: job.request.number_of_videos,
    "model": lambda job: job.request.model,
    "aspect_ratio": lambda job: job.request.aspect_ratio,
    "duration_seconds": lambda job: job.request.duration_seconds,
    "resolution": lambda job: job.request.resolution,
    "negative_prompt": lambda job: job.request.negative_prompt,
    "seed": lambda job: job.request.seed,
    "user": lambda job: job.request.user,
    "has_image": lambda job: int(job.has_image),
    "created_at": lambda job: isoformat(job.created_at),
    "started_at": lambda job: isoformat(job.started_at),
    "finished_at": lambda job: isoformat(job.finished_at),
    "stage_started_at": lambda job: isoformat(job.stage_started_at),
    "attempts": lambda job: job.attempts,
    "error": lambda job: job.error,
    "error_kind": lambda job: job.error_kind,
    "operation": lambda job: job.operation,
    "submitting": lambda job: int(job.submitting),
    "videos": lambda job: json.dumps([video.to_dict() for video in job.videos]),
    "downloaded_at": lambda job: isoformat(job.downloaded_at),
    "generate_audio": lambda job: _tristate(job.request.generate_audio),
    "person_generation": lambda job: job.request.person_generation,
    "enhance_prompt": lambda job: _tristate(job.request.enhance_prompt),
    "reference_type": lambda job: job.request.reference_type,
    "extends": lambda job: json.dumps(job.request.extends.to_dict()) if job.request.extends else None,
    "has_last_frame": lambda job: int(job.has_last_frame),
    "reference_count": lambda job: job.reference_count,
    "estimated_cost_usd": lambda job: job.estimated_cost_usd,
    "operation_done": lambda job: int(job.operation_done),
    "result": lambda job: None if job.result is None else json.dumps(job.result),
}


def job_to_row(job: Job) -> dict[str, Any]:
    """The job as its ``jobs`` row, column by column."""
    return {name: value(job) for name, value in _COLUMN_VALUES.items()}


def column_values(job: Job, names: Iterable[str]) -> dict[str, Any]:
    """The job's values of the columns ``names`` only (a change writes only what it changes)."""
    return {name: _COLUMN_VALUES[name](job) for name in names}


def job_from_row(row: sqlite3.Row | Mapping[str, Any]) -> Job:
    """The inverse of :func:`job_to_row`; stored values are trusted (they were validated on the way in)."""
    extends = json.loads(row["extends"]) if row["extends"] else None
    request = JobRequest(
        prompt=row["prompt"],
        number_of_videos=row["number_of_videos"],
        model=row["model"],
        aspect_ratio=row["aspect_ratio"],
        duration_seconds=row["duration_seconds"],
        resolution=row["resolution"],
        negative_prompt=row["negative_prompt"],
        seed=row["seed"],
        user=row["user"],
        generate_audio=_switch(row["generate_audio"]),
        person_generation=row["person_generation"],
        enhance_prompt=_switch(row["enhance_prompt"]),
        reference_type=row["reference_type"],
        extends=Extends.from_dict(extends) if extends else None,
    )
    return Job(
        job_id=row["job_id"],
        status=Status(row["status"]),
        request=request,
        has_image=bool(row["has_image"]),
        has_last_frame=bool(row["has_last_frame"]),
        reference_count=row["reference_count"],
        created_at=parse_time(row["created_at"]) or utcnow(),
        started_at=parse_time(row["started_at"]),
        finished_at=parse_time(row["finished_at"]),
        stage_started_at=parse_time(row["stage_started_at"]),
        attempts=row["attempts"],
        error=row["error"],
        error_kind=row["error_kind"],
        operation=row["operation"],
        submitting=bool(row["submitting"]),
        videos=tuple(Video.from_dict(v) for v in json.loads(row["videos"])),
        downloaded_at=parse_time(row["downloaded_at"]),
        queue_seq=row["queue_seq"],
        # Absent from pending_cleanup entries written before History had its own order.
        finished_seq=row["finished_seq"] if "finished_seq" in row.keys() else None,  # noqa: SIM118 - sqlite3.Row
        estimated_cost_usd=row["estimated_cost_usd"]
        if row["estimated_cost_usd"] is not None
        else estimate_cost(request),
        operation_done=bool(row["operation_done"]),
        result=json.loads(row["result"]) if row["result"] else None,
    )


def _tristate(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _switch(value: int | None) -> bool | None:
    return None if value is None else bool(value)


#: The ``jobs`` table's columns, in the order of :func:`job_to_row`.
COLUMNS: tuple[str, ...] = tuple(_COLUMN_VALUES)
JOB_COLUMNS = ", ".join(COLUMNS)
INSERT_JOB = f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({', '.join(':' + c for c in JOB_COLUMNS.split(', '))})"


def cleanup_job(data: dict[str, Any]) -> Job:
    """A ``pending_cleanup`` entry: the job's row as JSON. Entries written before that
    shape hold the job's API object (videos as a list, not JSON text); read those too."""
    if isinstance(data.get("videos"), str):
        return job_from_row(data)
    return Job.from_dict(data)

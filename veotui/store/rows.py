"""A job as a row of the ``jobs`` table and back: the one place a column is named."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
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


def job_to_row(job: Job) -> dict[str, Any]:
    """The job as its ``jobs`` row, column by column: the one place a column is named."""
    request = job.request
    return {
        "job_id": job.job_id,
        "queue_seq": job.queue_seq,
        "finished_seq": job.finished_seq,
        "status": job.status.value,
        "prompt": request.prompt,
        "number_of_videos": request.number_of_videos,
        "model": request.model,
        "aspect_ratio": request.aspect_ratio,
        "duration_seconds": request.duration_seconds,
        "resolution": request.resolution,
        "negative_prompt": request.negative_prompt,
        "seed": request.seed,
        "user": request.user,
        "has_image": int(job.has_image),
        "created_at": isoformat(job.created_at),
        "started_at": isoformat(job.started_at),
        "finished_at": isoformat(job.finished_at),
        "stage_started_at": isoformat(job.stage_started_at),
        "attempts": job.attempts,
        "error": job.error,
        "error_kind": job.error_kind,
        "operation": job.operation,
        "submitting": int(job.submitting),
        "videos": json.dumps([video.to_dict() for video in job.videos]),
        "downloaded_at": isoformat(job.downloaded_at),
        "generate_audio": _tristate(request.generate_audio),
        "person_generation": request.person_generation,
        "enhance_prompt": _tristate(request.enhance_prompt),
        "reference_type": request.reference_type,
        "extends": json.dumps(request.extends.to_dict()) if request.extends else None,
        "has_last_frame": int(job.has_last_frame),
        "reference_count": job.reference_count,
        "estimated_cost_usd": job.estimated_cost_usd,
        "operation_done": int(job.operation_done),
        "result": None if job.result is None else json.dumps(job.result),
    }


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


JOB_COLUMNS = ", ".join(job_to_row(Job(job_id="", status=Status.QUEUED, request=JobRequest(prompt=""))))
INSERT_JOB = f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({', '.join(':' + c for c in JOB_COLUMNS.split(', '))})"

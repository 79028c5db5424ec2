"""Jobs: submit, read, cancel, retry and delete one; list them all; a job's timeline; the job
an id prefix names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.routing import request_response

from veotui.backend.base import QUEUE_PAGE
from veotui.backend.local import MAX_PAGE_ROWS, LocalBackend
from veotui.core.capabilities import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_DURATION,
    DEFAULT_MODEL,
    DEFAULT_RESOLUTION,
    DURATIONS,
    MAX_PROMPT_CHARS,
    MAX_REFERENCES,
    MAX_SEED,
    MAX_VIDEOS,
    MODELS,
    PERSON_GENERATION,
    REFERENCE_TYPES,
    RESOLUTIONS,
)
from veotui.core.idempotency import KEY_HEADER, REPLAYED_HEADER, check_key
from veotui.core.job import JobLists
from veotui.core.request import MAX_GROUP_CHARS
from veotui.server.bodies import read_submission
from veotui.server.routes.caller import acting
from veotui.server.routes.job_id import JOB_ID_PARAMETER, JobId, checked
from veotui.server.schemas import DeletedOut, JobListsOut, JobOut, ResolvedOut, TimelineOut, answers

MAX_HISTORY_PAGE = 1000
MAX_QUEUE_PAGE = 1000


def add_routes(router: APIRouter, backend: LocalBackend) -> None:
    @router.post(
        "/api/generate",
        status_code=202,
        openapi_extra=GENERATE_BODY,
        summary="Submit a job",
        responses={
            **answers(JobOut, 400, 401, 403, 404, 409, 413, 415, 422, 503, 507, status=202),
            200: {"model": JobOut, "description": "a replay: the job this Idempotency-Key made the first time"},
        },
    )
    async def generate(request: Request) -> JSONResponse:
        key = request.headers.get(KEY_HEADER)
        key = check_key(key) if key is not None else None
        submission = await read_submission(request)
        job, replayed = await acting(backend, request).submit_keyed(
            submission.fields,
            submission.image,
            submission.image_name,
            last_frame=submission.last_frame,
            references=submission.references,
            idempotency_key=key,
        )
        if replayed:
            return JSONResponse(job.to_dict(), status_code=200, headers={REPLAYED_HEADER: "true"})
        return JSONResponse(job.to_dict(), status_code=202)

    # Clients poll this one: a PlainRoute, documented like the others but called without
    # FastAPI's parameter machinery, which costs several times the work of the answer. Its
    # parameter is documented by hand; checked() refuses a non-UUID.
    async def status(request: Request) -> JSONResponse:
        return JSONResponse((await backend.get(checked(request.path_params["job_id"]))).to_dict())

    router.add_api_route(
        "/api/status/{job_id}",
        status,
        methods=["GET"],
        summary="One job",
        responses=answers(JobOut, 401, 404, 422),
        openapi_extra={"parameters": [JOB_ID_PARAMETER]},
        route_class_override=PlainRoute,
    )

    @router.post(
        "/api/cancel/{job_id}",
        summary="Cancel a queued or processing job",
        responses=answers(JobOut, 401, 403, 404, 409, 422),
    )
    async def cancel(job_id: JobId, request: Request) -> JSONResponse:
        return JSONResponse((await acting(backend, request).cancel(checked(job_id))).to_dict())

    @router.post(
        "/api/retry/{job_id}",
        summary="Queue a failed or cancelled job again",
        responses=answers(JobOut, 401, 403, 404, 409, 422),
    )
    async def retry(job_id: JobId, request: Request) -> JSONResponse:
        return JSONResponse((await acting(backend, request).retry(checked(job_id))).to_dict())

    @router.delete(
        "/api/delete/{job_id}",
        summary="Delete a job, its files and its cloud files",
        responses=answers(DeletedOut, 401, 403, 404, 422, 503, 507),
    )
    async def delete(job_id: JobId, request: Request) -> JSONResponse:
        await acting(backend, request).delete(checked(job_id))
        return JSONResponse({"job_id": job_id, "deleted": True})

    @router.get(
        "/api/jobs",
        summary="Processing, queued (FIFO) and history (newest first, paged); with group, that group's jobs",
        responses=answers(JobListsOut, 401, 404, 422),
    )
    async def jobs(
        limit: Annotated[int, Query(ge=0, le=MAX_HISTORY_PAGE, description="history rows")] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_PAGE_ROWS, description="history rows to skip")] = 0,
        q: Annotated[str | None, Query(max_length=200, description="filter text: prompt, id, status or user")] = None,
        queue_limit: Annotated[int, Query(ge=0, le=MAX_QUEUE_PAGE, description="queued rows")] = QUEUE_PAGE,
        queue_offset: Annotated[int, Query(ge=0, le=MAX_PAGE_ROWS, description="queued rows to skip")] = 0,
        group: Annotated[
            str | None, Query(min_length=1, max_length=MAX_GROUP_CHARS, description="only the jobs of this group")
        ] = None,
    ) -> JSONResponse:
        if group is not None:
            members = await backend.group_jobs(group)
            pages = {"queue_limit": queue_limit, "queue_offset": queue_offset}
            found = JobLists.split(members, history_limit=limit, history_offset=offset, **pages)
            return JSONResponse(found.to_dict())
        lists = await backend.list_jobs(
            history_limit=limit,
            history_offset=offset,
            text=q or None,
            queue_limit=queue_limit,
            queue_offset=queue_offset,
        )
        return JSONResponse(lists.to_dict())

    @router.get(
        "/api/jobs/{job_id}/events",
        summary="A job's timeline, oldest first",
        responses=answers(TimelineOut, 401, 404, 422),
    )
    async def timeline(job_id: JobId) -> JSONResponse:
        events = await backend.timeline(checked(job_id))
        return JSONResponse({"job_id": job_id, "events": [event.to_dict() for event in events]})

    @router.get(
        "/api/resolve/{prefix}",
        summary="The one job id that starts with a prefix",
        responses=answers(ResolvedOut, 401, 404, 422),
    )
    async def resolve(prefix: Annotated[str, Path(max_length=36)]) -> JSONResponse:
        return JSONResponse({"job_id": await backend.resolve(prefix)})


class PlainRoute(APIRoute):
    """A route in the OpenAPI document like any other, whose endpoint is called as a plain
    Starlette one: ``endpoint(request) -> Response``, no parameters solved or validated."""

    def __init__(self, path: str, endpoint: Callable[[Request], Awaitable[Response]], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.app = request_response(endpoint)


_JOB_FIELDS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["prompt"],
    "properties": {
        "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS},
        "number_of_videos": {"type": "integer", "minimum": 1, "maximum": MAX_VIDEOS, "default": 1},
        "model": {"type": "string", "enum": list(MODELS), "default": DEFAULT_MODEL},
        "aspect_ratio": {"type": "string", "enum": list(ASPECT_RATIOS), "default": DEFAULT_ASPECT_RATIO},
        "duration_seconds": {"type": "integer", "enum": list(DURATIONS), "default": DEFAULT_DURATION},
        "resolution": {"type": "string", "enum": list(RESOLUTIONS), "default": DEFAULT_RESOLUTION},
        "negative_prompt": {"type": ["string", "null"], "maxLength": MAX_PROMPT_CHARS},
        "seed": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SEED},
        "user": {"type": "string", "description": "ignored with a per-user token: the token names the user"},
        "generate_audio": {"type": ["boolean", "null"], "description": "null: the model's default (sound)"},
        "person_generation": {"type": ["string", "null"], "enum": [*PERSON_GENERATION, None]},
        "enhance_prompt": {"type": ["boolean", "null"], "description": "null: the model's default"},
        "reference_type": {"type": ["string", "null"], "enum": [*REFERENCE_TYPES, None], "default": "asset"},
        "extends_job_id": {
            "type": ["string", "null"],
            "format": "uuid",
            "description": "continue a video of this job; a job not yet finished is waited for (implies after "
            "it); 409 if it failed or was cancelled",
        },
        "extends_video": {"type": "integer", "minimum": 1, "default": 1, "description": "1-based"},
        "group": {
            "type": ["string", "null"],
            "minLength": 1,
            "maxLength": MAX_GROUP_CHARS,
            "description": "tags the job as one of a group (a sweep), listed and acted on together",
        },
        "after": {
            "type": ["string", "null"],
            "format": "uuid",
            "description": "wait for this job: start only once it has completed; cancelled if it fails, is "
            "cancelled or deleted (409 if it already failed or was cancelled)",
        },
    },
}

GENERATE_BODY: dict[str, Any] = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "the same key (per user, within 24 h) with the same request answers the job it made "
            "the first time (200, Idempotent-Replayed: true); with another request, 409",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[ -~]+$"},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    **_JOB_FIELDS_SCHEMA,
                    "properties": {
                        **_JOB_FIELDS_SCHEMA["properties"],
                        "image_base64": {
                            "type": "string",
                            "description": "the input image, base64; at most 10 MB decoded",
                        },
                        "image_name": {"type": "string", "description": "the image's file name, for error messages"},
                        "last_frame_base64": {
                            "type": "string",
                            "description": "the last frame (needs the image), base64; at most 10 MB decoded",
                        },
                        "reference_images_base64": {
                            "type": "array",
                            "items": {"type": "string"},
                            "maxItems": MAX_REFERENCES,
                            "description": "reference images, base64; each at most 10 MB decoded",
                        },
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    **_JOB_FIELDS_SCHEMA,
                    "properties": {
                        **_JOB_FIELDS_SCHEMA["properties"],
                        "image": {
                            "type": "string",
                            "format": "binary",
                            "description": "the input image; at most 10 MB",
                        },
                        "last_frame": {
                            "type": "string",
                            "format": "binary",
                            "description": "the last frame (needs the image); at most 10 MB",
                        },
                        "reference_image": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "maxItems": MAX_REFERENCES,
                            "description": "reference images (repeat the field); each at most 10 MB",
                        },
                    },
                }
            },
        },
    },
}

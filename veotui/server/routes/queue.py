"""The queue: whether it is paused and how long it is, pause and resume it, move a job in it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from veotui.backend.local import LocalBackend
from veotui.core.errors import InvalidRequest, clipped
from veotui.server.bodies import read_control
from veotui.server.routes.caller import acting
from veotui.server.routes.job_id import JobId, checked
from veotui.server.schemas import JobOut, QueueOut, answers


def add_routes(router: APIRouter, backend: LocalBackend) -> None:
    @router.get("/api/queue", summary="Whether the queue is paused, and its length", responses=answers(QueueOut, 401))
    async def queue() -> JSONResponse:
        return JSONResponse((await backend.queue()).to_dict())

    @router.post(
        "/api/queue/pause",
        summary="Start no new job until resumed (processing jobs go on)",
        openapi_extra=PAUSE_BODY,
        responses=answers(QueueOut, 400, 401, 403, 413, 422),
    )
    async def pause(request: Request) -> JSONResponse:
        body = await read_control(request, "POST /api/queue/pause", required=False)
        unknown = sorted(set(body) - {"reason"})
        if unknown:
            raise InvalidRequest(f"unknown field {clipped(unknown[0])}; POST /api/queue/pause takes only reason")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidRequest("reason must be text")
        return JSONResponse((await acting(backend, request).pause(reason)).to_dict())

    @router.post("/api/queue/resume", summary="Start queued jobs again", responses=answers(QueueOut, 401, 403))
    async def resume(request: Request) -> JSONResponse:
        return JSONResponse((await acting(backend, request).resume()).to_dict())

    @router.post(
        "/api/move/{job_id}",
        summary="Move a queued job: to top, bottom, up, down, or a 1-based position",
        openapi_extra=MOVE_BODY,
        responses=answers(JobOut, 400, 401, 403, 404, 409, 413, 422),
    )
    async def move(job_id: JobId, request: Request) -> JSONResponse:
        job_id = checked(job_id)
        body = await read_control(request, "POST /api/move", required=True)
        unknown = sorted(set(body) - {"to", "position"})
        if unknown:
            raise InvalidRequest(f"unknown field {clipped(unknown[0])}; POST /api/move takes to or position")
        to, position = body.get("to"), body.get("position")
        if position is not None and (isinstance(position, bool) or not isinstance(position, int)):
            raise InvalidRequest(f"position must be a whole number of at least 1, got {clipped(position)}")
        if to is not None and not isinstance(to, str):
            raise InvalidRequest(f"to must be top, bottom, up or down, got {clipped(to)}")
        return JSONResponse((await acting(backend, request).move(job_id, to=to, position=position)).to_dict())


PAUSE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "reason": {"type": "string", "maxLength": 200, "description": "shown with the pause"}
                    },
                }
            }
        },
    }
}

MOVE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "exactly one of to and position",
                    "properties": {
                        "to": {"type": "string", "enum": ["top", "bottom", "up", "down"]},
                        "position": {"type": "integer", "minimum": 1, "description": "1-based; past the end: bottom"},
                    },
                }
            }
        },
    }
}

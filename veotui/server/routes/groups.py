"""Groups (a sweep's jobs, tagged with one name): one zip of their videos, and cancel or
delete them together, each for the jobs the caller may act on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, StreamingResponse

from veotui.backend.base import group_zip_name
from veotui.backend.local import LocalBackend
from veotui.core.request import MAX_GROUP_CHARS
from veotui.server.routes.caller import acting
from veotui.server.schemas import GroupActionOut, answers

GroupName = Annotated[str, Path(min_length=1, max_length=MAX_GROUP_CHARS, description="a group's name")]


def add_routes(router: APIRouter, backend: LocalBackend) -> None:
    @router.get(
        "/api/download/group/{group}",
        summary="One zip of the videos of every completed job of a group, as <job id>/<video file>",
        response_class=StreamingResponse,
        status_code=200,
        responses={200: {"content": {"application/zip": {}}}, **answers(None, 401, 404, 409, 422)},
    )
    async def download_group(group: GroupName, request: Request) -> StreamingResponse:
        engine = acting(backend, request)
        jobs, chunks = await engine.group_zip(group)

        async def body() -> AsyncIterator[bytes]:
            # Made in a worker thread a chunk at a time: the zip is never whole in memory.
            while (chunk := await anyio.to_thread.run_sync(next, chunks, None)) is not None:
                if chunk:
                    yield chunk
            for job in jobs:  # only once the last byte was handed on: a full download
                engine.record_download(job.job_id)

        return StreamingResponse(
            body(),
            media_type="application/zip",
            headers={"content-disposition": f'attachment; filename="{group_zip_name(group)}"'},
        )

    @router.post(
        "/api/groups/{group}/cancel",
        summary="Cancel every job of a group the caller may cancel; say which were left, and why",
        responses=answers(GroupActionOut, 401, 404, 422),
    )
    async def cancel_group(group: GroupName, request: Request) -> JSONResponse:
        return JSONResponse((await acting(backend, request).cancel_group(group)).to_dict())

    @router.delete(
        "/api/groups/{group}",
        summary="Delete every job of a group the caller may delete, with its files; say which were left, and why",
        responses=answers(GroupActionOut, 401, 404, 422, 503, 507),
    )
    async def delete_group(group: GroupName, request: Request) -> JSONResponse:
        return JSONResponse((await acting(backend, request).delete_group(group)).to_dict())

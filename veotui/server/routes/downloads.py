"""A job's files for download: the zip of its videos, one video (with HTTP Range), one input
image as stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from veotui.backend.local import LocalBackend
from veotui.server.downloads import CountedFileResponse
from veotui.server.routes.caller import acting
from veotui.server.routes.job_id import JobId, checked
from veotui.server.schemas import answers


def add_routes(router: APIRouter, backend: LocalBackend) -> None:
    @router.get(
        "/api/download/{job_id}",
        summary="The zip of a completed job's videos",
        response_class=CountedFileResponse,
        status_code=200,
        responses={200: {"content": {"application/zip": {}}}, **answers(None, 401, 404, 409, 422)},
    )
    async def download_zip(job_id: JobId, request: Request) -> CountedFileResponse:
        path = await backend.zip_file(checked(job_id))
        engine = acting(backend, request)
        return CountedFileResponse(
            path,
            media_type="application/zip",
            filename=f"veotui_{job_id[:8]}_videos.zip",
            on_complete=lambda: engine.record_download(job_id),
        )

    @router.get(
        "/api/download/{job_id}/video/{index}",
        summary="One video (1-based index); HTTP Range supported",
        response_class=CountedFileResponse,
        status_code=200,
        responses={
            200: {"content": {"video/mp4": {}}},
            206: {"description": "a range of the video"},
            **answers(None, 401, 404, 409, 422),
        },
    )
    async def download_video(
        job_id: JobId, index: Annotated[int, Path(description="1-based")], request: Request
    ) -> CountedFileResponse:
        path = await backend.video_file(checked(job_id), index)
        engine = acting(backend, request)
        return CountedFileResponse(
            path,
            media_type="video/mp4",
            filename=f"veotui_{job_id[:8]}_{path.name}",
            on_complete=lambda: engine.record_download(job_id, index),
        )

    @router.get(
        "/api/jobs/{job_id}/inputs/{name}",
        summary="One input image of a job (uploaded_image.jpg, last_frame.jpg, reference_N.jpg), as stored",
        response_class=CountedFileResponse,
        status_code=200,
        responses={200: {"content": {"image/jpeg": {}}}, **answers(None, 401, 404, 422)},
    )
    async def input_image(job_id: JobId, name: Annotated[str, Path(max_length=40)]) -> CountedFileResponse:
        path = await backend.input_file(checked(job_id), name)
        return CountedFileResponse(
            path, media_type="image/jpeg", filename=f"veotui_{job_id[:8]}_{name}", on_complete=lambda: None
        )

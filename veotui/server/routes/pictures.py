"""A job's pictures: its input images, then the first, middle and last frames of each video."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse, JSONResponse

from veotui.backend.local import LocalBackend
from veotui.server.routes.job_id import JobId, checked
from veotui.server.schemas import PicturesOut, answers


def add_routes(router: APIRouter, backend: LocalBackend) -> None:
    @router.get(
        "/api/jobs/{job_id}/pictures",
        summary="The job's pictures: input images, then first, middle and last frames of each video",
        responses=answers(PicturesOut, 401, 404, 422),
    )
    async def pictures(job_id: JobId) -> JSONResponse:
        rows = await backend.job_pictures(checked(job_id))
        return JSONResponse(
            {
                "job_id": job_id,
                "rows": [
                    {
                        "title": title,
                        "pictures": [
                            {"caption": caption, "name": path.name, "url": f"/api/jobs/{job_id}/pictures/{path.name}"}
                            for caption, path in pictures
                        ],
                    }
                    for title, pictures in rows
                ],
            }
        )

    @router.get(
        "/api/jobs/{job_id}/pictures/{name}",
        summary="One picture of the job (PNG), as listed by /api/jobs/{job_id}/pictures",
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}}, **answers(None, 401, 404, 422)},
    )
    async def picture(job_id: JobId, name: Annotated[str, Path(max_length=200)]) -> FileResponse:
        return FileResponse(backend.picture_path(checked(job_id), name), media_type="image/png")

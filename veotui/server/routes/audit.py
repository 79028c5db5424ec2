"""The audit log, for an admin: who did what to which job, refusals included."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from veotui.backend.base import AUDIT_PAGE, MAX_AUDIT_PAGE
from veotui.backend.local import MAX_PAGE_ROWS, LocalBackend
from veotui.server.routes.caller import acting
from veotui.server.schemas import AuditOut, answers


def add_routes(router: APIRouter, backend: LocalBackend) -> None:
    @router.get(
        "/api/audit",
        summary="The audit log, newest first, paged (admin)",
        responses=answers(AuditOut, 401, 403, 422),
    )
    async def audit(
        request: Request,
        user: Annotated[str | None, Query(max_length=200, description="only this user's entries")] = None,
        job_id: Annotated[str | None, Query(max_length=36, description="only this job's entries")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE, description="entries")] = AUDIT_PAGE,
        offset: Annotated[int, Query(ge=0, le=MAX_PAGE_ROWS, description="entries to skip")] = 0,
    ) -> JSONResponse:
        entries = await acting(backend, request).audit(
            user=user or None, job_id=job_id or None, limit=limit, offset=offset
        )
        return JSONResponse({"entries": [entry.to_dict() for entry in entries], "limit": limit, "offset": offset})

"""The server's own log, filtered as ``veotui logs`` does; for the server's own token only."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from veotui.backend.local import LocalBackend
from veotui.core.access import Action
from veotui.server.logs import LogStreams
from veotui.server.routes.caller import acting
from veotui.server.schemas import answers


def add_routes(router: APIRouter, backend: LocalBackend, log_streams: LogStreams) -> None:
    @router.get(
        "/api/logs",
        summary="The server's log, filtered as `veotui logs` does (the server's own token only)",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/plain": {}}}, **answers(None, 401, 403, 422)},
    )
    async def logs(
        request: Request,
        job: Annotated[
            str | None, Query(max_length=36, description="only records of the job whose id starts with this")
        ] = None,
        since: Annotated[str | None, Query(max_length=40, description="only the last 90s, 15m, 2h, 1d…")] = None,
        follow: Annotated[bool, Query(description="keep sending records as they are written")] = False,
        format: Annotated[Literal["text", "json"], Query(description="text, or one JSON object a line")] = "text",
    ) -> StreamingResponse:
        acting(backend, request).allow(Action.READ_LOG)
        return log_streams.open(job=job, since=since, follow=follow, as_json=format == "json")

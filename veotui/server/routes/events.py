"""Job changes as Server-Sent Events."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from veotui.server.schemas import answers
from veotui.server.streams import EventStreams


def add_routes(router: APIRouter, streams: EventStreams) -> None:
    @router.get(
        "/api/events",
        summary="Job changes as Server-Sent Events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}, **answers(None, 401)},
    )
    async def events() -> StreamingResponse:
        return streams.open()

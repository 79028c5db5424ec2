"""File responses that know whether the whole file reached the client.

A download counts (and starts the auto-delete timer) only when the last byte of a full
``200`` response was handed to the connection: not for a ``HEAD``, not for a ``Range``
request (a video player seeking is not a download), not when the client went away halfway.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from starlette.responses import FileResponse
from starlette.types import Message, Receive, Scope, Send

from veotui.core.errors import VideoNotFound


class CountedFileResponse(FileResponse):
    def __init__(self, path: Path, *, media_type: str, filename: str, on_complete: Callable[[], None]) -> None:
        try:
            stat_result = os.stat(path)
        except FileNotFoundError:
            # Deleted between the lookup and now (an auto-delete, a delete from another client).
            raise VideoNotFound(f"{path.name} is no longer on the server") from None
        super().__init__(path, media_type=media_type, filename=filename, stat_result=stat_result)
        self._on_complete = on_complete

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status: int | None = None
        finished = False

        async def watching_send(message: Message) -> None:
            nonlocal status, finished
            await send(message)
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True

        await super().__call__(scope, receive, watching_send)
        if finished and status == 200 and scope.get("method") == "GET":
            self._on_complete()

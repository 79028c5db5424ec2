"""``GET /api/events``: job changes as Server-Sent Events.

The subscription is registered before the response starts, so a client that has seen the
response headers and then reads ``GET /api/jobs`` (the resync) misses nothing: every change
after that read arrives on the stream. Comments (``: keep-alive``) flow while nothing
happens, so proxies keep the connection open and clients notice a dead server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from veotui.backend.local import LocalBackend
from veotui.events import Subscription
from veotui.model import Change

#: Tells EventSource clients how long to wait before reconnecting (milliseconds).
RETRY_MS = 1000


def encode(change: Change) -> bytes:
    if change.kind == "deleted":
        data = {"job_id": change.job_id}
    elif change.kind == "queue":
        assert change.queue is not None
        data = change.queue.to_dict()
    else:
        assert change.job is not None
        data = change.job.to_dict()
    return f"event: {change.kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class EventStreams:
    """The open streams, so shutting down can end them (a stream never ends by itself)."""

    def __init__(self, backend: LocalBackend, keepalive: float) -> None:
        self.backend = backend
        self.keepalive = keepalive
        self._open: set[Subscription] = set()

    def open(self) -> StreamingResponse:
        """A streaming response, subscribed now: before its headers go out."""
        subscription = self.backend.subscribe()
        self._open.add(subscription)
        return StreamingResponse(
            self._stream(subscription),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            # Also runs when the client leaves before the body starts (the generator's own
            # ``finally`` never does then).
            background=BackgroundTask(self._release, subscription),
        )

    async def _stream(self, subscription: Subscription) -> AsyncIterator[bytes]:
        try:
            yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
            changes = aiter(subscription)
            while True:
                change = None
                with anyio.move_on_after(self.keepalive):
                    try:
                        change = await anext(changes)
                    except StopAsyncIteration:
                        return
                yield encode(change) if change is not None else b": keep-alive\n\n"
        finally:
            self._release(subscription)

    def _release(self, subscription: Subscription) -> None:
        subscription.close()
        self._open.discard(subscription)

    def close_all(self) -> None:
        for subscription in tuple(self._open):
            subscription.close()

    @property
    def count(self) -> int:
        return len(self._open)

"""``GET /api/events``: job changes as Server-Sent Events.

The subscription is registered before the response starts, so a client that has seen the
response headers and then reads ``GET /api/jobs`` (the resync) misses nothing: every change
after that read arrives on the stream. Comments (``: keep-alive``) flow while nothing
happens, so proxies keep the connection open and clients notice a dead server.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator

import anyio
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from veotui.backend.local import LocalBackend
from veotui.core.job import Change
from veotui.engine.bus import Subscription
from veotui.server.memory import Trimmer

#: Tells EventSource clients how long to wait before reconnecting (milliseconds).
RETRY_MS = 1000
HELLO = f"retry: {RETRY_MS}\n: connected\n\n".encode()
KEEPALIVE = b": keep-alive\n\n"
#: Recent changes and their encoding, shared by every stream (subscribers receive the same
#: Change object, so identity finds it); enough for every open stream to catch up.
ENCODED_CACHE = 256
#: Also trim after this many streams ended while others stay open.
TRIM_EVERY = 256


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
        self._released = 0
        self._trim = Trimmer()
        # id(change) -> (change, bytes): each change is serialised once, however many
        # streams carry it. Holding the change keeps its id from being reused meanwhile.
        self._encoded: OrderedDict[int, tuple[Change, bytes]] = OrderedDict()

    def encoded(self, change: Change) -> bytes:
        hit = self._encoded.get(id(change))
        if hit is not None and hit[0] is change:
            return hit[1]
        data = encode(change)
        self._encoded[id(change)] = (change, data)
        if len(self._encoded) > ENCODED_CACHE:
            self._encoded.popitem(last=False)
        return data

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
            yield HELLO
            changes = aiter(subscription)
            while True:
                change = None
                with anyio.move_on_after(self.keepalive):
                    try:
                        change = await anext(changes)
                    except StopAsyncIteration:
                        return
                yield self.encoded(change) if change is not None else KEEPALIVE
        finally:
            self._release(subscription)

    def _release(self, subscription: Subscription) -> None:
        if subscription not in self._open:
            return  # both the stream's end and the response's background task call this
        subscription.close()
        self._open.discard(subscription)
        self._released += 1
        if not self._open:
            self._encoded.clear()
        if not self._open or self._released % TRIM_EVERY == 0:
            self._trim()  # a burst of streams ended: give its free pages back

    def close_all(self) -> None:
        for subscription in tuple(self._open):
            subscription.close()

    @property
    def count(self) -> int:
        return len(self._open)

"""Fan-out of job changes to subscribers (the TUI, the server's event stream).

Each subscriber has a coalescing mailbox keyed by job id: publishing never blocks and never
grows past one entry per job, so a slow subscriber cannot stall the scheduler; it simply
sees the latest state of each job when it catches up.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator

import anyio

from veotui.core.job import Change


class Subscription:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._pending: OrderedDict[str, Change] = OrderedDict()
        self._ready = anyio.Event()
        self._closed = False

    def put(self, change: Change) -> None:
        self._pending.pop(change.job_id, None)
        self._pending[change.job_id] = change
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()
        self._bus._subscribers.discard(self)

    def __aiter__(self) -> AsyncIterator[Change]:
        return self

    async def __anext__(self) -> Change:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            await self._ready.wait()
            self._ready = anyio.Event()
        _, change = self._pending.popitem(last=False)
        return change

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        self._subscribers.add(subscription)
        return subscription

    def publish(self, change: Change) -> None:
        for subscription in tuple(self._subscribers):
            subscription.put(change)

    def close(self) -> None:
        for subscription in tuple(self._subscribers):
            subscription.close()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

"""The webhook sender: posts the deliveries the store's outbox holds, apart from the queue.

Every status change a hook wants is written to the outbox in the transaction of the change
itself, so a change and its delivery are never separated by a crash. This task claims due
deliveries (a claim is a lease: on a fleet's database another server's sender passes over
a claimed row, and takes it over only once the lease ran out), posts each with a bounded
number in flight, and records the answer. A slow or dead receiver holds at most
``concurrency`` sends and never a job: the scheduler does not wait on this task.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import ParamSpec, Protocol, TypeVar

import anyio
import anyio.abc
import httpx

from veotui import __version__
from veotui.core.errors import StorageUnavailable
from veotui.core.job import isoformat, utcnow
from veotui.core.webhooks import (
    ANSWER_CHARS,
    ATTEMPT_TIMEOUT_SECONDS,
    FAILED,
    PING,
    Attempt,
    Delivery,
    Hook,
    after_attempt,
    body,
    new_delivery_id,
    signed_headers,
)
from veotui.logs import event

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

#: Deliveries in flight at once.
CONCURRENCY = 8
#: How long a claim holds: longer than an attempt can take.
CLAIM_SECONDS = 4 * ATTEMPT_TIMEOUT_SECONDS
#: The longest wait between looks at the outbox (another server's rows come due unheard).
IDLE_SECONDS = 1.0
MIN_WAIT_SECONDS = 0.02
#: Ended deliveries and used idempotency keys are forgotten after this long.
KEEP_DELIVERIES = timedelta(days=7)
FORGET_EVERY_SECONDS = 3600.0


class Outbox(Protocol):
    """What the sender needs of the store."""

    def claim_deliveries(self, claimer: str, limit: int, lease_seconds: float) -> list[Delivery]:
        """Up to ``limit`` due pending deliveries, each claimed for ``lease_seconds``."""

    def record_attempt(
        self, delivery: Delivery, claimer: str, attempt: Attempt, state: str, next_at: datetime | None
    ) -> None:
        """Add ``attempt`` to the delivery, set its state and next try, release the claim."""

    def next_delivery_due(self) -> datetime | None: ...

    def release_deliveries(self) -> None:
        """Drop every claim (a store this process alone writes, at start)."""

    def forget_ended(self, before: datetime) -> None:
        """Remove deliveries that ended, and idempotency keys made, before ``before``."""


class WebhookSender:
    def __init__(
        self,
        outbox: Outbox,
        hooks: Iterable[Hook],
        *,
        shared: bool,
        concurrency: int = CONCURRENCY,
        claimer: str | None = None,
    ) -> None:
        self.outbox = outbox
        self.hooks = {hook.url: hook for hook in hooks}
        self.shared = shared
        self.concurrency = concurrency
        self.claimer = claimer or uuid.uuid4().hex[:12]
        self._wake = anyio.Event()
        self._in_flight = 0
        self._forgotten_at = 0.0

    def wake(self) -> None:
        """New deliveries may be due (a job changed here): look at once."""
        self._wake.set()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        if not self.shared:
            # This process alone writes the store: a claim left by a killed process is void.
            self._store_call(self.outbox.release_deliveries)
        async with _http_client(self.concurrency) as client, anyio.create_task_group() as sends:
            task_status.started()
            if not self.hooks:
                return  # no hook: nothing is ever written to the outbox
            while True:
                self._forget_old()
                free = self.concurrency - self._in_flight
                if free <= 0:
                    await self._wait(IDLE_SECONDS)  # a send that ends wakes it
                    continue
                due = self._store_call(self.outbox.claim_deliveries, self.claimer, free, CLAIM_SECONDS) or []
                for delivery in due:
                    self._in_flight += 1
                    sends.start_soon(self._send, client, delivery)
                if len(due) == free:
                    continue  # more may be due
                await self._wait(self._idle_seconds())

    def _idle_seconds(self) -> float:
        due = self._store_call(self.outbox.next_delivery_due)
        if due is None:
            return IDLE_SECONDS
        return max(MIN_WAIT_SECONDS, min(IDLE_SECONDS, (due - utcnow()).total_seconds()))

    async def _wait(self, seconds: float) -> None:
        with anyio.move_on_after(seconds):
            await self._wake.wait()
        self._wake = anyio.Event()

    async def _send(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        try:
            hook = self.hooks.get(delivery.url)
            if hook is None:
                attempt = Attempt(utcnow(), None, "no hook at this address in the config file any more", 0.0)
                self._store_call(self.outbox.record_attempt, delivery, self.claimer, attempt, FAILED, None)
                return
            try:
                attempt = await post(client, hook, delivery.event, delivery.delivery_id, delivery.body.encode())
            except Exception:  # a send must never end the engine: the claim runs out, and it is tried again
                log.exception("sending webhook delivery %s to %s failed", delivery.delivery_id, delivery.url)
                return
            state, next_at = after_attempt(delivery, attempt)
            self._store_call(self.outbox.record_attempt, delivery, self.claimer, attempt, state, next_at)
            event(
                log,
                logging.INFO if attempt.delivered else logging.WARNING,
                "webhook.attempt",
                "%s %s to %s: %s",
                delivery.event,
                delivery.delivery_id,
                delivery.url,
                attempt.status if attempt.status is not None else attempt.answer,
                delivery_id=delivery.delivery_id,
                job_id=delivery.job_id,
                url=delivery.url,
                status=attempt.status,
                state=state,
                attempt=delivery.tries + 1,
            )
        finally:
            self._in_flight -= 1
            self.wake()

    def _forget_old(self) -> None:
        now = time.monotonic()
        if now - self._forgotten_at < FORGET_EVERY_SECONDS:
            return
        self._forgotten_at = now
        self._store_call(self.outbox.forget_ended, utcnow() - KEEP_DELIVERIES)

    @staticmethod
    def _store_call(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """A store call that may find the database away: the outbox waits for it."""
        try:
            return function(*args, **kwargs)
        except StorageUnavailable as exc:
            log.warning("the webhook outbox waits for the store: %s", exc)
            return None


def _http_client(connections: int) -> httpx.AsyncClient:
    # No redirect is followed: a receiver cannot send veotui on to an address of its choosing.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(ATTEMPT_TIMEOUT_SECONDS),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": f"veotui/{__version__} webhooks"},
        limits=httpx.Limits(max_connections=connections),
    )


async def post(client: httpx.AsyncClient, hook: Hook, kind: str, delivery_id: str, payload: bytes) -> Attempt:
    """One signed POST of ``payload`` to ``hook``, within the attempt's time limit."""
    at = utcnow()
    started = time.monotonic()
    headers = signed_headers(hook, kind, delivery_id, payload, at)
    status: int | None = None
    try:
        with anyio.fail_after(ATTEMPT_TIMEOUT_SECONDS):
            async with client.stream("POST", hook.url, content=payload, headers=headers) as response:
                status = response.status_code
                answer = await _start_of(response)
    except TimeoutError:
        status, answer = None, f"no answer within {ATTEMPT_TIMEOUT_SECONDS:g} s"
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        status, answer = None, f"{type(exc).__name__}: {exc}"[:ANSWER_CHARS]
    return Attempt(at=at, status=status, answer=answer, seconds=time.monotonic() - started)


async def _start_of(response: httpx.Response) -> str:
    read = b""
    async for chunk in response.aiter_bytes():
        read += chunk
        if len(read) >= ANSWER_CHARS * 4:
            break
    return read.decode("utf-8", "replace")[:ANSWER_CHARS]


async def ping(hooks: Sequence[Hook]) -> list[tuple[Hook, Attempt]]:
    """A ``ping`` event to every hook at once, sent now and not retried: whether each
    receiver is reachable and accepts veotui's signature."""
    results: list[tuple[Hook, Attempt]] = []
    async with _http_client(max(1, len(hooks))) as client, anyio.create_task_group() as group:

        async def one(hook: Hook) -> None:
            delivery_id = new_delivery_id()
            payload = body(PING, delivery_id, isoformat(utcnow()) or "", None).encode()
            results.append((hook, await post(client, hook, PING, delivery_id, payload)))

        for hook in hooks:
            group.start_soon(one, hook)
    order = {hook.url: n for n, hook in enumerate(hooks)}
    return sorted(results, key=lambda pair: order[pair[0].url])

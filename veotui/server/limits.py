"""How long a connection may take to send its request, and how many connections are kept.

uvicorn closes a keep-alive connection that sits idle between requests
(``timeout_keep_alive``), but it waits forever for a new connection's first request, for
headers sent a byte at a time, and for a body that stops arriving; and its
``limit_concurrency`` answers 503 only once a request has been read, logging a warning for
each. So veotui runs uvicorn's h11 protocol with a small extension that follows h11's own
state of the connection:

- waiting for a request's headers: the connection is closed (after a ``408``) once
  ``header_timeout`` has passed since the connection opened, or since the first byte of a
  later request; bytes that drip in do not extend it;
- receiving a body: closed once no byte has arrived for ``body_timeout``, except while the
  server itself has paused reading (the route has not yet taken what came);
- answering (a route at work, an event stream, a download): no limit.

A connection that opens while ``max_connections`` are open is answered 503 (``Retry-After``)
and closed; the connections already open, event streams included, go on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from dataclasses import dataclass
from typing import ClassVar

import h11
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from veotui.server.security import send_error

log = logging.getLogger(__name__)

#: At most one warning this often (seconds) while new connections are turned away.
FULL_WARNING_INTERVAL = 60.0
#: Files the server opens beside its connections: the database, the log, downloads, pictures.
OTHER_FILES = 256


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000


def allow_open_files(connections: int) -> None:
    """Raise this process's soft limit of open files (up to the hard one) so that
    ``connections`` sockets fit beside the files the server opens."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + OTHER_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's ``http`` protocol class, with these limits."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits, "turned_away": [0, 0.0]})


class GuardedH11Protocol(H11Protocol):
    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    #: Connections answered 503 since the last warning, and when it was logged (per server).
    turned_away: ClassVar[list[float]] = [0, 0.0]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._waiting_for: str | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.limits.max_connections:
            self.app = self._over_capacity
            self._note_turned_away()
        self._wait_for("headers", self.limits.header_timeout)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow(received=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow(received=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    # -- following the connection ---------------------------------------------------------

    def _follow(self, *, received: bool) -> None:
        if self.transport.is_closing():
            self._stop_waiting()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            # The next request has begun to arrive; between requests with nothing sent,
            # uvicorn's keep-alive timeout closes an idle connection.
            if received and self._waiting_for != "headers":
                self._wait_for("headers", self.limits.header_timeout)
        elif state is h11.SEND_BODY:
            if received or self._waiting_for != "body":
                self._wait_for("body", self.limits.body_timeout)
        else:
            self._stop_waiting()

    def _wait_for(self, what: str, seconds: float) -> None:
        self._waiting_for = what
        self._deadline = self.loop.time() + seconds
        if self._timer is not None and self._timer.when() > self._deadline:
            self._timer.cancel()
            self._timer = None
        if self._timer is None:
            self._timer = self.loop.call_at(self._deadline, self._expired)

    def _stop_waiting(self) -> None:
        self._waiting_for = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self._waiting_for is None or self.transport.is_closing():
            return
        now = self.loop.time()
        if self._waiting_for == "body" and not self.transport.is_reading():
            self._deadline = now + self.limits.body_timeout  # the server is the one not reading
        if now < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._expired)
            return
        client = (self.client or ("?",))[0]
        if self._waiting_for == "headers":
            log.debug(
                "closed a connection from %s: no complete request within %s s", client, self.limits.header_timeout
            )
            self._write_timeout_answer()
        else:
            log.debug(
                "closed a connection from %s: its request body stalled for %s s", client, self.limits.body_timeout
            )
        self._waiting_for = None
        self.transport.close()

    def _write_timeout_answer(self) -> None:
        # h11 only answers a request it has read; nothing of one was answered yet, so the
        # connection is still at the start of a response.
        if self.conn.our_state is not h11.IDLE:
            return
        body = json.dumps({"detail": f"no complete request arrived within {self.limits.header_timeout:g} s"})
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n{body}".encode()
        )

    # -- past max_connections -------------------------------------------------------------

    def _note_turned_away(self) -> None:
        count, last = self.turned_away
        now = time.monotonic()
        if now - last >= FULL_WARNING_INTERVAL:
            log.warning(
                "%d open connections, the limit (max_connections): new connections are answered 503 "
                "(%d more since the last warning)",
                self.limits.max_connections,
                count,
            )
            self.turned_away[:] = [0, now]
        else:
            self.turned_away[0] = count + 1

    async def _over_capacity(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = (
            f"the server holds its limit of {self.limits.max_connections} open connections "
            "(max_connections); try again in a moment"
        )
        await send_error(send, 503, detail, [(b"retry-after", b"1"), (b"connection", b"close")])

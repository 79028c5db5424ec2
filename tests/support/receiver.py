"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread of its own,
which records every request and answers as the test says (a status, after a delay)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    #: The status this receiver answered.
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def delivery_id(self) -> str:
        return self.headers["x-veotui-delivery"]


class Receiver:
    """``answer(n)`` gives the status of the n-th request (1-based); ``delay`` seconds pass
    before each answer, and while ``hold`` is given, no answer goes before it is set."""

    def __init__(
        self,
        port: int = 0,
        *,
        answer: Callable[[int], int] = lambda n: 200,
        delay: float = 0.0,
        hold: threading.Event | None = None,
    ) -> None:
        self.answer = answer
        self.delay = delay
        self.hold = hold
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    number = len(receiver.received) + 1
                    status = receiver.answer(number)
                    receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, status))
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.hold is not None:
                    receiver.hold.wait(60)
                answer = b'{"ok": true}' if 200 <= status < 300 else b"receiver says no"
                try:
                    self.send_response(status)
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, name="test-receiver", daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)

    def delivered(self) -> list[Received]:
        """The requests this receiver accepted (answered 2xx)."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]


@contextmanager
def receiving(port: int = 0, **options: Any) -> Iterator[Receiver]:
    receiver = Receiver(port, **options).start()
    try:
        yield receiver
    finally:
        receiver.stop()


def closed_port() -> int:
    """A loopback port nothing listens on (yet): connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

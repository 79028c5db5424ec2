"""A careless or hostile client cannot tie the server up: idle and drip-fed connections are
closed after ``header_timeout``, a stalled body after ``body_timeout``, connections past
``max_connections`` get 503 while open event streams go on, a huge JSON body is refused
without stalling the event loop or echoing itself, and clients that go away leave one quiet
line, not a traceback."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
import time
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from tests.server.harness import ServeProcess, server_env
from tests.server.test_event_storms import drop_after_completed
from tests.support.waiting import wait_for
from veotui.logs import log_path
from veotui.server import running_server


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    return await asyncio.open_connection(parts.hostname, parts.port)


def head(url: str, method: str, path: str, *lines: str) -> bytes:
    text = f"{method} {path} HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n" + "".join(f"{line}\r\n" for line in lines)
    return (text + "\r\n").encode()


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := await reader.read(65536):
        received += chunk
    return received


@pytest.fixture
async def strict(settings):
    """A server with short limits."""
    limited = settings.replace(header_timeout=1.0, body_timeout=1.0, max_connections=20)
    async with running_server(limited, keepalive=0.2) as running:
        yield running


async def test_idle_and_drip_fed_connections_are_closed_after_the_header_timeout(strict):
    idle = [await connect(strict.url) for _ in range(30)]
    drips = [await connect(strict.url) for _ in range(5)]
    started = time.monotonic()
    request = head(strict.url, "GET", "/api/health", "X-Slow: " + "a" * 40)

    async def drip(writer: asyncio.StreamWriter) -> None:
        # A byte every 0.2 s: each arrives well within the timeout, the headers never do.
        for byte in request:
            if writer.is_closing():
                return
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                return
            await asyncio.sleep(0.2)

    async with anyio.create_task_group() as group:
        for _, writer in drips:
            group.start_soon(drip, writer)
        with anyio.fail_after(30):
            answers = [await closed_by_server(reader) for reader, _ in idle + drips]
        group.cancel_scope.cancel()
    # Closed by the server (end of stream), each after about the timeout, with a 408.
    assert time.monotonic() - started < 30
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers), answers[:2]
    assert b"no complete request arrived within 1 s" in answers[0]
    for _, writer in idle + drips:
        writer.close()
    # The server still answers a client that sends its request.
    async with httpx.AsyncClient(base_url=strict.url, trust_env=False) as client:
        assert (await client.get("/api/health")).status_code == 200


async def test_a_stalled_body_is_closed_after_the_body_timeout(strict):
    reader, writer = await connect(strict.url)
    writer.write(head(strict.url, "POST", "/api/generate", "Content-Type: application/json", "Content-Length: 500"))
    writer.write(b'{"prompt": "')
    await writer.drain()
    with anyio.fail_after(20):
        await closed_by_server(reader)
    writer.close()
    assert (await strict.backend.queue()).length == 0


async def test_a_slow_but_steady_body_is_taken(strict):
    """The body timeout is a stall, not a total: a slow uploader gets through."""
    body = json.dumps({"prompt": "slow but steady"}).encode()
    reader, writer = await connect(strict.url)
    writer.write(
        head(strict.url, "POST", "/api/generate", "Content-Type: application/json", f"Content-Length: {len(body)}")
    )
    for start in range(0, len(body), 4):
        writer.write(body[start : start + 4])
        await writer.drain()
        await asyncio.sleep(0.3)  # 2.4 s in all, each piece within the 1 s limit
    answer = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    assert answer.startswith(b"HTTP/1.1 202"), answer


async def test_past_max_connections_new_ones_get_503_and_event_streams_go_on(settings):
    limited = settings.replace(max_connections=12, header_timeout=60.0)
    async with running_server(limited, keepalive=0.2) as running:
        streams = []
        for _ in range(4):
            reader, writer = await connect(running.url)
            writer.write(head(running.url, "GET", "/api/events"))
            await reader.readuntil(b": connected\n\n")
            streams.append((reader, writer))
        idle = [await connect(running.url) for _ in range(8)]  # 12 open: the limit
        answers: list[httpx.Response] = []

        async def turned_away() -> bool:
            # A fresh connection each time; the server may not have taken the last idle
            # ones in yet.
            async with httpx.AsyncClient(base_url=running.url, trust_env=False) as client:
                answers.append(await client.get("/api/health"))
            return answers[-1].status_code == 503

        await wait_for(turned_away, what="a connection past the limit to be turned away")
        assert "max_connections" in answers[-1].json()["detail"]
        assert answers[-1].headers["retry-after"] == "1"
        for _, writer in idle[:2]:
            writer.close()
        async with httpx.AsyncClient(base_url=running.url, trust_env=False) as client:

            async def room() -> bool:
                return (await client.post("/api/generate", json={"prompt": "room again"})).status_code == 202

            await wait_for(room, what="a connection to be free again")
        # The streams opened before the limit was reached carry the job's events.
        for reader, _ in streams:
            with anyio.fail_after(30):
                seen = b""
                while b"room again" not in seen:
                    seen += await reader.read(65536)
        for _, writer in streams + idle[2:]:
            writer.close()


async def test_500_event_streams_are_served(server, http):
    clients = 500
    opened: list[int] = []
    async with anyio.create_task_group() as group:
        for _ in range(clients):
            group.start_soon(drop_after_completed, server.url, opened)
        await wait_for(lambda: len(opened) == clients, what="every stream to open")
        await http.post("/api/generate", json={"prompt": "five hundred"})
    # Every stream carried the job to its end (each client returned only then).


# -- a huge JSON body ------------------------------------------------------------------------


def test_a_10_mb_json_list_is_refused_quickly_and_briefly_without_stalling_health(tmp_path):
    server = ServeProcess(server_env(tmp_path / "data"))
    try:
        body = b'{"prompt": "p", "seed": [' + b"0," * 5_000_000 + b"0]}"
        assert len(body) > 10_000_000
        slowest = 0.0
        answer: list[httpx.Response] = []

        def send() -> None:
            with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as client:
                answer.append(client.post("/api/generate", content=body, headers={"content-type": "application/json"}))

        with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as health:
            health.get("/api/health")
            sender = threading.Thread(target=send)
            sender.start()
            while sender.is_alive():
                started = time.monotonic()
                assert health.get("/api/health").status_code == 200
                slowest = max(slowest, time.monotonic() - started)
            sender.join()
        assert answer[0].status_code == 422, answer[0].text[:200]
        assert len(answer[0].content) < 1000
        assert "too many values" in answer[0].json()["detail"]
        assert slowest < 1.0, f"/api/health waited {slowest:.2f} s"
    finally:
        server.kill()


def test_an_error_never_echoes_more_than_a_clip_of_a_value(tmp_path):
    server = ServeProcess(server_env(tmp_path / "data"))
    try:
        with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as client:
            for body in (
                {"prompt": "p", "seed": "9" * 100_000},
                {"prompt": "p", "model": "m" * 100_000},
                {"prompt": "p", "seed": list(range(2000))},
                {"prompt": "p", "x" * 100_000: 1},
                {"prompt": "p", "extends_job_id": "e" * 100_000},
                {"prompt": "p", "generate_audio": {"k" * 50: "v" * 50_000}},
            ):
                answer = client.post("/api/generate", json=body)
                assert answer.status_code == 422, answer.text[:200]
                assert len(answer.json()["detail"]) < 400, answer.json()["detail"]
            moved = client.post(f"/api/move/{'0' * 8}-0000-4000-8000-{'0' * 12}", json={"to": "t" * 3000})
            assert moved.status_code in (404, 422) and len(moved.text) < 400
    finally:
        server.kill()


# -- clients that go away --------------------------------------------------------------------


def test_aborted_uploads_leave_no_traceback(tmp_path):
    data = tmp_path / "data"
    server = ServeProcess(server_env(data))
    parts = urlsplit(server.url)
    try:
        for number in range(20):
            with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
                if number % 2:
                    sock.sendall(
                        head(
                            server.url,
                            "POST",
                            "/api/generate",
                            "Content-Type: multipart/form-data; boundary=xyz",
                            "Content-Length: 5000000",
                        )
                        + b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
                        + b"\0" * 100_000
                    )
                else:
                    sock.sendall(
                        head(
                            server.url,
                            "POST",
                            "/api/generate",
                            "Content-Type: application/json",
                            "Transfer-Encoding: chunked",
                        )
                        + b"10\r\n"
                        + b'{"prompt": "abc"'
                        + b"\r\n"
                    )
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            assert client.get("/api/health").status_code == 200
        server.signal(signal.SIGTERM)
        assert server.wait(15) == 0
        stderr = server.stderr()
        log = log_path(data).read_text()
        for text in (stderr, log):
            assert "Traceback" not in text
            assert "ERROR" not in text and "Exception in ASGI application" not in text
        assert len(log) < 20_000
    finally:
        server.kill()

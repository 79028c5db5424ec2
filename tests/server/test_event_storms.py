"""Event streams that drop: whatever a stream held (its subscription, its mailbox) goes
with it, and a change is serialised once however many streams carry it. The memory
figure of a storm is in tests/benchmarks/bench_server.py (--storm)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import anyio

from tests.server.test_api_lifecycle import submit, until
from tests.support.waiting import wait_for
from veotui.server import streams as streams_module

CLIENTS = 40


async def drop_after_completed(url: str, opened: list[int]) -> None:
    """A raw client: open the stream, read until a job completed, then drop the socket."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(f"GET /api/events HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        await reader.readuntil(b": connected\n\n")
        opened.append(1)
        seen = b""
        while b'"status":"completed"' not in seen:
            chunk = await reader.read(65536)
            assert chunk, "the server ended the stream"
            seen = seen[-64:] + chunk
    finally:
        writer.transport.abort()


async def test_dropped_streams_leave_no_subscriber_and_each_change_is_serialised_once(server, http, monkeypatch):
    encoded: list[int] = []
    real_encode = streams_module.encode

    def counting_encode(change):
        encoded.append(id(change))
        return real_encode(change)

    monkeypatch.setattr(streams_module, "encode", counting_encode)
    streams = server.app.state.streams
    opened: list[int] = []
    for storm in range(2):
        opened.clear()
        encoded.clear()
        async with anyio.create_task_group() as task_group:
            for _ in range(CLIENTS):
                task_group.start_soon(drop_after_completed, server.url, opened)
            await wait_for(lambda: len(opened) == CLIENTS, what="every stream to open")
            assert streams.count == CLIENTS and server.backend.bus.subscriber_count == CLIENTS
            job_id = (await submit(http, prompt=f"storm {storm}"))["job_id"]
            await until(http, job_id, "completed")
        # Every client dropped: nothing of theirs is left behind.
        await wait_for(lambda: streams.count == 0, what="the dropped streams to be released")
        assert server.backend.bus.subscriber_count == 0
        assert not streams._encoded
        # Each change went out to every client, serialised once.
        assert encoded and len(encoded) == len(set(encoded))

"""The 10 MB image limit holds while the body streams in: a huge upload is refused after a
few megabytes, or at once when its Content-Length says so, and nothing is kept."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import anyio

from tests.server.conftest import data_files

GIGABYTE = 1024**3


def raw_request(url: str, head: bytes) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer


async def test_declared_gigabyte_is_refused_before_any_body(server, settings):
    head = (
        f"POST /api/generate HTTP/1.1\r\nHost: {urlsplit(server.url).netloc}\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=xyz\r\n"
        + f"Content-Length: {GIGABYTE}\r\n\r\n".encode()
    )
    answer = await anyio.to_thread.run_sync(raw_request, server.url, head)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"10 MB" in answer
    assert data_files(settings.data_dir) == {"temp_downloads", "sim", "sim/operations", "sim/calls"}


async def test_streamed_gigabyte_is_cut_off_early(http, settings):
    sent = 0
    chunk = b"\0" * (1024 * 1024)

    async def body():
        nonlocal sent
        boundary_head = b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n\r\n'
        yield boundary_head
        while sent < GIGABYTE:
            sent += len(chunk)
            yield chunk

    try:
        response = await http.post(
            "/api/generate", content=body(), headers={"content-type": "multipart/form-data; boundary=xyz"}
        )
    except Exception as exc:  # the server may close while the client still writes
        status = getattr(getattr(exc, "response", None), "status_code", None)
        assert status in (None, 413)
    else:
        assert response.status_code == 413
        assert "10 MB" in response.json()["detail"]
    # Chunked, so no Content-Length: the server read until the limit, then stopped.
    assert sent < 64 * 1024 * 1024
    lists = (await http.get("/api/jobs")).json()
    assert lists["queued"] == [] and lists["processing"] == []

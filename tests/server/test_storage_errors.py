"""Errors over HTTP: RemoteBackend sees the storage state the engine sees, a refused write comes
back as the same StorageUnavailable (507) the local engine raises, and whatever fails inside
the server is an answer with a sentence that keeps the connection honest."""

from __future__ import annotations

import errno

import httpx
import pytest

from tests.support.refusing import refuse_commits
from tests.support.waiting import wait_for
from veotui.backend.remote import RemoteBackend
from veotui.core.errors import JobNotFound, StorageUnavailable


async def test_remote_backend_reports_a_full_store_and_its_recovery(server):
    connection = refuse_commits(server.backend.store)
    async with RemoteBackend(server.url) as remote:
        job = await remote.submit({"prompt": "before"})
        connection.full = True
        with pytest.raises(StorageUnavailable) as refused:
            await remote.delete(job.job_id)
        assert refused.value.http_status == 507
        assert "is full" in refused.value.message
        state = await remote.storage_status()
        assert state.state == "full" and state.label == "storage full" and state.reason
        with pytest.raises(StorageUnavailable):
            await remote.submit({"prompt": "while full"})

        connection.full = False

        async def writable() -> bool:
            return (await remote.storage_status()).ok

        await wait_for(writable, what="the storage to recover")
        await remote.delete(job.job_id)
        with pytest.raises(JobNotFound):
            await remote.get(job.job_id)


async def test_an_unexpected_error_is_a_500_that_closes_the_connection_and_says_so(server):
    async def broken() -> None:
        raise RuntimeError("a bug")

    server.app.add_api_route("/api/broken-for-test", broken)
    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
        response = await http.get("/api/broken-for-test")
        assert response.status_code == 500
        assert response.headers["connection"] == "close"
        assert "internal error (RuntimeError)" in response.json()["detail"]
        assert (await http.get("/api/health")).status_code == 200


async def test_a_disk_error_reaching_the_server_is_a_507_on_a_connection_that_stays_open(server):
    async def full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/data/.partial-x")

    server.app.add_api_route("/api/full-for-test", full)
    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
        response = await http.get("/api/full-for-test")
        assert response.status_code == 507
        assert response.headers.get("connection") != "close"
        assert "is full" in response.json()["detail"] and ".partial-" not in response.json()["detail"]

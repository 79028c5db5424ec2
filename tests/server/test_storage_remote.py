"""The storage state over HTTP: RemoteBackend sees what the engine sees, and a refused write
comes back as the same StorageUnavailable (507) the local engine raises."""

from __future__ import annotations

import pytest

from tests.support.refusing import refuse_commits
from tests.support.waiting import wait_for
from veotui.backend.remote import RemoteBackend
from veotui.errors import JobNotFound, StorageUnavailable


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

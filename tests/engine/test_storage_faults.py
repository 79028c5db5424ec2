"""The scheduler survives store writes that fail (a full disk): the writes are made to fail
by a connection that refuses every COMMIT, the way SQLite does when the disk is full."""

from __future__ import annotations

import pytest

from tests.support.fakes import ControlledGenerator
from tests.support.refusing import refuse_commits
from tests.support.waiting import wait_for
from veotui.backend.local import LocalBackend
from veotui.core.errors import StorageUnavailable
from veotui.core.job import Status


@pytest.fixture
async def engine(settings):
    generator = ControlledGenerator()
    async with LocalBackend(settings, generator=generator, env={}) as backend:
        connection = refuse_commits(backend.store)
        yield backend, generator, connection


async def status_of(backend, job_id):
    return (await backend.get(job_id)).status


async def test_failed_store_writes_pause_the_engine_and_it_carries_on_by_itself(engine):
    backend, generator, connection = engine
    ids = [(await backend.submit({"prompt": f"job {n}"})).job_id for n in range(3)]
    await wait_for(lambda: len(generator.submitted) == 2, what="two submits")

    connection.full = True
    generator.finish(ids[0])  # its next stage cannot be recorded
    await wait_for(lambda: not backend.storage.ok, what="the storage to be degraded")
    info = await backend.info()
    assert info.storage.state == "full" and "is full" in (info.storage.reason or "")
    with pytest.raises(StorageUnavailable) as refused:
        await backend.submit({"prompt": "while full"})
    assert refused.value.http_status == 507
    await wait_for(lambda: connection.refused >= 3, what="the probes to try again")
    assert not backend._engine_task.done(), "the engine ended"
    assert await status_of(backend, ids[0]) == Status.GENERATING
    assert await status_of(backend, ids[2]) == Status.QUEUED

    connection.full = False
    await wait_for(lambda: backend.storage.ok, what="the storage to recover")

    async def first_done():
        return await status_of(backend, ids[0]) == Status.COMPLETED

    await wait_for(first_done, what="the job in hand to carry on")
    assert generator.submitted.count(ids[0]) == 1, "carrying on must not submit again"
    await wait_for(lambda: len(generator.submitted) == 3, what="dispatch to resume")
    for job_id in ids[1:]:
        generator.finish(job_id)

    async def all_done():
        return [await status_of(backend, i) for i in ids] == [Status.COMPLETED] * 3

    await wait_for(all_done, what="every job to complete")


async def test_a_failure_that_cannot_be_recorded_is_recorded_once_the_disk_accepts_it(engine):
    backend, generator, connection = engine
    job_id = (await backend.submit({"prompt": "doomed"})).job_id
    await wait_for(lambda: len(generator.submitted) == 1, what="the submit")
    connection.full = True
    generator.fail(job_id)
    await wait_for(lambda: not backend.storage.ok, what="the storage to be degraded")
    assert await status_of(backend, job_id) == Status.GENERATING
    connection.full = False

    async def failed():
        return await status_of(backend, job_id) == Status.FAILED

    await wait_for(failed, what="the failure to be recorded")
    job = await backend.get(job_id)
    assert job.error_kind == "operation_error"

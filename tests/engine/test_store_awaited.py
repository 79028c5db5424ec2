"""The store's awaited calls (the engine's, as a job moves) on both databases: they write what
the waiting calls write, refuse what they refuse, and leave nothing half-written."""

from __future__ import annotations

import pytest

from veotui.core.errors import Conflict
from veotui.core.idempotency import KeyClaim, KeyTaken
from veotui.core.ids import new_job_id
from veotui.core.job import Job, Status
from veotui.core.request import JobRequest


def queued(prompt: str = "p") -> Job:
    return Job(job_id=new_job_id(), status=Status.QUEUED, request=JobRequest(prompt=prompt))


async def test_a_job_moved_by_awaited_calls_reads_back_as_the_waiting_calls_wrote_it(open_store):
    store = open_store()
    try:
        first = await store.ainsert(queued("first"))
        second = store.insert(queued("second"))
        assert (first.queue_position, second.queue_position) == (1, 2)
        assert await store.anext_to_start() == store.next_to_start()

        if store.fleet:
            store.join(None)
            started = await store.aclaim_next(2)
            assert started is not None and started.job_id == first.job_id
        else:
            started = await store.atransition(first.job_id, Status.STARTING, expect=(Status.QUEUED,), attempts=1)
        assert started.status is Status.STARTING and started.attempts == 1

        moving = await store.atransition(
            first.job_id, Status.GENERATING, expect=(Status.STARTING,), via=(Status.UPLOADING_IMAGE,), submitting=True
        )
        assert moving.submitting
        recorded = await store.arecord_operation(first.job_id, "operations/op-1", note="operation op-1")
        assert (recorded.operation, recorded.submitting) == ("operations/op-1", False)
        noted = await store.aupdate(first.job_id, note="a note")
        assert noted.operation == "operations/op-1"
        await store.atransition(
            first.job_id, Status.DOWNLOADING, expect=(Status.GENERATING,), via=(Status.PROCESSING,), operation_done=True
        )
        done = await store.atransition(first.job_id, Status.COMPLETED, expect=(Status.DOWNLOADING,))

        # What a fresh store reads from the database, not what this one kept.
        again = open_store()
        read = again.get(first.job_id)
        assert read.status is Status.COMPLETED and read.operation == "operations/op-1"
        assert read.finished_seq == done.finished_seq is not None
        assert [event.status for event in again.timeline(first.job_id)] == [
            Status.QUEUED,
            Status.STARTING,
            Status.UPLOADING_IMAGE,
            Status.GENERATING,
            Status.GENERATING,  # the operation's note
            Status.GENERATING,  # the other note
            Status.PROCESSING,
            Status.DOWNLOADING,
            Status.COMPLETED,
        ]
        assert again.count_by_status() == {"queued": 1, "completed": 1}
        assert again.queue_length() == 1
    finally:
        await store.aclose()


async def test_an_awaited_move_the_job_does_not_allow_writes_nothing(open_store):
    store = open_store()
    try:
        job = await store.ainsert(queued())
        with pytest.raises(Conflict, match="cannot become completed"):
            await store.atransition(job.job_id, Status.COMPLETED)
        with pytest.raises(Conflict, match="it cannot become generating"):
            await store.atransition(job.job_id, Status.GENERATING, expect=(Status.STARTING,))
        assert [event.status for event in open_store().timeline(job.job_id)] == [Status.QUEUED]
    finally:
        await store.aclose()


async def test_an_awaited_submit_under_a_taken_key_writes_nothing(open_store):
    store = open_store()
    try:
        claim = KeyClaim("ana", "key-1", "fingerprint")
        kept = await store.ainsert(queued("kept"), claim=claim)
        with pytest.raises(KeyTaken):
            await store.ainsert(queued("refused"), claim=claim)
        fresh = open_store()
        assert fresh.keyed_job("ana", "key-1") == (kept.job_id, "fingerprint")
        assert [job.prompt for job in fresh.queued()] == ["kept"]
    finally:
        await store.aclose()

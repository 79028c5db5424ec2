"""Awaited writes answer over a network, so a job's writes may resume out of the order they
were sent in: a submit's insert can resume after the job it queued was already claimed and
run. What listeners hear, and what the store keeps, is each job's newest state all the same."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from veotui.core.ids import new_job_id
from veotui.core.job import Change, Job, Status
from veotui.core.request import JobRequest
from veotui.datadir.health import StorageGuard
from veotui.store.connection import Row, Statement
from veotui.store.jobs import JobStore
from veotui.store.sqlite import SqliteConnection


class LateAnswers:
    """The awaited side of a real SQLite connection whose answers to writes arrive only when
    the test lets them through: each write runs (and commits) at once, as on a server, and
    its answer waits at ``gate`` while it is closed."""

    def __init__(self, db: SqliteConnection) -> None:
        self.db = db
        self.gate = asyncio.Event()
        self.gate.set()
        self.held = 0

    async def read(self, statement: Statement) -> list[Row]:
        return self.db.read(statement)

    async def write(self, statements: Sequence[Statement], doing: str, durable: bool = True) -> list[Row] | None:
        rows = self.db.write(statements, doing, durable)
        if not self.gate.is_set():
            self.held += 1
            await self.gate.wait()
        return rows

    def transaction(self, doing: str, durable: bool = True):
        raise AssertionError("no transaction is awaited in this test")

    async def close(self) -> None:
        return None


class Latent(SqliteConnection):
    """A SQLite connection whose awaited side answers late (:class:`LateAnswers`)."""

    late: LateAnswers

    def asynchronous(self) -> LateAnswers:  # type: ignore[override]
        self.late = LateAnswers(self)
        return self.late


async def test_a_submit_that_resumes_after_its_job_ran_is_neither_told_nor_kept(tmp_path):
    guard = StorageGuard(tmp_path)
    connection = Latent(tmp_path / "veotui.db", guard)
    store = JobStore(connection, guard, tmp_path / "veotui.db")
    heard: list[Change] = []
    store.add_listener(heard.append)
    late = connection.late
    job = Job(job_id=new_job_id(), status=Status.QUEUED, request=JobRequest(prompt="p"))

    late.gate.clear()
    submit = asyncio.create_task(store.ainsert(job))
    while not late.held:  # the insert is committed; its answer has not come back
        await asyncio.sleep(0)
    late.gate.set()  # later writes answer at once; the insert's task has not resumed yet
    moved = store.transition(job.job_id, Status.STARTING, expect=(Status.QUEUED,), attempts=1)
    moved = store.transition(moved.job_id, Status.UPLOADING_IMAGE)
    moved = store.transition(moved.job_id, Status.GENERATING)
    assert not submit.done()
    queued = await submit
    assert queued.status is Status.QUEUED  # the submit answers the job as it queued it

    states = [change.job.status for change in heard if change.job is not None and change.job_id == job.job_id]
    assert states == [Status.STARTING, Status.UPLOADING_IMAGE, Status.GENERATING]
    assert store.get(job.job_id).status is Status.GENERATING
    store.close()

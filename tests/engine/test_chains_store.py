"""Jobs that wait for jobs, in the store, on SQLite and on PostgreSQL: a waiting job is never
the next to start, is released in the same transaction as the end of the job it waits for,
and is cancelled, naming that job, when it will never complete."""

from __future__ import annotations

import sqlite3

import pytest

from veotui.core.ids import new_job_id
from veotui.core.job import Change, Job, Status, Video
from veotui.core.request import JobRequest

STAGES = (Status.STARTING, Status.GENERATING, Status.PROCESSING, Status.DOWNLOADING)


@pytest.fixture
def store(open_store):
    return open_store()


def queued(prompt: str = "p", waiting_for: str | None = None, **fields) -> Job:
    request = JobRequest.from_mapping({"prompt": prompt, **({"after": waiting_for} if waiting_for else {}), **fields})
    return Job(job_id=new_job_id(), status=Status.QUEUED, request=request, waiting_for=waiting_for)


def finish(store, job_id: str, status: Status = Status.COMPLETED) -> Job:
    store.transition(job_id, Status.STARTING)
    store.transition(job_id, Status.DOWNLOADING, via=(Status.UPLOADING_IMAGE, Status.GENERATING, Status.PROCESSING))
    fields = {"videos": (Video(1, "generated_video_1.mp4", 10),)} if status == Status.COMPLETED else {}
    return store.transition(job_id, status, **fields)


def test_a_waiting_job_is_passed_over_and_released_when_its_job_completes(store):
    first = store.insert(queued("first"))
    waiting = store.insert(queued("second", waiting_for=first.job_id))
    free = store.insert(queued("third"))
    assert waiting.waiting_for == first.job_id and waiting.request.after == first.job_id
    assert store.next_queued().job_id == first.job_id
    store.transition(first.job_id, Status.STARTING)
    assert store.next_queued().job_id == free.job_id  # not the job that waits
    store.transition(free.job_id, Status.STARTING)
    assert store.next_queued() is None
    assert [j.job_id for j in store.queued()] == [waiting.job_id]  # still in the queue, in its place
    heard: list[Change] = []
    store.add_listener(heard.append)
    store.transition(
        first.job_id, Status.DOWNLOADING, via=(Status.UPLOADING_IMAGE, Status.GENERATING, Status.PROCESSING)
    )
    assert store.next_queued() is None  # released only by the completion
    store.transition(first.job_id, Status.COMPLETED, videos=(Video(1, "generated_video_1.mp4", 10),))
    released = store.get(waiting.job_id)
    assert released.waiting_for is None and released.status == Status.QUEUED
    assert released.request.after == first.job_id  # what was asked stays
    assert store.next_queued().job_id == waiting.job_id
    told = [c.job for c in heard if c.kind == "job" and c.job_id == waiting.job_id]
    last = told[-1] if told else None
    assert last is not None and last.waiting_for is None


@pytest.mark.parametrize("ending", [Status.FAILED, Status.CANCELLED, "deleted"])
def test_a_chain_is_cancelled_down_its_length_when_a_job_will_not_complete(store, open_store, ending):
    head = store.insert(queued("head"))
    middle = store.insert(queued("middle", waiting_for=head.job_id))
    tail = store.insert(queued("tail", waiting_for=middle.job_id))
    other = store.insert(queued("other"))
    if ending == "deleted":
        store.delete(head.job_id)
    elif ending == Status.FAILED:
        finish(store, head.job_id, Status.FAILED)
    else:
        store.transition(head.job_id, Status.CANCELLED)
    for job, waited in ((middle, head), (tail, middle)):
        ended = store.get(job.job_id)
        assert ended.status == Status.CANCELLED and ended.waiting_for is None
        word = (
            "was deleted" if ending == "deleted" and waited is head else ("cancelled" if waited is middle else ending)
        )
        assert ended.error is not None and f"job {waited.job_id}" in ended.error and word in ended.error
    assert store.get(other.job_id).status == Status.QUEUED
    store.close()
    again = open_store()  # written, not only remembered
    assert again.get(tail.job_id).status == Status.CANCELLED


def test_a_job_queued_to_wait_for_a_job_that_ended_meanwhile_is_settled_at_once(store):
    done = store.insert(queued("done"))
    finish(store, done.job_id)
    failed = store.insert(queued("failed"))
    finish(store, failed.job_id, Status.FAILED)
    # Their ends came before these rows existed: nothing released them in that transaction.
    late = store.insert(queued("late", waiting_for=done.job_id))
    doomed = store.insert(queued("doomed", waiting_for=failed.job_id))
    assert late.waiting_for is None and late.status == Status.QUEUED
    assert store.get(doomed.job_id).status == Status.CANCELLED


def test_jobs_left_waiting_by_a_crash_are_settled_at_start(store):
    done = store.insert(queued("done"))
    finish(store, done.job_id)
    failed = store.insert(queued("failed"))
    finish(store, failed.job_id, Status.FAILED)
    gone = new_job_id()
    # As a crash leaves them: rows written before the end of what they wait for was settled.
    stranded = [queued(name, waiting_for=waited) for name, waited in (("a", done.job_id), ("b", failed.job_id))]
    orphan = queued("c").replace(waiting_for=gone)
    still = queued("d").replace(waiting_for=store.insert(queued("running")).job_id)
    store.insert_many([*stranded, orphan, still])
    assert store.settle_stranded() == 3
    assert store.get(stranded[0].job_id).waiting_for is None
    assert store.get(stranded[0].job_id).status == Status.QUEUED
    assert store.get(stranded[1].job_id).status == Status.CANCELLED
    assert gone in (store.get(orphan.job_id).error or "")
    assert store.get(still.job_id).waiting_for is not None
    assert store.settle_stranded() == 0


def test_the_dispatchers_read_never_steps_over_waiting_jobs(tmp_path):
    from veotui.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "veotui.db")
    head = store.insert(queued("head"))
    store.insert_many([queued(f"w{n}", waiting_for=head.job_id) for n in range(500)])
    store.close()
    conn = sqlite3.connect(tmp_path / "veotui.db")
    conn.execute("ANALYZE")
    from veotui.store.jobs import Statements
    from veotui.store.sqlite import SqliteDialect

    sql = Statements(SqliteDialect()).next_ready
    plan = " ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
    assert "USING INDEX jobs_ready" in plan, plan
    # The index holds the jobs that may start, not the 500 that wait.
    (entries,) = conn.execute(
        "SELECT COUNT(*) FROM jobs INDEXED BY jobs_ready WHERE status = 'queued' AND waiting_for IS NULL"
    ).fetchone()
    assert entries == 1
    conn.close()


def test_the_fair_queue_counts_only_jobs_that_may_start_and_never_picks_a_waiting_one(store):
    head = store.insert(queued("head", user="cy"))
    store.transition(head.job_id, Status.STARTING)
    waiting = store.insert(queued("ann waits", waiting_for=head.job_id, user="ann"))
    ready = store.insert(queued("bob may start", user="bob"))
    assert store.loads().get("ann", (0, 0)) == (0, 0)
    for policy in ("fair", "fifo"):
        assert store.next_to_start(policy).job_id == ready.job_id
        assert store.next_to_start(policy, waiting=["bob"]) is None  # ann's only job waits
    store.transition(
        head.job_id, Status.DOWNLOADING, via=(Status.UPLOADING_IMAGE, Status.GENERATING, Status.PROCESSING)
    )
    store.transition(head.job_id, Status.COMPLETED, videos=(Video(1, "generated_video_1.mp4", 10),))
    assert store.loads()["ann"] == (0, 1)  # counted in the completion's own transaction
    assert store.next_to_start("fair", waiting=["bob"]).job_id == waiting.job_id
    store.transition(waiting.job_id, Status.CANCELLED)
    assert store.loads().get("ann", (0, 0)) == (0, 0)

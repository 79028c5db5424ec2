"""What only the PostgreSQL store has to show (the shared behaviour is in the store
conformance suite, tests/engine/test_store.py and test_queue_order.py, run on both)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
import psycopg
import pytest

from tests.support.by_hand import by_hand
from tests.support.postgres import open_shared_store
from veotui.core.errors import Conflict, DataUnusable, SettingsError
from veotui.core.ids import new_job_id
from veotui.core.job import Job, Status
from veotui.core.request import JobRequest
from veotui.settings import load_settings
from veotui.store import open_store
from veotui.store.fleet import LeaseLost
from veotui.store.migrations import MIGRATIONS

if TYPE_CHECKING:
    from veotui.store.postgres import PostgresStore


def queued(prompt: str = "p") -> Job:
    return Job(job_id=new_job_id(), status=Status.QUEUED, request=JobRequest(prompt=prompt))


def claim(store: PostgresStore, slots: int) -> Job:
    """The job ``store`` claims, where the test expects one to be free."""
    job = store.claim_next(slots)
    assert job is not None, "no job was claimed"
    return job


@pytest.fixture
def database(postgres_cluster):
    return postgres_cluster.new_database()


def test_two_processes_on_one_database_see_each_other_and_compare_and_set_holds(database, tmp_path):
    a = open_shared_store(database, tmp_path / "a")
    b = open_shared_store(database, tmp_path / "b")
    try:
        job = a.insert(queued("shared"))
        assert b.get(job.job_id).prompt == "shared" and b.queue_length() == 1
        b.transition(job.job_id, Status.STARTING, expect=(Status.QUEUED,))
        # A keeps no copy of its own: it reads B's write, and its own stale move is refused.
        assert a.get(job.job_id).status == Status.STARTING
        assert a.queue_length() == 0 and a.count_by_status() == {"starting": 1}
        with pytest.raises(Conflict, match="is starting"):
            a.transition(job.job_id, Status.STARTING, expect=(Status.QUEUED,))
        assert [e.status for e in b.timeline(job.job_id)] == [Status.QUEUED, Status.STARTING]
    finally:
        a.close()
        b.close()


def test_the_schema_is_versioned_and_a_newer_one_is_refused(database, tmp_path):
    store = open_shared_store(database, tmp_path)
    assert store.schema_version == len(MIGRATIONS)
    with by_hand(store) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS) + 1,))
    store.close()
    with pytest.raises(DataUnusable, match="written by a newer veotui"):
        open_shared_store(database, tmp_path)


def test_a_lease_is_renewed_taken_over_when_it_runs_out_and_a_lost_lease_writes_nothing(database, tmp_path):
    a = open_shared_store(database, tmp_path / "a")
    b = open_shared_store(database, tmp_path / "b")
    try:
        a.join("http://a", lease_seconds=60)
        b.join("http://b", lease_seconds=60)
        job = a.insert(queued("leased"))
        claimed = claim(a, 3)
        assert claimed.job_id == job.job_id and a.owner_of(job.job_id) == a.server_id
        a.transition(job.job_id, Status.UPLOADING_IMAGE, expect=(Status.STARTING,))
        # A live lease: nobody takes it; the heartbeat renews it and names it.
        assert b.take_over() == []
        assert a.heartbeat() == {job.job_id} and b.heartbeat() == set()
        # A stops beating past its lease: B takes the job over, where it stands.
        with by_hand(b) as conn:
            conn.execute(
                "UPDATE servers SET heartbeat_at = now() - interval '1 hour' WHERE server_id = ?", (a.server_id,)
            )
        (taken,) = b.take_over()
        assert (taken.job_id, taken.status) == (job.job_id, Status.UPLOADING_IMAGE)
        assert b.owner_of(job.job_id) == b.server_id
        assert a.heartbeat() == set() and b.heartbeat() == {job.job_id}
        assert f"from server {a.server_id}, whose lease ran out" in (b.timeline(job.job_id)[-1].detail or "")
        # A comes back: neither a transition nor an update of the job holds for it.
        with pytest.raises(LeaseLost, match=f"is run by server {b.server_id} now"):
            a.transition(job.job_id, Status.GENERATING, expect=(Status.UPLOADING_IMAGE,))
        with pytest.raises(LeaseLost):
            a.record_operation(job.job_id, "op-from-a")
        current = b.get(job.job_id)
        assert (current.status, current.operation) == (Status.UPLOADING_IMAGE, None)
        # The new owner carries on; a cancel holds from any server and ends the lease.
        b.transition(job.job_id, Status.GENERATING, expect=(Status.UPLOADING_IMAGE,))
        a.transition(job.job_id, Status.CANCELLED)
        assert b.owner_of(job.job_id) is None and b.heartbeat() == set()
    finally:
        a.close()
        b.close()


def test_a_clean_stop_ends_its_leases_at_once(database, tmp_path):
    a = open_shared_store(database, tmp_path / "a")
    b = open_shared_store(database, tmp_path / "b")
    try:
        a.join("http://a", lease_seconds=60)
        b.join("http://b", lease_seconds=60)
        a.insert(queued())
        job = claim(a, 1)
        assert b.take_over() == []
        a.leave()
        assert [s["server_id"] for s in b.servers()] == [b.server_id]
        assert [j.job_id for j in b.take_over()] == [job.job_id]
    finally:
        a.close()
        b.close()


def test_an_unreachable_database_and_a_bad_store_value_are_one_clear_sentence(tmp_path):
    with pytest.raises(DataUnusable, match=r"PostgreSQL at postgresql://u:\*\*\*@127.0.0.1:1/x cannot be reached"):
        open_store("postgresql://u:secret@127.0.0.1:1/x", tmp_path)
    with pytest.raises(SettingsError, match="VEOTUI_STORE must be sqlite or a postgresql:// URL, got 'mysql://x'"):
        load_settings(env={"VEOTUI_STORE": "mysql://x", "VEOTUI_CONFIG": "/nonexistent/veotui.toml"})


def test_the_slot_claim_counts_the_whole_database_and_keeps_fifo(database, tmp_path):
    a = open_shared_store(database, tmp_path / "a")
    b = open_shared_store(database, tmp_path / "b")
    try:
        jobs = [a.insert(queued(f"job {n}")) for n in range(4)]
        heard: list[str] = []
        b.add_listener(lambda change: heard.append(change.job.status.value if change.job else change.kind))
        first = claim(a, 2)
        second = claim(b, 2)
        assert [first.job_id, second.job_id] == [jobs[0].job_id, jobs[1].job_id]
        assert (second.status, second.attempts) == (Status.STARTING, 1) and second.started_at is not None
        assert heard == ["starting"]  # told once, after the commit
        # Two processing across the two stores: neither may start a third.
        assert a.claim_next(2) is None and b.claim_next(2) is None
        b.transition(first.job_id, Status.CANCELLED)
        assert claim(a, 2).job_id == jobs[2].job_id
        assert [e.status for e in a.timeline(jobs[2].job_id)] == [Status.QUEUED, Status.STARTING]
    finally:
        a.close()
        b.close()


def test_racing_claims_never_exceed_the_slots(database, tmp_path):
    import threading

    stores = [open_shared_store(database, tmp_path / str(n)) for n in range(4)]
    try:
        jobs = [stores[0].insert(queued(f"job {n}")) for n in range(12)]
        claimed: list[str] = []
        start = threading.Barrier(len(stores))

        def claim(store) -> None:
            start.wait()
            for _ in range(5):
                job = store.claim_next(3)
                if job is not None:
                    claimed.append(job.job_id)

        threads = [threading.Thread(target=claim, args=(store,)) for store in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(claimed) == 3 and set(claimed) == {j.job_id for j in jobs[:3]}  # the queue's first three
        assert stores[0].processing_count() == 3
        assert sorted(claimed) == sorted(j.job_id for j in stores[0].active())
        assert stores[0].queue_length() == 9
    finally:
        for store in stores:
            store.close()


def test_a_server_is_recorded_with_a_heartbeat_and_leaves_on_a_clean_stop(database, tmp_path):
    store = open_shared_store(database, tmp_path)
    watcher = open_shared_store(database, tmp_path / "w")
    try:
        server_id = store.join("http://127.0.0.1:1")
        (row,) = watcher.servers(within=60)
        assert (row["server_id"], row["url"], row["pid"]) == (server_id, "http://127.0.0.1:1", os.getpid())
        first = row["heartbeat_at"]
        assert store.heartbeat() == set()
        (row,) = watcher.servers(within=60)
        assert row["heartbeat_at"] >= first
        # A server whose last beat is older than the window is not live.
        with by_hand(watcher) as conn:
            conn.execute("UPDATE servers SET heartbeat_at = now() - interval '1 hour'")
        assert watcher.servers(within=60) == []
        store.leave()
        assert watcher.servers(within=60) == []
        store.heartbeat()  # a row removed by hand is recorded again
        assert [row["server_id"] for row in watcher.servers(within=60)] == [server_id]
    finally:
        store.close()
        watcher.close()


def test_a_listener_hears_the_changes_other_processes_make_and_not_its_own(database, tmp_path):
    import time

    a = open_shared_store(database, tmp_path / "a")
    b = open_shared_store(database, tmp_path / "b")
    heard: list[tuple[str, str]] = []
    ids: list[str] = []

    def hear(change) -> None:
        ids.append(change.job_id)
        heard.append((change.kind, change.job.status.value if change.job else ""))

    stop = a.listen(hear)
    try:
        own = a.insert(queued("a's own"))
        job = b.insert(queued("b's"))
        b.transition(job.job_id, Status.STARTING)
        b.set_paused(True, "quota")
        b.delete(own.job_id)
        deadline = time.monotonic() + 30
        while len(heard) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        # Each change is read back when heard, so both of the job's may read "starting";
        # a's own insert is not echoed back to a.
        kinds = [kind for kind, _ in heard]
        assert kinds[:4] == ["job", "job", "queue", "deleted"] and set(kinds[4:]) <= {"deleted"}
        assert heard[1] == ("job", "starting") and heard[0][1] in ("queued", "starting")
        # A claim (a transition inside the slot count's transaction) is announced too.
        claimed = b.claim_next(5)
        assert claimed is None or claimed.status == Status.STARTING
        b.set_paused(False)
        other = b.insert(queued("claimed"))
        b.claim_next(5)
        deadline = time.monotonic() + 30
        while ids.count(other.job_id) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ids.count(other.job_id) == 2  # its insert and its claim
        assert a.get(other.job_id).status == Status.STARTING and heard[-1] == ("job", "starting")
    finally:
        stop()
        a.close()
        b.close()


def test_the_sweep_of_a_shared_directory_leaves_what_changed_lately_alone(tmp_path):
    from veotui.datadir.files import TEMP_PREFIX, JobFiles

    files = JobFiles(tmp_path / "jobs")
    old, fresh = new_job_id(), new_job_id()
    for job_id in (old, fresh):
        files.ensure(job_id)
    partial = files.folder(fresh) / f"{TEMP_PREFIX}video.mp4"
    partial.write_bytes(b"being written by another server")
    stale = files.folder(old) / f"{TEMP_PREFIX}left.mp4"
    stale.write_bytes(b"left by a crash")
    long_ago = os.stat(files.folder(old)).st_mtime - 3600
    for path in (stale, files.folder(old)):
        os.utime(path, (long_ago, long_ago))

    removed = files.sweep(lambda ids: set(), older_than=600)
    # The unknown folder nobody touched for an hour goes; the one being written stays whole.
    assert removed == [old] and not files.folder(old).exists()
    assert partial.read_bytes() == b"being written by another server"
    # Without the grace (one server alone), everything unknown goes.
    assert files.sweep(lambda ids: set()) == [fresh]


def test_a_server_stopped_inside_a_transaction_does_not_hold_the_fleet(database, tmp_path):
    from tests.support.waiting import wait_until
    from veotui.core.errors import StorageUnavailable
    from veotui.store.jobs import SLOTS_LOCK
    from veotui.store.postgres import PostgresConnection

    def attempt(call: Callable[[], Job | None]) -> Job | None:
        try:
            return call()
        except StorageUnavailable:
            return None

    a = open_shared_store(database, tmp_path / "a")
    b = open_shared_store(database, tmp_path / "b")
    try:
        a.join("http://a", lease_seconds=1)
        b.join("http://b", lease_seconds=1)
        job = b.insert(queued())
        # A stops halfway through a claim, holding the slots' lock.
        held = a.db
        assert isinstance(held, PostgresConnection)
        held.raw.execute("BEGIN")
        held.raw.execute("SELECT pg_advisory_xact_lock(%s)", (SLOTS_LOCK,))
        # B waits at most half a lease for the lock (and tries again); PostgreSQL ends A's
        # idle transaction after the lease, and B's claim goes through.
        with pytest.raises(StorageUnavailable, match="lock timeout"):
            b.claim_next(1)
        claimed = wait_until(lambda: attempt(lambda: b.claim_next(1)), timeout=30, what="B's claim")
        assert claimed.job_id == job.job_id
        # A comes back to a session that was ended: unavailable until it reconnects by itself.
        with pytest.raises(StorageUnavailable, match="cannot be reached"):
            a.get(job.job_id)
        again = wait_until(lambda: attempt(lambda: a.get(job.job_id)), timeout=30, what="A to reconnect")
        assert again.status == Status.STARTING
        assert a.heartbeat() == set() and b.heartbeat() == {job.job_id}
    finally:
        a.close()
        b.close()


async def test_the_loop_goes_on_while_postgresql_answers_an_awaited_write(database, tmp_path):
    """Another session holds the job's row, so PostgreSQL keeps the write waiting: the awaited
    call leaves the event loop to the other tasks meanwhile; the waiting call holds it."""
    store = open_shared_store(database, tmp_path / "a")
    blocker = psycopg.connect(database)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        job = store.insert(queued())
        blocker.execute("SELECT 1 FROM jobs WHERE job_id = %s FOR UPDATE", (job.job_id,))
        move = asyncio.create_task(store.atransition(job.job_id, Status.STARTING, expect=(Status.QUEUED,)))
        await asyncio.sleep(0.5)
        assert not move.done(), "the write went through a row another session holds"
        assert ticks >= 10, f"the loop ran other tasks {ticks} times in 0.5 s while PostgreSQL kept the write"
        blocker.commit()
        assert (await asyncio.wait_for(move, 10)).status is Status.STARTING

        # The same wait on the synchronous call: nothing else runs until PostgreSQL answers.
        blocker.execute("SELECT 1 FROM jobs WHERE job_id = %s FOR UPDATE", (job.job_id,))
        release = threading.Timer(0.5, blocker.commit)
        release.start()
        before = ticks
        moved = store.transition(job.job_id, Status.UPLOADING_IMAGE, expect=(Status.STARTING,))
        release.join()
        assert moved.status is Status.UPLOADING_IMAGE
        assert ticks == before
        await asyncio.sleep(0.05)
        assert ticks > before
    finally:
        ticker.cancel()
        blocker.close()
        await store.aclose()


async def test_a_write_whose_caller_is_stopped_after_postgresql_committed_it_is_still_told(database, tmp_path):
    """A job's runner can be stopped (its lease judged lost, a cancel heard) between
    PostgreSQL's commit of its write and the answer's arrival: the write is seen through, so
    the listeners still hear the state the database now holds."""
    store = open_shared_store(database, tmp_path / "a")
    heard: list[Status] = []
    store.add_listener(lambda change: heard.append(change.job.status) if change.job is not None else None)
    blocker = psycopg.connect(database)
    scope = anyio.CancelScope()

    async def move(job_id: str) -> None:
        with scope:
            await store.atransition(job_id, Status.STARTING, expect=(Status.QUEUED,))

    try:
        job = store.insert(queued())
        blocker.execute("SELECT 1 FROM jobs WHERE job_id = %s FOR UPDATE", (job.job_id,))
        task = asyncio.create_task(move(job.job_id))
        await asyncio.sleep(0.3)  # the write waits for the row
        blocker.commit()
        time.sleep(0.3)  # PostgreSQL commits the write; the loop has not read its answer
        scope.cancel()
        await asyncio.wait_for(task, 10)
        assert open_shared_store(database, tmp_path / "b").get(job.job_id).status is Status.STARTING
        assert heard[-1] is Status.STARTING
    finally:
        blocker.close()
        await store.aclose()


async def test_a_read_made_while_a_write_is_answered_does_not_hold_back_its_tell(database, tmp_path):
    """The heartbeat may read a job between PostgreSQL's commit of a runner's write and the
    runner's reading of the answer: the write is told all the same."""
    store = open_shared_store(database, tmp_path / "a")
    heard: list[Status] = []
    store.add_listener(lambda change: heard.append(change.job.status) if change.job is not None else None)
    blocker = psycopg.connect(database)
    try:
        job = store.insert(queued())
        blocker.execute("SELECT 1 FROM jobs WHERE job_id = %s FOR UPDATE", (job.job_id,))
        task = asyncio.create_task(store.atransition(job.job_id, Status.STARTING, expect=(Status.QUEUED,)))
        await asyncio.sleep(0.3)  # the write waits for the row
        blocker.commit()
        time.sleep(0.3)  # PostgreSQL commits the write; the loop has not read its answer
        read = store.find(job.job_id)
        assert read is not None and read.status is Status.STARTING
        await asyncio.wait_for(task, 10)
        assert heard == [Status.QUEUED, Status.STARTING]
    finally:
        blocker.close()
        await store.aclose()

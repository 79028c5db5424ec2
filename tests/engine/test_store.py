import itertools
import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.by_hand import by_hand, sqlite_connection
from veotui.core.errors import Conflict, DataUnusable, InvalidRequest, JobNotFound
from veotui.core.ids import new_job_id
from veotui.core.job import ACTIVE_STATUSES, Change, Job, Status, Video, isoformat, utcnow
from veotui.core.request import JobRequest
from veotui.store.aggregates import MIGRATION_SQL
from veotui.store.migrations import MIGRATIONS
from veotui.store.sqlite import SqliteStore


@pytest.fixture
def store(open_store):
    """The store under test: on SQLite, then on PostgreSQL (tests/conftest.py)."""
    return open_store()


def queued(prompt="p", **fields):
    return Job(job_id=new_job_id(), status=Status.QUEUED, request=JobRequest.from_mapping({"prompt": prompt, **fields}))


def test_wal_full_sync_and_schema_version(tmp_path):
    store = SqliteStore(tmp_path / "veotui.db")
    conn = sqlite3.connect(tmp_path / "veotui.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sqlite_connection(store).raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.schema_version == len(MIGRATIONS)
    conn.close()
    store.close()


def test_a_write_that_need_not_last_a_power_cut_commits_without_waiting_for_the_disk(store):
    """Inside the transaction the database itself says whether its commit waits for the
    disk: SQLite's synchronous level (2 FULL, 1 NORMAL), PostgreSQL's synchronous_commit."""
    from veotui.store.connection import Statement

    sqlite = not store.db.shared
    probe = Statement("PRAGMA synchronous" if sqlite else "SELECT current_setting('synchronous_commit')")
    waits, does_not = (2, 1) if sqlite else ("on", "off")
    if not sqlite:  # the test cluster never waits for its disk; a production server does
        store.db.raw.execute("SET synchronous_commit = on")

    def level(durable: bool, *, via_transaction: bool = False) -> object:
        if via_transaction:
            with store.db.transaction("probe", durable=durable) as tx:
                rows = tx.read(probe)
        else:
            rows = store.db.write([probe], "probe", durable)
        assert rows is not None
        return rows[0][0]

    assert level(True) == waits
    assert level(False) == does_not
    assert level(True) == waits  # the next durable write waits again, and flushes what came before
    assert level(False, via_transaction=True) == does_not
    assert level(True, via_transaction=True) == waits


def test_reopening_keeps_jobs_and_refuses_a_newer_schema(tmp_path):
    store = SqliteStore(tmp_path / "veotui.db")
    job = store.insert(queued("kept"))
    store.close()
    again = SqliteStore(tmp_path / "veotui.db")
    assert again.get(job.job_id).prompt == "kept"
    sqlite_connection(again).raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    again.close()
    with pytest.raises(DataUnusable, match="newer veotui"):
        SqliteStore(tmp_path / "veotui.db")


def test_a_version_1_database_migrates_and_queue_numbers_are_never_reused(tmp_path):
    path = tmp_path / "veotui.db"
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    old.execute(
        "INSERT INTO jobs (job_id, queue_seq, status, prompt, number_of_videos, model, aspect_ratio,"
        " duration_seconds, resolution, user, created_at) VALUES"
        " ('00000000-0000-4000-8000-000000000001', 41, 'queued', 'old', 1, 'veo-3.1-generate-001',"
        " '16:9', 8, '720p', 'local', '2026-01-01T00:00:00.000Z')"
    )
    old.commit()
    old.close()
    store = SqliteStore(path)
    assert store.schema_version == len(MIGRATIONS)
    newest = store.insert(queued("new"))
    assert newest.queue_seq == 42
    store.delete(newest.job_id)
    assert store.insert(queued("after a delete")).queue_seq == 43
    assert [j.prompt for j in store.queued()] == ["old", "after a delete"]
    store.close()


def test_fifo_by_sequence_and_a_retried_job_goes_to_the_back(store):
    jobs = [store.insert(queued(f"job {n}")) for n in range(3)]
    assert [j.job_id for j in store.queued()] == [j.job_id for j in jobs]
    assert [j.queue_position for j in store.queued()] == [1, 2, 3]
    store.transition(jobs[0].job_id, Status.CANCELLED)
    store.transition(jobs[0].job_id, Status.QUEUED)
    assert [j.job_id for j in store.queued()] == [jobs[1].job_id, jobs[2].job_id, jobs[0].job_id]
    assert store.next_queued().job_id == jobs[1].job_id


def test_a_group_is_read_in_queue_order_and_kept_across_a_reopen(store, open_store):
    members = [store.insert(queued(f"take {n}", group="takes")) for n in range(3)]
    store.insert(queued("another", group="others"))
    store.insert(queued("none"))
    store.move(members[2].job_id, to="top")
    assert [j.job_id for j in store.group("takes", 10)] == [members[2].job_id, members[0].job_id, members[1].job_id]
    assert len(store.group("takes", 2)) == 2
    assert store.group("nobody", 10) == []
    store.close()
    again = open_store()
    assert {j.request.group for j in again.group("takes", 10)} == {"takes"}


def test_a_transition_checks_the_current_status_and_rolls_back_whole(store):
    job = store.insert(queued())
    with pytest.raises(Conflict, match="is queued; it cannot become completed"):
        store.transition(job.job_id, Status.COMPLETED)
    with pytest.raises(Conflict):
        store.transition(job.job_id, Status.STARTING, expect=(Status.FAILED,))
    with pytest.raises(ValueError):
        store.transition(job.job_id, Status.STARTING, prompt="sneaky")
    assert store.get(job.job_id).status == Status.QUEUED
    assert [e.status for e in store.timeline(job.job_id)] == [Status.QUEUED]
    with pytest.raises(JobNotFound):
        store.transition(new_job_id(), Status.STARTING)


def test_every_transition_is_in_the_timeline_and_told_to_listeners(store):
    seen: list[Change] = []
    store.add_listener(seen.append)
    job = store.insert(queued())
    for status in (Status.STARTING, Status.UPLOADING_IMAGE, Status.GENERATING):
        store.transition(job.job_id, status)
    store.update(job.job_id, operation="ops/1", note="operation ops/1")
    store.transition(job.job_id, Status.FAILED, error="boom", error_kind="operation_error", detail="boom")
    timeline = store.timeline(job.job_id)
    assert [e.status.value for e in timeline] == [
        "queued",
        "starting",
        "uploading_image",
        "generating",
        "generating",
        "failed",
    ]
    assert timeline[4].detail == "operation ops/1"
    assert all(a.at <= b.at for a, b in itertools.pairwise(timeline))
    assert [c.job.status.value if c.job else c.kind for c in seen] == [
        "queued",
        "starting",
        "uploading_image",
        "generating",
        "generating",
        "failed",
    ]
    failed = store.get(job.job_id)
    assert failed.finished_at is not None and failed.error == "boom" and failed.operation == "ops/1"


def test_history_is_newest_first_and_paged(store):
    ids = []
    for n in range(5):
        job = store.insert(queued(f"h{n}"))
        store.transition(job.job_id, Status.CANCELLED)
        ids.append(job.job_id)
    page, total = store.history(limit=2, offset=1)
    assert total == 5
    assert [j.job_id for j in page] == [ids[3], ids[2]]


def test_resolve_by_unique_prefix(store):
    job = store.insert(queued())
    assert store.resolve(job.job_id[:6]) == job.job_id
    assert store.resolve(job.job_id.upper()) == job.job_id
    with pytest.raises(JobNotFound, match="no job id starts with"):
        store.resolve("ffffffff-ffff")
    with pytest.raises(JobNotFound, match="not a job id"):
        store.resolve("../etc/passwd")
    for suffix in ("1", "2"):
        store.insert(queued().replace(job_id=f"abcd0000-0000-4000-8000-00000000000{suffix}"))
    with pytest.raises(InvalidRequest, match="more than one job id starts with 'abcd'"):
        store.resolve("abcd")
    assert store.resolve("abcd0000-0000-4000-8000-000000000002").endswith("2")


def test_delete_remembers_remote_cleanup_until_done(store):
    job = store.insert(queued())
    store.delete(job.job_id)
    with pytest.raises(JobNotFound):
        store.get(job.job_id)
    assert [j.job_id for j in store.pending_cleanups()] == [job.job_id]
    store.cleanup_done(job.job_id)
    assert store.pending_cleanups() == []


def test_a_job_the_engine_removed_is_explained_for_a_while(store, monkeypatch):
    gone = store.insert(queued())
    plain = store.insert(queued())
    store.delete(gone.job_id, "deleted after download")
    store.delete(plain.job_id)
    with pytest.raises(JobNotFound, match=f"job {gone.job_id} was deleted after download at 20"):
        store.get(gone.job_id)
    with pytest.raises(JobNotFound, match="was deleted after download at"):
        store.resolve(gone.job_id[:8])
    # A delete someone asked for leaves nothing to explain.
    with pytest.raises(JobNotFound, match="no job id starts with"):
        store.resolve(plain.job_id[:8])
    with pytest.raises(JobNotFound, match="not found"):
        store.get(plain.job_id)
    # Bounded: a week old, or beyond the row limit, the oldest are forgotten.
    week_ago = isoformat(utcnow() - timedelta(days=8))
    with by_hand(store) as conn:
        conn.execute("UPDATE tombstones SET at = ? WHERE job_id = ?", (week_ago, gone.job_id))
    monkeypatch.setattr("veotui.store.jobs.TOMBSTONE_ROWS", 2)
    later = [store.insert(queued()) for _ in range(3)]
    for n, job in enumerate(later):
        store.delete(job.job_id, "deleted after download")
        with by_hand(store) as conn:  # distinct times, oldest first
            conn.execute(
                "UPDATE tombstones SET at = ? WHERE job_id = ?",
                (isoformat(utcnow() - timedelta(minutes=10 - n)), job.job_id),
            )
    with pytest.raises(JobNotFound, match="no job id starts with"):
        store.resolve(gone.job_id)
    with pytest.raises(JobNotFound, match="no job id starts with"):
        store.resolve(later[0].job_id)
    with pytest.raises(JobNotFound, match="deleted after download"):
        store.resolve(later[2].job_id)


def test_every_field_survives_the_row_both_ways(open_store):
    store = open_store()
    job = store.insert(
        queued("all of it", negative_prompt="no", seed=7, number_of_videos=2, user="ann", generate_audio=False)
    )
    store.transition(job.job_id, Status.STARTING)
    store.update(job.job_id, operation="ops/9", submitting=True, attempts=2, error="slow", error_kind="transient")
    for status in (Status.UPLOADING_IMAGE, Status.GENERATING, Status.PROCESSING, Status.DOWNLOADING):
        store.transition(job.job_id, status)
    videos = (Video(1, "generated_video_1.mp4", 10), Video(2, "generated_video_2.mp4", 20))
    store.transition(job.job_id, Status.COMPLETED, videos=videos)
    written = store.update(job.job_id, downloaded_at=datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC))
    store.close()
    again = open_store()  # a fresh store reads the row, not its cache
    assert again.get(job.job_id) == written
    assert written.videos == videos and written.submitting is False and written.request == job.request
    again.close()


def test_a_deleted_job_is_remembered_in_its_own_shape_and_older_entries_still_read(store):
    job = store.insert(queued(seed=3))
    store.update(job.job_id, operation="ops/1")
    store.delete(job.job_id)
    (stored,) = store.db.raw.execute("SELECT job FROM pending_cleanup").fetchone()
    assert "progress" not in stored and '"operation": "ops/1"' in stored
    # An entry written by an earlier veotui holds the job's API object instead.
    old = queued("old").replace(operation="ops/2", videos=(Video(1, "generated_video_1.mp4", 5),))
    with by_hand(store) as conn:
        conn.execute(
            "INSERT INTO pending_cleanup (job_id, job, since) VALUES (?, ?, '2026-01-01T00:00:00.000Z')",
            (old.job_id, json.dumps(old.to_dict())),
        )
    cleanups = {j.job_id: j for j in store.pending_cleanups()}
    assert cleanups[job.job_id].operation == "ops/1" and cleanups[job.job_id].request.seed == 3
    assert cleanups[old.job_id].operation == "ops/2" and cleanups[old.job_id].videos == old.videos


def test_metrics_count_all_time_from_the_event_log(store):
    done = store.insert(queued(user="alice"))
    for status in (Status.STARTING, Status.UPLOADING_IMAGE, Status.GENERATING, Status.PROCESSING, Status.DOWNLOADING):
        store.transition(done.job_id, status)
    store.transition(done.job_id, Status.COMPLETED, videos=(Video(1, "generated_video_1.mp4", 10),), seconds=12.5)
    bad = store.insert(queued(user="bob"))
    store.transition(bad.job_id, Status.STARTING)
    store.transition(bad.job_id, Status.FAILED, error="x", error_kind="safety_filter")
    store.insert(queued(user="bob"))
    store.delete(done.job_id)
    metrics = store.metrics()
    expected = {
        "queue_length": 1,
        "processing": 0,
        "completed": 1,
        "failed": 1,
        "cancelled": 0,
        "success_rate": 0.5,
        "avg_processing_seconds": 12.5,
        "jobs_by_user": {"alice": 1, "bob": 2},
        "errors_by_kind": {"safety_filter": 1},
        "estimated_cost_usd_total": 0.0,
        "retries_by_call": {},
        # 12.5 s lies in the (10, 30] bucket: the median is interpolated inside it.
        "processing_seconds_p50": 20.0,
        "processing_seconds_p95": 29.0,
    }
    assert {key: metrics[key] for key in expected} == expected
    assert metrics["queue_wait_seconds_avg"] is not None and metrics["queue_wait_seconds_avg"] >= 0
    assert set(metrics["stage_seconds"]) == {s.value for s in ACTIVE_STATUSES}
    assert metrics["stage_seconds"]["starting"]["count"] == 2


def test_metrics_survive_reopening_and_a_migration_fills_them_from_the_event_log(tmp_path):
    path = tmp_path / "veotui.db"
    store = SqliteStore(path)
    for user, final in (("ana", Status.COMPLETED), ("ben", Status.FAILED), ("ben", Status.CANCELLED)):
        job = store.insert(queued(user=user))
        if final == Status.CANCELLED:
            store.transition(job.job_id, final)
            continue
        store.transition(job.job_id, Status.STARTING)
        if final == Status.FAILED:
            store.transition(job.job_id, final, error="x", error_kind="internal")
            continue
        for status in ACTIVE_STATUSES[1:]:
            store.transition(job.job_id, status)
        store.transition(job.job_id, final, seconds=3.0)
    before = store.metrics()
    store.close()

    again = SqliteStore(path)
    assert again.metrics() == before
    again.close()

    # Drop the aggregates and run their migration again: the event log gives the same counts.
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE metric_values; DROP TABLE metric_hours;" + MIGRATION_SQL)
    conn.close()
    rebuilt = SqliteStore(path).metrics()
    for key in ("completed", "failed", "cancelled", "jobs_by_user", "errors_by_kind", "avg_processing_seconds"):
        assert rebuilt[key] == before[key], key


def test_moving_estimate_per_model(store):
    assert store.estimate("veo-3.1-generate-001") is None
    assert store.record_duration("veo-3.1-generate-001", 100) == 100
    assert store.record_duration("veo-3.1-generate-001", 200) == pytest.approx(130)
    assert store.estimate("veo-3.1-fast-generate-001") is None


def test_an_operation_counts_its_estimate_in_todays_spend_once(open_store):
    from datetime import timedelta

    from veotui.core.job import utcnow

    store = open_store()
    assert store.spend_today() == 0
    job = store.insert(queued("bought").replace(estimated_cost_usd=3.2))
    other = store.insert(queued("also bought").replace(estimated_cost_usd=1.05))
    store.transition(job.job_id, Status.STARTING)
    recorded = store.record_operation(job.job_id, "ops/1", note="operation ops/1")
    assert (recorded.operation, recorded.submitting, recorded.operation_done) == ("ops/1", False, False)
    store.record_operation(job.job_id, "ops/1")  # the same operation found again after a restart
    store.transition(other.job_id, Status.STARTING)
    store.record_operation(other.job_id, "ops/2")
    assert store.spend_today() == 4.25
    assert store.spend_on(utcnow().date() - timedelta(days=1)) == 0
    assert "operation ops/1" in [event.detail for event in store.timeline(job.job_id)]
    store.close()
    again = open_store()
    assert again.spend_today() == 4.25
    assert again.get(job.job_id).estimated_cost_usd == 3.2
    again.close()


def test_a_finished_operation_and_its_result_survive_a_reopen(open_store):
    store = open_store()
    job = store.insert(queued("kept"))
    store.transition(job.job_id, Status.STARTING)
    store.update(job.job_id, operation="ops/9", operation_done=True, result={"videos": ["gs://b/1.mp4"]})
    store.close()
    again = open_store()
    kept = again.get(job.job_id)
    assert (kept.operation, kept.operation_done, kept.result) == ("ops/9", True, {"videos": ["gs://b/1.mp4"]})
    assert kept.retry_reuses_operation and kept.to_dict()["retry_reuses_operation"] is True
    again.close()


def test_history_follows_the_order_jobs_ended_in_not_the_wall_clock(tmp_path):
    path = tmp_path / "veotui.db"
    old = sqlite3.connect(path)
    for script in MIGRATIONS[:4]:
        old.executescript(script)
    old.execute("PRAGMA user_version = 4")
    for n, (status, finished) in enumerate(
        [("completed", "2026-01-01T00:03:00.000Z"), ("failed", "2026-01-01T00:01:00.000Z"), ("queued", None)]
    ):
        old.execute(
            "INSERT INTO jobs (job_id, queue_seq, status, prompt, number_of_videos, model, aspect_ratio,"
            " duration_seconds, resolution, user, created_at, finished_at) VALUES"
            f" ('00000000-0000-4000-8000-00000000000{n}', {n + 1}, ?, 'old {n}', 1, 'veo-3.1-generate-001',"
            " '16:9', 8, '720p', 'local', '2026-01-01T00:00:00.000Z', ?)",
            (status, finished),
        )
    old.commit()
    old.close()
    store = SqliteStore(path)
    history, _ = store.history()
    assert [j.prompt for j in history] == ["old 0", "old 1"]  # the migration numbers them by finish time
    # A job that ends now, its wall clock set back a year, still goes on top.
    queued_id = "00000000-0000-4000-8000-000000000002"
    store.transition(queued_id, Status.CANCELLED, finished_at=datetime(2025, 1, 1, tzinfo=UTC))
    assert [j.prompt for j in store.history()[0]] == ["old 2", "old 0", "old 1"]
    # Retried, it leaves History; ended again, it is on top again.
    store.transition(queued_id, Status.QUEUED)
    assert store.get(queued_id).finished_seq is None
    store.transition(history[1].job_id, Status.QUEUED)
    store.transition(history[1].job_id, Status.CANCELLED)
    assert [j.prompt for j in store.history()[0]] == ["old 1", "old 0"]
    store.close()


def test_the_store_itself_refuses_what_it_cannot_use(tmp_path):
    # The command line checks first; the store checks again for every other way in.
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00not sqlite" * 100)
    with pytest.raises(DataUnusable, match="is damaged .*does not start with a SQLite header.*a copy is at"):
        SqliteStore(garbage)
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.executescript("CREATE TABLE foo (x); PRAGMA user_version = 7;")
    conn.close()
    before = foreign.read_bytes()
    with pytest.raises(DataUnusable, match=r"is not a veotui database \(it has tables foo\)"):
        SqliteStore(foreign)
    assert foreign.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("foreign")) == ["foreign.db"]


def test_a_large_database_is_checked_after_open_and_damage_sticks(tmp_path, monkeypatch):
    from tests.support.damage import damage_an_index_page
    from veotui.datadir.health import DAMAGED, StorageGuard

    db = tmp_path / "veotui.db"
    SqliteStore(db).close()
    damage_an_index_page(db)
    monkeypatch.setattr("veotui.store.sqlite.CHECK_AT_OPEN_BYTES", 0)
    guard = StorageGuard(tmp_path)
    store = SqliteStore(db, guard)  # opens: the check is deferred
    try:
        reason = store.deferred_check()
        assert reason is not None and f"{db} is damaged (quick_check:" in reason
        assert store.deferred_check() is None  # once
        guard.degrade(DAMAGED, reason)
        guard.recovered()  # a writable disk does not mend it
        guard.degrade("full", "the disk is full")
        assert guard.state.state == DAMAGED and guard.state.reason == reason
    finally:
        store.close()


def test_jobs_per_status_are_kept_by_every_write_and_read_without_counting_the_jobs(tmp_path):
    path = tmp_path / "veotui.db"
    store = SqliteStore(path)
    jobs = [store.insert(queued(f"job {n}")) for n in range(5)]
    store.transition(jobs[0].job_id, Status.CANCELLED)
    store.transition(jobs[1].job_id, Status.STARTING)
    store.transition(jobs[1].job_id, Status.FAILED, error="x", error_kind="internal")
    store.transition(jobs[1].job_id, Status.QUEUED)  # a retry
    store.delete(jobs[2].job_id)
    store.insert_many(
        [
            Job(job_id=new_job_id(), status=Status.COMPLETED, request=JobRequest.from_mapping({"prompt": "old"}))
            for _ in range(3)
        ]
    )
    counted = dict(sqlite3.connect(path).execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
    assert counted == {"queued": 3, "cancelled": 1, "completed": 3}
    assert store.count_by_status() == counted
    store.close()

    again = SqliteStore(path)
    assert again.count_by_status() == counted
    assert len(again.queued()) == 3
    again.close()

"""The job store on SQLite.

One connection, one writer, used from the event loop's thread: a commit costs ~30-140 us
here, several times less than a hop to a worker thread, and the engine needs well under
one commit a second. Every transition is one ``BEGIN IMMEDIATE`` transaction that checks
the current status (compare-and-set) and records an ``events`` row. ``synchronous=FULL``:
a committed transition survives a power loss, not only a process crash.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from veotui.core.errors import Conflict, DataUnusable, InvalidRequest, JobNotFound, StorageUnavailable, clipped
from veotui.core.job import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    Change,
    Job,
    JobEvent,
    QueueState,
    Status,
    can_transition,
    isoformat,
    parse_time,
    utcnow,
)
from veotui.core.progress import fold_sample
from veotui.core.stats import Snapshot, hour_of, series_rows, summary
from veotui.datadir.health import StorageGuard
from veotui.datadir.paths import CHOOSE_ANOTHER, os_problem, prepare
from veotui.datadir.privacy import make_private, private_file
from veotui.logs import event
from veotui.store import aggregates
from veotui.store.database_file import (
    APPLICATION_ID,
    CHECK_AT_OPEN_BYTES,
    damaged,
    database_bytes,
    identify,
    quick_check,
    sqlite_problem,
)
from veotui.store.errors import write_refusal
from veotui.store.migrations import MIGRATIONS
from veotui.store.rows import INSERT_JOB, JOB_COLUMNS, as_job_fields, job_from_row, job_to_row

#: Neighbours re-spaced at first when a move finds no room between two keys (doubles).
RESPACE_WINDOW = 8
#: Smallest gap a respacing leaves, relative to the keys' size: 2**-32 leaves ~20 halvings
#: of a double's 52-bit mantissa.
ROOM_AFTER_RESPACE = 2.0**-32

#: How long, and how many, removed jobs are remembered for a later lookup.
TOMBSTONE_DAYS = 7
TOMBSTONE_ROWS = 10_000
#: Why the engine removed a job, as a lookup of it then says.
AUTO_DELETED = "deleted after download"
#: A LIMIT meaning "all rows" in both SQL dialects (SQLite's -1 is an error elsewhere).
NO_LIMIT = 2**62

log = logging.getLogger(__name__)

Listener = Callable[[Change], None]


class SqliteStore:
    """A write the disk refuses raises :class:`StorageUnavailable` and marks ``guard``
    degraded; the transaction is rolled back and the connection stays usable."""

    #: The number of queued jobs is kept in memory by every write (one writer process).
    QUEUE_LENGTH_KEPT = True

    def __init__(self, path: Path, guard: StorageGuard | None = None) -> None:
        """Open (or create) veotui's database at ``path``. Anything that is not veotui's
        database, or is damaged, is refused with a :class:`DataUnusable` naming the file;
        a file refused as another application's is never written to."""
        self.path = path
        self.guard = guard or StorageGuard(path.parent)
        self.guard.add_error_reader(write_refusal)
        self._listeners: list[Listener] = []
        # Write-through copy of the jobs that are not finished. This process is the only
        # writer (the data-directory lock), so the copy is the truth; every UPDATE still
        # checks the status it expects, in SQL, in case it is not.
        self._active: dict[str, Job] = {}
        #: Jobs per status, counted once and then kept by every write: the queue's and the
        #: history's totals cost nothing however long they grow.
        self._counts: dict[str, int] | None = None
        # When each job's current stage, and its run, began in this process, by the monotonic
        # clock: durations measured with it survive a wall-clock step.
        self._stage_clock: dict[str, tuple[Status, float]] = {}
        self._run_clock: dict[str, float] = {}
        prepare(path.parent)
        identify(path)
        try:
            # SQLite makes its WAL and SHM files with the database's own mode.
            private_file(path)
            for side in ("-wal", "-shm"):
                make_private(path.with_name(path.name + side))
        except OSError as exc:
            raise os_problem(path.parent, exc, "cannot be written") from None
        try:
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise sqlite_problem(path, exc) from None
        try:
            self._open()
        except sqlite3.Error as exc:
            self._conn.close()
            raise sqlite_problem(path, exc) from None
        except BaseException:
            self._conn.close()
            raise

    def _open(self) -> None:
        conn = self._conn
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 5000")
        self._check_conn: sqlite3.Connection | None = None
        self._check_due = database_bytes(self.path) > CHECK_AT_OPEN_BYTES
        if not self._check_due:
            problems = quick_check(conn)
            if problems:
                raise damaged(self.path, problems)
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            # A new database, or one of veotui's from before the stamp (identify() said so).
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        self._migrate()
        # Kept in step with every write (one writer), so reading it costs nothing.
        self._queued = self.count_by_status().get(Status.QUEUED.value, 0)

    def deferred_check(self) -> str | None:
        """The check a large database skipped at open, on its own read-only connection (so
        it may run in a worker thread while the store serves): what is damaged, in a
        sentence, or None when all is well or the check was done at open."""
        if not self._check_due:
            return None
        self._check_due = False
        started = time.monotonic()
        uri = "file:" + str(self.path.resolve()).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
        try:
            conn = self._check_conn = sqlite3.connect(uri + "?mode=ro", uri=True, check_same_thread=False)
            try:
                problems = quick_check(conn)
            finally:
                self._check_conn = None
                conn.close()
        except sqlite3.Error as exc:
            if "interrupt" in str(exc):
                return None  # the store was closed first
            problems = f"quick_check failed: {exc}"
        if not problems:
            log.info("database check passed in %.1f s (%s)", time.monotonic() - started, self.path)
            return None
        reason = (
            f"{self.path} is damaged ({problems}); nothing new starts. Stop veotui, then recover "
            f"what it holds with `sqlite3 {self.path} .recover`, or move it away to start with an empty one"
        )
        log.error("database check after start: %s", reason)
        return reason

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        check = getattr(self, "_check_conn", None)  # (None when not a SQLite store)
        if check is not None:
            with suppress(sqlite3.Error):
                check.interrupt()
        self._conn.close()

    def add_listener(self, listener: Listener) -> None:
        """Called after every commit that changes a job, with the change."""
        self._listeners.append(listener)

    def _notify(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)

    @contextmanager
    def _transaction(self, doing: str = "record a change") -> Iterator[sqlite3.Connection]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.Error as exc:
            failure = self.guard.error(exc, doing)
            if failure is None:
                raise
            raise failure from exc

    def _rollback(self) -> None:
        # SQLite may have rolled back already (a full disk does that); the connection must
        # end up outside any transaction either way.
        if self._conn.in_transaction:
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def probe(self) -> None:
        """A small real write: raises :class:`StorageUnavailable` while the disk refuses."""
        with self._transaction("write to its database") as conn:
            conn.execute("UPDATE counters SET value = value WHERE name = 'queue_seq'")

    def _migrate(self) -> None:
        with self._transaction("prepare its database") as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise DataUnusable(
                    f"{self.path} was written by a newer veotui (schema {version}, this one knows "
                    f"{len(MIGRATIONS)}); upgrade veotui or {CHOOSE_ANOTHER}"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # -- reading --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        job = self._active.get(job_id)
        if job is not None:
            return job
        row = self._conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id, self._gone(job_id, exact=True))
        return self._remember(job_from_row(row))

    def _gone(self, job_id: str, *, exact: bool) -> str | None:
        """Why a job that is no longer here was removed, if the engine removed it lately."""
        sql = "SELECT job_id, at, reason FROM tombstones WHERE "
        if exact:
            row = self._conn.execute(sql + "job_id = ?", (job_id,)).fetchone()
        else:
            rows = self._conn.execute(
                sql + "job_id >= ? AND job_id < ? ORDER BY job_id LIMIT 2", (job_id, job_id + "\uffff")
            ).fetchall()
            row = rows[0] if len(rows) == 1 else None
        if row is None:
            return None
        at = parse_time(row[1])
        when = at.strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else row[1]
        return f"job {row[0]} was {row[2]} at {when}"

    def _remember(self, job: Job) -> Job:
        if job.status.is_final:
            self._active.pop(job.job_id, None)
        else:
            self._active[job.job_id] = job
        return job

    def find(self, job_id: str) -> Job | None:
        try:
            return self.get(job_id)
        except JobNotFound:
            return None

    def resolve(self, prefix: str) -> str:
        prefix = prefix.strip().lower()
        if not prefix or not all(c in "0123456789abcdef-" for c in prefix):
            raise JobNotFound(prefix, f"{prefix!r} is not a job id or the start of one")
        rows = self._conn.execute(
            "SELECT job_id FROM jobs WHERE job_id >= ? AND job_id < ? ORDER BY job_id LIMIT 2",
            (prefix, prefix + "\uffff"),
        ).fetchall()
        if not rows:
            raise JobNotFound(prefix, self._gone(prefix, exact=False) or f"no job id starts with {prefix!r}")
        if len(rows) > 1:
            raise InvalidRequest(f"more than one job id starts with {prefix!r}; give more of it")
        return str(rows[0][0])

    def active(self) -> list[Job]:
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        rows = self._conn.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE status IN ({marks}) ORDER BY started_at, queue_seq",
            [s.value for s in ACTIVE_STATUSES],
        ).fetchall()
        return [job_from_row(row) for row in rows]

    def queued(self, limit: int | None = None, offset: int = 0) -> list[Job]:
        """Queued jobs in FIFO order, each with its 1-based position; ``limit`` jobs from
        the ``offset``-th (None: every one)."""
        sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'queued' ORDER BY queue_seq LIMIT ? OFFSET ?"
        rows = self._conn.execute(sql, (NO_LIMIT if limit is None else limit, offset)).fetchall()
        return [job_from_row(row).replace(queue_position=n) for n, row in enumerate(rows, start=offset + 1)]

    def next_queued(self) -> Job | None:
        row = self._conn.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'queued' ORDER BY queue_seq LIMIT 1"
        ).fetchone()
        return job_from_row(row) if row else None

    def queue_position(self, job: Job) -> int:
        """The 1-based place of a job with ``job.queue_seq`` among the queued jobs. Counted in
        the index from the nearer end (by key), with the queue's length kept in memory: a
        job just submitted or retried (at the back) or at the front costs a few index steps,
        not a walk over the whole queue."""
        seq = job.queue_seq
        if self.QUEUE_LENGTH_KEPT:
            head = self._conn.execute("SELECT MIN(queue_seq) FROM jobs WHERE status = 'queued'").fetchone()[0]
            tail = self._conn.execute("SELECT MAX(queue_seq) FROM jobs WHERE status = 'queued'").fetchone()[0]
            if head is not None and tail - seq < seq - head:
                (from_here,) = self._conn.execute(
                    "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND queue_seq >= ?", (seq,)
                ).fetchone()
                return self._queued - int(from_here) + 1
        (ahead,) = self._conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND queue_seq < ?", (seq,)
        ).fetchone()
        return int(ahead) + 1

    def history(self, limit: int = 100, offset: int = 0) -> tuple[list[Job], int]:
        """Ended jobs, newest first, one page; and how many there are in all."""
        marks = ",".join("?" * len(FINAL_STATUSES))
        statuses = [s.value for s in FINAL_STATUSES]
        rows = (
            self._conn.execute(
                # Walk the finish order's index: without the hint SQLite picks the status
                # index and sorts every ended job (seconds at a million) for one page.
                f"SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_finished_seq WHERE status IN ({marks})"
                " ORDER BY finished_seq DESC LIMIT ? OFFSET ?",
                [*statuses, limit, offset],
            ).fetchall()
            if limit
            else []
        )
        counts = self.count_by_status()
        return [job_from_row(row) for row in rows], sum(counts.get(s, 0) for s in statuses)

    def search(self, text: str, limit: int = 500) -> list[Job]:
        """Jobs whose prompt, id, status or user contains ``text`` (case-insensitive)."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._conn.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE prompt LIKE ?1 ESCAPE '\\' OR job_id LIKE ?1 ESCAPE '\\'"
            " OR status LIKE ?1 ESCAPE '\\' OR user LIKE ?1 ESCAPE '\\'"
            " ORDER BY queue_seq DESC LIMIT ?2",
            (pattern, limit),
        ).fetchall()
        return [job_from_row(row) for row in rows]

    def downloaded_completed(self) -> list[Job]:
        """Completed jobs whose videos were downloaded: their auto-delete is due or pending."""
        rows = self._conn.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_downloaded"
            " WHERE downloaded_at IS NOT NULL AND status = 'completed'"
        ).fetchall()
        return [job_from_row(row) for row in rows]

    def all_job_ids(self) -> set[str]:
        return {row[0] for row in self._conn.execute("SELECT job_id FROM jobs")}

    def known_ids(self, job_ids: Iterable[str]) -> set[str]:
        """Those of ``job_ids`` the store holds (read in batches: as many as there are
        folders, not as many as there are jobs)."""
        wanted = list(job_ids)
        known: set[str] = set()
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            rows = self._conn.execute(
                f"SELECT job_id FROM jobs WHERE job_id IN ({','.join('?' * len(batch))})", batch
            ).fetchall()
            known.update(row[0] for row in rows)
        return known

    def count_by_status(self) -> dict[str, int]:
        if self._counts is None:
            rows = self._conn.execute(
                "SELECT labels, value FROM metric_values WHERE name = ? AND bucket = 0", (aggregates.JOBS_NOW,)
            ).fetchall()
            self._counts = {status: int(value) for status, value in rows if value}
        return dict(self._counts)

    def _count(self, status: str, step: int) -> None:
        if self._counts is not None:
            self._counts[status] = self._counts.get(status, 0) + step

    def timeline(self, job_id: str) -> list[JobEvent]:
        rows = self._conn.execute(
            "SELECT job_id, at, status, detail FROM events WHERE job_id = ? ORDER BY id", (job_id,)
        ).fetchall()
        return [
            JobEvent(
                job_id=r["job_id"], at=parse_time(r["at"]) or utcnow(), status=Status(r["status"]), detail=r["detail"]
            )
            for r in rows
        ]

    def estimate(self, model: str) -> float | None:
        row = self._conn.execute("SELECT seconds FROM estimates WHERE model = ?", (model,)).fetchone()
        return row[0] if row else None

    def metrics(self) -> dict[str, Any]:
        """All-time figures from the aggregates kept with the event log (deleted jobs still
        count); the cost does not grow with the history."""
        return {
            "queue_length": self.queue_length(),
            "processing": self.processing_count(),
            **summary(self.metric_snapshot()),
        }

    def queue_length(self) -> int:
        return self._queued

    def processing_count(self) -> int:
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        (count,) = self._conn.execute(
            f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", [s.value for s in ACTIVE_STATUSES]
        ).fetchone()
        return int(count)

    def metric_snapshot(self) -> Snapshot:
        return Snapshot(self._conn.execute("SELECT name, labels, bucket, value FROM metric_values").fetchall())

    def metric_series(self, hours: int, now: datetime | None = None) -> list[dict[str, Any]]:
        """Jobs ended per hour by status and the longest queue of each hour, for the last
        ``hours`` hours (the current one included), oldest first."""
        now = now or utcnow()
        keys = [hour_of(isoformat(now - timedelta(hours=n)) or "") for n in range(hours - 1, -1, -1)]
        rows = self._conn.execute(
            "SELECT hour, name, labels, value FROM metric_hours WHERE hour >= ? AND hour <= ?", (keys[0], keys[-1])
        ).fetchall()
        return series_rows([tuple(r) for r in rows], keys)

    def count(self, name: str, labels: str = "", amount: float = 1.0) -> None:
        """Add to a persisted counter (e.g. ``retries_total``)."""
        with self._transaction("count a retry") as conn:
            aggregates.add(conn, name, labels, amount)

    # -- writing --------------------------------------------------------------------------

    def insert(self, job: Job) -> Job:
        """A new queued job, at the back of the queue."""
        with self._transaction("queue the job") as conn:
            queued = self._queued + 1
            seq = self._next_seq(conn)
            job = job.replace(queue_seq=seq, status=Status.QUEUED)
            conn.execute(INSERT_JOB, job_to_row(job))
            conn.execute(
                "INSERT INTO events (job_id, at, status, detail, kind, user, model) VALUES (?, ?, ?, ?, 'submitted', ?, ?)",
                (job.job_id, isoformat(job.created_at), "queued", "submitted", job.request.user, job.request.model),
            )
            aggregates.add(conn, "submitted_total", job.request.user)
            aggregates.add(conn, aggregates.JOBS_NOW, job.status.value)
            aggregates.max_hour(conn, hour_of(isoformat(utcnow()) or ""), "queue_max", queued)
        self._count(job.status.value, +1)
        self._queued += 1
        self._remember(job)
        self._notify(Change("job", job.job_id, job))
        return job

    def insert_many(self, jobs: Iterable[Job]) -> None:
        """Bulk insert (imports, benchmarks) as given, numbered in order; no listeners are told."""
        jobs = list(jobs)
        ended = sorted(
            (n for n, job in enumerate(jobs) if job.status.is_final),
            key=lambda n: (jobs[n].finished_at or jobs[n].created_at, n),
        )
        with self._transaction() as conn:
            seq = self._next_seq(conn, len(jobs))
            first_finished = self._next_seq(conn, len(ended), "finished_seq")
            finished = {n: first_finished + rank for rank, n in enumerate(ended)}
            conn.executemany(
                INSERT_JOB,
                [
                    job_to_row(job.replace(queue_seq=seq + n, finished_seq=finished.get(n), submitting=False))
                    for n, job in enumerate(jobs)
                ],
            )
            for status, count in Counter(job.status.value for job in jobs).items():
                aggregates.add(conn, aggregates.JOBS_NOW, status, count)
        self._counts = None
        self._queued += sum(1 for job in jobs if job.status == Status.QUEUED)

    @staticmethod
    def _next_seq(conn: sqlite3.Connection, count: int = 1, counter: str = "queue_seq") -> int:
        """The first of ``count`` new numbers of ``counter`` (inside the caller's transaction)."""
        (top,) = conn.execute(
            "UPDATE counters SET value = value + ? WHERE name = ? RETURNING value", (count, counter)
        ).fetchone()
        return int(top) - count + 1

    @staticmethod
    def _front_seq(conn: sqlite3.Connection) -> float:
        """A key before every queued job's (a new whole number when the queue is empty)."""
        (first,) = conn.execute("SELECT MIN(queue_seq) FROM jobs WHERE status = 'queued'").fetchone()
        return first - 1 if first is not None else SqliteStore._next_seq(conn)

    def transition(
        self,
        job_id: str,
        target: Status,
        *,
        expect: Iterable[Status] | None = None,
        detail: str | None = None,
        seconds: float | None = None,
        **fields: Any,
    ) -> Job:
        """Move a job to ``target`` in one transaction, if the move is allowed from its
        current status (and that status is one of ``expect``, when given)."""
        now = utcnow()
        with self._transaction(f"record that job {job_id} is {target.value}") as conn:
            job = self._current(conn, job_id)
            allowed = set(expect) if expect is not None else None
            if (allowed is not None and job.status not in allowed) or not can_transition(job.status, target):
                raise Conflict(f"job {job_id} is {job.status.value}; it cannot become {target.value}")
            if target == Status.QUEUED and job.status.is_final:
                fields["queue_seq"] = self._next_seq(conn)
                fields["finished_seq"] = None
            elif target == Status.QUEUED and job.status.is_active:
                # Back to the front (restart recovery), on a key no queued job holds.
                fields["queue_seq"] = self._front_seq(conn)
            if target in ACTIVE_STATUSES or target == Status.QUEUED:
                fields.setdefault("stage_started_at", now)
            if target.is_final:
                fields["finished_seq"] = self._next_seq(conn, counter="finished_seq")
                fields.setdefault("finished_at", now)
                fields.setdefault("submitting", False)
            before = job
            previous = job.status
            job = job.replace(status=target, **as_job_fields(fields))
            queued = self._queued + (target == Status.QUEUED) - (previous == Status.QUEUED)
            self._write_fields(conn, job, fields, status=target, expect=previous)
            self._count_transition(conn, before, job, now, seconds, queued)
            aggregates.add(conn, aggregates.JOBS_NOW, previous.value, -1)
            aggregates.add(conn, aggregates.JOBS_NOW, target.value)
            conn.execute(
                "INSERT INTO events (job_id, at, status, detail, user, model, error_kind, seconds)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    isoformat(now),
                    target.value,
                    detail,
                    job.request.user,
                    job.request.model,
                    job.error_kind if target == Status.FAILED else None,
                    seconds,
                ),
            )
        self._count(previous.value, -1)
        self._count(target.value, +1)
        self._queued = queued
        self._remember(job)
        self._clock(job)
        self._notify(Change("job", job_id, job))
        event(
            log,
            logging.WARNING if target == Status.FAILED else logging.INFO,
            "job.transition",
            "%s -> %s%s",
            before.status.value,
            target.value,
            f": {detail}" if detail else "",
            job_id=job_id,
            previous=before.status.value,
            status=target.value,
            at=isoformat(now),
            detail=detail,
            attempts=job.attempts,
            error_kind=job.error_kind if target == Status.FAILED else None,
        )
        return job

    def _count_transition(
        self, conn: sqlite3.Connection, before: Job, after: Job, now: datetime, seconds: float | None, queued: int
    ) -> None:
        """Fold one transition into the aggregates, inside its transaction. Stage times come
        from the monotonic clock when the stage began in this process."""
        previous, target = before.status, after.status
        in_stage = self.stage_elapsed(before)
        if in_stage is None:
            since = before.stage_started_at or (before.created_at if previous == Status.QUEUED else None)
            in_stage = (now - since).total_seconds() if since is not None else None
        if previous in ACTIVE_STATUSES and in_stage is not None:
            aggregates.observe(conn, "stage_duration_seconds", in_stage, previous.value)
        if previous == Status.QUEUED and target == Status.STARTING and in_stage is not None:
            aggregates.observe(conn, "queue_wait_seconds", in_stage)
        hour = hour_of(isoformat(now) or "")
        if target == Status.QUEUED:
            aggregates.max_hour(conn, hour, "queue_max", queued)
        if not target.is_final:
            return
        aggregates.add(conn, "jobs_total", target.value)
        aggregates.add_hour(conn, hour, "finished", target.value)
        if target == Status.FAILED:
            aggregates.add(conn, "errors_total", after.error_kind or "unknown")
        elif target == Status.COMPLETED:
            if seconds is None and after.started_at is not None:
                seconds = (now - after.started_at).total_seconds()
            if seconds is not None:
                aggregates.observe(conn, "job_duration_seconds", seconds)

    def _clock(self, job: Job) -> None:
        if job.status.is_final:
            self._stage_clock.pop(job.job_id, None)
            self._run_clock.pop(job.job_id, None)
            return
        now = time.monotonic()
        self._stage_clock[job.job_id] = (job.status, now)
        if job.status == Status.STARTING:
            self._run_clock[job.job_id] = now
        elif job.status == Status.QUEUED:
            self._run_clock.pop(job.job_id, None)

    def stage_elapsed(self, job: Job) -> float | None:
        """Seconds the job has been in its current stage, by the monotonic clock, if that
        stage began in this process; else None (the caller falls back to the wall clock)."""
        clock = self._stage_clock.get(job.job_id)
        if clock is None or clock[0] != job.status:
            return None
        return time.monotonic() - clock[1]

    def run_elapsed(self, job_id: str) -> float | None:
        """Seconds since the job last started in this process, by the monotonic clock."""
        began = self._run_clock.get(job_id)
        return None if began is None else time.monotonic() - began

    def update(self, job_id: str, *, note: str | None = None, **fields: Any) -> Job:
        """Change fields without a transition; ``note`` adds a line to the timeline."""
        with self._transaction(f"record a change to job {job_id}") as conn:
            job = self._current(conn, job_id)
            job = job.replace(**as_job_fields(fields))
            self._write_fields(conn, job, fields, expect=job.status)
            if note:
                conn.execute(
                    "INSERT INTO events (job_id, at, status, detail, kind) VALUES (?, ?, ?, ?, 'note')",
                    (job_id, isoformat(utcnow()), job.status.value, note),
                )
        self._remember(job)
        if note:
            event(log, logging.INFO, "job.note", "%s", note, job_id=job_id, status=job.status.value)
        self._notify(Change("job", job_id, job))
        return job

    def record_operation(self, job_id: str, operation: str, *, note: str | None = None) -> Job:
        """The submit created ``operation``: record it on the job and count the job's
        estimate in today's spend, in one transaction (an operation counts once)."""
        now = utcnow()
        with self._transaction(f"record the operation of job {job_id}") as conn:
            job = self._current(conn, job_id)
            fields = {"operation": operation, "submitting": False, "operation_done": False, "result": None}
            job = job.replace(**fields)
            self._write_fields(conn, job, fields, expect=job.status)
            bought = conn.execute(
                "INSERT OR IGNORE INTO spend (operation, job_id, day, at, usd) VALUES (?, ?, ?, ?, ?)",
                (operation, job_id, now.date().isoformat(), isoformat(now), job.estimated_cost_usd),
            ).rowcount
            if bought and job.estimated_cost_usd:
                aggregates.add(conn, "estimated_cost_usd_total", "", float(job.estimated_cost_usd))
            if note:
                conn.execute(
                    "INSERT INTO events (job_id, at, status, detail, kind) VALUES (?, ?, ?, ?, 'note')",
                    (job_id, isoformat(now), job.status.value, note),
                )
        self._remember(job)
        self._notify(Change("job", job_id, job))
        # Today's spend changed: whoever shows it (the header) hears it with the queue's state.
        self._notify(Change("queue", "", queue=self.queue_state()))
        return job

    def spend_on(self, day: date) -> float:
        """The estimated cost of the operations created on ``day`` (UTC), in US dollars."""
        (total,) = self._conn.execute(
            "SELECT COALESCE(SUM(usd), 0) FROM spend WHERE day = ?", (day.isoformat(),)
        ).fetchone()
        return round(float(total), 2)

    def spend_today(self) -> float:
        """The estimated cost of the operations created today (UTC): what was bought today."""
        return self.spend_on(utcnow().date())

    def _current(self, conn: sqlite3.Connection, job_id: str) -> Job:
        job = self._active.get(job_id)
        if job is not None:
            return job
        row = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return job_from_row(row)

    def _write_fields(
        self,
        conn: sqlite3.Connection,
        job: Job,
        names: Iterable[str],
        status: Status | None = None,
        expect: Status | None = None,
    ) -> None:
        """Write ``job``'s columns for the fields ``names`` (and its status, when given)."""
        row = job_to_row(job)
        columns = [*(["status"] if status is not None else []), *names]
        if not columns:
            return
        sql = f"UPDATE jobs SET {', '.join(f'{c} = :{c}' for c in columns)} WHERE job_id = :job_id"
        if expect is None:
            conn.execute(sql, row)
        elif conn.execute(sql + " AND status = :expected", {**row, "expected": expect.value}).rowcount != 1:
            self._active.pop(job.job_id, None)
            raise Conflict(f"job {job.job_id} changed under veotui's feet; try again")

    def delete(self, job_id: str, reason: str | None = None) -> Job:
        """Remove the job's row and remember its remote files until they are cleaned up.
        With a ``reason`` (the engine removed it by itself), a lookup of the job answers it
        for a while. On a full disk the guard's reserve is dropped to make room for the delete."""
        job = self.get(job_id)
        try:
            self._delete_row(job, reason)
        except StorageUnavailable:
            if not self.guard.release_reserve():
                raise
            self._delete_row(job, reason)
        self._notify(Change("deleted", job_id))
        return job

    def _delete_row(self, job: Job, reason: str | None = None) -> None:
        job_id = job.job_id
        with self._transaction(f"delete job {job_id}") as conn:
            if reason is not None:
                now = utcnow()
                conn.execute(
                    "DELETE FROM tombstones WHERE job_id = ? OR at < ?",
                    (job_id, isoformat(now - timedelta(days=TOMBSTONE_DAYS))),
                )
                conn.execute(
                    "INSERT INTO tombstones (job_id, at, reason) VALUES (?, ?, ?)", (job_id, isoformat(now), reason)
                )
                (count,) = conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()
                if count > TOMBSTONE_ROWS:
                    conn.execute(
                        "DELETE FROM tombstones WHERE job_id IN (SELECT job_id FROM tombstones ORDER BY at LIMIT ?)",
                        (count - TOMBSTONE_ROWS,),
                    )
            conn.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            aggregates.add(conn, aggregates.JOBS_NOW, job.status.value, -1)
            self._active.pop(job_id, None)
            self._stage_clock.pop(job_id, None)
            self._run_clock.pop(job_id, None)
            conn.execute(
                "INSERT OR REPLACE INTO pending_cleanup (job_id, job, since) VALUES (?, ?, ?)",
                (job_id, json.dumps(job_to_row(job)), isoformat(utcnow())),
            )
            conn.execute(
                "INSERT INTO events (job_id, at, status, detail, kind) VALUES (?, ?, ?, 'deleted', 'deleted')",
                (job_id, isoformat(utcnow()), job.status.value),
            )
        self._count(job.status.value, -1)
        if job.status == Status.QUEUED:
            self._queued -= 1
        event(
            log,
            logging.INFO,
            "job.deleted",
            "deleted (was %s)",
            job.status.value,
            job_id=job_id,
            status=job.status.value,
        )

    # -- the queue: pause and order ---------------------------------------------------------

    def is_paused(self) -> bool:
        return bool(self._conn.execute("SELECT paused FROM queue_control WHERE id = 1").fetchone()[0])

    def pause_flags(self) -> tuple[bool, bool, str | None]:
        """Paused, paused by the budget, and the reason: the dispatch loop's cheap read."""
        paused, by_budget, reason = self._conn.execute(
            "SELECT paused, by_budget, reason FROM queue_control WHERE id = 1"
        ).fetchone()
        return bool(paused), bool(by_budget), reason

    def queue_state(self) -> QueueState:
        paused, reason, by_budget = self._conn.execute(
            "SELECT paused, reason, by_budget FROM queue_control WHERE id = 1"
        ).fetchone()
        return QueueState(
            paused=bool(paused),
            reason=reason,
            length=self.queue_length(),
            by_budget=bool(by_budget),
            spent_today_usd=self.spend_today(),
        )

    def set_paused(self, paused: bool, reason: str | None = None, *, by_budget: bool = False) -> QueueState:
        """Pause or resume the queue (persisted); listeners get a ``queue`` change."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE queue_control SET paused = ?, reason = ?, by_budget = ?, since = ? WHERE id = 1",
                (int(paused), reason if paused else None, int(paused and by_budget), isoformat(utcnow())),
            )
        state = self.queue_state()
        self._notify(Change("queue", "", queue=state))
        return state

    def budget_override_day(self) -> str | None:
        """The UTC day (YYYY-MM-DD) for which a resume overrode the daily budget."""
        day: str | None = self._conn.execute("SELECT budget_override_day FROM queue_control WHERE id = 1").fetchone()[0]
        return day

    def set_budget_override_day(self, day: str | None) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE queue_control SET budget_override_day = ? WHERE id = 1", (day,))

    def move(self, job_id: str, *, to: str | None = None, position: int | None = None) -> Job:
        """Put a queued job at the top, the bottom, one place up or down, or at a 1-based
        ``position`` (past the end means the bottom).

        Only the moved job's key changes: it takes a key between its new neighbours' keys
        (their midpoint; one below the first; the next whole number at the back). The
        neighbours are found by seeks on the (status, queue_seq) index. When two keys have
        no room left between them (after ~40 moves into the same gap), a small window of
        following jobs is spread out again (see ``_respace``); nobody else is renumbered.
        Listeners hear of the moved job only; positions of the others follow from it."""
        if (to is None) == (position is None):
            raise InvalidRequest("give either to (top, bottom, up, down) or a position")
        if to is not None and to not in ("top", "bottom", "up", "down"):
            raise InvalidRequest(f"to must be top, bottom, up or down, got {clipped(to)}")
        if position is not None and (isinstance(position, bool) or not isinstance(position, int) or position < 1):
            raise InvalidRequest(f"position must be a whole number of at least 1, got {clipped(position)}")
        with self._transaction() as conn:
            job = self._current(conn, job_id)
            if job.status != Status.QUEUED:
                raise Conflict(f"job {job_id} is {job.status.value}; only queued jobs can be moved")
            gap = self._gap_for(conn, job, to, position)
            if gap is None:
                moved = job  # already there
            else:
                seq = self._key_between(conn, job, *gap)
                conn.execute("UPDATE jobs SET queue_seq = ? WHERE job_id = ? AND status = 'queued'", (seq, job_id))
                moved = job.replace(queue_seq=seq)
        self._remember(moved)
        moved = moved.replace(queue_position=self.queue_position(moved))
        if gap is not None:
            self._notify(Change("job", job_id, moved))
        return moved

    @staticmethod
    def _gap_for(
        conn: sqlite3.Connection, job: Job, to: str | None, position: int | None
    ) -> tuple[float | None, float | None] | None:
        """The keys the job must go between (None: an open end), or None to stay put."""
        seq = job.queue_seq

        def seqs(sql: str, *args: Any) -> list[float]:
            return [row[0] for row in conn.execute(sql, args).fetchall()]

        if to == "top" or position == 1:
            first = seqs("SELECT MIN(queue_seq) FROM jobs WHERE status = 'queued' AND job_id != ?", job.job_id)[0]
            return None if first is None or seq < first else (None, first)
        if to == "bottom":
            last = seqs("SELECT MAX(queue_seq) FROM jobs WHERE status = 'queued' AND job_id != ?", job.job_id)[0]
            return None if last is None or seq > last else (last, None)
        if to == "up":
            before = seqs(
                "SELECT queue_seq FROM jobs WHERE status = 'queued' AND queue_seq < ? ORDER BY queue_seq DESC LIMIT 2",
                seq,
            )
            if not before:
                return None
            return (before[1] if len(before) > 1 else None, before[0])
        if to == "down":
            after = seqs(
                "SELECT queue_seq FROM jobs WHERE status = 'queued' AND queue_seq > ? ORDER BY queue_seq LIMIT 2", seq
            )
            if not after:
                return None
            return (after[0], after[1] if len(after) > 1 else None)
        assert position is not None
        # The others in order; the job goes after the (position - 1)-th of them. An index
        # walk of ``position`` entries, as counting a queue position is.
        pair = seqs(
            "SELECT queue_seq FROM jobs WHERE status = 'queued' AND job_id != ? ORDER BY queue_seq LIMIT 2 OFFSET ?",
            job.job_id,
            position - 2,
        )
        if not pair:  # past the end: the bottom
            return SqliteStore._gap_for(conn, job, "bottom", None)
        lower, upper = pair[0], pair[1] if len(pair) > 1 else None
        if lower < seq and (upper is None or seq < upper):
            return None
        return (lower, upper)

    def _key_between(self, conn: sqlite3.Connection, job: Job, before: float | None, after: float | None) -> float:
        if before is None and after is None:
            return job.queue_seq
        if before is None:
            assert after is not None
            return after - 1
        if after is None:
            return self._next_seq(conn)
        middle = (before + after) / 2
        if before < middle < after:
            return int(middle) if middle.is_integer() else middle
        return self._respace(conn, job, before, after)

    def _respace(self, conn: sqlite3.Connection, job: Job, before: float, after: float) -> float:
        """No key fits between ``before`` and ``after``: spread the job and the next few
        queued jobs evenly up to a key further on (a window that doubles until it has
        room; at the queue's end, up to a new whole number). Returns the job's key."""
        window = RESPACE_WINDOW
        while True:
            rows = conn.execute(
                "SELECT job_id, queue_seq FROM jobs WHERE status = 'queued' AND queue_seq >= ? AND job_id != ?"
                " ORDER BY queue_seq LIMIT ?",
                (after, job.job_id, window + 1),
            ).fetchall()
            shifted = [row[0] for row in rows[:window]]
            limit = rows[window][1] if len(rows) > window else self._next_seq(conn)
            step = (limit - before) / (len(shifted) + 2)
            # Enough room that the next ~20 moves into any of these gaps need no respacing.
            if step >= max(1.0, abs(before)) * ROOM_AFTER_RESPACE:
                break
            window *= 2
        keys = [before + step * n for n in range(1, len(shifted) + 2)]
        for other, key in zip(shifted, keys[1:], strict=True):
            conn.execute("UPDATE jobs SET queue_seq = ? WHERE job_id = ?", (key, other))
            cached = self._active.get(other)
            if cached is not None:
                self._active[other] = cached.replace(queue_seq=key)
        return keys[0]

    def pending_cleanups(self) -> list[Job]:
        rows = self._conn.execute("SELECT job FROM pending_cleanup ORDER BY since").fetchall()
        return [_cleanup_job(json.loads(row[0])) for row in rows]

    def cleanup_done(self, job_id: str) -> None:
        with self._transaction("record a finished clean-up") as conn:
            conn.execute("DELETE FROM pending_cleanup WHERE job_id = ?", (job_id,))

    def record_duration(self, model: str, seconds: float, prior: float | None = None) -> float | None:
        """Fold one generation time into the model's moving estimate (clamped against it, or
        against ``prior`` before the first sample); return the estimate."""
        with self._transaction("record a generation time") as conn:
            row = conn.execute("SELECT seconds, samples FROM estimates WHERE model = ?", (model,)).fetchone()
            current, samples = (row[0], row[1]) if row else (None, 0)
            estimate = fold_sample(current, seconds, prior)
            if estimate is None or not (math.isfinite(seconds) and seconds > 0):
                return current  # dropped
            samples += 1
            conn.execute(
                "INSERT OR REPLACE INTO estimates (model, seconds, samples) VALUES (?, ?, ?)",
                (model, estimate, samples),
            )
        return estimate

    def integrity_check(self) -> str:
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])


def _cleanup_job(data: dict[str, Any]) -> Job:
    """A ``pending_cleanup`` entry: the job's row as JSON. Entries written before that
    shape hold the job's API object (videos as a list, not JSON text); read those too."""
    if isinstance(data.get("videos"), str):
        return job_from_row(data)
    return Job.from_dict(data)

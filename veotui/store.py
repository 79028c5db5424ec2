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
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from veotui import metrics as m
from veotui.errors import Conflict, InvalidRequest, JobNotFound
from veotui.logs import event
from veotui.model import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    Change,
    Job,
    JobEvent,
    JobRequest,
    Status,
    Video,
    can_transition,
    isoformat,
    parse_time,
    utcnow,
)

MIGRATIONS: tuple[str, ...] = (
    # 1: jobs, their events, and the moving estimate of generation time per model.
    """
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        queue_seq INTEGER NOT NULL,
        status TEXT NOT NULL,
        prompt TEXT NOT NULL,
        number_of_videos INTEGER NOT NULL,
        model TEXT NOT NULL,
        aspect_ratio TEXT NOT NULL,
        duration_seconds INTEGER NOT NULL,
        resolution TEXT NOT NULL,
        negative_prompt TEXT,
        seed INTEGER,
        user TEXT NOT NULL,
        has_image INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        stage_started_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        error_kind TEXT,
        operation TEXT,
        submitting INTEGER NOT NULL DEFAULT 0,
        videos TEXT NOT NULL DEFAULT '[]',
        downloaded_at TEXT
    );
    CREATE INDEX jobs_status_seq ON jobs (status, queue_seq);
    CREATE INDEX jobs_finished ON jobs (finished_at);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        at TEXT NOT NULL,
        status TEXT NOT NULL,
        detail TEXT,
        kind TEXT NOT NULL DEFAULT 'transition',
        user TEXT,
        model TEXT,
        error_kind TEXT,
        seconds REAL
    );
    CREATE INDEX events_job ON events (job_id, id);
    CREATE TABLE estimates (
        model TEXT PRIMARY KEY,
        seconds REAL NOT NULL,
        samples INTEGER NOT NULL
    );
    CREATE TABLE pending_cleanup (
        job_id TEXT PRIMARY KEY,
        job TEXT NOT NULL,
        since TEXT NOT NULL
    );
    """,
    # 2: a queue counter that only ever grows, so a deleted job's number is never reused.
    """
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counters (name, value) SELECT 'queue_seq', COALESCE(MAX(queue_seq), 0) FROM jobs
    """,
    # 3: aggregates for /metrics, kept in the transaction of each transition, so a scrape
    # never reads the history; filled from the event log for what came before.
    m.MIGRATION_SQL,
)

log = logging.getLogger(__name__)

#: Weight of the newest sample in the moving estimate of generation time.
ESTIMATE_WEIGHT = 0.3
_JOB_COLUMNS = (
    "job_id, queue_seq, status, prompt, number_of_videos, model, aspect_ratio, duration_seconds,"
    " resolution, negative_prompt, seed, user, has_image, created_at, started_at, finished_at,"
    " stage_started_at, attempts, error, error_kind, operation, submitting, videos, downloaded_at"
)
_TIME_FIELDS = {"created_at", "started_at", "finished_at", "stage_started_at", "downloaded_at"}
_UPDATABLE = {
    "started_at",
    "finished_at",
    "stage_started_at",
    "attempts",
    "error",
    "error_kind",
    "operation",
    "submitting",
    "videos",
    "downloaded_at",
    "queue_seq",
}

Listener = Callable[[Change], None]


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA busy_timeout = 5000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._listeners: list[Listener] = []
        # Write-through copy of the jobs that are not finished. This process is the only
        # writer (the data-directory lock), so the copy is the truth; every UPDATE still
        # checks the status it expects, in SQL, in case it is not.
        self._active: dict[str, Job] = {}
        self._migrate()
        # Kept in step with every write (one writer), so reading it costs nothing.
        (self._queued,) = self._conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def add_listener(self, listener: Listener) -> None:
        """Called after every commit that changes a job, with the change."""
        self._listeners.append(listener)

    def _notify(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise RuntimeError(f"{self.path} was written by a newer veotui (schema {version}); upgrade veotui")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    # -- reading --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        job = self._active.get(job_id)
        if job is not None:
            return job
        row = self._conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return self._remember(_job_from_row(row))

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
            raise JobNotFound(prefix, f"no job id starts with {prefix!r}")
        if len(rows) > 1:
            raise InvalidRequest(f"more than one job id starts with {prefix!r}; give more of it")
        return rows[0][0]

    def active(self) -> list[Job]:
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        rows = self._conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status IN ({marks}) ORDER BY started_at, queue_seq",
            [s.value for s in ACTIVE_STATUSES],
        ).fetchall()
        return [_job_from_row(row) for row in rows]

    def queued(self, limit: int | None = None) -> list[Job]:
        """Queued jobs in FIFO order, each with its 1-based position."""
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = 'queued' ORDER BY queue_seq"
        rows = self._conn.execute(sql + (" LIMIT ?" if limit else ""), (limit,) if limit else ()).fetchall()
        return [_job_from_row(row).replace(queue_position=n) for n, row in enumerate(rows, start=1)]

    def next_queued(self) -> Job | None:
        row = self._conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = 'queued' ORDER BY queue_seq LIMIT 1"
        ).fetchone()
        return _job_from_row(row) if row else None

    def queue_position(self, job: Job) -> int:
        (ahead,) = self._conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND queue_seq < ?", (job.queue_seq,)
        ).fetchone()
        return ahead + 1

    def history(self, limit: int = 100, offset: int = 0) -> tuple[list[Job], int]:
        """Ended jobs, newest first, one page; and how many there are in all."""
        marks = ",".join("?" * len(FINAL_STATUSES))
        statuses = [s.value for s in FINAL_STATUSES]
        rows = self._conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status IN ({marks})"
            " ORDER BY finished_at DESC, queue_seq DESC LIMIT ? OFFSET ?",
            [*statuses, limit, offset],
        ).fetchall()
        (total,) = self._conn.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", statuses).fetchone()
        return [_job_from_row(row) for row in rows], total

    def search(self, text: str, limit: int = 500) -> list[Job]:
        """Jobs whose prompt, id, status or user contains ``text`` (case-insensitive)."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE prompt LIKE ?1 ESCAPE '\\' OR job_id LIKE ?1 ESCAPE '\\'"
            " OR status LIKE ?1 ESCAPE '\\' OR user LIKE ?1 ESCAPE '\\'"
            " ORDER BY queue_seq DESC LIMIT ?2",
            (pattern, limit),
        ).fetchall()
        return [_job_from_row(row) for row in rows]

    def downloaded_completed(self) -> list[Job]:
        """Completed jobs whose videos were downloaded: their auto-delete is due or pending."""
        rows = self._conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = 'completed' AND downloaded_at IS NOT NULL"
        ).fetchall()
        return [_job_from_row(row) for row in rows]

    def all_job_ids(self) -> set[str]:
        return {row[0] for row in self._conn.execute("SELECT job_id FROM jobs")}

    def count_by_status(self) -> dict[str, int]:
        return dict(self._conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())

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
            **m.summary(self.metric_snapshot()),
        }

    def queue_length(self) -> int:
        return self._queued

    def processing_count(self) -> int:
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        (count,) = self._conn.execute(
            f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", [s.value for s in ACTIVE_STATUSES]
        ).fetchone()
        return count

    def metric_snapshot(self) -> m.Snapshot:
        return m.Snapshot(self._conn.execute("SELECT name, labels, bucket, value FROM metric_values").fetchall())

    def metric_series(self, hours: int, now: datetime | None = None) -> list[dict[str, Any]]:
        """Jobs ended per hour by status and the longest queue of each hour, for the last
        ``hours`` hours (the current one included), oldest first."""
        now = now or utcnow()
        keys = [m.hour_of(isoformat(now - timedelta(hours=n)) or "") for n in range(hours - 1, -1, -1)]
        rows = self._conn.execute(
            "SELECT hour, name, labels, value FROM metric_hours WHERE hour >= ? AND hour <= ?", (keys[0], keys[-1])
        ).fetchall()
        return m.series_rows([tuple(r) for r in rows], keys)

    def count(self, name: str, labels: str = "", amount: float = 1.0) -> None:
        """Add to a persisted counter (e.g. ``retries_total``)."""
        with self._transaction() as conn:
            m.add(conn, name, labels, amount)

    # -- writing --------------------------------------------------------------------------

    def insert(self, job: Job) -> Job:
        """A new queued job, at the back of the queue."""
        with self._transaction() as conn:
            seq = self._next_seq(conn)
            job = job.replace(queue_seq=seq, status=Status.QUEUED)
            req = job.request
            conn.execute(
                f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 24)})",
                (
                    job.job_id,
                    seq,
                    job.status.value,
                    req.prompt,
                    req.number_of_videos,
                    req.model,
                    req.aspect_ratio,
                    req.duration_seconds,
                    req.resolution,
                    req.negative_prompt,
                    req.seed,
                    req.user,
                    int(job.has_image),
                    isoformat(job.created_at),
                    None,
                    None,
                    None,
                    0,
                    None,
                    None,
                    None,
                    0,
                    "[]",
                    None,
                ),
            )
            conn.execute(
                "INSERT INTO events (job_id, at, status, detail, kind, user, model) VALUES (?, ?, ?, ?, 'submitted', ?, ?)",
                (job.job_id, isoformat(job.created_at), "queued", "submitted", req.user, req.model),
            )
            m.add(conn, "submitted_total", req.user)
            m.max_hour(conn, m.hour_of(isoformat(utcnow()) or ""), "queue_max", self._queued + 1)
        self._queued += 1
        self._remember(job)
        self._notify(Change("job", job.job_id, job))
        return job

    def insert_many(self, jobs: Iterable[Job]) -> None:
        """Bulk insert (imports, benchmarks); no listeners are told."""
        jobs = list(jobs)
        with self._transaction() as conn:
            seq = self._next_seq(conn, len(jobs))
            for offset, job in enumerate(jobs):
                req = job.request
                conn.execute(
                    f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 24)})",
                    (
                        job.job_id,
                        seq + offset,
                        job.status.value,
                        req.prompt,
                        req.number_of_videos,
                        req.model,
                        req.aspect_ratio,
                        req.duration_seconds,
                        req.resolution,
                        req.negative_prompt,
                        req.seed,
                        req.user,
                        int(job.has_image),
                        isoformat(job.created_at),
                        isoformat(job.started_at),
                        isoformat(job.finished_at),
                        None,
                        job.attempts,
                        job.error,
                        job.error_kind,
                        job.operation,
                        0,
                        json.dumps([v.__dict__ for v in job.videos]),
                        None,
                    ),
                )
        self._queued += sum(1 for job in jobs if job.status == Status.QUEUED)

    @staticmethod
    def _next_seq(conn: sqlite3.Connection, count: int = 1) -> int:
        """The first of ``count`` new queue numbers (inside the caller's transaction)."""
        (top,) = conn.execute(
            "UPDATE counters SET value = value + ? WHERE name = 'queue_seq' RETURNING value", (count,)
        ).fetchone()
        return top - count + 1

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
        with self._transaction() as conn:
            job = self._current(conn, job_id)
            allowed = set(expect) if expect is not None else None
            if (allowed is not None and job.status not in allowed) or not can_transition(job.status, target):
                raise Conflict(f"job {job_id} is {job.status.value}; it cannot become {target.value}")
            if target == Status.QUEUED and job.status.is_final:
                fields["queue_seq"] = self._next_seq(conn)
            if target in ACTIVE_STATUSES or target == Status.QUEUED:
                fields.setdefault("stage_started_at", now)
            if target.is_final:
                fields.setdefault("finished_at", now)
                fields.setdefault("submitting", False)
            self._write_fields(conn, job_id, fields, status=target, expect=job.status)
            before = job
            job = job.replace(status=target, **_as_job_fields(fields))
            queued = self._queued + (target == Status.QUEUED) - (before.status == Status.QUEUED)
            self._count_transition(conn, before, job, now, seconds, queued)
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
        self._queued = queued
        self._remember(job)
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
        self._notify(Change("job", job_id, job))
        return job

    @staticmethod
    def _count_transition(
        conn: sqlite3.Connection, before: Job, after: Job, now: datetime, seconds: float | None, queued: int
    ) -> None:
        """Fold one transition into the aggregates, inside its transaction."""
        previous, target = before.status, after.status
        if previous in ACTIVE_STATUSES and before.stage_started_at is not None:
            m.observe(conn, "stage_duration_seconds", (now - before.stage_started_at).total_seconds(), previous.value)
        if previous == Status.QUEUED and target == Status.STARTING:
            since = before.stage_started_at or before.created_at
            m.observe(conn, "queue_wait_seconds", (now - since).total_seconds())
        hour = m.hour_of(isoformat(now) or "")
        if target == Status.QUEUED:
            m.max_hour(conn, hour, "queue_max", queued)
        if not target.is_final:
            return
        m.add(conn, "jobs_total", target.value)
        m.add_hour(conn, hour, "finished", target.value)
        if target == Status.FAILED:
            m.add(conn, "errors_total", after.error_kind or "unknown")
        elif target == Status.COMPLETED:
            if seconds is None and after.started_at is not None:
                seconds = (now - after.started_at).total_seconds()
            if seconds is not None:
                m.observe(conn, "job_duration_seconds", seconds)
            cost = getattr(after, "estimated_cost_usd", None)
            if cost:
                m.add(conn, "estimated_cost_usd_total", "", float(cost))

    def update(self, job_id: str, *, note: str | None = None, **fields: Any) -> Job:
        """Change fields without a transition; ``note`` adds a line to the timeline."""
        with self._transaction() as conn:
            job = self._current(conn, job_id)
            self._write_fields(conn, job_id, fields, expect=job.status)
            job = job.replace(**_as_job_fields(fields))
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

    def _current(self, conn: sqlite3.Connection, job_id: str) -> Job:
        job = self._active.get(job_id)
        if job is not None:
            return job
        row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return _job_from_row(row)

    def _write_fields(
        self,
        conn: sqlite3.Connection,
        job_id: str,
        fields: dict[str, Any],
        status: Status | None = None,
        expect: Status | None = None,
    ) -> None:
        assignments: list[str] = []
        values: list[Any] = []
        if status is not None:
            assignments.append("status = ?")
            values.append(status.value)
        for name, value in fields.items():
            if name not in _UPDATABLE:
                raise ValueError(f"field {name} cannot be updated")
            if name in _TIME_FIELDS:
                value = isoformat(value) if isinstance(value, datetime) else value
            elif name == "videos":
                value = json.dumps(
                    [{"index": v.index, "filename": v.filename, "size_bytes": v.size_bytes} for v in value]
                )
            elif name == "submitting":
                value = int(bool(value))
            assignments.append(f"{name} = ?")
            values.append(value)
        if not assignments:
            return
        sql = f"UPDATE jobs SET {', '.join(assignments)} WHERE job_id = ?"
        if expect is None:
            conn.execute(sql, (*values, job_id))
        elif conn.execute(sql + " AND status = ?", (*values, job_id, expect.value)).rowcount != 1:
            self._active.pop(job_id, None)
            raise Conflict(f"job {job_id} changed under veotui's feet; try again")

    def delete(self, job_id: str) -> Job:
        """Remove the job's row and remember its remote files until they are cleaned up."""
        job = self.get(job_id)
        with self._transaction() as conn:
            conn.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            self._active.pop(job_id, None)
            conn.execute(
                "INSERT OR REPLACE INTO pending_cleanup (job_id, job, since) VALUES (?, ?, ?)",
                (job_id, json.dumps(job.to_dict()), isoformat(utcnow())),
            )
            conn.execute(
                "INSERT INTO events (job_id, at, status, detail, kind) VALUES (?, ?, ?, 'deleted', 'deleted')",
                (job_id, isoformat(utcnow()), job.status.value),
            )
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
        self._notify(Change("deleted", job_id))
        return job

    def pending_cleanups(self) -> list[Job]:
        rows = self._conn.execute("SELECT job FROM pending_cleanup ORDER BY since").fetchall()
        return [Job.from_dict(json.loads(row[0])) for row in rows]

    def cleanup_done(self, job_id: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM pending_cleanup WHERE job_id = ?", (job_id,))

    def record_duration(self, model: str, seconds: float) -> float:
        """Fold one generation time into the model's moving estimate; return the estimate."""
        with self._transaction() as conn:
            row = conn.execute("SELECT seconds, samples FROM estimates WHERE model = ?", (model,)).fetchone()
            if row is None:
                estimate, samples = seconds, 1
            else:
                estimate = row[0] + ESTIMATE_WEIGHT * (seconds - row[0])
                samples = row[1] + 1
            conn.execute(
                "INSERT OR REPLACE INTO estimates (model, seconds, samples) VALUES (?, ?, ?)",
                (model, estimate, samples),
            )
        return estimate

    def integrity_check(self) -> str:
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0]


def _as_job_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Written values as the Job dataclass holds them."""
    converted = dict(fields)
    if "videos" in converted:
        converted["videos"] = tuple(converted["videos"])
    if "submitting" in converted:
        converted["submitting"] = bool(converted["submitting"])
    for name in _TIME_FIELDS & converted.keys():
        if isinstance(converted[name], str):
            converted[name] = parse_time(converted[name])
    return converted


def _job_from_row(row: sqlite3.Row) -> Job:
    request = JobRequest(
        prompt=row["prompt"],
        number_of_videos=row["number_of_videos"],
        model=row["model"],
        aspect_ratio=row["aspect_ratio"],
        duration_seconds=row["duration_seconds"],
        resolution=row["resolution"],
        negative_prompt=row["negative_prompt"],
        seed=row["seed"],
        user=row["user"],
    )
    return Job(
        job_id=row["job_id"],
        status=Status(row["status"]),
        request=request,
        has_image=bool(row["has_image"]),
        created_at=parse_time(row["created_at"]) or utcnow(),
        started_at=parse_time(row["started_at"]),
        finished_at=parse_time(row["finished_at"]),
        stage_started_at=parse_time(row["stage_started_at"]),
        attempts=row["attempts"],
        error=row["error"],
        error_kind=row["error_kind"],
        operation=row["operation"],
        submitting=bool(row["submitting"]),
        videos=tuple(Video(**v) for v in json.loads(row["videos"])),
        downloaded_at=parse_time(row["downloaded_at"]),
        queue_seq=row["queue_seq"],
    )

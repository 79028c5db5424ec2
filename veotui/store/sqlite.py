"""The SQLite driver: a connection to ``<data>/veotui.db`` and SQLite's dialect.

One connection, one writer (the data directory's lock), used from the event loop's thread:
a commit costs tens to a couple of hundred microseconds here, less than a hop to a worker
thread. Every write is one ``BEGIN IMMEDIATE`` transaction; ``synchronous=FULL``, so a
committed change survives a power loss, not only a process crash. The job logic is
:mod:`veotui.store.jobs`; this module runs statements and nothing more.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from veotui.core.errors import DataUnusable
from veotui.core.progress import ESTIMATE_WEIGHT, SAMPLE_RANGE
from veotui.datadir.health import StorageGuard
from veotui.datadir.paths import CHOOSE_ANOTHER, os_problem, prepare
from veotui.datadir.privacy import make_private, private_file
from veotui.store.connection import AsyncConnection, JobChange, Row, Statement
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
from veotui.store.jobs import JobStore
from veotui.store.migrations import MIGRATIONS
from veotui.store.rows import COLUMNS

#: How a sample moves a model's estimate (as ``fold_sample`` does), for the SQL that folds it.
_FOLD = {"weight": ESTIMATE_WEIGHT, "low": SAMPLE_RANGE[0], "high": SAMPLE_RANGE[1]}

log = logging.getLogger(__name__)


#: One user's counts moved by a change (the fair queue's table).
UPSERT_LOAD = (
    "INSERT INTO user_load (user, running, queued, last_start) VALUES (:lu, :lr, :lq, :ls)"
    " ON CONFLICT (user) DO UPDATE SET running = running + excluded.running, queued = queued + excluded.queued,"
    " last_start = COALESCE(excluded.last_start, last_start)"
)
INSERT_AUDIT = (
    "INSERT INTO audit (ts, user, role, action, job_id, detail, remote_addr)"
    " VALUES (:ts, :user, :role, :action, :job_id, :detail, :remote_addr)"
)
#: The jobs waiting for a job that completed may start: their users count them as queued in the
#: fair queue's table, then their wait is cleared (the ``jobs_waiting`` index finds them).
RELEASE_WAITING = (
    "UPDATE user_load SET queued = queued + (SELECT COUNT(*) FROM jobs WHERE waiting_for = :released"
    " AND status = 'queued' AND jobs.user = user_load.user)"
    " WHERE user IN (SELECT user FROM jobs WHERE waiting_for = :released AND status = 'queued')",
    "UPDATE jobs SET waiting_for = NULL WHERE waiting_for = :released",
)


class SqliteDialect:
    """SQLite's SQL: ``:name`` placeholders; a change of a job is a few statements in one
    transaction (SQLite runs in this process, so statements cost no round trip)."""

    name = "sqlite"
    job_columns = ", ".join(COLUMNS)

    @staticmethod
    def param(name: str) -> str:
        return ":" + name

    @staticmethod
    def quote(column: str) -> str:
        return column

    def change(self, change: JobChange) -> list[Statement]:
        out: list[Statement] = [
            Statement("UPDATE counters SET value = value + 1 WHERE name = :name", {"name": counter})
            for counter in change.counters
        ]
        if change.front_of_queue and "queue_seq" not in change.counters:
            out.append(Statement("UPDATE counters SET value = value + 1 WHERE name = 'queue_seq'"))
        values = {f"v_{name}": value for name, value in (change.insert or change.sets).items()}
        returning = ", ".join(change.returning or COLUMNS)
        if change.insert is not None:
            columns = [name for name in change.insert if name not in change.counters]
            marks = [f":v_{name}" for name in columns]
            for counter in change.counters:
                columns.append(counter)
                marks.append(f"(SELECT value FROM counters WHERE name = '{counter}')")
            out.append(
                Statement(
                    f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join(marks)}) RETURNING {returning}",
                    values,
                    guard=True,
                )
            )
        else:
            sets = [f"{name} = :v_{name}" for name in change.sets if name not in change.counters]
            sets += [
                f"{counter} = (SELECT value FROM counters WHERE name = '{counter}')" for counter in change.counters
            ]
            if change.front_of_queue:
                sets.append(
                    "queue_seq = (SELECT COALESCE(MIN(queue_seq) - 1, (SELECT value FROM counters"
                    " WHERE name = 'queue_seq')) FROM jobs WHERE status = 'queued')"
                )
            sets = sets or ["job_id = job_id"]  # a note alone: the row is checked, not changed
            where = "job_id = :job_id"
            params = {**values, "job_id": change.job_id}
            if change.expect_status is not None:
                where += " AND status = :expected"
                params["expected"] = change.expect_status
            out.append(
                Statement(f"UPDATE jobs SET {', '.join(sets)} WHERE {where} RETURNING {returning}", params, guard=True)
            )
        for row in change.events:
            out.append(Statement(INSERT_EVENT, row))
        for row in change.deliveries:
            out.append(Statement(INSERT_DELIVERY, row))
        if change.spend is not None:
            operation, day, at, usd = change.spend
            out.append(
                Statement(
                    "INSERT OR IGNORE INTO spend (operation, job_id, day, at, usd, user) VALUES (:operation, :job_id,"
                    " :day, :at, :usd, (SELECT user FROM jobs WHERE job_id = :job_id))",
                    {"operation": operation, "job_id": change.job_id, "day": day, "at": at, "usd": usd},
                )
            )
            if usd:
                out.append(
                    Statement(
                        "INSERT INTO metric_values (name, labels, bucket, value)"
                        " SELECT 'estimated_cost_usd_total', '', 0, :usd WHERE changes() = 1"
                        " ON CONFLICT (name, labels, bucket) DO UPDATE SET value = value + excluded.value",
                        {"usd": float(usd)},
                    )
                )
        if change.load is not None:
            user, running, queued, started = change.load
            out.append(Statement(UPSERT_LOAD, {"lu": user, "lr": running, "lq": queued, "ls": started}))
        if change.audit is not None:
            out.append(Statement(INSERT_AUDIT, change.audit))
        if change.metrics:
            out.append(self.add_metrics([(*key, amount) for key, amount in change.metrics.items()]))
        if change.hours:
            rows = [f"(:h{n}, :n{n}, :l{n}, :a{n})" for n in range(len(change.hours))]
            params = {}
            for n, ((hour, name, labels), amount) in enumerate(change.hours.items()):
                params.update({f"h{n}": hour, f"n{n}": name, f"l{n}": labels, f"a{n}": amount})
            out.append(
                Statement(
                    f"INSERT INTO metric_hours (hour, name, labels, value) VALUES {', '.join(rows)}"
                    " ON CONFLICT (hour, name, labels) DO UPDATE SET value = value + excluded.value",
                    params,
                )
            )
        if change.sample is not None:
            model, seconds, first = change.sample
            out.append(
                Statement(
                    "INSERT INTO estimates (model, seconds, samples) VALUES (:model, :first, 1)"
                    " ON CONFLICT (model) DO UPDATE SET samples = samples + 1, seconds = seconds"
                    " + :weight * (MIN(MAX(:sample, seconds * :low), seconds * :high) - seconds)",
                    {"model": model, "first": first, "sample": seconds, **_FOLD},
                )
            )
        if change.queue_max_hour is not None:
            # After the change's own count: this transaction sees what it wrote.
            out.append(
                Statement(
                    "INSERT INTO metric_hours (hour, name, labels, value)"
                    " SELECT :hour, 'queue_max', '', COALESCE((SELECT value FROM metric_values"
                    " WHERE name = 'jobs_now' AND labels = 'queued' AND bucket = 0), 0)"
                    " WHERE true ON CONFLICT (hour, name, labels) DO UPDATE SET value = MAX(value, excluded.value)",
                    {"hour": change.queue_max_hour},
                )
            )
        if change.release is not None:
            out += [Statement(sql, {"released": change.release}) for sql in RELEASE_WAITING]
        return out

    @staticmethod
    def add_metrics(rows: Sequence[tuple[str, str, int, float]]) -> Statement:
        marks = [f"(:n{n}, :l{n}, :b{n}, :a{n})" for n in range(len(rows))]
        params: dict[str, Any] = {}
        for n, (name, labels, bucket, amount) in enumerate(rows):
            params.update({f"n{n}": name, f"l{n}": labels, f"b{n}": bucket, f"a{n}": amount})
        return Statement(
            f"INSERT INTO metric_values (name, labels, bucket, value) VALUES {', '.join(marks)}"
            " ON CONFLICT (name, labels, bucket) DO UPDATE SET value = value + excluded.value",
            params,
        )

    @staticmethod
    def upsert_estimate() -> str:
        return "INSERT OR REPLACE INTO estimates (model, seconds, samples) VALUES (:model, :seconds, :samples)"

    @staticmethod
    def insert_or_replace(table: str, columns: Sequence[str]) -> str:
        return f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"

    def search(self) -> str:
        like = "LIKE :pattern ESCAPE '\\'"
        return (
            f"SELECT {self.job_columns} FROM jobs WHERE prompt {like} OR job_id {like} OR status {like}"
            f" OR user {like} ORDER BY queue_seq DESC LIMIT :limit"
        )

    def history_page(self, statuses: str) -> str:
        # Walk the finish order's index: without the hint SQLite picks the status index and
        # sorts every ended job (seconds at a million) for one page.
        return (
            f"SELECT {self.job_columns} FROM jobs INDEXED BY jobs_finished_seq WHERE status IN ({statuses})"
            " ORDER BY finished_seq DESC LIMIT :limit OFFSET :offset"
        )

    def next_ready(self) -> str:
        # Named: the planner would take (status, queue_seq) and step over every waiting job.
        return (
            f"SELECT {self.job_columns} FROM jobs INDEXED BY jobs_ready"
            " WHERE status = 'queued' AND waiting_for IS NULL ORDER BY queue_seq LIMIT 1"
        )

    def downloaded_completed(self) -> str:
        return (
            f"SELECT {self.job_columns} FROM jobs INDEXED BY jobs_downloaded"
            " WHERE downloaded_at IS NOT NULL AND status = 'completed'"
        )

    @staticmethod
    def locked(select: str) -> str:
        return select  # BEGIN IMMEDIATE holds the whole database

    @staticmethod
    def claimable(select: str) -> str:
        return select  # one process writes the database


INSERT_EVENT = (
    "INSERT INTO events (job_id, at, status, detail, kind, user, model, error_kind, seconds)"
    " VALUES (:job_id, :at, :status, :detail, :kind, :user, :model, :error_kind, :seconds)"
)

INSERT_DELIVERY = (
    "INSERT INTO webhook_deliveries (delivery_id, url, event, job_id, body, created_at, next_attempt_at)"
    " VALUES (:delivery_id, :url, :event, :job_id, :body, :created_at, :next_attempt_at)"
)


class SqliteConnection:
    """veotui's database file, opened as the job logic needs it.

    A write the disk refuses (full, read-only, an I/O error) is rolled back, leaves the
    connection outside any transaction, and raises the guard's
    :class:`~veotui.core.errors.StorageUnavailable`."""

    dialect = SqliteDialect()
    shared = False

    def __init__(self, path: Path, guard: StorageGuard) -> None:
        """Open (or create) veotui's database at ``path``. Anything that is not veotui's
        database, or is damaged, is refused with a :class:`DataUnusable` naming the file; a
        file refused as another application's is never written to."""
        self.path = path
        self.guard = guard
        guard.add_error_reader(write_refusal)
        self._check_conn: sqlite3.Connection | None = None
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
            self.raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise sqlite_problem(path, exc) from None
        try:
            self._open()
        except sqlite3.Error as exc:
            self.raw.close()
            raise sqlite_problem(path, exc) from None
        except BaseException:
            self.raw.close()
            raise

    def __repr__(self) -> str:
        return f"SqliteConnection({self.path})"

    def _open(self) -> None:
        conn = self.raw
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 5000")
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
        self._durable = True
        conn.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    def _migrate(self) -> None:
        with self._transaction("prepare its database"):
            version = self.raw.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise DataUnusable(
                    f"{self.path} was written by a newer veotui (schema {version}, this one knows "
                    f"{len(MIGRATIONS)}); upgrade veotui or {CHOOSE_ANOTHER}"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    self.raw.execute(statement)
                self.raw.execute(f"PRAGMA user_version = {number}")

    origin = ""  # the only process on its database: nobody to tell

    @staticmethod
    def notify(payload: str) -> Statement | None:
        return None

    @staticmethod
    def asynchronous() -> AsyncConnection | None:
        return None  # a local file answers in microseconds, or waits for its own fsync

    def schema_version(self) -> int:
        return int(self.raw.execute("PRAGMA user_version").fetchone()[0])

    def integrity_check(self) -> str:
        return str(self.raw.execute("PRAGMA integrity_check").fetchone()[0])

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

    # -- the connection interface --------------------------------------------------------

    def read(self, statement: Statement) -> list[Row]:
        return self.raw.execute(statement.sql, statement.params).fetchall()

    def write(self, statements: Sequence[Statement], doing: str, durable: bool = True) -> list[Row] | None:
        try:
            with self._transaction(doing, durable):
                rows = _run(self.raw, statements)
                if rows is None:
                    raise _NothingWritten  # rolls the transaction back
                return rows
        except _NothingWritten:
            return None

    @contextmanager
    def transaction(self, doing: str, durable: bool = True) -> Iterator[_Transaction]:
        with self._transaction(doing, durable):
            yield _Transaction(self.raw)

    @contextmanager
    def _transaction(self, doing: str, durable: bool = True) -> Iterator[None]:
        try:
            if durable != self._durable:
                # FULL syncs the log at this commit; NORMAL leaves it to the next FULL one,
                # which syncs everything written before it too.
                self.raw.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            self.raw.execute("BEGIN IMMEDIATE")
            try:
                yield
                self.raw.execute("COMMIT")
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
        if self.raw.in_transaction:
            with suppress(sqlite3.Error):
                self.raw.execute("ROLLBACK")

    def close(self) -> None:
        check = self._check_conn
        if check is not None:
            with suppress(sqlite3.Error):
                check.interrupt()
        self.raw.close()


class _NothingWritten(Exception):
    """A change's compare-and-set found no row: its transaction is rolled back."""


class _Transaction:
    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def read(self, *statements: Statement) -> list[Row]:
        rows: list[Row] = []
        for statement in statements:
            rows = self.raw.execute(statement.sql, statement.params).fetchall()
        return rows

    def write(self, statements: Sequence[Statement], last: bool = False) -> list[Row] | None:
        return _run(self.raw, statements)


def _run(raw: sqlite3.Connection, statements: Sequence[Statement]) -> list[Row] | None:
    """Run ``statements`` in the open transaction: the rows of the guarded one (or of the
    last), or None, and nothing more run, when the guard found no row."""
    result: list[Row] = []
    guarded = False
    for statement in statements:
        rows = raw.execute(statement.sql, statement.params).fetchall()
        if statement.guard:
            if not rows:
                return None
            result, guarded = rows, True
        elif not guarded:
            result = rows
    return result


class SqliteStore(JobStore):
    """The job store on veotui's SQLite database at ``path``: the job logic over a
    :class:`SqliteConnection` (this class only opens the connection)."""

    def __init__(self, path: Path, guard: StorageGuard | None = None) -> None:
        guard = guard or StorageGuard(path.parent)
        super().__init__(SqliteConnection(path, guard), guard, path)
        self.count_by_status()  # kept in step with every write from now on

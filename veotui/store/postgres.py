"""The job store on PostgreSQL (``VEOTUI_STORE=postgresql://…``).

The same store as on SQLite: every statement is written once, in SQLite's dialect, and
translated here (placeholders, ``INSERT OR …``, ``LIKE``, ``MAX(a, b)``, column types, the
``user`` column). What differs is the plumbing: ``BEGIN`` instead of ``BEGIN IMMEDIATE``, a
``schema_version`` table instead of ``PRAGMA user_version``, a row lock on the job read in a
transition, and no in-process copy of the jobs (another process may write them).

psycopg 3, synchronous: the store's interface is synchronous and called from the event
loop's thread. Measured on loopback, a synchronous psycopg connection, asyncpg and
psycopg's async connection all commit ~150 transitions/s under load, bound by the server's
fsync, so the synchronous driver costs nothing and keeps the interface.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

import psycopg
from psycopg.rows import RowMaker

from veotui.core.errors import Conflict, DataUnusable, JobNotFound, StorageUnavailable
from veotui.core.job import ACTIVE_STATUSES, Change, Job, QueueState, Status, utcnow
from veotui.datadir.health import UNAVAILABLE, StorageGuard
from veotui.datadir.paths import prepare
from veotui.store.fleet import LeaseLost
from veotui.store.migrations import MIGRATIONS
from veotui.store.rows import JOB_COLUMNS, job_from_row, job_to_row
from veotui.store.sqlite import SqliteStore

log = logging.getLogger(__name__)

#: Base of veotui's advisory lock keys ("veot"); the migration and the slot claim add to it.
SERVER_LOCK = 0x76656F74
#: PostgreSQL-only migrations (the fleet's tables), in PostgreSQL's dialect; appended, never edited.
FLEET_MIGRATIONS: tuple[str, ...] = (
    # 1: each running server, with a heartbeat kept by the database's clock.
    """
    CREATE TABLE servers (
        server_id TEXT PRIMARY KEY,
        url TEXT,
        host TEXT NOT NULL,
        pid BIGINT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )
    """,
    # 2: leases: the server that runs each processing job, until when (renewed with its
    # heartbeat); a job whose lease ran out is taken over by another server.
    """
    ALTER TABLE jobs ADD COLUMN owner TEXT;
    ALTER TABLE jobs ADD COLUMN lease_until TIMESTAMPTZ;
    CREATE INDEX jobs_owner ON jobs (owner) WHERE owner IS NOT NULL
    """,
)
#: The NOTIFY channel of job changes: payload "<origin> <kind> <job id>".
CHANNEL = "veotui_changes"
#: Seconds between a server's heartbeats (shorter with a short lease: a third of it).
HEARTBEAT_SECONDS = 10.0
#: A lease's length by default (``VEOTUI_LEASE_SECONDS``).
LEASE_SECONDS = 30.0
#: A lost connection is made again after this delay, doubling up to the cap.
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_CAP_SECONDS = 10.0
RECONNECT_TIMEOUT_SECONDS = 3.0
#: Transaction-level advisory lock taken by each slot claim: claims are counted one at a time.
SLOTS_LOCK = SERVER_LOCK + 2


class Row(tuple[Any, ...]):
    """A row read by index, by column name, or as a tuple, as ``sqlite3.Row`` is."""

    _names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> RowMaker[Row]:
    names = {d.name: n for n, d in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> Row:
        if "queue_seq" in names:  # a double on PostgreSQL; whole keys read as ints, as on SQLite
            values = list(values)
            seq = values[names["queue_seq"]]
            if isinstance(seq, float) and seq.is_integer():
                values[names["queue_seq"]] = int(seq)
        row = Row(values)
        row._names = names
        return row

    return make


_INSERT_OR = re.compile(r"INSERT OR (IGNORE|REPLACE) INTO (\w+) \(([^)]*)\)(.*)", re.S)
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_NUMBERED = re.compile(r"\?(\d+)")
_USER = re.compile(r"(?<![:\w\"])user(?![\w\"])")


def translate(sql: str) -> str:
    """A statement in SQLite's dialect as PostgreSQL's (``%s``/``%(name)s`` placeholders)."""
    match = _INSERT_OR.match(sql.strip())
    if match:
        verb, table, columns, rest = match.groups()
        names = [c.strip() for c in columns.split(",")]
        if verb == "IGNORE":
            tail = " ON CONFLICT DO NOTHING"
        else:  # the first column is the key
            sets = ", ".join(f"{c} = excluded.{c}" for c in names[1:])
            tail = f" ON CONFLICT ({names[0]}) DO UPDATE SET {sets}"
        sql = f"INSERT INTO {table} ({columns}){rest}{tail}"
    sql = sql.replace("%", "%%")
    sql = _USER.sub('"user"', sql)
    sql = _NAMED.sub(r"%(\1)s", sql)
    sql = _NUMBERED.sub(r"%(p\1)s", sql)
    sql = sql.replace("?", "%s")
    sql = re.sub(r"\bLIKE\b", "ILIKE", sql)
    sql = re.sub(r"\s+INDEXED BY \w+", "", sql)  # SQLite's index hints; PostgreSQL plans alone
    target = re.match(r"\s*INSERT INTO (\w+)", sql)
    if target and "excluded.value" in sql:  # an upsert reading the row's value: name its table
        table = target.group(1)
        sql = sql.replace("MAX(value, excluded.value)", f"GREATEST({table}.value, excluded.value)")
        sql = sql.replace("value + excluded.value", f"{table}.value + excluded.value")
    return sql


def translate_ddl(script: str) -> str:
    """A migration in SQLite's dialect as PostgreSQL's."""
    script = script.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
    script = re.sub(r"\bWITHOUT ROWID\b", "", script)
    script = re.sub(r"\bINTEGER\b", "BIGINT", script)
    script = re.sub(r"\bREAL\b", "DOUBLE PRECISION", script)
    # Queue keys are fractional after a move.
    script = re.sub(r"\bqueue_seq BIGINT\b", "queue_seq DOUBLE PRECISION", script)
    return script


def _connect(url: str, timeout: float = 10) -> psycopg.Connection[Row]:
    return psycopg.connect(url, autocommit=True, row_factory=_row_factory, connect_timeout=max(1, round(timeout)))


class Connection:
    """The few calls of ``sqlite3.Connection`` the store makes, on a psycopg connection.

    A connection lost (PostgreSQL restarted, the network cut) is made again at the next call,
    at most once per backoff step; meanwhile every call raises :class:`StorageUnavailable`
    (HTTP 503) and ``guard`` says the storage is unavailable, until a reconnect works."""

    def __init__(self, conn: psycopg.Connection[Row], url: str = "", guard: StorageGuard | None = None) -> None:
        self.raw = conn
        self.url = url
        self.guard = guard
        self.closed = False
        #: Statements that set the session up again after a reconnect.
        self.session: list[str] = []
        self._retry_at = 0.0
        self._backoff = RECONNECT_FIRST_SECONDS
        self._reason = ""

    def _live(self) -> psycopg.Connection[Row]:
        raw = self.raw
        if not (raw.closed or raw.broken) or self.closed or not self.url:
            return raw
        if time.monotonic() < self._retry_at:
            raise StorageUnavailable(self._reason, UNAVAILABLE)
        try:
            self.raw = _connect(self.url, RECONNECT_TIMEOUT_SECONDS)
            for statement in self.session:
                self.raw.execute(statement)
        except psycopg.Error as exc:
            self._lost(exc)
        log.warning("PostgreSQL at %s is reachable again", _safe(self.url))
        self._backoff = RECONNECT_FIRST_SECONDS
        if self.guard is not None and self.guard.state.state == UNAVAILABLE:
            self.guard.recovered()
        return self.raw

    def _lost(self, exc: BaseException) -> NoReturn:
        self._reason = (
            f"PostgreSQL at {_safe(self.url)} cannot be reached ({_first_line(exc)}); veotui reconnects by itself"
        )
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, RECONNECT_CAP_SECONDS)
        if self.guard is not None:
            self.guard.degrade(UNAVAILABLE, self._reason)
        raise StorageUnavailable(self._reason, UNAVAILABLE) from exc

    def execute(self, sql: str, params: Any = ()) -> psycopg.Cursor[Row]:
        text = translate(sql)
        if "%(p" in text and not isinstance(params, dict):
            params = {f"p{n}": value for n, value in enumerate(params, start=1)}
        raw = self._live()
        try:
            return raw.execute(text, params or None)
        except psycopg.Error as exc:  # the connection may be gone whatever the error's class
            if self.url and (raw.broken or raw.closed):
                self._lost(exc)
            raise

    def executemany(self, sql: str, rows: Iterable[Any]) -> None:
        raw = self._live()
        try:
            with raw.cursor() as cursor:
                cursor.executemany(translate(sql), list(rows))
        except psycopg.Error as exc:  # the connection may be gone whatever the error's class
            if self.url and (raw.broken or raw.closed):
                self._lost(exc)
            raise

    @property
    def in_transaction(self) -> bool:
        if self.raw.closed or self.raw.broken:
            return False  # whatever it began went with the connection
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.closed = True
        self.raw.close()


class PostgresStore(SqliteStore):
    """The store on a PostgreSQL database; no process keeps a copy of any job.

    A store that joined a fleet (:meth:`join`) owns the jobs it claims or takes over: each
    such job records its server and a lease, renewed by :meth:`heartbeat`. Its writes to a
    processing job hold only while it still owns the job (the compare-and-set includes the
    owner), so a server that lost its lease cannot write over the new owner's work; a
    cancel, from any server, always holds."""

    fleet = True
    #: Several servers write: the queue's length is counted in the database.
    QUEUE_LENGTH_KEPT = False

    def __init__(self, url: str, data_dir: Path, guard: StorageGuard | None = None) -> None:
        self.path = data_dir / "veotui.db"  # only named in messages; the data is in PostgreSQL
        self.url = url
        self.guard = guard or StorageGuard(data_dir)
        self._listeners = []
        self._active = {}
        self._counts = None
        self._stage_clock = {}
        self._run_clock = {}
        self._depth = 0
        self.server_id = ""
        self.lease_seconds = LEASE_SECONDS
        self.url_served: str | None = None
        # Names this store's NOTIFYs, so its own listener skips them.
        self._origin = uuid.uuid4().hex[:12]
        self._untold: list[Change] = []
        prepare(data_dir)  # the jobs' files stay in the data directory
        try:
            raw = _connect(url)
        except psycopg.Error as exc:
            raise DataUnusable(f"PostgreSQL at {_safe(url)} cannot be reached ({_first_line(exc)})") from None
        self._conn = Connection(raw, url, self.guard)  # type: ignore[assignment]
        try:
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({_safe(self.url)})"

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, doing: str = "record a change") -> Iterator[Any]:
        """One transaction; a transaction opened inside another joins it (a claim is a
        transition inside the slot count's transaction), and listeners hear of its
        changes once the outermost one has committed."""
        conn = self._conn
        if self._depth:
            self._depth += 1
            try:
                yield conn
            finally:
                self._depth -= 1
            return
        try:
            conn.execute("BEGIN")
            self._depth = 1
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                self._untold.clear()
                self._rollback()
                raise
            finally:
                self._depth = 0
        except psycopg.OperationalError as exc:
            raise StorageUnavailable(
                f"veotui could not {doing}: PostgreSQL failed ({_first_line(exc)})", "unavailable"
            ) from exc
        untold, self._untold = self._untold, []
        for change in untold:
            self._notify(change)

    def _notify(self, change: Change) -> None:
        if self._depth:
            self._untold.append(change)
            return
        super()._notify(change)
        # Other processes on the database hear of it too: its kind and job id, no more (a
        # NOTIFY payload is small); they read the row themselves.
        with suppress(psycopg.Error, StorageUnavailable):
            self._conn.execute("SELECT pg_notify(?, ?)", (CHANNEL, f"{self._origin} {change.kind} {change.job_id}"))

    def listen(self, heard: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``heard`` (in a thread of its own) with every change another process makes
        to the database, as read back after its commit; returns a function that stops it.

        A lost connection is made again with backoff; what changed meanwhile cannot be
        replayed, so the processing jobs and the queue's state are then heard afresh."""
        first = _connect(self.url)
        first.execute(f"LISTEN {CHANNEL}")
        stop = threading.Event()

        def run() -> None:
            conn: psycopg.Connection[Row] | None = first
            backoff = RECONNECT_FIRST_SECONDS
            while not stop.is_set():
                try:
                    if conn is None:
                        conn = _connect(self.url, RECONNECT_TIMEOUT_SECONDS)
                        conn.execute(f"LISTEN {CHANNEL}")
                        log.warning("listening to PostgreSQL again")
                        backoff = RECONNECT_FIRST_SECONDS
                        _resync(Connection(conn), heard)
                    reader = Connection(conn)
                    while not stop.is_set():
                        # Gathered first: the connection is busy while it waits for them.
                        for note in list(conn.notifies(timeout=0.2)):
                            origin, kind, job_id = [*note.payload.split(" "), "", ""][:3]
                            if origin != self._origin:
                                heard(_read_change(reader, kind, job_id))
                except psycopg.Error as exc:
                    if stop.is_set():
                        break
                    log.warning(
                        "listening to PostgreSQL stopped (%s); trying again in %.1f s", _first_line(exc), backoff
                    )
                    stop.wait(backoff)
                    backoff = min(backoff * 2, RECONNECT_CAP_SECONDS)
                finally:
                    if conn is not None and (stop.is_set() or conn.closed or conn.broken):
                        conn.close()
                        conn = None
            if conn is not None:
                conn.close()

        thread = threading.Thread(target=run, name="veotui-pg-listen", daemon=True)
        thread.start()

        def close() -> None:
            stop.set()
            thread.join(5)

        return close

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            with suppress(psycopg.Error, StorageUnavailable):
                self._conn.execute("ROLLBACK")

    def _migrate(self) -> None:
        with self._transaction("prepare its database") as conn:
            # One migrator at a time: a transaction-level lock, released at commit.
            conn.execute("SELECT pg_advisory_xact_lock(?)", (SERVER_LOCK + 1,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (0)")
                version = 0
            else:
                version = row[0]
            if version > len(MIGRATIONS):
                raise DataUnusable(
                    f"PostgreSQL database {_safe(self.url)} was written by a newer veotui (schema {version}, "
                    f"this one knows {len(MIGRATIONS)}); upgrade veotui"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, translate_ddl(script).split(";")):
                    conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ?", (number,))
            # The fleet's own tables, which SQLite has no use for: numbered apart.
            conn.execute("ALTER TABLE schema_version ADD COLUMN IF NOT EXISTS fleet BIGINT NOT NULL DEFAULT 0")
            (fleet,) = conn.execute("SELECT fleet FROM schema_version").fetchone()
            if fleet > len(FLEET_MIGRATIONS):
                raise DataUnusable(
                    f"PostgreSQL database {_safe(self.url)} was written by a newer veotui (fleet schema {fleet}, "
                    f"this one knows {len(FLEET_MIGRATIONS)}); upgrade veotui"
                )
            for number, script in enumerate(FLEET_MIGRATIONS[fleet:], start=fleet + 1):
                for statement in filter(str.strip, script.split(";")):
                    conn.raw.execute(statement)
                conn.execute("UPDATE schema_version SET fleet = ?", (number,))

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("SELECT version FROM schema_version").fetchone()[0])

    def integrity_check(self) -> str:
        return "ok"

    def deferred_check(self) -> str | None:
        return None  # the server keeps its own data consistent

    # -- servers ---------------------------------------------------------------------------

    @property
    def heartbeat_seconds(self) -> float:
        return min(HEARTBEAT_SECONDS, self.lease_seconds / 3)

    def join(self, url: str | None, lease_seconds: float = LEASE_SECONDS) -> str:
        """Record this server with a first heartbeat; returns its id. From now on the jobs
        it claims are its own, on a lease of ``lease_seconds``.

        A server stopped in the middle of a transaction (suspended, paused) would hold its
        locks, and with them the fleet's slot claim: PostgreSQL ends such a session once it
        has idled in a transaction for the lease (the server reconnects when it comes back),
        and no statement waits for a lock longer than half the lease."""
        self.lease_seconds = lease_seconds
        link: Connection = self._conn  # type: ignore[assignment]
        link.session = [
            f"SET idle_in_transaction_session_timeout = {max(1, round(lease_seconds * 1000))}",
            f"SET lock_timeout = {max(1, round(lease_seconds * 500))}",
        ]
        for statement in link.session:
            link.raw.execute(statement)
        self.url_served = url
        server_id = uuid.uuid4().hex[:12]
        with self._transaction("record this server") as conn:
            conn.execute(
                "INSERT INTO servers (server_id, url, host, pid) VALUES (?, ?, ?, ?)",
                (server_id, url, socket.gethostname(), os.getpid()),
            )
        self.server_id = server_id
        return server_id

    def heartbeat(self) -> set[str]:
        """Renew this server's heartbeat and the leases of its jobs (the database's clock);
        returns the ids of the processing jobs it still owns. A row removed meanwhile (by
        hand) is recorded again."""
        marks = ", ".join("?" * len(ACTIVE_STATUSES))
        with self._transaction("renew this server's heartbeat") as conn:
            cursor = conn.execute("UPDATE servers SET heartbeat_at = now() WHERE server_id = ?", (self.server_id,))
            if cursor.rowcount != 1:
                log.warning("this server's row in PostgreSQL is gone; it is recorded again")
                conn.execute(
                    "INSERT INTO servers (server_id, url, host, pid) VALUES (?, ?, ?, ?)",
                    (self.server_id, self.url_served, socket.gethostname(), os.getpid()),
                )
            rows = conn.execute(
                "UPDATE jobs SET lease_until = now() + make_interval(secs => ?)"
                f" WHERE owner = ? AND status IN ({marks}) RETURNING job_id",
                (self.lease_seconds, self.server_id, *(s.value for s in ACTIVE_STATUSES)),
            ).fetchall()
            return {row[0] for row in rows}

    def leave(self) -> None:
        """A clean stop: this server's row goes, and its jobs' leases end now, so another
        server of the fleet takes them over at once."""
        with self._transaction("remove this server") as conn:
            conn.execute("DELETE FROM servers WHERE server_id = ?", (self.server_id,))
            conn.execute("UPDATE jobs SET lease_until = NULL WHERE owner = ?", (self.server_id,))

    def servers(self, within: float | None = None) -> list[dict[str, Any]]:
        """The live servers (a heartbeat within ``within`` seconds; by default the lease),
        oldest first: the first one does the fleet's once-only work."""
        rows = self._conn.execute(
            "SELECT server_id, url, host, pid, started_at, heartbeat_at FROM servers"
            " WHERE heartbeat_at > now() - make_interval(secs => ?) ORDER BY started_at, server_id",
            (self.lease_seconds if within is None else within,),
        ).fetchall()
        return [dict(zip(row.keys(), row, strict=True)) for row in rows]

    def take_over(self) -> list[Job]:
        """The processing jobs whose lease ran out (their server stopped beating, or left),
        made this server's; oldest first. Each resumes where it stands."""
        if not self.server_id:
            return []
        marks = ", ".join("?" * len(ACTIVE_STATUSES))
        with self._transaction("take over jobs") as conn:
            rows = conn.execute(
                "WITH expired AS (SELECT job_id, owner FROM jobs"
                f" WHERE status IN ({marks}) AND (lease_until IS NULL OR lease_until < now())"
                " FOR UPDATE SKIP LOCKED)"
                " UPDATE jobs SET owner = ?, lease_until = now() + make_interval(secs => ?)"
                " FROM expired WHERE jobs.job_id = expired.job_id RETURNING jobs.job_id, expired.owner",
                (*(s.value for s in ACTIVE_STATUSES), self.server_id, self.lease_seconds),
            ).fetchall()
        taken = []
        for job_id, previous in rows:
            note = f"taken over by server {self.server_id}" + (
                f" from server {previous}, whose lease ran out" if previous else ""
            )
            with suppress(Conflict, JobNotFound):
                taken.append(self.update(job_id, note=note))
        return sorted(taken, key=lambda job: (job.started_at or job.created_at, job.queue_seq))

    def owner_of(self, job_id: str) -> str | None:
        """The server that runs the job (None when none does)."""
        row = self._conn.execute("SELECT owner FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return row[0] if row else None

    def _write_fields(
        self,
        conn: Any,
        job: Job,
        names: Iterable[str],
        status: Status | None = None,
        expect: Status | None = None,
    ) -> None:
        """As on SQLite, and: a claim records this server as the job's owner with a lease; a
        job that leaves processing has no owner; a write to a processing job holds only for
        its owner (a cancel, from anyone)."""
        row = job_to_row(job)
        columns = [*(["status"] if status is not None else []), *names]
        if not columns:
            return
        sets = [f"{c} = :{c}" for c in columns]
        params: dict[str, Any] = dict(row)
        if status is not None and (status == Status.QUEUED or status.is_final):
            sets.append("owner = NULL, lease_until = NULL")
        elif status == Status.STARTING and expect == Status.QUEUED:
            sets.append("owner = :new_owner, lease_until = now() + make_interval(secs => :lease)")
            params.update(new_owner=self.server_id or None, lease=self.lease_seconds)
        sql = f"UPDATE jobs SET {', '.join(sets)} WHERE job_id = :job_id"
        if expect is None:
            conn.execute(sql, params)
            return
        sql += " AND status = :expected"
        params["expected"] = expect.value
        owned = bool(self.server_id) and expect.is_active and status != Status.CANCELLED
        if owned:
            sql += " AND owner = :me"
            params["me"] = self.server_id
        if conn.execute(sql, params).rowcount == 1:
            return
        owner = self.owner_of(job.job_id) if owned else None
        if owned and owner != self.server_id:
            raise LeaseLost(
                f"job {job.job_id} is run by server {owner or 'none'} now: this server "
                f"({self.server_id}) lost its lease on it, so it leaves the job alone"
            )
        raise Conflict(f"job {job.job_id} changed under veotui's feet; try again")

    # -- the fleet-wide slot claim ----------------------------------------------------------

    def claim_next(self, slots: int) -> Job | None:
        """Start the next queued job (``starting``, one more attempt) if fewer than ``slots``
        jobs are processing in the whole database; else, or with an empty queue, None.

        The count and the claim are one transaction under a transaction-level advisory lock,
        so two processes can never both take the last slot; ``FOR UPDATE SKIP LOCKED`` passes
        over a job another transaction is changing (a cancel, a move) instead of waiting."""
        marks = ", ".join("?" * len(ACTIVE_STATUSES))
        with self._transaction("claim a processing slot") as conn:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (SLOTS_LOCK,))
            (busy,) = conn.execute(
                f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", [s.value for s in ACTIVE_STATUSES]
            ).fetchone()
            if busy >= slots:
                return None
            row = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'queued' ORDER BY queue_seq LIMIT 1"
                " FOR UPDATE SKIP LOCKED"
            ).fetchone()
            if row is None:
                return None
            job = job_from_row(row)
            return self.transition(
                job.job_id,
                Status.STARTING,
                expect=(Status.QUEUED,),
                attempts=job.attempts + 1,
                started_at=(job.started_at if job.operation else None) or utcnow(),
                detail=f"on server {self.server_id}" if self.server_id else None,
            )

    # -- no in-process copy: every read goes to the database --------------------------------

    def _remember(self, job: Job) -> Job:
        return job

    def _current(self, conn: Any, job_id: str) -> Job:
        row = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ? FOR UPDATE", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return job_from_row(row)

    def count_by_status(self) -> dict[str, int]:
        return dict(self._conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())

    @property
    def _queued(self) -> int:
        (count,) = self._conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()
        return int(count)

    @_queued.setter
    def _queued(self, value: int) -> None:
        pass  # counted by the database


def _resync(conn: Connection, heard: Callable[[Change], None]) -> None:
    """After the listener was away: the processing jobs and the queue, as they are now."""
    marks = ", ".join("?" * len(ACTIVE_STATUSES))
    rows = conn.execute(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE status IN ({marks})", [s.value for s in ACTIVE_STATUSES]
    ).fetchall()
    for row in rows:
        job = job_from_row(row)  # type: ignore[arg-type]
        heard(Change("job", job.job_id, job))
    heard(_read_change(conn, "queue", ""))


def _read_change(conn: Connection, kind: str, job_id: str) -> Change:
    """A change another process announced, read back from the database."""
    if kind == "queue":
        paused, reason, by_budget = conn.execute(
            "SELECT paused, reason, by_budget FROM queue_control WHERE id = 1"
        ).fetchone() or (0, None, 0)
        (length,) = conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone() or (0,)
        return Change(
            "queue", "", queue=QueueState(paused=bool(paused), reason=reason, length=length, by_budget=bool(by_budget))
        )
    row = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    if row is None:
        return Change("deleted", job_id)
    return Change("job", job_id, job_from_row(row))  # type: ignore[arg-type]


def _safe(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

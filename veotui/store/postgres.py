"""The PostgreSQL driver (``VEOTUI_STORE=postgresql://…``): a psycopg connection and
PostgreSQL's dialect.

The job logic is :mod:`veotui.store.jobs`; this module runs statements, reconnects, and
writes each change of a job as one statement (data-modifying CTEs: the row, its event, its
aggregates and the ``NOTIFY`` to the other servers), so a change is one round trip and one
transaction. Statements that must see a lock taken first (the slot claim) are sent together
in pipeline mode, which is one round trip too.

psycopg 3: synchronous on the caller's thread for most calls; the engine's writes as jobs
move go through :class:`PostgresAsyncConnection`, on which the event loop does not wait.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

import psycopg
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool

from veotui.core.errors import DataUnusable, StorageUnavailable
from veotui.core.progress import ESTIMATE_WEIGHT, SAMPLE_RANGE
from veotui.datadir.health import UNAVAILABLE, StorageGuard
from veotui.datadir.paths import prepare
from veotui.store.aggregates import JOBS_NOW
from veotui.store.connection import AsyncConnection, JobChange, Row, Statement
from veotui.store.jobs import JobStore
from veotui.store.migrations import FLEET_MIGRATIONS, POSTGRES_MIGRATIONS
from veotui.store.rows import COLUMNS

log = logging.getLogger(__name__)

#: Base of veotui's advisory lock keys ("veot"); the migration adds one to it.
SERVER_LOCK = 0x76656F74
#: The NOTIFY channel of job changes: payload "<origin> <kind> <job id>".
CHANNEL = "veotui_changes"
#: Opens a transaction whose commit does not wait for the log's flush (a later synchronous
#: commit flushes it, the log being written in order).
NOT_DURABLE = "SET LOCAL synchronous_commit = off"
#: A lost connection is made again after this delay, doubling up to the cap.
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_CAP_SECONDS = 10.0
RECONNECT_TIMEOUT_SECONDS = 3.0
#: Connections the engine's awaited writes may hold at once (its slots, dispatch, submits).
POOL_SIZE = 4

_ACTIVE = "('starting', 'uploading_image', 'generating', 'processing', 'downloading')"
_EVENT_COLUMNS = (
    ("job_id", "text"),
    ("at", "text"),
    ("status", "text"),
    ("detail", "text"),
    ("kind", "text"),
    ("user", "text"),
    ("model", "text"),
    ("error_kind", "text"),
    ("seconds", "double precision"),
)


_DELIVERY_COLUMNS = tuple(
    (name, "text") for name in ("delivery_id", "url", "event", "job_id", "body", "created_at", "next_attempt_at")
)
_HOUR_COLUMNS = (("hour", "text"), ("name", "text"), ("labels", "text"), ("value", "double precision"))


def _p(name: str) -> str:
    return f"%({name})s"


def _q(column: str) -> str:
    return '"user"' if column == "user" else column


#: The jobs waiting for a job that completed may start: their users count them as queued in the
#: fair queue's table, then their wait is cleared (the ``jobs_waiting`` index finds them).
RELEASE_WAITING = (
    "UPDATE user_load SET queued = queued + (SELECT COUNT(*) FROM jobs WHERE waiting_for = %(released)s"
    ' AND status = \'queued\' AND jobs."user" = user_load."user") WHERE "user" IN'
    " (SELECT \"user\" FROM jobs WHERE waiting_for = %(released)s AND status = 'queued')",
    "UPDATE jobs SET waiting_for = NULL WHERE waiting_for = %(released)s",
)


class FleetStatements:
    """The fleet's statements: servers with a heartbeat, which is every lease of their jobs."""

    lock = "SELECT pg_advisory_xact_lock(%(lock)s)"
    next_claimable = (
        f"SELECT {', '.join(_q(c) for c in COLUMNS)} FROM jobs WHERE status = 'queued' AND waiting_for IS NULL"
        f" AND (SELECT COUNT(*) FROM jobs WHERE status IN {_ACTIVE}) < %(slots)s"
        " ORDER BY queue_seq LIMIT 1 FOR UPDATE SKIP LOCKED"
    )
    # A job the dispatcher chose (the fair queue, or passing over users who wait): claimed if a
    # slot is free across the fleet and its user is below their limit, counted in the database.
    claim_chosen = (
        f"SELECT {', '.join(_q(c) for c in COLUMNS)} FROM jobs WHERE job_id = %(job_id)s AND status = 'queued'"
        f" AND waiting_for IS NULL AND (SELECT COUNT(*) FROM jobs WHERE status IN {_ACTIVE}) < %(slots)s"
        " AND (%(limit)s::bigint IS NULL OR COALESCE((SELECT running FROM user_load"
        ' WHERE user_load."user" = jobs."user"), 0) < %(limit)s::bigint) FOR UPDATE SKIP LOCKED'
    )
    join = (
        "INSERT INTO servers (server_id, url, host, pid, lease_seconds) VALUES"
        " (%(server_id)s, %(url)s, %(host)s, %(pid)s, %(lease)s)"
        " ON CONFLICT (server_id) DO UPDATE SET heartbeat_at = now(), lease_seconds = excluded.lease_seconds"
        " RETURNING server_id, NULL::text"
    )
    heartbeat = (
        "WITH beat AS (UPDATE servers SET heartbeat_at = now(), lease_seconds = %(lease)s"
        " WHERE server_id = %(server_id)s RETURNING server_id)"
        f" SELECT beat.server_id, jobs.job_id FROM beat LEFT JOIN jobs ON jobs.owner = beat.server_id"
        f" AND jobs.status IN {_ACTIVE}"
    )
    owned = f"SELECT owner, job_id FROM jobs WHERE owner = %(server_id)s AND status IN {_ACTIVE}"
    leave = "DELETE FROM servers WHERE server_id = %(server_id)s"
    servers = (
        "SELECT server_id, url, host, pid, started_at, heartbeat_at FROM servers"
        " WHERE heartbeat_at > now() - make_interval(secs => %(within)s) ORDER BY started_at, server_id"
    )
    # A job's lease is its owner's heartbeat: it runs out when the owner stopped beating for
    # longer than its lease, or left.
    take_over = (
        "WITH expired AS (SELECT jobs.job_id, jobs.owner FROM jobs"
        f" WHERE jobs.status IN {_ACTIVE} AND NOT EXISTS (SELECT 1 FROM servers"
        " WHERE servers.server_id = jobs.owner"
        " AND servers.heartbeat_at > now() - make_interval(secs => servers.lease_seconds))"
        " FOR UPDATE OF jobs SKIP LOCKED)"
        " UPDATE jobs SET owner = %(server_id)s FROM expired WHERE jobs.job_id = expired.job_id"
        " RETURNING jobs.job_id, expired.owner"
    )
    owner = "SELECT owner FROM jobs WHERE job_id = %(job_id)s"


class PostgresDialect:
    """PostgreSQL's SQL: ``%(name)s`` placeholders, ``user`` quoted, queue keys as doubles,
    and a change of a job written as one statement."""

    name = "postgresql"
    job_columns = ", ".join(_q(c) for c in COLUMNS)
    fleet = FleetStatements()

    param = staticmethod(_p)
    quote = staticmethod(_q)

    def change(self, change: JobChange) -> list[Statement]:
        params: dict[str, Any] = {"job_id": change.job_id}
        ctes: list[str] = []
        counters = list(change.counters)
        if change.front_of_queue and "queue_seq" not in counters:
            counters.append("queue_seq")
        for counter in counters:
            ctes.append(
                f"c_{counter} AS (UPDATE counters SET value = value + 1 WHERE name = '{counter}' RETURNING value)"
            )
        returning = ", ".join(_q(c) for c in (change.returning or COLUMNS))
        if change.insert is not None:
            columns = [c for c in change.insert if c not in change.counters]
            marks = [_p(f"v_{c}") for c in columns]
            params.update({f"v_{c}": change.insert[c] for c in columns})
            for counter in change.counters:
                columns.append(counter)
                marks.append(f"(SELECT value FROM c_{counter})")
            ctes.append(
                f"moved AS (INSERT INTO jobs ({', '.join(_q(c) for c in columns)}) VALUES ({', '.join(marks)})"
                f" RETURNING {returning})"
            )
        else:
            sets = [f"{_q(c)} = {_p('v_' + c)}" for c in change.sets if c not in change.counters]
            params.update({f"v_{c}": v for c, v in change.sets.items() if c not in change.counters})
            sets += [f"{c} = (SELECT value FROM c_{c})" for c in change.counters]
            if change.front_of_queue:
                sets.append(
                    "queue_seq = COALESCE((SELECT MIN(queue_seq) - 1 FROM jobs WHERE status = 'queued'),"
                    " (SELECT value FROM c_queue_seq))"
                )
            if change.owner is True:
                sets.append("owner = NULL, lease_until = NULL")
            elif isinstance(change.owner, str):
                sets.append("owner = %(new_owner)s")
                params["new_owner"] = change.owner
            where = "job_id = %(job_id)s"
            if change.expect_status is not None:
                where += " AND status = %(expected)s"
                params["expected"] = change.expect_status
            if change.expect_owner is not None:
                where += " AND owner = %(me)s"
                params["me"] = change.expect_owner
            sets = sets or ["job_id = job_id"]  # a note alone: the row is checked, not changed
            ctes.append(f"moved AS (UPDATE jobs SET {', '.join(sets)} WHERE {where} RETURNING {returning})")
        when = " WHERE EXISTS (SELECT 1 FROM moved)"
        if change.events:
            ctes.append(
                "events_added AS (INSERT INTO events ({}) SELECT * FROM (VALUES {}) AS added ({}){})".format(
                    ", ".join(_q(c) for c, _ in _EVENT_COLUMNS),
                    ", ".join(_typed_row(params, f"e{n}", _EVENT_COLUMNS, row) for n, row in enumerate(change.events)),
                    ", ".join(_q(c) for c, _ in _EVENT_COLUMNS),
                    when,
                )
            )
        if change.deliveries:
            ctes.append(
                "outbox AS (INSERT INTO webhook_deliveries ({}) SELECT * FROM (VALUES {}) AS added ({}){})".format(
                    ", ".join(c for c, _ in _DELIVERY_COLUMNS),
                    ", ".join(
                        _typed_row(params, f"d{n}", _DELIVERY_COLUMNS, row) for n, row in enumerate(change.deliveries)
                    ),
                    ", ".join(c for c, _ in _DELIVERY_COLUMNS),
                    when,
                )
            )
        if change.spend is not None:
            operation, day, at, usd = change.spend
            params.update(operation=operation, day=day, spent_at=at, usd=usd)
            ctes.append(
                'spent AS (INSERT INTO spend (operation, job_id, day, at, usd, "user") SELECT %(operation)s,'
                " %(job_id)s, %(day)s, %(spent_at)s, %(usd)s::double precision,"
                f' (SELECT "user" FROM jobs WHERE job_id = %(job_id)s){when} ON CONFLICT DO NOTHING RETURNING usd)'
            )
            ctes.append(
                "cost_counted AS (INSERT INTO metric_values (name, labels, bucket, value)"
                " SELECT 'estimated_cost_usd_total', '', 0, usd FROM spent WHERE usd IS NOT NULL AND usd <> 0"
                " ON CONFLICT (name, labels, bucket) DO UPDATE SET value = metric_values.value + excluded.value)"
            )
        if change.load is not None:
            user, running, queued, started = change.load
            params.update(lu=user, lr=running, lq=queued, ls=started)
            ctes.append(
                'loaded AS (INSERT INTO user_load ("user", running, queued, last_start) SELECT %(lu)s, %(lr)s::bigint,'
                f' %(lq)s::bigint, %(ls)s::text{when} ON CONFLICT ("user") DO UPDATE SET'
                " running = user_load.running + excluded.running, queued = user_load.queued + excluded.queued,"
                " last_start = COALESCE(excluded.last_start, user_load.last_start))"
            )
        if change.audit is not None:
            params.update({f"a_{k}": v for k, v in change.audit.items()})
            ctes.append(
                'audited AS (INSERT INTO audit (ts, "user", role, action, job_id, detail, remote_addr) SELECT'
                " %(a_ts)s, %(a_user)s, %(a_role)s, %(a_action)s, %(a_job_id)s, %(a_detail)s, %(a_remote_addr)s"
                f"{when})"
            )
        if change.metrics:
            counts = sorted((*key, amount) for key, amount in change.metrics.items())
            ctes.append(f"counted AS ({_upsert_metrics(params, counts, when)})")
        if change.hours:
            hours = sorted((*key, amount) for key, amount in change.hours.items())
            ctes.append(
                "by_hour AS (INSERT INTO metric_hours (hour, name, labels, value) SELECT * FROM (VALUES {}) AS"
                " added (hour, name, labels, value){} ON CONFLICT (hour, name, labels) DO UPDATE SET"
                " value = metric_hours.value + excluded.value)".format(
                    ", ".join(
                        _typed_row(
                            params,
                            f"h{n}",
                            _HOUR_COLUMNS,
                            dict(zip(("hour", "name", "labels", "value"), row, strict=True)),
                        )
                        for n, row in enumerate(hours)
                    ),
                    when,
                )
            )
        if change.sample is not None:
            model, seconds, first = change.sample
            params.update(
                est_model=model,
                est_first=first,
                est_sample=seconds,
                est_weight=ESTIMATE_WEIGHT,
                est_low=SAMPLE_RANGE[0],
                est_high=SAMPLE_RANGE[1],
            )
            ctes.append(
                "sampled AS (INSERT INTO estimates (model, seconds, samples) SELECT %(est_model)s,"
                f" %(est_first)s::double precision, 1{when} ON CONFLICT (model) DO UPDATE SET"
                " samples = estimates.samples + 1, seconds = estimates.seconds + %(est_weight)s * (LEAST(GREATEST("
                "%(est_sample)s::double precision, estimates.seconds * %(est_low)s), estimates.seconds * %(est_high)s)"
                " - estimates.seconds))"
            )
        if change.queue_max_hour is not None:
            # The statement sees the count as it was before it: add what it changes.
            params.update(queue_hour=change.queue_max_hour, queued_delta=change.queued_delta)
            ctes.append(
                "longest AS (INSERT INTO metric_hours (hour, name, labels, value) SELECT %(queue_hour)s, 'queue_max',"
                f" '', COALESCE((SELECT value FROM metric_values WHERE name = '{JOBS_NOW}' AND labels = 'queued'"
                f" AND bucket = 0), 0) + %(queued_delta)s{when} ON CONFLICT (hour, name, labels) DO UPDATE SET"
                " value = GREATEST(metric_hours.value, excluded.value))"
            )
        extra = ""
        if change.queued_delta or change.insert is not None:
            # The queue's length after this change (the count as it was, plus what it changes).
            params["queued_change"] = change.queued_delta
            extra += (
                f", COALESCE((SELECT value FROM metric_values WHERE name = '{JOBS_NOW}' AND labels = 'queued'"
                " AND bucket = 0), 0) + %(queued_change)s AS queued_after"
            )
        params["channel"] = CHANNEL
        for n, payload in enumerate(change.notify):
            params[f"payload{n}"] = payload
            extra += f", pg_notify(%(channel)s, %(payload{n})s)::text AS told{n}"
        sql = f"WITH {', '.join(ctes)} SELECT moved.*{extra} FROM moved"
        statements = [Statement(sql, params, guard=True)]
        if change.release is not None:
            # Apart from the change's statement: the releasing job's user may be theirs too, and
            # one statement cannot update a user_load row twice. Same transaction all the same.
            statements += [Statement(s, {"released": change.release}) for s in RELEASE_WAITING]
        return statements

    @staticmethod
    def add_metrics(rows: Sequence[tuple[str, str, int, float]]) -> Statement:
        params: dict[str, Any] = {}
        return Statement(_upsert_metrics(params, sorted(rows), ""), params)

    @staticmethod
    def upsert_estimate() -> str:
        return (
            "INSERT INTO estimates (model, seconds, samples) VALUES (%(model)s, %(seconds)s, %(samples)s)"
            " ON CONFLICT (model) DO UPDATE SET seconds = excluded.seconds, samples = excluded.samples"
        )

    @staticmethod
    def insert_or_replace(table: str, columns: Sequence[str]) -> str:
        sets = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(_p(c) for c in columns)})"
            f" ON CONFLICT ({columns[0]}) DO UPDATE SET {sets}"
        )

    def search(self) -> str:
        like = "ILIKE %(pattern)s ESCAPE '\\'"
        return (
            f"SELECT {self.job_columns} FROM jobs WHERE prompt {like} OR job_id {like} OR status {like}"
            f' OR "user" {like} ORDER BY queue_seq DESC LIMIT %(limit)s'
        )

    def history_page(self, statuses: str) -> str:
        return (
            f"SELECT {self.job_columns} FROM jobs WHERE status IN ({statuses})"
            " ORDER BY finished_seq DESC LIMIT %(limit)s OFFSET %(offset)s"
        )

    def next_ready(self) -> str:
        return (
            f"SELECT {self.job_columns} FROM jobs WHERE status = 'queued' AND waiting_for IS NULL"
            " ORDER BY queue_seq LIMIT 1"
        )

    def downloaded_completed(self) -> str:
        return f"SELECT {self.job_columns} FROM jobs WHERE downloaded_at IS NOT NULL AND status = 'completed'"

    @staticmethod
    def locked(select: str) -> str:
        return select + " FOR UPDATE"

    @staticmethod
    def claimable(select: str) -> str:
        return select + " FOR UPDATE SKIP LOCKED"


def _typed_row(params: dict[str, Any], prefix: str, columns: Sequence[tuple[str, str]], row: dict[str, Any]) -> str:
    """One VALUES row of ``row``'s values, each cast to its column's type (a VALUES list
    does not take its types from the table it feeds)."""
    marks = []
    for name, kind in columns:
        params[f"{prefix}_{name}"] = row[name]
        marks.append(f"%({prefix}_{name})s::{kind}")
    return "(" + ", ".join(marks) + ")"


def _upsert_metrics(params: dict[str, Any], rows: Sequence[tuple[str, str, int, float]], when: str) -> str:
    columns = (("name", "text"), ("labels", "text"), ("bucket", "bigint"), ("value", "double precision"))
    values = ", ".join(
        _typed_row(params, f"m{n}", columns, dict(zip(("name", "labels", "bucket", "value"), row, strict=True)))
        for n, row in enumerate(rows)
    )
    return (
        f"INSERT INTO metric_values (name, labels, bucket, value) SELECT * FROM (VALUES {values}) AS"
        f" added (name, labels, bucket, value){when} ON CONFLICT (name, labels, bucket) DO UPDATE SET"
        " value = metric_values.value + excluded.value"
    )


class PgRow(tuple[Any, ...]):
    """A row read by index, by column name, or as a tuple, as ``sqlite3.Row`` is."""

    _names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> RowMaker[PgRow]:
    # The result's field names, read straight from it: ``cursor.description`` builds a
    # column object for each, at every statement.
    result = cursor.pgresult
    fields = result.nfields if result is not None else 0
    names = {(result.fname(n) or b"").decode(): n for n in range(fields)}
    seq = names.get("queue_seq")

    def make(values: Sequence[Any]) -> PgRow:
        if seq is not None and isinstance(values[seq], float) and values[seq].is_integer():
            values = list(values)  # a double here; whole keys read as ints, as on SQLite
            values[seq] = int(values[seq])
        row = PgRow(values)
        row._names = names
        return row

    return make


def _connect(url: str, timeout: float = 10) -> psycopg.Connection[PgRow]:
    return psycopg.connect(url, autocommit=True, row_factory=_row_factory, connect_timeout=max(1, round(timeout)))


class PostgresConnection:
    """A PostgreSQL database as the job logic uses it; other servers may share it.

    A connection lost (PostgreSQL restarted, the network cut) is made again at the next call,
    at most once per backoff step; meanwhile every call raises :class:`StorageUnavailable`
    (HTTP 503) and ``guard`` says the storage is unavailable, until a reconnect works."""

    dialect = PostgresDialect()
    shared = True

    def __init__(self, url: str, guard: StorageGuard) -> None:
        self.url = url
        self.guard = guard
        #: Names this process's NOTIFYs, so its own listener skips them.
        self._origin = uuid.uuid4().hex[:12]
        #: Statements that set the session up again after a reconnect.
        self.session: list[str] = []
        self._retry_at = 0.0
        self._backoff = RECONNECT_FIRST_SECONDS
        self._reason = ""
        self.closed = False
        try:
            self.raw = _connect(url)
        except psycopg.Error as exc:
            raise DataUnusable(f"PostgreSQL at {_safe(url)} cannot be reached ({_first_line(exc)})") from None
        try:
            self._migrate()
        except BaseException:
            self.raw.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresConnection({_safe(self.url)})"

    @property
    def origin(self) -> str:
        return self._origin

    # -- the connection interface --------------------------------------------------------

    def read(self, statement: Statement) -> list[Row]:
        with self._failing("read from PostgreSQL") as raw:
            return _rows(raw.execute(statement.sql, statement.params or None))

    def write(self, statements: Sequence[Statement], doing: str, durable: bool = True) -> list[Row] | None:
        with self._failing(doing) as raw:
            first, then = _write_plan(statements, durable)
            try:
                held = _pipelined(raw, first)
                if then is None:
                    return _held(statements, held)
                if not held:
                    raw.execute("ROLLBACK")
                    return None
                _pipelined(raw, then)
                return held
            except BaseException:
                self._rollback(raw)
                raise

    @contextmanager
    def transaction(self, doing: str, durable: bool = True) -> Iterator[_Transaction]:
        with self._failing(doing) as raw:
            tx = _Transaction(raw, durable)
            try:
                yield tx
                if tx.begun and not tx.done:
                    raw.execute("COMMIT")
            except BaseException:
                self._rollback(raw)
                raise

    def notify(self, payload: str) -> Statement | None:
        return Statement("SELECT pg_notify(%(channel)s, %(payload)s)", {"channel": CHANNEL, "payload": payload})

    def asynchronous(self) -> AsyncConnection | None:
        return PostgresAsyncConnection(self.url, self.guard, lambda: self.session)

    def close(self) -> None:
        self.closed = True
        self.raw.close()

    # -- facts of the database -----------------------------------------------------------

    def schema_version(self) -> int:
        return int(self.read(Statement("SELECT version FROM schema_version"))[0][0])

    def integrity_check(self) -> str:
        return "ok"

    def deferred_check(self) -> str | None:
        return None  # the server keeps its own data consistent

    def limit_waits(self, lease_seconds: float) -> None:
        """A server stopped in the middle of a transaction (suspended, paused) would hold its
        locks, and with them the fleet's slot claim: PostgreSQL ends such a session once it
        has idled in a transaction for the lease (the server reconnects when it comes back),
        and no statement waits for a lock longer than half the lease."""
        self.session = [
            f"SET idle_in_transaction_session_timeout = {max(1, round(lease_seconds * 1000))}",
            f"SET lock_timeout = {max(1, round(lease_seconds * 500))}",
        ]
        for statement in self.session:
            self.raw.execute(statement)

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _failing(self, doing: str) -> Iterator[psycopg.Connection[PgRow]]:
        """The live connection; a PostgreSQL failure as :class:`StorageUnavailable`."""
        raw = self._live()
        try:
            yield raw
        except psycopg.Error as exc:  # the connection may be gone whatever the error's class
            if raw.broken or raw.closed:
                self._lost(exc)
            if isinstance(exc, psycopg.OperationalError):
                raise StorageUnavailable(
                    f"veotui could not {doing}: PostgreSQL failed ({_first_line(exc)})", UNAVAILABLE
                ) from exc
            raise

    @staticmethod
    def _rollback(raw: psycopg.Connection[PgRow]) -> None:
        if not (raw.closed or raw.broken) and raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with suppress(psycopg.Error):
                raw.execute("ROLLBACK")

    def _live(self) -> psycopg.Connection[PgRow]:
        raw = self.raw
        if not (raw.closed or raw.broken) or self.closed:
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
        if self.guard.state.state == UNAVAILABLE:
            self.guard.recovered()
        return self.raw

    def _lost(self, exc: BaseException) -> NoReturn:
        self._reason = (
            f"PostgreSQL at {_safe(self.url)} cannot be reached ({_first_line(exc)}); veotui reconnects by itself"
        )
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, RECONNECT_CAP_SECONDS)
        self.guard.degrade(UNAVAILABLE, self._reason)
        raise StorageUnavailable(self._reason, UNAVAILABLE) from exc

    def _migrate(self) -> None:
        raw = self.raw
        with raw.transaction():
            # One migrator at a time: a transaction-level lock, released at commit.
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (SERVER_LOCK + 1,))
            raw.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            row = raw.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                raw.execute("INSERT INTO schema_version (version) VALUES (0)")
                version = 0
            else:
                version = row[0]
            if version > len(POSTGRES_MIGRATIONS):
                raise DataUnusable(
                    f"PostgreSQL database {_safe(self.url)} was written by a newer veotui (schema {version}, "
                    f"this one knows {len(POSTGRES_MIGRATIONS)}); upgrade veotui"
                )
            for number, script in enumerate(POSTGRES_MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    raw.execute(statement)
                raw.execute("UPDATE schema_version SET version = %s", (number,))
            # The fleet's own tables, which SQLite has no use for: numbered apart.
            raw.execute("ALTER TABLE schema_version ADD COLUMN IF NOT EXISTS fleet BIGINT NOT NULL DEFAULT 0")
            (fleet,) = raw.execute("SELECT fleet FROM schema_version").fetchone() or (0,)
            if fleet > len(FLEET_MIGRATIONS):
                raise DataUnusable(
                    f"PostgreSQL database {_safe(self.url)} was written by a newer veotui (fleet schema {fleet}, "
                    f"this one knows {len(FLEET_MIGRATIONS)}); upgrade veotui"
                )
            for number, script in enumerate(FLEET_MIGRATIONS[fleet:], start=fleet + 1):
                for statement in filter(str.strip, script.split(";")):
                    raw.execute(statement)
                raw.execute("UPDATE schema_version SET fleet = %s", (number,))

    # -- hearing the other servers --------------------------------------------------------

    def listen(
        self,
        heard: Callable[[PostgresReader, str, str], None],
        resync: Callable[[PostgresReader], None],
    ) -> Callable[[], None]:
        """Call ``heard(reader, kind, job_id)`` (in a thread of its own) for every change
        another process announces; ``reader`` reads on the listening connection. Returns a
        function that stops it.

        A lost connection is made again with backoff; what changed meanwhile cannot be
        replayed, so ``resync(reader)`` is called once it is back."""
        first = _connect(self.url)
        first.execute(f"LISTEN {CHANNEL}")
        stop = threading.Event()

        def run() -> None:
            conn: psycopg.Connection[PgRow] | None = first
            backoff = RECONNECT_FIRST_SECONDS
            while not stop.is_set():
                try:
                    if conn is None:
                        conn = _connect(self.url, RECONNECT_TIMEOUT_SECONDS)
                        conn.execute(f"LISTEN {CHANNEL}")
                        log.warning("listening to PostgreSQL again")
                        backoff = RECONNECT_FIRST_SECONDS
                        resync(PostgresReader(conn))
                    reader = PostgresReader(conn)
                    while not stop.is_set():
                        # Gathered first: the connection is busy while it waits for them.
                        for note in list(conn.notifies(timeout=0.2)):
                            origin, kind, job_id = [*note.payload.split(" "), "", ""][:3]
                            if origin != self._origin:
                                heard(reader, kind, job_id)
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


class PostgresReader:
    """Reads on the listening connection (its own thread's)."""

    def __init__(self, raw: psycopg.Connection[PgRow]) -> None:
        self.raw = raw

    def read(self, statement: Statement) -> list[Row]:
        return _rows(self.raw.execute(statement.sql, statement.params or None))


class _Opened:
    """What an open transaction has sent: ``BEGIN`` goes with its first statements, and
    ``COMMIT`` with its last write (``last``), so a read-then-write transaction is two round
    trips."""

    def __init__(self, durable: bool) -> None:
        self.durable = durable
        self.begun = False
        self.done = False

    def _begin(self) -> list[str]:
        if self.begun:
            return []
        self.begun = True
        return _opening(self.durable)

    def _sent(self, statements: Sequence[Statement], last: bool) -> list[Statement | str]:
        """A write's statements as sent, with what opens or ends the transaction."""
        self.done = last
        return [*self._begin(), *statements, *(["COMMIT"] if last else [])]


def _guarded(statements: Sequence[Statement], rows: list[Row] | None) -> list[Row] | None:
    """A write's rows, or None where its guarded statement found none."""
    guard = next((s for s in statements if s.guard), None)
    return None if guard is not None and not rows else rows


class _Transaction(_Opened):
    """An open transaction on the synchronous connection."""

    def __init__(self, raw: psycopg.Connection[PgRow], durable: bool = True) -> None:
        super().__init__(durable)
        self.raw = raw

    def read(self, *statements: Statement) -> list[Row]:
        return _pipelined(self.raw, [*self._begin(), *statements]) or []

    def write(self, statements: Sequence[Statement], last: bool = False) -> list[Row] | None:
        return _guarded(statements, _pipelined(self.raw, self._sent(statements, last)))


def _opening(durable: bool) -> list[str]:
    """What opens a transaction whose commit waits for the log's flush, or does not."""
    return ["BEGIN"] if durable else ["BEGIN", NOT_DURABLE]


def _write_plan(
    statements: Sequence[Statement], durable: bool
) -> tuple[list[Statement | str], list[Statement | str] | None]:
    """How :meth:`PostgresConnection.write` sends ``statements``: what goes first, and what
    follows only where the guarded statement held (None: nothing follows).

    A durable statement alone is a transaction of its own. A change that does not wait for
    the disk opens its transaction to say so; a guarded statement writes nothing where its
    guard fails, so one round trip still does. Statements after a guard wait for its answer."""
    if len(statements) == 1 and durable:
        return list(statements), None
    begin: list[Statement | str] = list(_opening(durable))
    guard = next((n for n, s in enumerate(statements) if s.guard), None)
    if guard is None or len(statements) == 1:
        return [*begin, *statements, "COMMIT"], None
    return [*begin, *statements[: guard + 1]], [*statements[guard + 1 :], "COMMIT"]


def _held(statements: Sequence[Statement], rows: list[Row] | None) -> list[Row] | None:
    """What a write sent at once answers: None where its guard found no row."""
    guarded = any(statement.guard for statement in statements)
    return None if guarded and not rows else (rows or [])


def _pipelined(raw: psycopg.Connection[PgRow], statements: Sequence[Statement | str]) -> list[Row] | None:
    """Send ``statements`` at once (pipeline mode: one round trip); the rows of the guarded
    one, or of the last one that returns rows."""
    alone = statements[0] if len(statements) == 1 else None
    if isinstance(alone, Statement):  # no pipeline to set up for one statement
        return _answer([(alone, _rows(raw.execute(alone.sql, alone.params or None)), True)])
    cursors = []
    with raw.pipeline():
        for statement in statements:
            if isinstance(statement, str):
                raw.execute(statement)
                continue
            cursors.append((statement, raw.execute(statement.sql, statement.params or None)))
    return _answer([(statement, _rows(cursor), _returns_rows(cursor)) for statement, cursor in cursors])


def _answer(results: Sequence[tuple[Statement, list[Row], bool]]) -> list[Row] | None:
    """Of statements sent at once, each with its rows and whether it returns rows: the rows
    of the guarded one, or of the last one that returns rows."""
    answer: list[Row] | None = None
    for statement, rows, returns in results:
        if statement.guard:
            return rows
        if rows or returns:
            answer = rows
    return answer


class PostgresAsyncConnection:
    """The writes and reads the engine's work makes, on a pool of psycopg's asynchronous
    connections: while PostgreSQL answers one job's change, the event loop goes on with the
    other jobs' work and the server's clients, and concurrent commits share the log's flush.

    The pool opens at the first call (it needs the running loop) and grows to
    :data:`POOL_SIZE` connections. A call that gets no connection within
    :data:`RECONNECT_TIMEOUT_SECONDS` (PostgreSQL away) raises :class:`StorageUnavailable` and
    marks ``guard`` unavailable, as the synchronous connection does; the pool makes new
    connections by itself, and the first call that works marks the guard recovered."""

    def __init__(self, url: str, guard: StorageGuard, session: Callable[[], list[str]]) -> None:
        self.url = url
        self.guard = guard
        self.session = session
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[PgRow]] | None = None

    def __repr__(self) -> str:
        return f"PostgresAsyncConnection({_safe(self.url)})"

    async def read(self, statement: Statement) -> list[Row]:
        async with self._failing("read from PostgreSQL") as raw:
            return await _arows(await raw.execute(statement.sql, statement.params or None))

    async def write(self, statements: Sequence[Statement], doing: str, durable: bool = True) -> list[Row] | None:
        async with self._failing(doing) as raw:
            first, then = _write_plan(statements, durable)
            try:
                held = await _apipelined(raw, first)
                if then is None:
                    return _held(statements, held)
                if not held:
                    await raw.execute("ROLLBACK")
                    return None
                await _apipelined(raw, then)
                return held
            except BaseException:
                await _arollback(raw)
                raise

    @asynccontextmanager
    async def transaction(self, doing: str, durable: bool = True) -> AsyncIterator[_AsyncTransaction]:
        async with self._failing(doing) as raw:
            tx = _AsyncTransaction(raw, durable)
            try:
                yield tx
                if tx.begun and not tx.done:
                    await raw.execute("COMMIT")
            except BaseException:
                await _arollback(raw)
                raise

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    @asynccontextmanager
    async def _failing(self, doing: str) -> AsyncIterator[psycopg.AsyncConnection[PgRow]]:
        """A connection of the pool; a PostgreSQL failure as :class:`StorageUnavailable`."""
        pool = await self._opened()
        held: psycopg.AsyncConnection[PgRow] | None = None
        try:
            async with pool.connection(timeout=RECONNECT_TIMEOUT_SECONDS) as raw:
                held = raw
                yield raw
        except psycopg.OperationalError as exc:  # the pool drops a broken connection itself
            reason = f"veotui could not {doing}: PostgreSQL failed ({_first_line(exc)})"
            if held is None or held.broken or held.closed:  # none to be had, or it went away
                self.guard.degrade(UNAVAILABLE, reason)
            raise StorageUnavailable(reason, UNAVAILABLE) from exc
        if self.guard.state.state == UNAVAILABLE:
            self.guard.recovered()

    async def _opened(self) -> AsyncConnectionPool[psycopg.AsyncConnection[PgRow]]:
        if self._pool is None:

            async def configure(raw: psycopg.AsyncConnection[PgRow]) -> None:
                for statement in self.session():
                    await raw.execute(statement)

            self._pool = AsyncConnectionPool(
                self.url,
                connection_class=psycopg.AsyncConnection[PgRow],
                kwargs={"autocommit": True, "row_factory": _row_factory},
                min_size=1,
                max_size=POOL_SIZE,
                configure=configure,
                open=False,
                name="veotui",
            )
            await self._pool.open()
        return self._pool


class _AsyncTransaction(_Opened):
    """An open transaction on a connection of the pool."""

    def __init__(self, raw: psycopg.AsyncConnection[PgRow], durable: bool = True) -> None:
        super().__init__(durable)
        self.raw = raw

    async def read(self, *statements: Statement) -> list[Row]:
        return await _apipelined(self.raw, [*self._begin(), *statements]) or []

    async def write(self, statements: Sequence[Statement], last: bool = False) -> list[Row] | None:
        return _guarded(statements, await _apipelined(self.raw, self._sent(statements, last)))


async def _apipelined(raw: psycopg.AsyncConnection[PgRow], statements: Sequence[Statement | str]) -> list[Row] | None:
    """:func:`_pipelined`, awaited."""
    alone = statements[0] if len(statements) == 1 else None
    if isinstance(alone, Statement):
        return _answer([(alone, await _arows(await raw.execute(alone.sql, alone.params or None)), True)])
    cursors = []
    async with raw.pipeline():
        for statement in statements:
            if isinstance(statement, str):
                await raw.execute(statement)
                continue
            cursors.append((statement, await raw.execute(statement.sql, statement.params or None)))
    return _answer([(statement, await _arows(cursor), _returns_rows(cursor)) for statement, cursor in cursors])


async def _arows(cursor: psycopg.AsyncCursor[PgRow]) -> list[Row]:
    return await cursor.fetchall() if _returns_rows(cursor) else []


async def _arollback(raw: psycopg.AsyncConnection[PgRow]) -> None:
    if not (raw.closed or raw.broken) and raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        with suppress(psycopg.Error):
            await raw.execute("ROLLBACK")


class PostgresStore(JobStore):
    """The job store on the PostgreSQL database at ``url``, shared by a fleet: the job logic
    over a :class:`PostgresConnection` (this class only opens the connection). The jobs'
    files stay in ``data_dir``."""

    def __init__(self, url: str, data_dir: Path, guard: StorageGuard | None = None) -> None:
        guard = guard or StorageGuard(data_dir)
        prepare(data_dir)
        self.url = url
        super().__init__(PostgresConnection(url, guard), guard, data_dir / "veotui.db")

    def __repr__(self) -> str:
        return f"PostgresStore({_safe(self.url)})"


def _rows(cursor: psycopg.Cursor[PgRow]) -> list[Row]:
    """What a statement returned: its rows, or none for a statement that returns none."""
    return cursor.fetchall() if _returns_rows(cursor) else []


def _returns_rows(cursor: psycopg.Cursor[PgRow] | psycopg.AsyncCursor[PgRow]) -> bool:
    result = cursor.pgresult
    return result is not None and result.status == psycopg.pq.ExecStatus.TUPLES_OK


def _safe(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

"""Metrics kept as running aggregates, so reading them never reads the job history.

The store updates two tables in the same transaction as each transition:

- ``metric_values (name, labels, bucket, value)``: counters (``bucket`` 0) and histograms
  (``bucket`` i counts observations in ``(BUCKETS[i-1], BUCKETS[i]]``, ``len(BUCKETS)`` the
  ones beyond the last bound, ``-1`` holds their sum);
- ``metric_hours (hour, name, labels, value)``: jobs ended per hour by status and the
  longest queue of each hour, for the last day's charts.

The arithmetic that reads them back is veotui.core.stats; the Prometheus series of
``GET /metrics`` are built in veotui.server.prometheus.
"""

from __future__ import annotations

import sqlite3

from veotui.core.stats import BUCKETS, SUM_BUCKET


def _bucket_sql(column: str) -> str:
    cases = " ".join(f"WHEN {column} <= {bound!r} THEN {n}" for n, bound in enumerate(BUCKETS))
    return f"CASE {cases} ELSE {len(BUCKETS)} END"


_ENDED = "kind = 'transition' AND status IN ('completed', 'failed', 'cancelled')"
_COMPLETED_SECONDS = "kind = 'transition' AND status = 'completed' AND seconds IS NOT NULL"

SCHEMA_SQL = """
    CREATE TABLE metric_values (
        name TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '',
        bucket INTEGER NOT NULL DEFAULT 0,
        value REAL NOT NULL,
        PRIMARY KEY (name, labels, bucket)
    ) WITHOUT ROWID;
    CREATE TABLE metric_hours (
        hour TEXT NOT NULL,
        name TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '',
        value REAL NOT NULL,
        PRIMARY KEY (hour, name, labels)
    ) WITHOUT ROWID
"""


def _backfill(user: str) -> str:
    """The aggregates of the event log as it stands (the spend table for the cost); ``user``
    is the column as the dialect writes it."""
    return f"""
    INSERT INTO metric_values (name, labels, bucket, value)
        SELECT 'jobs_total', status, 0, COUNT(*) FROM events WHERE {_ENDED} GROUP BY status;
    INSERT INTO metric_values (name, labels, bucket, value)
        SELECT 'errors_total', COALESCE(error_kind, 'unknown'), 0, COUNT(*) FROM events
        WHERE kind = 'transition' AND status = 'failed' GROUP BY 2;
    INSERT INTO metric_values (name, labels, bucket, value)
        SELECT 'submitted_total', COALESCE({user}, 'local'), 0, COUNT(*) FROM events WHERE kind = 'submitted' GROUP BY 2;
    INSERT INTO metric_values (name, labels, bucket, value)
        SELECT 'job_duration_seconds', '', {_bucket_sql("seconds")}, COUNT(*) FROM events
        WHERE {_COMPLETED_SECONDS} GROUP BY 3;
    INSERT INTO metric_values (name, labels, bucket, value)
        SELECT 'job_duration_seconds', '', {SUM_BUCKET}, SUM(seconds) FROM events
        WHERE {_COMPLETED_SECONDS} HAVING COUNT(*) > 0;
    INSERT INTO metric_values (name, labels, bucket, value)
        SELECT 'estimated_cost_usd_total', '', 0, SUM(usd) FROM spend WHERE usd IS NOT NULL HAVING COUNT(*) > 0;
    INSERT INTO metric_hours (hour, name, labels, value)
        SELECT substr(at, 1, 13), 'finished', status, COUNT(*) FROM events WHERE {_ENDED} GROUP BY 1, 3
"""


BACKFILL_SQL = _backfill("user")

MIGRATION_SQL = SCHEMA_SQL + ";" + BACKFILL_SQL
#: The same on PostgreSQL: doubles and 64-bit integers, ``"user"`` quoted.
POSTGRES_SCHEMA_SQL = """
    CREATE TABLE metric_values (
        name TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '',
        bucket BIGINT NOT NULL DEFAULT 0,
        value DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (name, labels, bucket)
    );
    CREATE TABLE metric_hours (
        hour TEXT NOT NULL,
        name TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '',
        value DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (hour, name, labels)
    )
"""
POSTGRES_MIGRATION_SQL = POSTGRES_SCHEMA_SQL + ";" + _backfill('"user"')
#: Jobs per status as they stand (not a Prometheus series): kept by every write that adds,
#: moves or deletes a job, so the queue's and the history's totals never count the jobs table.
JOBS_NOW = "jobs_now"
JOBS_NOW_SQL = f"""
    INSERT INTO metric_values (name, labels, bucket, value)
        SELECT '{JOBS_NOW}', status, 0, COUNT(*) FROM jobs GROUP BY status
"""


def rebuild(conn: sqlite3.Connection) -> None:
    """Recount every aggregate from the event log (inside the caller's transaction)."""
    conn.execute("DELETE FROM metric_values")
    conn.execute("DELETE FROM metric_hours")
    for statement in filter(str.strip, (BACKFILL_SQL + ";" + JOBS_NOW_SQL).split(";")):
        conn.execute(statement)

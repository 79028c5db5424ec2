"""Metrics kept as running aggregates, so reading them never reads the job history.

The store updates two tables in the same transaction as each transition:

- ``metric_values (name, labels, bucket, value)``: counters (``bucket`` 0) and histograms
  (``bucket`` i counts observations in ``(BUCKETS[i-1], BUCKETS[i]]``, ``len(BUCKETS)`` the
  ones beyond the last bound, ``-1`` holds their sum);
- ``metric_hours (hour, name, labels, value)``: jobs ended per hour by status and the
  longest queue of each hour, for the last day's charts.

:class:`Collector` turns them into the Prometheus series of ``GET /metrics``.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

#: Upper bounds (seconds) of every histogram's buckets: from a simulated stage to a day's wait.
BUCKETS: tuple[float, ...] = (
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    180.0,
    300.0,
    600.0,
    1200.0,
    1800.0,
    3600.0,
    7200.0,
    21600.0,
    86400.0,
)
SUM_BUCKET = -1
HISTOGRAMS = ("job_duration_seconds", "stage_duration_seconds", "queue_wait_seconds")

# -- schema ---------------------------------------------------------------------------------


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
#: The aggregates of the event log as it stands (the spend table for the cost).
BACKFILL_SQL = f"""
    INSERT INTO metric_values (name, labels, bucket, value)
        SELECT 'jobs_total', status, 0, COUNT(*) FROM events WHERE {_ENDED} GROUP BY status;
    INSERT INTO metric_values (name, labels, bucket, value)
        SELECT 'errors_total', COALESCE(error_kind, 'unknown'), 0, COUNT(*) FROM events
        WHERE kind = 'transition' AND status = 'failed' GROUP BY 2;
    INSERT INTO metric_values (name, labels, bucket, value)
        SELECT 'submitted_total', COALESCE(user, 'local'), 0, COUNT(*) FROM events WHERE kind = 'submitted' GROUP BY 2;
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
MIGRATION_SQL = SCHEMA_SQL + ";" + BACKFILL_SQL
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


def bucket_of(seconds: float) -> int:
    for n, bound in enumerate(BUCKETS):
        if seconds <= bound:
            return n
    return len(BUCKETS)


def hour_of(iso_time: str) -> str:
    """``2026-11-30T15:04:05.123Z`` -> ``2026-11-30T15`` (the key of ``metric_hours``)."""
    return iso_time[:13]


def add(conn: sqlite3.Connection, name: str, labels: str = "", amount: float = 1.0, bucket: int = 0) -> None:
    conn.execute(
        "INSERT INTO metric_values (name, labels, bucket, value) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name, labels, bucket) DO UPDATE SET value = value + excluded.value",
        (name, labels, bucket, amount),
    )


def observe(conn: sqlite3.Connection, name: str, seconds: float, labels: str = "") -> None:
    seconds = max(0.0, seconds)
    add(conn, name, labels, 1.0, bucket_of(seconds))
    add(conn, name, labels, seconds, SUM_BUCKET)


def add_hour(conn: sqlite3.Connection, hour: str, name: str, labels: str = "", amount: float = 1.0) -> None:
    conn.execute(
        "INSERT INTO metric_hours (hour, name, labels, value) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (hour, name, labels) DO UPDATE SET value = value + excluded.value",
        (hour, name, labels, amount),
    )


def max_hour(conn: sqlite3.Connection, hour: str, name: str, value: float) -> None:
    conn.execute(
        "INSERT INTO metric_hours (hour, name, labels, value) VALUES (?, ?, '', ?)"
        " ON CONFLICT (hour, name, labels) DO UPDATE SET value = MAX(value, excluded.value)",
        (hour, name, value),
    )


# -- reading --------------------------------------------------------------------------------


class Histogram:
    """One histogram's persisted state."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus' ``le`` buckets."""
        out: list[tuple[str, float]] = []
        running = 0
        for n, bound in enumerate(BUCKETS):
            running += self.counts[n]
            out.append((_le(bound), running))
        out.append(("+Inf", running + self.counts[-1]))
        return out

    def average(self) -> float | None:
        return self.sum / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """Estimated like Prometheus' ``histogram_quantile``: linear inside the bucket that
        holds the rank, so the error is at most that bucket's width. Beyond the last bound,
        the last bound."""
        total = self.count
        if not total:
            return None
        rank = q * total
        running = 0
        for n, in_bucket in enumerate(self.counts):
            if in_bucket and running + in_bucket >= rank:
                if n == len(BUCKETS):
                    return BUCKETS[-1]
                lower = BUCKETS[n - 1] if n else 0.0
                upper = BUCKETS[n]
                return lower + (upper - lower) * (rank - running) / in_bucket
            running += in_bucket
        return BUCKETS[-1]


def _le(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else str(bound)


class Snapshot:
    """Every persisted aggregate, read in one small query."""

    def __init__(self, rows: Iterable[tuple[str, str, int, float]]) -> None:
        self.counters: dict[str, dict[str, float]] = {}
        self.histograms: dict[str, dict[str, Histogram]] = {}
        for name, labels, bucket, value in rows:
            if name in HISTOGRAMS:
                histogram = self.histograms.setdefault(name, {}).setdefault(labels, Histogram())
                if bucket == SUM_BUCKET:
                    histogram.sum = value
                elif 0 <= bucket <= len(BUCKETS):
                    histogram.counts[bucket] = int(value)
            else:
                self.counters.setdefault(name, {})[labels] = value

    def counter(self, name: str) -> dict[str, float]:
        return self.counters.get(name, {})

    def histogram(self, name: str, labels: str = "") -> Histogram:
        return self.histograms.get(name, {}).get(labels) or Histogram()


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


# -- counts this process keeps --------------------------------------------------------------

#: Cloud Storage calls by (operation, outcome), since this process started.
GCS_OPERATIONS: Counter[tuple[str, str]] = Counter()
_gcs_lock = threading.Lock()


def count_gcs(op: str, outcome: str) -> None:
    with _gcs_lock:
        GCS_OPERATIONS[(op, outcome)] += 1


class DirSize:
    """The data directory's size, refreshed in a background thread when older than ``ttl``:
    a reader never waits for a walk of the tree (the first one sees 0 until it is done)."""

    def __init__(self, root: Path, ttl: float = 30.0) -> None:
        self.root = root
        self.ttl = ttl
        self._bytes = 0
        self._at: float | None = None
        self._lock = threading.Lock()
        self._walking = False

    def value(self) -> int:
        self._refresh_if_stale()
        return self._bytes

    def refresh_now(self) -> int:
        self._bytes = directory_bytes(self.root)
        self._at = time.monotonic()
        return self._bytes

    def _refresh_if_stale(self) -> None:
        with self._lock:
            fresh = self._at is not None and time.monotonic() - self._at < self.ttl
            if fresh or self._walking:
                return
            self._walking = True

        def walk() -> None:
            try:
                self.refresh_now()
            finally:
                self._walking = False

        threading.Thread(target=walk, name="veotui-dir-size", daemon=True).start()


def directory_bytes(root: Path) -> int:
    total = 0
    stack = [str(root)]
    while stack:
        path = stack.pop()
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


# -- Prometheus -----------------------------------------------------------------------------


class Source(Protocol):
    def metric_snapshot(self) -> Snapshot: ...

    def queue_length(self) -> int: ...

    def processing_count(self) -> int: ...


class Collector:
    """The ``veotui_*`` series of one engine, built at each scrape from the aggregates."""

    def __init__(self, source: Source, dir_size: DirSize, uses_bucket: bool) -> None:
        self.source = source
        self.dir_size = dir_size
        self.uses_bucket = uses_bucket

    def describe(self) -> list[Any]:
        return []  # registered without a check of names: they are all ours

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        snapshot = self.source.metric_snapshot()
        yield GaugeMetricFamily("veotui_queue_length", "Jobs waiting in the queue", value=self.source.queue_length())
        yield GaugeMetricFamily(
            "veotui_processing_jobs", "Jobs holding a processing slot", value=self.source.processing_count()
        )
        jobs = CounterMetricFamily("veotui_jobs", "Ended jobs by final status", labels=["status"])
        ended = snapshot.counter("jobs_total")
        for status in ("completed", "failed", "cancelled"):
            jobs.add_metric([status], ended.get(status, 0.0))
        yield jobs
        yield _histogram(
            HistogramMetricFamily, "veotui_job_duration_seconds", "Start to completion of completed jobs", snapshot
        )
        stages = HistogramMetricFamily(
            "veotui_stage_duration_seconds", "Time spent in each processing stage", labels=["stage"]
        )
        for stage, histogram in sorted(snapshot.histograms.get("stage_duration_seconds", {}).items()):
            stages.add_metric([stage], histogram.cumulative(), histogram.sum)
        yield stages
        yield _histogram(HistogramMetricFamily, "veotui_queue_wait_seconds", "Time from queued to started", snapshot)
        errors = CounterMetricFamily("veotui_errors", "Failed jobs by error kind", labels=["kind"])
        for kind, value in sorted(snapshot.counter("errors_total").items()):
            errors.add_metric([kind], value)
        yield errors
        retries = CounterMetricFamily("veotui_retries", "Retries of calls that met a transient fault", labels=["call"])
        for call, value in sorted(snapshot.counter("retries_total").items()):
            retries.add_metric([call], value)
        yield retries
        yield CounterMetricFamily(
            "veotui_estimated_cost_usd",
            "Estimated cost of the generations bought (each operation once), in US dollars",
            value=snapshot.counter("estimated_cost_usd_total").get("", 0.0),
        )
        yield GaugeMetricFamily("veotui_data_dir_bytes", "Bytes in the data directory", value=self.dir_size.value())
        if self.uses_bucket:
            gcs = CounterMetricFamily(
                "veotui_gcs_operations", "Cloud Storage calls by operation and outcome", labels=["op", "outcome"]
            )
            with _gcs_lock:
                items = sorted(GCS_OPERATIONS.items())
            for (op, outcome), value in items:
                gcs.add_metric([op, outcome], value)
            yield gcs


def _histogram(family: Any, name: str, documentation: str, snapshot: Snapshot) -> Any:
    histogram = snapshot.histogram(name.removeprefix("veotui_"))
    metric = family(name, documentation, labels=[])
    metric.add_metric([], histogram.cumulative(), histogram.sum)
    return metric


def summary(snapshot: Snapshot) -> dict[str, Any]:
    """The aggregate figures of ``GET /api/metrics``."""
    ended = snapshot.counter("jobs_total")
    completed, failed = int(ended.get("completed", 0)), int(ended.get("failed", 0))
    duration = snapshot.histogram("job_duration_seconds")
    wait = snapshot.histogram("queue_wait_seconds")
    stages = {
        stage: {
            "p50": rounded(h.quantile(0.5)),
            "p95": rounded(h.quantile(0.95)),
            "count": h.count,
        }
        for stage, h in snapshot.histograms.get("stage_duration_seconds", {}).items()
    }
    return {
        "completed": completed,
        "failed": failed,
        "cancelled": int(ended.get("cancelled", 0)),
        "success_rate": round(completed / (completed + failed), 4) if completed + failed else None,
        "avg_processing_seconds": rounded(duration.average()),
        "jobs_by_user": {user: int(n) for user, n in sorted(snapshot.counter("submitted_total").items())},
        "errors_by_kind": {kind: int(n) for kind, n in sorted(snapshot.counter("errors_total").items())},
        "queue_wait_seconds_avg": rounded(wait.average()),
        "processing_seconds_p50": rounded(duration.quantile(0.5)),
        "processing_seconds_p95": rounded(duration.quantile(0.95)),
        "estimated_cost_usd_total": round(snapshot.counter("estimated_cost_usd_total").get("", 0.0), 4),
        "retries_by_call": {call: int(n) for call, n in sorted(snapshot.counter("retries_total").items())},
        "stage_seconds": {stage: stages[stage] for stage in sorted(stages)},
    }


def series_rows(rows: Iterable[tuple[str, str, str, float]], hours: list[str]) -> list[dict[str, Any]]:
    """``metric_hours`` rows as one entry per hour, oldest first, hours without rows included."""
    by_hour: dict[str, dict[str, Any]] = {
        hour: {"hour": hour + ":00Z", "completed": 0, "failed": 0, "cancelled": 0, "queue_length_max": 0}
        for hour in hours
    }
    for hour, name, labels, value in rows:
        entry = by_hour.get(hour)
        if entry is None:
            continue
        if name == "finished" and labels in ("completed", "failed", "cancelled"):
            entry[labels] = int(value)
        elif name == "queue_max":
            entry["queue_length_max"] = int(value)
    return [by_hour[hour] for hour in hours]

"""The arithmetic of the metrics: histogram buckets, quantiles, and the figures of
``GET /api/metrics`` built from the aggregates the store keeps (veotui.store.aggregates)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

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


def bucket_of(seconds: float) -> int:
    for n, bound in enumerate(BUCKETS):
        if seconds <= bound:
            return n
    return len(BUCKETS)


def hour_of(iso_time: str) -> str:
    """``2026-11-30T15:04:05.123Z`` -> ``2026-11-30T15`` (the key of ``metric_hours``)."""
    return iso_time[:13]


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

"""The ``veotui_*`` series of ``GET /metrics``, built at each scrape from the aggregates the
store keeps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from veotui.core.stats import Snapshot
from veotui.datadir.sizes import DirSize


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
            from veotui.generators.gcs import gcs_operations  # loaded already: the generator uses it

            gcs = CounterMetricFamily(
                "veotui_gcs_operations", "Cloud Storage calls by operation and outcome", labels=["op", "outcome"]
            )
            for (op, outcome), value in gcs_operations():
                gcs.add_metric([op, outcome], value)
            yield gcs


def _histogram(family: Any, name: str, documentation: str, snapshot: Snapshot) -> Any:
    histogram = snapshot.histogram(name.removeprefix("veotui_"))
    metric = family(name, documentation, labels=[])
    metric.add_metric([], histogram.cumulative(), histogram.sum)
    return metric

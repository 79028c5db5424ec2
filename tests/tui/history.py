"""Ended jobs made in bulk for paging tests and the benchmark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from veotui.core.job import Job, Status, Video
from veotui.core.request import JobRequest

BASE = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def ended_job(n: int, base: datetime = BASE) -> Job:
    """The ``n``-th of a run of ended jobs: completed, failed and cancelled in turn, one a
    minute from ``base``, with a fixed id."""
    status = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)[n % 3]
    created = base + timedelta(minutes=n)
    return Job(
        job_id=f"{n:08x}-0000-4000-8000-000000000000",
        status=status,
        request=JobRequest(prompt=f"archive shot {n}: a lighthouse in fog"),
        created_at=created,
        started_at=created + timedelta(seconds=5),
        finished_at=created + timedelta(seconds=50),
        attempts=1,
        error="Veo ended the operation with an error: 3 INVALID_ARGUMENT" if status == Status.FAILED else None,
        videos=(Video(1, "generated_video_1.mp4", 2_400_000),) if status == Status.COMPLETED else (),
    )


def ended_jobs(count: int, base: datetime = BASE) -> list[Job]:
    """``count`` completed, failed and cancelled jobs, one a minute, with fixed ids."""
    return [ended_job(n, base) for n in range(count)]

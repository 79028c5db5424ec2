"""Honest progress: the stage a job is in, plus, while it generates, the time it has spent
against a moving estimate of how long past jobs of the same model took.

Veo reports no percentage, so none is invented: the generating band fills linearly with
elapsed time until 90% of the estimate, then creeps towards (never reaches) its end, and
``eta_seconds`` is what remains of the estimate.
"""

from __future__ import annotations

import math
from datetime import datetime

from veotui.core.job import Job, Status

#: (start, end) of each stage's share of the bar.
BANDS: dict[Status, tuple[int, int]] = {
    Status.QUEUED: (0, 0),
    Status.STARTING: (0, 2),
    Status.UPLOADING_IMAGE: (2, 5),
    Status.GENERATING: (5, 90),
    Status.PROCESSING: (90, 93),
    Status.DOWNLOADING: (93, 99),
}


#: A generation time is folded into the moving estimate within these multiples of the
#: estimate (or, before any sample, of the generator's typical time): a job that waited out a
#: suspended laptop or a wall-clock step must not throw every later ETA off. Beyond them the
#: sample is clamped; one that is not a positive finite number is dropped.
SAMPLE_RANGE = (0.25, 4.0)
#: Weight of the newest sample in the moving estimate of generation time.
ESTIMATE_WEIGHT = 0.3


def fold_sample(estimate: float | None, seconds: float, prior: float | None = None) -> float | None:
    """The moving estimate after one more sample; None when there is still none."""
    if not (math.isfinite(seconds) and seconds > 0):
        return estimate
    base = estimate if estimate is not None else prior
    if base is not None and base > 0:
        seconds = min(max(seconds, base * SAMPLE_RANGE[0]), base * SAMPLE_RANGE[1])
    if estimate is None:
        return seconds
    return estimate + ESTIMATE_WEIGHT * (seconds - estimate)


def generating_fraction(elapsed: float, estimate: float) -> float:
    """0..1 share of the generating band; linear up to 0.9, then asymptotic."""
    if estimate <= 0:
        return 0.0
    ratio = max(0.0, elapsed / estimate)
    if ratio <= 0.9:
        return ratio
    return 0.9 + 0.1 * (1 - math.exp(-(ratio - 0.9) * 3))


def with_progress(
    job: Job, estimate: float, now: datetime, *, stage_elapsed: float | None = None, **also: object
) -> Job:
    """The job with ``progress`` (0-100) and ``eta_seconds`` derived for ``now`` (and any
    other derived fields in ``also``, set in the same copy). ``stage_elapsed``, when known,
    is the time in the current stage by a monotonic clock; else the wall clock's
    ``now - stage_started_at`` is used."""
    if job.status == Status.COMPLETED:
        return job.replace(progress=100, eta_seconds=0, **also)
    if job.status not in BANDS:
        return job.replace(progress=0, eta_seconds=None, **also)
    start, end = BANDS[job.status]
    if job.status == Status.GENERATING and (stage_elapsed is not None or job.stage_started_at is not None):
        if stage_elapsed is None:
            assert job.stage_started_at is not None
            stage_elapsed = (now - job.stage_started_at).total_seconds()
        elapsed = max(0.0, stage_elapsed)
        fraction = generating_fraction(elapsed, estimate)
        progress = min(end - 1, start + (end - start) * fraction)
        eta = max(0, round(estimate - elapsed))
    else:
        progress = start
        eta = round(estimate) if job.status in (Status.QUEUED, Status.STARTING, Status.UPLOADING_IMAGE) else 0
    return job.replace(progress=min(99, int(progress)), eta_seconds=eta, **also)

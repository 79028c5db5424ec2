from datetime import timedelta

import pytest

from veotui.core.ids import new_job_id
from veotui.core.job import Job, Status, utcnow
from veotui.core.progress import fold_sample, generating_fraction, with_progress
from veotui.core.request import JobRequest


def job_in(status, stage_started_at=None):
    return Job(job_id=new_job_id(), status=status, request=JobRequest(prompt="p"), stage_started_at=stage_started_at)


def test_progress_follows_elapsed_time_against_the_estimate():
    now = utcnow()
    readings = []
    for elapsed in (0, 15, 30, 54, 60, 90, 300, 3000):
        job = job_in(Status.GENERATING, now - timedelta(seconds=elapsed))
        readings.append(with_progress(job, estimate=60, now=now))
    progress = [j.progress for j in readings]
    assert progress == sorted(progress), "never goes backwards"
    assert progress[0] == 5 and progress[2] == 47  # half the estimate: half the band
    assert all(p < 90 for p in progress), "generating never claims the next stage"
    assert [j.eta_seconds for j in readings[:3]] == [60, 45, 30]
    assert readings[-1].eta_seconds == 0


def test_stages_own_bands_and_only_completed_is_100():
    now = utcnow()
    assert with_progress(job_in(Status.QUEUED), 60, now).progress == 0
    assert with_progress(job_in(Status.PROCESSING), 60, now).progress == 90
    assert with_progress(job_in(Status.DOWNLOADING), 60, now).progress == 93
    assert with_progress(job_in(Status.COMPLETED), 60, now).progress == 100
    assert with_progress(job_in(Status.FAILED), 60, now).progress == 0


def test_the_tail_creeps_but_never_arrives():
    assert generating_fraction(0.9 * 60, 60) == 0.9
    assert 0.9 < generating_fraction(120, 60) < generating_fraction(600, 60) < 1.0


def test_an_implausible_generation_time_is_clamped_and_a_nonsense_one_dropped(tmp_path):
    from veotui.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "veotui.db")
    try:
        # The first sample is held against the generator's typical time.
        assert store.record_duration("m", 3600.0, prior=60.0) == 240.0
        assert store.record_duration("m", 200.0) == pytest.approx(240 + 0.3 * (200 - 240))
        before = store.estimate("m")
        assert before is not None
        for nonsense in (-3600.0, 0.0, float("nan"), float("inf")):
            assert store.record_duration("m", nonsense) == before
        assert store.estimate("m") == before
        # A wild sample moves the estimate by at most its clamp: 4x (up) or 1/4 (down).
        up = store.record_duration("m", 1e9)
        assert up == pytest.approx(before + 0.3 * (4 * before - before))
    finally:
        store.close()


def test_fold_sample_without_a_prior_takes_the_first_sample_as_it_is():
    assert fold_sample(None, 42.0) == 42.0
    assert fold_sample(None, -1.0) is None
    assert fold_sample(100.0, 100.0) == 100.0


def test_monotonic_stage_time_wins_over_a_stepped_wall_clock():
    now = utcnow()
    # The wall clock says the stage began an hour ago (it was stepped); the monotonic clock says 30 s.
    job = job_in(Status.GENERATING, now - timedelta(hours=1))
    shown = with_progress(job, estimate=60, now=now, stage_elapsed=30.0)
    assert shown.progress == 47 and shown.eta_seconds == 30
    # Stepped back: a negative wall-clock elapsed reads as 0, never below the band.
    back = with_progress(job_in(Status.GENERATING, now + timedelta(hours=1)), estimate=60, now=now)
    assert back.progress == 5 and back.eta_seconds == 60

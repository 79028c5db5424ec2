from datetime import timedelta

from veotui.model import Job, JobRequest, Status, new_job_id, utcnow
from veotui.progress import generating_fraction, with_progress


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

"""How job fields read on screen."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from veotui.core import display as fmt
from veotui.core.job import Job, Status, Video
from veotui.core.request import JobRequest
from veotui.tui import cells


def test_durations():
    assert fmt.duration(None) == "—"
    assert fmt.duration(0) == "0:00"
    assert fmt.duration(75.9) == "1:15"
    assert fmt.duration(3600 + 62) == "1:01:02"


def test_sizes():
    assert fmt.size(512) == "512 B"
    assert fmt.size(2_400_000) == "2.3 MB"


def test_progress_bar_has_a_fixed_width_at_every_percentage():
    widths = {cells.progress_bar(percent).cell_length for percent in range(0, 101)}
    assert widths == {fmt.BAR_WIDTH + 5}
    assert cells.progress_bar(45).plain.endswith(" 45%")


def test_prompts_are_plain_text_never_markup():
    cell = cells.plain("a storm [fail] [bold]x[/bold]")
    assert cell.plain == "a storm [fail] [bold]x[/bold]"


def test_result_of_an_ended_job():
    request = JobRequest(prompt="p")
    done = Job("j", Status.COMPLETED, request, videos=(Video(1, "v.mp4", 1024), Video(2, "w.mp4", 1024)))
    failed = Job("j", Status.FAILED, request, error="Quota refused.\nDetails follow.")
    assert cells.result_cell(done).plain == "2 videos · 2.0 KB"
    assert cells.result_cell(failed).plain == "Quota refused."


def test_stage_labels_fit_their_column():
    assert max(len(fmt.stage_label(status)) for status in Status) <= 11


def test_filter_matches_prompt_id_status_and_user_ignoring_case():
    job = Job("abc123", Status.FAILED, JobRequest(prompt="A Red Fox", user="alice"))
    assert all(fmt.matches(job, text) for text in ("red fox", "ABC1", "fail", "Alice"))
    assert not fmt.matches(job, "dog")


def test_the_auto_delete_notice_counts_from_the_recorded_download_or_from_now():
    now = datetime(2026, 5, 1, 12, 0, 10, tzinfo=UTC)
    done = Job("abcdef123456", Status.COMPLETED, JobRequest(prompt="p"), videos=(Video(1, "v.mp4", 1024),))
    recorded = dataclasses.replace(done, downloaded_at=now - timedelta(seconds=2))
    assert fmt.auto_delete_notice(done, None, now) is None  # auto-delete is off
    assert "removed in 3 s" in (fmt.auto_delete_notice(recorded, 5, now) or "")
    # The server records a download just after its last byte; the client may ask before that.
    notice = fmt.auto_delete_notice(done, 5, now)
    assert notice is not None and "job abcdef12 will be removed in 5 s" in notice
    assert "auto_delete_after_download = off" in notice

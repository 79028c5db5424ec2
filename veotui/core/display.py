"""How job fields read in a terminal: short ids, durations, sizes, times, the progress bar.

Pure functions of their arguments (the clock is passed in), so the TUI's tables and details
screen, the client verbs and the tests all agree on one rendering (the TUI styles the words
with its theme: ``veotui.tui.cells``).
"""

from __future__ import annotations

import re
from datetime import datetime

from veotui.core.capabilities import EXTENSION_ADDS_SECONDS
from veotui.core.job import Job, JobEvent, Status
from veotui.core.request import JobRequest
from veotui.core.text import printable

SHORT_ID = 8
#: Failure messages that ask for a changed prompt; the TUI adds the key that does it.
_ASKS_FOR_AN_EDIT = re.compile(r"\b(edit|rephrase|change)\b[^.]*\bprompt\b", re.IGNORECASE)
EDIT_HINT = "Press e to edit the job and submit it again."
BAR_WIDTH = 10

STATUS_MARK: dict[Status, str] = {
    Status.COMPLETED: "✓",
    Status.FAILED: "✗",
    Status.CANCELLED: "⊘",
}


def short_id(job_id: str) -> str:
    return job_id[:SHORT_ID]


def extension_result(request: JobRequest) -> str:
    """What an extension makes: ``about 15 s (the 8 s video and 7 s more)``."""
    source = request.extends.source_seconds if request.extends else None
    if source is None:
        return f"about {EXTENSION_ADDS_SECONDS} s longer than the video it continues"
    return (
        f"about {round(source + EXTENSION_ADDS_SECONDS)} s "
        f"(the {round(source)} s video and {EXTENSION_ADDS_SECONDS} s more)"
    )


def one_line(text: str | None) -> str:
    """The first line of ``text``, for a table cell."""
    if not text:
        return ""
    return printable(text.strip().splitlines()[0]) if text.strip() else ""


def duration(seconds: float | None) -> str:
    """``m:ss`` below an hour, ``h:mm:ss`` above; ``—`` when unknown."""
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def elapsed(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "—"
    return duration((now - since).total_seconds())


def size(num_bytes: int) -> str:
    value = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover - the loop always returns


def local_time(moment: datetime | None, now: datetime) -> str:
    """A timestamp in the operator's time zone: the time alone when it is today."""
    if moment is None:
        return "—"
    here = moment.astimezone()
    if here.date() == now.astimezone().date():
        return here.strftime("%H:%M:%S")
    return here.strftime("%b %d %H:%M")


def full_time(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def model_label(model: str) -> str:
    """``veo-3.1-fast-generate-001`` reads ``3.1-fast``."""
    return model.removeprefix("veo-").removesuffix("-generate-001")


def stage_label(status: Status) -> str:
    """A stage in at most 11 characters (the width of its column)."""
    return "uploading" if status == Status.UPLOADING_IMAGE else status.value


def waiting(job: Job, now: datetime) -> tuple[str, str] | None:
    """For a job waiting out a backoff, its stage and progress cells:
    ``("rate limited", "retrying in 4 s")``; None otherwise."""
    if job.retry_at is None or not job.status.is_active:
        return None
    left = max(0, round((job.retry_at - now).total_seconds()))
    when = "retrying now" if left == 0 else f"retrying in {left} s" if left < 10 else f"retry in {left} s"
    return (job.retry_reason or "retrying", when)


def shown_timeline(job: Job, events: list[JobEvent]) -> list[JobEvent]:
    """The timeline as a person reads it: a job with nothing to upload passes through
    ``uploading_image`` in an instant, which says nothing, so that step is left out."""
    uploads = job.has_image or job.has_last_frame or job.reference_count or job.request.extends is not None
    if uploads:
        return events
    return [event for event in events if event.status != Status.UPLOADING_IMAGE]


def videos_summary(job: Job) -> str:
    if not job.videos:
        return f"{job.request.number_of_videos} video{'s' if job.request.number_of_videos != 1 else ''} asked"
    total = sum(video.size_bytes for video in job.videos)
    count = len(job.videos)
    return f"{count} video{'s' if count != 1 else ''} · {size(total)}"


def matches(job: Job, text: str) -> bool:
    """The filter: ``text`` in the prompt, id, status or user, ignoring case (as the store)."""
    needle = text.casefold()
    return any(needle in field.casefold() for field in (job.prompt, job.job_id, job.status.value, job.request.user))


def asks_for_edit(error: str | None) -> bool:
    return bool(error and _ASKS_FOR_AN_EDIT.search(error))


def with_edit_hint(error: str | None) -> str | None:
    """The error, followed by the key that edits the job when the error asks for an edit."""
    if error and asks_for_edit(error):
        return f"{error.rstrip()} {EDIT_HINT}"
    return error


def auto_delete_notice(job: Job, after: float | None, now: datetime) -> str | None:
    """What a download that just finished set going: the job's removal, and how to keep jobs.

    The server records a download once the last byte is sent, which may be a moment after the
    client has it; until then the removal counts from ``now``."""
    if after is None:
        return None
    downloaded_at = job.downloaded_at or now
    left = max(0, round(after - (now - downloaded_at).total_seconds()))
    return (
        f"job {job.job_id[:8]} will be removed in {left} s (auto-delete after download); "
        "to keep jobs, set auto_delete_after_download = off"
    )

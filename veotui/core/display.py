"""How job fields read in a terminal: short ids, durations, sizes, times, the progress bar.

Pure functions of their arguments (the clock is passed in), so the TUI's tables and details
screen, the client verbs and the tests all agree on one rendering. The cells (``Text``) need
Rich, imported when one is made: a client verb that prints plain lines does not load it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from veotui.core.capabilities import EXTENSION_ADDS_SECONDS
from veotui.core.job import Job, Status
from veotui.core.request import JobRequest
from veotui.core.text import printable

if TYPE_CHECKING:
    from rich.text import Text

SHORT_ID = 8
#: Failure messages that ask for a changed prompt; the TUI adds the key that does it.
_ASKS_FOR_AN_EDIT = re.compile(r"\b(edit|rephrase|change)\b[^.]*\bprompt\b", re.IGNORECASE)
EDIT_HINT = "Press e to edit the job and submit it again."
BAR_WIDTH = 10

STATUS_STYLE: dict[Status, str] = {
    Status.COMPLETED: "green",
    Status.FAILED: "red",
    Status.CANCELLED: "yellow",
    Status.QUEUED: "dark_orange",
}
STATUS_MARK: dict[Status, str] = {
    Status.COMPLETED: "✓",
    Status.FAILED: "✗",
    Status.CANCELLED: "⊘",
}


def short_id(job_id: str) -> str:
    return job_id[:SHORT_ID]


def extension_result(request: JobRequest, source_seconds: float | None = None) -> str:
    """What an extension makes: ``about 15 s (the 8 s video and 7 s more)``.
    ``source_seconds`` stands in while the request has not measured its source."""
    source = request.extends.source_seconds if request.extends and request.extends.source_seconds else source_seconds
    if source is None:
        return f"about {EXTENSION_ADDS_SECONDS} s longer than the video it continues"
    return (
        f"about {round(source + EXTENSION_ADDS_SECONDS)} s "
        f"(the {round(source)} s video and {EXTENSION_ADDS_SECONDS} s more)"
    )


def plain(text: str, style: str = "") -> Text:
    """User text as a cell: never parsed as markup (a prompt may say ``[fail]``)."""
    from rich.text import Text

    return Text(printable(text), style=style, no_wrap=True, overflow="ellipsis", end="")


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


def progress_bar(percent: int, width: int = BAR_WIDTH) -> Text:
    """A bar of ``width`` cells and the percentage, ``━━━━━╺━━━━━━  45%``."""
    percent = max(0, min(100, percent))
    filled = percent * width / 100
    whole = int(filled)
    from rich.text import Text

    bar = Text(no_wrap=True, end="")
    bar.append("━" * whole, style="bold dodger_blue1")
    if whole < width:
        bar.append(
            "╺" if filled - whole >= 0.5 else "━", style="bold dodger_blue1" if filled - whole >= 0.5 else "grey35"
        )
        bar.append("━" * (width - whole - 1), style="grey35")
    bar.append(f" {percent:3d}%")
    return bar


def status_cell(job: Job) -> Text:
    mark = STATUS_MARK.get(job.status, "•")
    from rich.text import Text

    return Text(f"{mark} {job.status.value}", style=STATUS_STYLE.get(job.status, ""), end="")


def videos_summary(job: Job) -> str:
    if not job.videos:
        return f"{job.request.number_of_videos} video{'s' if job.request.number_of_videos != 1 else ''} asked"
    total = sum(video.size_bytes for video in job.videos)
    count = len(job.videos)
    return f"{count} video{'s' if count != 1 else ''} · {size(total)}"


def result_cell(job: Job) -> Text:
    """What became of an ended job: its videos, or the first line of its error."""
    if job.status == Status.COMPLETED:
        return plain(videos_summary(job), "green")
    if job.status == Status.FAILED:
        return plain(one_line(job.error) or "failed", "red")
    return plain(one_line(job.error) or "cancelled", "yellow")


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

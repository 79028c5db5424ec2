"""The cells of the job tables and the details screen: Textual ``Content`` styled with the
theme's variables (``$primary``, ``$accent``, ``$success``…), so a theme change recolours
them. The words come from ``veotui.core.display``, which every face of veotui shares.
"""

from __future__ import annotations

from rich.style import Style as RichStyle
from textual.content import Content
from textual.style import Style

from veotui.core import display as fmt
from veotui.core.job import Job, Status
from veotui.core.text import printable

#: The style of each status word, by the theme's meaning of it.
STATUS_STYLE: dict[Status, str] = {
    Status.COMPLETED: "$text-success",
    Status.FAILED: "$text-error",
    Status.CANCELLED: "$text-warning",
    Status.QUEUED: "$text-accent",
}
#: Processing is the primary colour's, the queue the accent's (the panels' borders too).
PROCESSING_STYLE = "$text-primary"
QUEUE_STYLE = "$text-accent"
WAITING_STYLE = "$text-warning"
MUTED_STYLE = "dim"
BAR_DONE = "bold $primary"
BAR_LEFT = "$panel-lighten-2"


def plain(text: str, style: str = "") -> Content:
    """User text as a cell: never parsed as markup (a prompt may say ``[fail]``), and
    control characters shown as escapes."""
    return Content.styled(printable(text), style)


def styled(text: str, style: str) -> Content:
    return Content.styled(text, style)


def progress_bar(percent: int, width: int = fmt.BAR_WIDTH) -> Content:
    """A bar of ``width`` cells and the percentage, ``━━━━━╺━━━━━━  45%``."""
    percent = max(0, min(100, percent))
    filled = percent * width / 100
    whole = int(filled)
    parts: list[tuple[str, str] | str] = [("━" * whole, BAR_DONE)]
    if whole < width:
        half = filled - whole >= 0.5
        parts.append(("╺" if half else "━", BAR_DONE if half else BAR_LEFT))
        parts.append(("━" * (width - whole - 1), BAR_LEFT))
    parts.append(f" {percent:3d}%")
    return Content.assemble(*parts)


def status_cell(job: Job) -> Content:
    mark = fmt.STATUS_MARK.get(job.status, "•")
    return Content.styled(f"{mark} {job.status.value}", STATUS_STYLE.get(job.status, ""))


def result_cell(job: Job) -> Content:
    """What became of an ended job: its videos, or the first line of its error."""
    if job.status == Status.COMPLETED:
        return plain(fmt.videos_summary(job), STATUS_STYLE[Status.COMPLETED])
    if job.status == Status.FAILED:
        return plain(fmt.one_line(job.error) or "failed", STATUS_STYLE[Status.FAILED])
    return plain(fmt.one_line(job.error) or "cancelled", STATUS_STYLE[Status.CANCELLED])


def rich_style(spec: str) -> RichStyle:
    """A style with theme variables (``"bold $text-error"``) as a Rich style, for the Rich
    tables of the details and metrics screens: read from the running app's theme."""
    return Style.parse(spec).rich_style

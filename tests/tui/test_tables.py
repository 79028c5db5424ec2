"""The job tables render only the rows in view, and only again when a row's job changed."""

from __future__ import annotations

from datetime import datetime

from textual.app import App, ComposeResult

from tests.tui.history import BASE, ended_jobs
from veotui.core.job import Job, Status
from veotui.core.request import JobRequest
from veotui.tui.tables import Cells, HistoryTable, JobCell, QueueTable

NOW = datetime(2026, 1, 2, tzinfo=BASE.tzinfo)


class CountingHistory(HistoryTable):
    """Counts the jobs whose cells it made."""

    def __init__(self) -> None:
        super().__init__(id="history")
        self.made: list[str] = []

    def cells(self, job: Job, now: datetime) -> Cells:
        self.made.append(job.job_id)
        return super().cells(job, now)


class OneTable(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.table = CountingHistory()

    def compose(self) -> ComposeResult:
        yield self.table


def newest_first(count: int) -> list[Job]:
    return list(reversed(ended_jobs(count)))


async def test_a_table_of_many_jobs_makes_rows_only_for_those_in_view():
    app = OneTable()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.table
        jobs = newest_first(1000)
        table.show(jobs, NOW)
        await pilot.pause()
        assert table.row_count == 1000
        # 12 lines: the border (2) and the header leave 9 rows.
        assert set(table.made) == {job.job_id for job in jobs[:9]}
        table.move_cursor(row=500)
        await pilot.pause()
        assert table.selected_id == jobs[500].job_id
        assert jobs[500].job_id in table.made and jobs[100].job_id not in table.made
        assert len(set(table.made)) <= 18


async def test_a_fresh_read_of_unchanged_jobs_renders_no_row_again_and_keeps_the_selection():
    app = OneTable()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.table
        jobs = newest_first(20)
        table.show(jobs, NOW)
        table.select(jobs[3].job_id)
        await pilot.pause()
        table.made.clear()
        # Equal jobs, new objects (as a fresh read of the lists brings them).
        table.show([job.replace() for job in jobs], NOW)
        await pilot.pause()
        assert table.made == []
        # One changed job: only its row is made again.
        changed = jobs[2].replace(error="another error")
        table.show([*jobs[:2], changed, *jobs[3:]], NOW)
        await pilot.pause()
        assert table.made == [changed.job_id]
        assert table.selected_id == jobs[3].job_id


async def test_a_row_leaving_keeps_the_rest_in_order_and_the_cursor_in_range():
    app = OneTable()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.table
        jobs = newest_first(5)
        table.show(jobs, NOW)
        table.move_cursor(row=4)
        await pilot.pause()
        table.show(jobs[:3], NOW)
        await pilot.pause()
        assert table.row_keys == [job.job_id for job in jobs[:3]]
        assert table.selected_id == jobs[2].job_id
        # Cells show what the row holds.
        cell = table.get_row(jobs[0].job_id)[1]
        assert isinstance(cell, JobCell) and cell.content.plain == jobs[0].job_id[:8]


class OneQueue(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.table = QueueTable(id="queue")

    def compose(self) -> ComposeResult:
        yield self.table


async def test_a_queue_shift_shows_every_new_position_and_keeps_the_other_cells():
    waiting = [
        Job(job_id=f"{n:08x}-0000-4000-8000-000000000001", status=Status.QUEUED, request=JobRequest(prompt=f"shot {n}"))
        for n in range(5)
    ]
    app = OneQueue()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.table
        table.show([job.replace(queue_position=n) for n, job in enumerate(waiting, 1)], NOW)
        await pilot.pause()
        # The head leaves: every other job moves up a place (new objects, as the board makes).
        table.show([job.replace(queue_position=n) for n, job in enumerate(waiting[1:], 1)], NOW)
        await pilot.pause()
        lines = [table.render_line(y).text for y in range(1, 5)]
        for n, (line, job) in enumerate(zip(lines, waiting[1:]), 1):
            assert line.startswith(f" {n} ") and job.job_id[:8] in line and job.prompt in line

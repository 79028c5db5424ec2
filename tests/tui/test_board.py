"""The board's rules, without widgets: where a change puts a job, exact queue positions,
the history page, the filter, and stale progress readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from veotui.core.job import Change, Job, JobLists, Status
from veotui.core.request import JobRequest
from veotui.tui.board import HISTORY, PROCESSING, QUEUE, Board

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def job(n: int, status: Status, prompt: str | None = None, position: int | None = None) -> Job:
    return Job(
        job_id=f"{n:08x}-0000-4000-8000-000000000000",
        status=status,
        request=JobRequest(prompt=prompt or f"job {n}"),
        created_at=T0 + timedelta(seconds=n),
        queue_position=position,
    )


def queued_board(count: int) -> Board:
    board = Board(page_size=3)
    board.load(JobLists([], [job(n, Status.QUEUED, position=n + 1) for n in range(count)], []), offset=0)
    return board


def positions(board: Board) -> list[tuple[int, int | None]]:
    return [(int(j.job_id[:8], 16), j.queue_position) for j in board.jobs(QUEUE)]


def test_a_job_leaving_the_queue_moves_those_behind_it_up():
    board = queued_board(4)
    board.apply(Change("job", job(1, Status.CANCELLED).job_id, job(1, Status.CANCELLED)))
    assert positions(board) == [(0, 1), (2, 2), (3, 3)]
    board.apply(Change("job", job(0, Status.STARTING).job_id, job(0, Status.STARTING)))
    assert positions(board) == [(2, 1), (3, 2)]
    assert board.panel_of(job(0, Status.STARTING).job_id) == PROCESSING


def test_a_retried_job_joins_the_back_of_the_queue():
    board = queued_board(2)
    retried = job(9, Status.QUEUED, position=3)
    board.apply(Change("job", retried.job_id, retried))
    assert positions(board) == [(0, 1), (1, 2), (9, 3)]


def test_a_queued_job_that_changes_keeps_its_place():
    board = queued_board(3)
    stale = job(2, Status.QUEUED, position=7)  # a position published before others left
    board.apply(Change("job", stale.job_id, stale))
    assert positions(board) == [(0, 1), (1, 2), (2, 3)]


def test_processing_rows_keep_their_order_through_stage_changes():
    board = Board()
    board.load(JobLists([job(0, Status.GENERATING), job(1, Status.STARTING)], [], []), offset=0)
    board.apply(Change("job", job(0, Status.DOWNLOADING).job_id, job(0, Status.DOWNLOADING)))
    assert [j.status for j in board.jobs(PROCESSING)] == [Status.DOWNLOADING, Status.STARTING]


def test_an_ended_job_enters_the_first_history_page_at_the_top():
    board = Board(page_size=3)
    history = [job(n, Status.COMPLETED) for n in (5, 4, 3)]
    board.load(JobLists([job(6, Status.DOWNLOADING)], [], history, history_total=10), offset=0)
    applied = board.apply(Change("job", job(6, Status.COMPLETED).job_id, job(6, Status.COMPLETED)))
    assert not applied.needs_reload
    assert [int(j.job_id[:8], 16) for j in board.jobs(HISTORY)] == [6, 5, 4]
    assert board.history_total == 11 and board.processing_count == 0


def test_on_a_later_page_an_ended_job_asks_for_a_reload():
    board = Board(page_size=3)
    board.load(JobLists([job(6, Status.DOWNLOADING)], [], [job(2, Status.FAILED)], history_total=4), offset=3)
    applied = board.apply(Change("job", job(6, Status.COMPLETED).job_id, job(6, Status.COMPLETED)))
    assert applied.needs_reload and board.history_total == 5


def test_a_deleted_history_row_asks_for_a_reload_to_refill_the_page():
    board = Board(page_size=3)
    board.load(JobLists([], [], [job(n, Status.COMPLETED) for n in (5, 4, 3)], history_total=6), offset=0)
    applied = board.apply(Change("deleted", job(4, Status.COMPLETED).job_id))
    assert applied.needs_reload and board.history_total == 5
    assert [int(j.job_id[:8], 16) for j in board.jobs(HISTORY)] == [5, 3]


def test_the_filter_hides_jobs_that_do_not_match():
    board = Board()
    board.filter_text = "cat"
    board.load(JobLists([], [], []), offset=0)
    board.apply(Change("job", job(1, Status.QUEUED, "a dog").job_id, job(1, Status.QUEUED, "a dog", 1)))
    board.apply(Change("job", job(2, Status.QUEUED, "a CAT").job_id, job(2, Status.QUEUED, "a CAT", 2)))
    assert [j.prompt for j in board.jobs(QUEUE)] == ["a CAT"]
    assert board.queue_length == 2  # the header still counts every job


def test_a_hidden_job_leaving_the_queue_asks_for_a_reload():
    board = Board()
    board.filter_text = "cat"
    dog = job(1, Status.QUEUED, "a dog", 1)
    board.load(JobLists([], [job(2, Status.QUEUED, "a cat", 2)], []), offset=0, unfiltered=JobLists([], [dog], []))
    applied = board.apply(Change("job", dog.job_id, dog.replace(status=Status.STARTING)))
    assert applied.needs_reload


def test_a_stale_progress_reading_never_undoes_a_newer_change():
    board = Board()
    board.load(JobLists([job(0, Status.GENERATING)], [], []), offset=0)
    board.apply(Change("job", job(0, Status.DOWNLOADING).job_id, job(0, Status.DOWNLOADING)))
    assert not board.refresh(job(0, Status.GENERATING).replace(progress=50))
    assert board.refresh(job(0, Status.DOWNLOADING).replace(progress=95))
    assert board.jobs(PROCESSING)[0].progress == 95


def test_positions_stay_exact_when_the_stream_coalesces():
    # Jobs 0-3 are submitted at once; job 0 and 1 start before the TUI reads the stream,
    # so it first sees 2 and 3 (published at places 3 and 4), then 0 and 1 already started.
    board = Board()
    board.load(JobLists([], [], []), offset=0)
    for n, place in ((2, 3), (3, 4)):
        board.apply(Change("job", job(n, Status.QUEUED).job_id, job(n, Status.QUEUED, position=place)))
    for n in (0, 1):
        board.apply(Change("job", job(n, Status.STARTING).job_id, job(n, Status.STARTING)))
    assert positions(board) == [(2, 1), (3, 2)]


def seq_job(n: int, status: Status = Status.QUEUED) -> Job:
    return job(n, status).replace(queue_seq=n)


def windowed_board(total: int, window: int = 3) -> Board:
    board = Board(queue_limit=window)
    head = [seq_job(n).replace(queue_position=n) for n in range(1, window + 1)]
    board.load(JobLists([], head, [], queued_total=total), offset=0)
    return board


def test_the_board_holds_the_head_of_a_long_queue_and_counts_the_rest():
    board = windowed_board(100_000)
    assert board.queued_total == 100_000 and board.queue_length == 100_000
    # The head leaves: one change; those behind move up and the window asks to be refilled.
    applied = board.apply(Change("job", seq_job(1).job_id, seq_job(1, Status.CANCELLED)))
    assert applied.needs_refill and not applied.needs_reload
    assert positions(board) == [(2, 1), (3, 2)]
    assert board.queued_total == 99_999
    # A job far behind the window that joined since, and leaves: the count follows it.
    far = seq_job(150_000).replace(queue_position=100_000)
    board.apply(Change("job", far.job_id, far))
    assert board.queued_total == 100_000
    board.apply(Change("job", far.job_id, seq_job(150_000, Status.CANCELLED)))
    assert board.queued_total == 99_999 and positions(board) == [(2, 1), (3, 2)]
    # One the board never saw queued: only a fresh read can say whether it was counted.
    unseen = seq_job(50_000, Status.CANCELLED)
    assert board.apply(Change("job", unseen.job_id, unseen)).needs_reload
    assert board.queued_total == 99_999


def test_a_job_joining_the_back_of_a_long_queue_is_counted_not_held():
    board = windowed_board(1000)
    late = seq_job(2000).replace(queue_position=1001)
    assert not board.apply(Change("job", late.job_id, late)).needs_reload
    assert board.queued_total == 1001 and late.job_id not in board.queued


def test_a_job_moved_into_the_window_takes_its_place_and_pushes_the_last_out():
    board = windowed_board(10)
    moved = seq_job(9).replace(queue_seq=1.5, queue_position=2)
    board.apply(Change("job", moved.job_id, moved))
    assert positions(board) == [(1, 1), (9, 2), (2, 3)]
    assert board.queued_total == 10


def test_the_history_count_drops_when_a_job_is_retried():
    board = Board(page_size=10)
    history = [job(n, Status.FAILED) for n in range(10, 0, -1)]
    board.load(JobLists([], [], history, history_total=11), offset=0)
    retried = job(5, Status.QUEUED, position=1)
    board.apply(Change("job", retried.job_id, retried))
    assert len(board.history) == 9 and board.history_total == 10


def test_a_job_whose_arrival_was_coalesced_away_is_not_counted_out():
    # Two queued, one processing; a job submitted and started between two reads of the
    # stream reaches the board already started: the queue still holds two.
    board = Board()
    board.load(JobLists([seq_job(1, Status.GENERATING)], [seq_job(2), seq_job(3)], []), offset=0)
    late = seq_job(4, Status.STARTING)
    assert not board.apply(Change("job", late.job_id, late)).needs_reload
    assert board.queue_length == 2 and board.processing_count == 2


def test_a_refill_appends_the_jobs_after_the_window_when_the_read_joins_up():
    board = windowed_board(100)
    board.apply(Change("job", seq_job(1).job_id, seq_job(1, Status.CANCELLED)))
    # The read starts with the window's last job (3), then the one after it.
    read = JobLists([], [seq_job(3), seq_job(4)], [], queued_total=99)
    assert board.refill(read, after=seq_job(3).job_id)
    assert positions(board) == [(2, 1), (3, 2), (4, 3)]
    assert board.queued_total == 99 and board.queue_length == 99


def test_a_refill_that_does_not_join_up_with_the_window_asks_for_a_full_read():
    board = windowed_board(100)
    board.apply(Change("job", seq_job(1).job_id, seq_job(1, Status.CANCELLED)))
    # Job 2 left meanwhile (its change not applied yet): the read starts one job later.
    read = JobLists([], [seq_job(4), seq_job(5)], [], queued_total=98)
    assert not board.refill(read, after=seq_job(3).job_id)
    assert positions(board) == [(2, 1), (3, 2)] and board.queued_total == 99


def test_a_filtered_window_losing_a_row_asks_for_a_full_read():
    board = Board(queue_limit=2)
    board.filter_text = "job"
    board.load(JobLists([], [seq_job(1), seq_job(2)], [], queued_total=5), offset=0)
    applied = board.apply(Change("job", seq_job(1).job_id, seq_job(1, Status.CANCELLED)))
    assert applied.needs_reload and not applied.needs_refill

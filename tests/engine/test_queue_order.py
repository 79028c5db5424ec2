"""The store's queue order under moves, and its pause switch, on a real SQLite file."""

from __future__ import annotations

import random

import pytest

from veotui.core.errors import Conflict, InvalidRequest
from veotui.core.ids import new_job_id
from veotui.core.job import Change, Job, Status
from veotui.core.request import JobRequest
from veotui.store.migrations import MIGRATIONS
from veotui.store.sqlite import SqliteStore


@pytest.fixture
def store(open_store):
    """The store under test: on SQLite, then on PostgreSQL (tests/conftest.py)."""
    return open_store()


def queued(prompt: str = "p") -> Job:
    return Job(job_id=new_job_id(), status=Status.QUEUED, request=JobRequest(prompt=prompt))


def order(store: SqliteStore) -> list[str]:
    jobs = store.queued()
    assert [j.queue_position for j in jobs] == list(range(1, len(jobs) + 1))
    keys = [j.queue_seq for j in jobs]
    assert len(set(keys)) == len(keys), "two queued jobs share a key"
    return [j.job_id for j in jobs]


def test_random_moves_match_a_list_model(store):
    model = [store.insert(queued(f"job {n}")).job_id for n in range(12)]
    rng = random.Random(8)
    places: list[str | int] = ["top", "bottom", "up", "down", 1, 2, 3, 7, 30]
    for _ in range(600):
        job_id = rng.choice(model)
        where = rng.choice(places)
        old = model.index(job_id)
        model.remove(job_id)
        if isinstance(where, int):
            moved = store.move(job_id, position=where)
            model.insert(min(where, len(model) + 1) - 1, job_id)
        else:
            moved = store.move(job_id, to=where)
            place = {"top": 0, "bottom": len(model), "up": max(old - 1, 0), "down": min(old + 1, len(model))}[where]
            model.insert(place, job_id)
        assert moved.queue_position == model.index(job_id) + 1
        assert order(store) == model
        assert store.get(job_id).queue_seq == moved.queue_seq


def test_many_moves_into_one_gap_respace_a_few_neighbours_only(store):
    """Halving one gap again and again runs out of room; the store then spreads the next
    few jobs out, and never renumbers the whole queue."""
    ids = [store.insert(queued(f"job {n}")).job_id for n in range(200)]
    model = list(ids)
    respaced: list[int] = []
    for _ in range(150):
        job_id = model[-1]
        before = {j.job_id: j.queue_seq for j in store.queued()}
        model.remove(job_id)
        model.insert(1, job_id)
        assert store.move(job_id, position=2).queue_position == 2
        after = {j.job_id: j.queue_seq for j in store.queued()}
        respaced.append(sum(1 for other in ids if other != job_id and after[other] != before[other]))
    assert order(store) == model
    assert sum(1 for n in respaced if n) >= 2, "the gap ran out and was respaced"
    # Amortised: a couple of rows rewritten per move, never the whole queue at once.
    assert sum(respaced) <= 2 * len(respaced) and max(respaced) < len(ids) // 2, respaced


def test_moves_keep_their_order_across_a_reopen_and_new_jobs_join_the_back(open_store):
    store = open_store()
    a, b, c = (store.insert(queued(p)).job_id for p in "abc")
    store.move(c, to="top")
    store.move(a, position=2)
    store.close()
    store = open_store()
    d = store.insert(queued("d")).job_id
    assert order(store) == [c, a, b, d]
    store.close()


def test_only_queued_jobs_move_and_bad_requests_name_the_problem(store):
    job = store.insert(queued())
    with pytest.raises(InvalidRequest, match="either to"):
        store.move(job.job_id)
    with pytest.raises(InvalidRequest, match="to must be"):
        store.move(job.job_id, to="left")
    with pytest.raises(InvalidRequest, match="position"):
        store.move(job.job_id, position=0)
    store.transition(job.job_id, Status.STARTING)
    with pytest.raises(Conflict):
        store.move(job.job_id, to="top")


def test_a_move_tells_listeners_about_the_moved_job_only(store):
    ids = [store.insert(queued(f"job {n}")).job_id for n in range(5)]
    heard: list[Change] = []
    store.add_listener(heard.append)
    store.move(ids[4], to="top")
    assert [(c.kind, c.job_id) for c in heard] == [("job", ids[4])]
    store.move(ids[4], to="top")  # already there: nothing changed, nothing to tell
    assert len(heard) == 1


def test_a_job_sent_back_to_the_queue_goes_to_its_front_on_a_key_of_its_own(store):
    first = store.insert(queued("first"))
    store.transition(first.job_id, Status.STARTING)
    others = [store.insert(queued(f"other {n}")).job_id for n in range(3)]
    store.move(others[2], to="top")
    store.transition(first.job_id, Status.QUEUED)
    assert order(store) == [first.job_id, others[2], others[0], others[1]]


def test_the_pause_is_stored_with_its_reason_and_told_to_listeners(open_store):
    store = open_store()
    heard: list[Change] = []
    store.add_listener(heard.append)
    store.insert(queued())
    state = store.set_paused(True, "quota")
    assert (state.paused, state.reason, state.length, state.by_budget) == (True, "quota", 1, False)
    assert heard[-1].kind == "queue" and heard[-1].queue == state
    store.close()
    store = open_store()
    assert store.is_paused() and store.queue_state().reason == "quota"
    resumed = store.set_paused(False, "ignored when resuming")
    assert (resumed.paused, resumed.reason) == (False, None)
    store.close()


def test_an_older_database_gains_the_pause_switch_unpaused(tmp_path):
    import sqlite3

    path = tmp_path / "veotui.db"
    old = sqlite3.connect(path)
    old.executescript(";".join(MIGRATIONS[:2]) + "; PRAGMA user_version = 2;")
    old.close()
    store = SqliteStore(path)
    assert store.schema_version == len(MIGRATIONS)
    assert not store.queue_state().paused
    store.close()


def test_queue_positions_counted_from_either_end_match_the_order(store):
    jobs = [store.insert(queued(f"job {n}")) for n in range(9)]
    store.move(jobs[7].job_id, to="top")
    store.move(jobs[1].job_id, position=5)
    store.transition(jobs[4].job_id, Status.CANCELLED, detail="gone")
    ids = order(store)
    for job_id in ids:
        # Near the front, in the middle and at the back (the last one just submitted).
        assert store.queue_position(store.get(job_id)) == ids.index(job_id) + 1
    late = store.insert(queued("late"))
    assert store.queue_position(late) == len(ids) + 1
    # A job no longer queued: the place it would take among those queued.
    cancelled = store.get(jobs[4].job_id)
    ahead = sum(1 for job in store.queued() if job.queue_seq < cancelled.queue_seq)
    assert store.queue_position(cancelled) == ahead + 1

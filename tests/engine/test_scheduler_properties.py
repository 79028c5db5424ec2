"""Random submit / cancel / retry / delete / finish / fail / pause / resume / move sequences
against the real scheduler and store (on a controlled generator), checking the invariants
after every step."""

from __future__ import annotations

import anyio
import anyio.from_thread
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.support.env import FAST_ENV
from tests.support.fakes import ControlledGenerator
from veotui.backend.local import LocalBackend
from veotui.core.errors import Conflict, InvalidRequest, JobNotFound
from veotui.core.job import ACTIVE_STATUSES, FINAL_STATUSES, Status
from veotui.core.text import printable
from veotui.settings import load_settings

MAX_CONCURRENT = 2


class SchedulerMachine(RuleBasedStateMachine):
    """The model: the FIFO order of queued jobs and the set of jobs that exist."""

    def __init__(self) -> None:
        super().__init__()
        self.portal_cm = anyio.from_thread.start_blocking_portal()
        self.portal = self.portal_cm.__enter__()
        self.generator = ControlledGenerator()
        self.fifo: list[str] = []  # queued jobs, in the order they must start
        self.alive: list[str] = []  # in creation order, so draws do not depend on random ids
        self.deleted: set[str] = set()
        self.start_order: list[str] = []
        self.paused = False

    @initialize()
    def start_engine(self) -> None:
        import tempfile

        self.tmp = tempfile.TemporaryDirectory()
        env = {**FAST_ENV, "VEOTUI_DATA_DIR": self.tmp.name, "VEOTUI_MAX_CONCURRENT": str(MAX_CONCURRENT)}
        self.backend = LocalBackend(load_settings(env=env), generator=self.generator, env={})
        self.portal.call(self.backend.start)
        self.settle()

    def teardown(self) -> None:
        if hasattr(self, "backend"):
            self.portal.call(self.backend.close)
        self.portal_cm.__exit__(None, None, None)
        if hasattr(self, "tmp"):
            self.tmp.cleanup()

    # -- helpers ----------------------------------------------------------------------------

    def call(self, method, *args):
        return self.portal.call(method, *args)

    def settle(self) -> None:
        """Let the engine run until every processing job waits on its operation."""

        async def quiet() -> bool:
            await anyio.wait_all_tasks_blocked()
            processing = self.backend.store.active()
            waiting = set(self.generator.waiting)
            return all(
                job.status == Status.GENERATING
                and job.operation in waiting
                and not self.generator.waiting[job.operation].is_set()
                for job in processing
            ) and len(processing) == len(self.backend.scheduler.running_job_ids)

        for _ in range(2000):
            if self.portal.call(quiet):
                break
            self.portal.call(anyio.sleep, 0.001)
        else:
            raise AssertionError("the engine did not settle")
        # Jobs that left the queue must have left it from the front.
        queued_now = [job.job_id for job in self.backend.store.queued()]
        started = [job_id for job_id in self.fifo if job_id not in queued_now]
        assert self.fifo[: len(started)] == started, "queued jobs must start in FIFO-after-moves order"
        if self.paused:
            assert not started, "nothing starts while the queue is paused"
        self.start_order.extend(started)
        self.fifo = queued_now

    def status_of(self, job_id: str) -> Status:
        return self.backend.store.get(job_id).status

    def jobs_in(self, statuses) -> list[str]:
        return sorted(j for j in self.alive if self.status_of(j) in statuses)

    # -- rules ------------------------------------------------------------------------------

    @rule(count=st.integers(min_value=1, max_value=3))
    def submit(self, count: int) -> None:
        for n in range(count):
            job = self.call(self.backend.submit, {"prompt": f"job {len(self.alive)}-{n}"})
            self.alive.append(job.job_id)
            self.fifo.append(job.job_id)
        self.settle()

    @precondition(lambda self: self.alive)
    @rule(data=st.data())
    def cancel(self, data) -> None:
        job_id = data.draw(st.sampled_from(self.alive))
        before = self.status_of(job_id)
        try:
            self.call(self.backend.cancel, job_id)
        except Conflict:
            assert before in FINAL_STATUSES
        else:
            assert before not in FINAL_STATUSES
            assert self.status_of(job_id) == Status.CANCELLED
            if before == Status.QUEUED:
                self.fifo.remove(job_id)
        self.settle()

    @precondition(lambda self: self.alive)
    @rule(data=st.data())
    def retry(self, data) -> None:
        job_id = data.draw(st.sampled_from(self.alive))
        before = self.status_of(job_id)
        try:
            self.call(self.backend.retry, job_id)
        except Conflict:
            assert before not in (Status.FAILED, Status.CANCELLED)
        else:
            assert before in (Status.FAILED, Status.CANCELLED)
            self.fifo.append(job_id)
        self.settle()

    @precondition(lambda self: self.alive)
    @rule(data=st.data())
    def delete(self, data) -> None:
        job_id = data.draw(st.sampled_from(self.alive))
        self.call(self.backend.delete, job_id)
        self.alive.remove(job_id)
        self.deleted.add(job_id)
        if job_id in self.fifo:
            self.fifo.remove(job_id)
        self.settle()

    @rule(reason=st.one_of(st.none(), st.text(max_size=20)))
    def pause(self, reason) -> None:
        # The engine trims the reason first (a blank one is no reason); a control character
        # left after that is refused.
        kept = (reason or "").strip() or None
        if kept is not None and printable(kept, keep="") != kept:
            # A control character: refused, and the queue is as it was.
            before = self.call(self.backend.queue)
            with pytest.raises(InvalidRequest, match="reason contains the"):
                self.call(self.backend.pause, reason)
            assert self.call(self.backend.queue) == before
            return
        state = self.call(self.backend.pause, reason)
        assert state.paused and state.reason == kept
        self.paused = True
        self.settle()

    @rule()
    def resume(self) -> None:
        assert not self.call(self.backend.resume).paused
        self.paused = False
        self.settle()

    @precondition(lambda self: self.fifo)
    @rule(data=st.data(), where=st.one_of(st.sampled_from(["top", "bottom", "up", "down"]), st.integers(1, 8)))
    def move(self, data, where) -> None:
        job_id = data.draw(st.sampled_from(self.fifo))
        if isinstance(where, int):
            moved = self.call(lambda: self.backend.move(job_id, position=where))
        else:
            moved = self.call(lambda: self.backend.move(job_id, to=where))
        old = self.fifo.index(job_id)
        self.fifo.remove(job_id)
        if isinstance(where, int):
            place = min(where, len(self.fifo) + 1) - 1  # past the end: the bottom
        else:
            place = {"top": 0, "bottom": len(self.fifo), "up": max(old - 1, 0), "down": min(old + 1, len(self.fifo))}[
                where
            ]
        self.fifo.insert(place, job_id)
        assert moved.queue_position == place + 1
        self.settle()

    @precondition(lambda self: self.backend.scheduler.running_job_ids)
    @rule(data=st.data(), videos=st.integers(min_value=1, max_value=4))
    def finish(self, data, videos: int) -> None:
        job_id = data.draw(st.sampled_from(self.backend.scheduler.running_job_ids))
        self.portal.call(lambda: _sync(self.generator.finish, job_id, videos))
        self.settle()
        assert self.status_of(job_id) == Status.COMPLETED
        assert len(self.backend.store.get(job_id).videos) == videos

    @precondition(lambda self: self.backend.scheduler.running_job_ids)
    @rule(data=st.data())
    def fail(self, data) -> None:
        job_id = data.draw(st.sampled_from(self.backend.scheduler.running_job_ids))
        self.portal.call(lambda: _sync(self.generator.fail, job_id))
        self.settle()
        assert self.status_of(job_id) == Status.FAILED

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def never_more_than_max_concurrent_processing(self) -> None:
        if hasattr(self, "backend"):
            processing = self.backend.store.active()
            assert len(processing) <= MAX_CONCURRENT
            # Work-conserving: a free slot never sits next to a waiting job, unless paused.
            if self.backend.store.queued() and not self.paused:
                assert len(processing) == MAX_CONCURRENT

    @invariant()
    def every_job_is_in_exactly_one_panel(self) -> None:
        if not hasattr(self, "backend"):
            return
        lists = self.portal.call(lambda: self.backend.list_jobs(history_limit=10_000, queue_limit=10_000))
        panels = (
            [j.job_id for j in lists.processing] + [j.job_id for j in lists.queued] + [j.job_id for j in lists.history]
        )
        assert sorted(panels) == sorted(self.alive)
        assert [j.job_id for j in lists.queued] == self.fifo
        assert [j.queue_position for j in lists.queued] == list(range(1, len(self.fifo) + 1))
        assert all(j.status in ACTIVE_STATUSES for j in lists.processing)

    @invariant()
    def a_deleted_job_leaves_nothing_behind(self) -> None:
        if not hasattr(self, "backend"):
            return
        for job_id in self.deleted:
            with pytest.raises(JobNotFound):
                self.backend.store.get(job_id)
            assert not self.backend.files.folder(job_id).exists()
            if job_id in self.generator.submitted:
                assert True in self.generator.cleaned.get(job_id, []), "remote files not cleaned"
        # A folder belongs to a live job (one without input images has none until its videos).
        assert self.backend.files.job_ids_on_disk() <= set(self.alive)


async def _sync(function, *args):
    function(*args)


TestScheduler = SchedulerMachine.TestCase
TestScheduler.settings = hypothesis_settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

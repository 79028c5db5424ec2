"""Each user's own budget and limit, and the choice of the next job by the queue's policy.

A user past their ``daily_budget_usd`` or at their ``max_concurrent`` waits alone: the next job
is chosen among the other users' (the store skips the held users by its per-user index, without
reading their jobs). Both are counted in the store, so they hold across a fleet.
"""

from __future__ import annotations

from collections.abc import Mapping

from veotui.core.access import UserEntry
from veotui.core.job import Job, Status
from veotui.store.jobs import JobStore

#: Cents are what budgets are written in; a sum within half a cent of the budget is at it.
_CENT = 0.005


class UserLimits:
    def __init__(self, store: JobStore, users: Mapping[str, UserEntry]) -> None:
        self.store = store
        #: The server's users, with their own budgets and limits (the config file's [users]).
        self.users = users
        #: Why each user's queued jobs wait (their budget, their limit), as of the last dispatch.
        self.holds: dict[str, str] = {}

    def limit_of(self, user: str) -> int | None:
        entry = self.users.get(user)
        return entry.max_concurrent if entry is not None else None

    async def next_job(self, policy: str) -> Job | None:
        """The job to start next by ``policy``, passing over the users who must wait (at their
        limit, or past their budget with their next job); :attr:`holds` says why they wait."""
        holds = self._holds()
        while True:
            job = await self.store.anext_to_start(policy, holds)
            if job is None:
                break
            hold = self._budget_hold(job)
            if hold is None:
                break
            holds[job.request.user] = hold
        self.holds = holds
        return job

    def waiting_reason(self, job: Job) -> str | None:
        """Why a queued job that could start does not: its user's budget or limit, or the
        queue's pause."""
        if job.status != Status.QUEUED:
            return None
        hold = self.holds.get(job.request.user)
        if hold is not None:
            return hold
        paused, _, reason = self.store.pause_flags()
        if paused:
            return f"the queue is paused: {reason}" if reason else "the queue is paused"
        return None

    def _holds(self) -> dict[str, str]:
        """The users whose jobs cannot start now, whatever the job: at their limit of jobs
        processing, or with their budget spent."""
        limited = {name: user for name, user in self.users.items() if user.max_concurrent or user.daily_budget_usd}
        if not limited:
            return {}
        holds: dict[str, str] = {}
        loads = self.store.loads()
        for name, user in limited.items():
            running, queued = loads.get(name, (0, 0))
            if not queued:
                continue
            if user.max_concurrent is not None and running >= user.max_concurrent:
                holds[name] = (
                    f"{name}'s limit: {running} of {user.max_concurrent} job(s) at once processing; "
                    "it starts when one of them ends"
                )
            elif user.daily_budget_usd is not None:
                spent = self._spent(name)
                if spent >= user.daily_budget_usd - _CENT:
                    holds[name] = _budget_sentence(name, user.daily_budget_usd, spent, None)
        return holds

    def _spent(self, user: str) -> float:
        """What ``user``'s jobs bought today, plus what their jobs starting now will buy."""
        starting = sum(
            j.estimated_cost_usd or 0.0 for j in self.store.active() if j.operation is None and j.request.user == user
        )
        return self.store.spend_today(user) + starting

    def _budget_hold(self, job: Job) -> str | None:
        user = self.users.get(job.request.user)
        if user is None or user.daily_budget_usd is None or job.operation is not None:
            return None  # a job with an operation resumes or refetches it: nothing new is bought
        spent = self._spent(user.name)
        estimate = job.estimated_cost_usd or 0.0
        if spent + estimate <= user.daily_budget_usd + _CENT:
            return None
        return _budget_sentence(user.name, user.daily_budget_usd, spent, estimate)


def _budget_sentence(user: str, budget: float, spent: float, estimate: float | None) -> str:
    sentence = f"{user}'s daily budget ${budget:,.2f}: ${spent:,.2f} spent today"
    if estimate is not None:
        sentence += f", next job ${estimate:,.2f}"
    return sentence + "; it starts at 00:00 UTC or when the budget is raised"

"""The jobs this server runs now, and the engine's other background tasks.

Every task runs in the scheduler's task group, so stopping the engine stops them all. Each
running job has a cancel scope of its own, so cancelling one job (or losing its lease in a
fleet) stops its runner alone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup

log = logging.getLogger(__name__)


@dataclass
class _Run:
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)


class Slots:
    """The running jobs by id, each run by ``run_job`` and then tidied by ``after_run``
    (once the runner is really done, its worker threads included)."""

    def __init__(
        self,
        run_job: Callable[[str], Awaitable[None]],
        after_run: Callable[[str], Awaitable[None]],
    ) -> None:
        self._run_job = run_job
        self._after_run = after_run
        self._runs: dict[str, _Run] = {}
        self._group: TaskGroup | None = None
        self._wake = anyio.Event()

    # -- the task group -------------------------------------------------------------------

    def open(self, group: TaskGroup) -> None:
        self._group = group

    def close(self) -> None:
        self._group = None

    @property
    def is_open(self) -> bool:
        return self._group is not None

    def spawn(self, function: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Start a background task; an error in it is logged and ends nothing else."""
        assert self._group is not None, "the scheduler is not running"
        self._group.start_soon(_guarded, function, *args)

    # -- the running jobs -----------------------------------------------------------------

    @property
    def running(self) -> list[str]:
        return list(self._runs)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._runs

    def __len__(self) -> int:
        return len(self._runs)

    def launch(self, job_id: str) -> None:
        run = _Run()
        self._runs[job_id] = run
        self.spawn(self._occupy, job_id, run)

    def stop(self, job_id: str) -> None:
        """Stop running the job here (cancelled, deleted, or run by another server now)."""
        run = self._runs.pop(job_id, None)
        if run is not None:
            run.scope.cancel()
            self.wake()

    async def _occupy(self, job_id: str, run: _Run) -> None:
        try:
            with run.scope:
                await self._run_job(job_id)
        finally:
            if self._runs.get(job_id) is run:
                del self._runs[job_id]
            self.wake()
            await self._after_run(job_id)

    # -- waking dispatch ------------------------------------------------------------------

    def wake(self) -> None:
        """The queue or a slot changed: dispatch looks at the queue again."""
        self._wake.set()

    async def wait(self, timeout: float = math.inf) -> None:
        """Until woken, or ``timeout`` seconds."""
        with anyio.move_on_after(timeout):
            await self._wake.wait()
        self._wake = anyio.Event()


async def _guarded(function: Callable[..., Awaitable[Any]], *args: Any) -> None:
    # An error in one background task must not end the scheduler's task group.
    try:
        await function(*args)
    except Exception:
        log.exception("%s failed", getattr(function, "__name__", function))

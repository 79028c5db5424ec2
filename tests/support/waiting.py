"""Waiting on a condition, never on the clock: CI is a busy 2-core machine."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
import pytest

from veotui.backend.base import Backend
from veotui.core.job import Status

T = TypeVar("T")


def wait_until(predicate: Callable[[], T | None], timeout: float = 60.0, what: str = "condition") -> T:
    """Poll ``predicate`` from a plain (non-async) test until it returns something true, and
    return that; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


async def wait_for(
    predicate: Callable[[], object],
    timeout: float = 60.0,
    interval: float = 0.02,
    what: str = "condition",
) -> None:
    """Poll ``predicate`` (sync or async) until what it returns is true; fail the test after
    ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await anyio.sleep(interval)


async def wait_status(backend: Backend, job_id: str, *statuses: Status, timeout: float = 60.0) -> None:
    """Until the job's status is one of ``statuses``."""

    async def reached() -> bool:
        return (await backend.get(job_id)).status in statuses

    await wait_for(reached, timeout, what=f"job {job_id[:8]} to be {'/'.join(s.value for s in statuses)}")

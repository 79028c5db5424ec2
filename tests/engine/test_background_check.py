"""The deferred database check runs in a thread of its own at the lowest CPU priority."""

from __future__ import annotations

import os
import sys
import threading
from types import SimpleNamespace

import pytest

from veotui.scheduler import Scheduler


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux's")
def test_the_deferred_check_runs_at_the_lowest_priority_and_leaves_the_caller_alone():
    seen: dict[str, object] = {}

    def deferred_check() -> str:
        seen["thread"] = threading.current_thread().name
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return "damaged"

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    scheduler = SimpleNamespace(store=SimpleNamespace(deferred_check=deferred_check))
    assert Scheduler._check_in_background(scheduler) == "damaged"  # type: ignore[arg-type]
    assert seen == {"thread": "veotui-database-check", "nice": 19}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_a_check_that_finds_nothing_says_so():
    scheduler = SimpleNamespace(store=SimpleNamespace(deferred_check=lambda: None))
    assert Scheduler._check_in_background(scheduler) is None  # type: ignore[arg-type]

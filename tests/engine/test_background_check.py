"""A large database's check runs after start, once start-up is over, and reports damage."""

from __future__ import annotations

import time
from types import SimpleNamespace

import veotui.engine.storage as storage_module
from veotui.datadir.health import DAMAGED
from veotui.engine.storage import check_database


async def test_the_deferred_check_waits_for_start_up_then_reports_damage(monkeypatch):
    monkeypatch.setattr(storage_module, "DEFERRED_CHECK_SECONDS", 0.2)
    checked: list[float] = []
    degraded: list[tuple[str, str]] = []

    def deferred_check() -> str:
        checked.append(time.monotonic())
        return "veotui.db is damaged"

    store = SimpleNamespace(deferred_check=deferred_check)
    guard = SimpleNamespace(degrade=lambda state, reason: degraded.append((state, reason)))
    started = time.monotonic()
    await check_database(store, guard)  # type: ignore[arg-type]  # stand-ins with only what the check reads
    assert checked and checked[0] - started >= 0.2
    assert degraded == [(DAMAGED, "veotui.db is damaged")]

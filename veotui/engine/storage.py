"""The engine's side of a disk (or database) that refuses writes.

A refused write never ends the engine: the write that must happen waits until the store
accepts writes again, dispatch pauses meanwhile, and the disk is probed with backoff. A large
database is checked once, a few seconds after start. Every part of the engine waits on this,
so it sits below them all.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from veotui.core.errors import StorageUnavailable
from veotui.datadir.health import DAMAGED, StorageGuard, StorageState
from veotui.store.jobs import JobStore

log = logging.getLogger(__name__)
T = TypeVar("T")
#: While the disk refuses writes it is probed after this delay, doubling up to the cap.
PROBE_FIRST_SECONDS = 0.25
PROBE_CAP_SECONDS = 5.0
#: Seconds after start before a large database's deferred check begins.
DEFERRED_CHECK_SECONDS = 5.0


class StorageWatch:
    """Whether the store accepts writes, probing it back to health, and waiting until it does."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.guard: StorageGuard = store.guard
        self._writable = anyio.Event()
        self._writable.set()
        self._refused = anyio.Event()
        self._probe_soon = anyio.Event()
        self.guard.add_listener(self._changed)

    @property
    def ok(self) -> bool:
        return self.guard.ok

    def when_writable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the store accepts writes again."""
        self.guard.add_listener(lambda state: callback() if state.ok else None)

    def _changed(self, state: StorageState) -> None:
        if state.ok:
            self._writable.set()
        else:
            if self._writable.is_set():
                self._writable = anyio.Event()
            self._refused.set()

    def set_reserve_aside(self) -> None:
        """Write the storage reserve (at start); a disk without room for it is degraded."""
        try:
            self.guard.ensure_reserve()
        except OSError as exc:
            self.guard.error(exc, "set aside its storage reserve")

    def probe_soon(self) -> None:
        """Something may have freed space (a delete): probe now rather than at the next backoff."""
        if not self.guard.ok:
            self._probe_soon.set()

    def probe(self) -> bool:
        """Whether the disk accepts writes now: the reserve can be written again and the store
        commits. Marks the storage recovered (which resumes everything) when it does."""
        if self.guard.ok:
            return True
        try:
            self.guard.ensure_reserve()
            self.store.probe()
        except StorageUnavailable:
            return False
        except OSError as exc:
            if self.guard.error(exc, "set aside its storage reserve") is None:
                log.warning("probing the data directory failed: %s", exc)
            return False
        self.guard.recovered()
        return True

    async def watch(self) -> None:
        """While the disk refuses writes, probe it with backoff until it accepts them."""
        while True:
            await self._refused.wait()
            delay = PROBE_FIRST_SECONDS
            while True:
                with anyio.move_on_after(delay):
                    await self._probe_soon.wait()
                self._probe_soon = anyio.Event()
                if self.probe():
                    break
                delay = min(delay * 2, PROBE_CAP_SECONDS)
            self._refused = anyio.Event()

    async def writable(self) -> None:
        """Wait until the store accepts writes again, after one was refused."""
        if self.guard.ok:  # refused without a fault on record (a lock timeout): do not spin
            await anyio.sleep(PROBE_FIRST_SECONDS)
        while not self.guard.ok:
            await self._writable.wait()

    async def persist(self, write: Callable[[], Awaitable[T]]) -> T:
        """A store write that must happen: waits out a disk (or a database) that refuses
        writes, then makes it again."""
        while True:
            try:
                return await write()
            except StorageUnavailable:
                await self.writable()


def at_once(call: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    """A store call that needs no awaiting, as :meth:`StorageWatch.persist` takes it."""

    async def awaited() -> T:
        return call()

    return awaited


async def check_database(store: JobStore, guard: StorageGuard) -> None:
    """A large database is checked after start; damage stops new starts until a restart.
    It waits a few seconds first, so its seconds of CPU do not slow the start-up it was
    deferred from (the first clients' reads, the TUI's first paint). It runs at normal
    priority: a thread that SQLite's process-wide locks may wait on must not be starved."""
    await anyio.sleep(DEFERRED_CHECK_SECONDS)
    reason = await anyio.to_thread.run_sync(store.deferred_check, abandon_on_cancel=True)
    if reason is not None:
        guard.degrade(DAMAGED, reason)

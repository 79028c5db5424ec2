"""What the scheduler needs of a store shared by a fleet of servers (PostgreSQL).

Kept apart from :mod:`veotui.store.postgres` so the engine can speak of a fleet without
importing the PostgreSQL driver, which SQLite users do not install.
"""

from __future__ import annotations

from typing import Any, Protocol

from veotui.core.errors import Conflict
from veotui.core.job import Job


class LeaseLost(Conflict):
    """This server no longer owns the job: its lease ran out and another server took it over."""


class FleetStore(Protocol):
    """The store of a fleet: one queue and one slot limit across servers; jobs on leases."""

    server_id: str
    lease_seconds: float

    @property
    def heartbeat_seconds(self) -> float: ...

    async def aclaim_next(self, slots: int, chosen: Job | None = None, limit: int | None = None) -> Job | None: ...

    def heartbeat(self) -> set[str]: ...

    def join(self, url: str | None, lease_seconds: float = ...) -> str: ...

    def leave(self) -> None: ...

    def servers(self, within: float | None = None) -> list[dict[str, Any]]: ...

    def take_over(self) -> list[Job]: ...


def fleet_of(store: object) -> FleetStore | None:
    """The store as a fleet's, or None for a store of one server (SQLite)."""
    return store if getattr(store, "fleet", False) else None  # type: ignore[return-value]

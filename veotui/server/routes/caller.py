"""Who sent the request, as the token middleware left it in the scope, and the engine acting
for them: the engine's rules decide what each role may do to whose job."""

from __future__ import annotations

from fastapi import Request

from veotui.backend.local import LocalBackend
from veotui.core.access import ADMIN, Actor
from veotui.server.auth import ACTOR_KEY


def actor(request: Request) -> Actor:
    """The caller; the admin on a server without tokens."""
    found = request.scope.get(ACTOR_KEY, ADMIN)
    if not isinstance(found, Actor):  # never a guess that could grant the admin's rights
        raise TypeError(f"the request's caller is {type(found).__name__}, not an Actor")
    return found


def acting(backend: LocalBackend, request: Request) -> LocalBackend:
    """The engine acting for the request's caller, who is noted with their address."""
    client = request.client
    return backend.acting_for(actor(request), client.host if client else None)

"""Bearer-token authentication for every route but ``/api/health``, and who the caller is.

The server's own token (``VEOTUI_TOKEN`` / ``--token``) is the user ``admin``; each user of the
config file's ``[users]`` table has a token of their own, kept there only as its SHA-256. The
middleware leaves the caller (an :class:`~veotui.core.access.Actor`) in the request's scope;
what that caller may do is decided by the backend, not here. With no token at all (a server
on loopback) every caller is the admin.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from veotui.core.access import ADMIN, Actor, UserEntry
from veotui.server.security import header, send_error

#: Paths anyone may call: a load balancer or a client checks liveness without a secret.
PUBLIC_PATHS = frozenset({"/api/health"})
#: Where the middleware leaves the caller (an Actor).
ACTOR_KEY = "veotui.actor"


class TokenTable:
    """The tokens a server accepts. ``required``: the server started with tokens, so it keeps
    asking for one even when the last user is removed from the config file."""

    def __init__(self, admin_token: str | None, users: Mapping[str, UserEntry], *, required: bool = False) -> None:
        self._admin = admin_token.encode() if admin_token else None
        # A token is looked up by its SHA-256: the table holds no token, and how long a
        # lookup takes says nothing about any token (the caller does not choose the hash).
        self._by_hash = {user.token_sha256: user.actor for user in users.values()}
        self.enabled = required or self._admin is not None or bool(self._by_hash)

    def check(self, given: str) -> Actor | None:
        """The caller whose token ``given`` is, or None."""
        candidate = given.encode()
        if self._admin is not None and hmac.compare_digest(candidate, self._admin):
            return ADMIN
        return self._by_hash.get(hashlib.sha256(candidate).hexdigest())


class BearerAuth:
    """Pure ASGI middleware: it also guards ``/openapi.json``, the docs and unknown paths."""

    def __init__(self, app: ASGIApp, tokens: Callable[[], TokenTable]) -> None:
        self.app = app
        self.tokens = tokens  # read at each request: the config file's users change while it runs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tokens = self.tokens()
        if scope["type"] != "http" or not tokens.enabled or scope["path"] in PUBLIC_PATHS:
            scope[ACTOR_KEY] = ADMIN
            await self.app(scope, receive, send)
            return
        given = header(scope, b"authorization")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            await _refuse(send, "this server needs a token: send the header Authorization: Bearer <token>")
            return
        actor = tokens.check(credentials.strip())
        if actor is None:
            await _refuse(send, "the bearer token is not one this server accepts")
            return
        scope[ACTOR_KEY] = actor
        await self.app(scope, receive, send)


async def _refuse(send: Send, detail: str) -> None:
    await send_error(send, 401, detail, [(b"www-authenticate", b'Bearer realm="veotui"')])

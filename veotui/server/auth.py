"""Bearer-token authentication for every route but ``/api/health``.

One admin token (``VEOTUI_TOKEN`` / ``--token``) and any number of per-user tokens (the
``[users]`` table of the config file). A per-user token also names who submits: the
server records that name as the job's ``user``, whatever the request says.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from veotui.core.errors import Forbidden
from veotui.server.security import header, send_error

#: Paths anyone may call: a load balancer or a client checks liveness without a secret.
PUBLIC_PATHS = frozenset({"/api/health"})
#: Where the middleware leaves the caller's user name (None: the admin token, or no tokens).
USER_KEY = "veotui.user"


def caller(scope: Scope) -> str | None:
    """The per-user token's user who sent the request; None for the server's own token, or
    any caller of a server without tokens (the admin)."""
    user = scope.get(USER_KEY)
    return user if isinstance(user, str) else None


def require_admin(scope: Scope, action: str) -> None:
    """Refuse (403) a per-user token: only the server's own token may ``action``."""
    user = caller(scope)
    if user is not None:
        raise Forbidden(f"{user} may not {action}; only the server's own token (VEOTUI_TOKEN) may")


class TokenTable:
    def __init__(self, admin_token: str | None, user_tokens: Mapping[str, str]) -> None:
        self._entries: list[tuple[bytes, str | None]] = [(token.encode(), user) for token, user in user_tokens.items()]
        if admin_token:
            self._entries.append((admin_token.encode(), None))

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    def check(self, given: str) -> tuple[bool, str | None]:
        """Whether ``given`` is a known token, and its user. Every entry is compared, in
        constant time, so the answer's timing says nothing about which token came close."""
        candidate = given.encode()
        found, user = False, None
        for token, name in self._entries:
            if hmac.compare_digest(candidate, token):
                found, user = True, name
        return found, user


class BearerAuth:
    """Pure ASGI middleware: it also guards ``/openapi.json``, the docs and unknown paths."""

    def __init__(self, app: ASGIApp, tokens: TokenTable) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.tokens.enabled or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        given = header(scope, b"authorization")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            await _refuse(send, "this server needs a token: send the header Authorization: Bearer <token>")
            return
        ok, user = self.tokens.check(credentials.strip())
        if not ok:
            await _refuse(send, "the bearer token is not one this server accepts")
            return
        scope[USER_KEY] = user
        await self.app(scope, receive, send)


async def _refuse(send: Send, detail: str) -> None:
    await send_error(send, 401, detail, [(b"www-authenticate", b'Bearer realm="veotui"')])

"""What keeps a web page from driving the server: a Host allow-list against DNS rebinding, and
a refusal of cross-site requests and of content types a route does not take.

A browser lets any page send a form (url-encoded, multipart or ``text/plain``) or a body-less
``fetch`` to any address, the loopback included, without asking the server first; it only
hides the answer from the page. So the server itself refuses such a request when the
browser's own headers (``Origin``, ``Sec-Fetch-Site``) say another site sent it, and takes
on each route only the content type that a form cannot send (``application/json``), plus
multipart where uploads need it (a cross-site multipart form is refused by its origin).
Clients that are not browsers (the CLI, the TUI, curl, scripts) send neither header and
are not affected.

A page that rebinds its own name to 127.0.0.1 is "same-origin" for the browser, but its
requests carry its own name in ``Host``: only the bound address, loopback names and the
names of ``allowed_hosts`` are answered.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Collection, Sequence
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from veotui.core.errors import ERROR_HEADER

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON = "application/json"
MULTIPART = "multipart/form-data"
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: At most this much of a header is quoted back in an error.
_QUOTED = 100


def split_host(value: str) -> tuple[str, int | None] | None:
    """``Host`` as (lower-case host without brackets, port or None); None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = value.partition(":")
        if ":" in port_text:
            return None  # an IPv6 address without brackets
    if not host or any(c in host for c in "/\\@?# ,"):
        return None
    if port_text:
        if not port_text.isdigit() or int(port_text) > 65535:
            return None
        return host, int(port_text)
    return host, None


class HostGuard:
    """Answer only for the address the server is bound to (``bound``: ``0.0.0.0`` too, as
    its start-up line prints it), the address the connection came in on, the loopback names,
    and the names in ``allowed_hosts`` (``*.example.com`` for a domain's names, ``*`` for
    any). Anything else is a 421 before any route (or the token check) runs."""

    def __init__(self, app: ASGIApp, allowed_hosts: Collection[str] = (), bound: str | None = None) -> None:
        self.app = app
        self.any = "*" in allowed_hosts
        bound_names = {bound.strip("[]").lower()} if bound else set()
        self.names = frozenset(h for h in allowed_hosts if not h.startswith("*")) | bound_names
        self.suffixes = tuple(h[1:] for h in allowed_hosts if h.startswith("*."))

    def allows(self, host: str, server: tuple[str, int] | None) -> bool:
        if self.any or host in LOOPBACK_NAMES or host in self.names:
            return True
        if any(host.endswith(suffix) for suffix in self.suffixes):
            return True
        # The address the request arrived on (with a wildcard bind, any of the machine's):
        # an address literal cannot be rebound, so it is safe to answer for.
        return server is not None and _same_address(host, server[0])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = header(scope, b"host")
        parsed = split_host(given)
        if parsed is not None and self.allows(parsed[0], scope.get("server")):
            await self.app(scope, receive, send)
            return
        await refuse(
            scope,
            send,
            421,
            f"this server does not answer for the host {_quoted(given)}: it answers for its own address, "
            "localhost, 127.0.0.1 and [::1]; add a name it is reached by to allowed_hosts (VEOTUI_ALLOWED_HOSTS)",
        )


class CrossSiteGuard:
    """No request from another site changes anything, and every change comes in a content
    type a plain form cannot send.

    - A request that changes something (not GET, HEAD or OPTIONS) is refused with 403 when
      its ``Origin`` is not this server's own (nor in ``allowed_origins``), or its
      ``Sec-Fetch-Site`` says another site (or origin) sent it.
    - Its body must be ``application/json`` (or multipart on ``form_paths``): anything else
      is a 415. A change without a body (cancel, resume) may leave the type out.
    - A GET that another site's page embeds (an image, a script, a fetch; not a link the
      user follows) is refused too: a download counts, and starts the auto-delete timer.
    """

    def __init__(self, app: ASGIApp, allowed_origins: Collection[str] = (), form_paths: Collection[str] = ()) -> None:
        self.app = app
        self.allowed_origins = frozenset(o.lower().rstrip("/") for o in allowed_origins)
        self.form_paths = frozenset(form_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self.problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
        else:
            await refuse(scope, send, *problem)

    def problem(self, scope: Scope) -> tuple[int, str] | None:
        method = scope["method"]
        origin = header(scope, b"origin").strip()
        fetch_site = header(scope, b"sec-fetch-site").strip().lower()
        allowed = bool(origin) and origin.lower().rstrip("/") in self.allowed_origins
        if method in SAFE_METHODS:
            embedded = fetch_site in ("cross-site", "same-site") and header(scope, b"sec-fetch-mode") != "navigate"
            if embedded and not allowed:
                return 403, (
                    f"another site's page may not load {_quoted(scope['path'])} from this server; "
                    "open it directly, or add that page's origin to allowed_origins (VEOTUI_ALLOWED_ORIGINS)"
                )
            return None
        if not allowed:
            foreign = origin and not _same_origin(origin, header(scope, b"host"))
            if foreign or fetch_site not in ("", "same-origin", "none"):
                who = f"a page on {_quoted(origin)}" if origin else "a page of another site"
                return 403, (
                    f"cross-site request refused: {who} may not change anything on this server; "
                    "if that page is yours, add its origin to allowed_origins (VEOTUI_ALLOWED_ORIGINS)"
                )
        return self._content_type_problem(scope)

    def _content_type_problem(self, scope: Scope) -> tuple[int, str] | None:
        takes = (JSON, MULTIPART) if scope["path"] in self.form_paths else (JSON,)
        what = f"{scope['method']} {scope['path']}"
        wanted = " or ".join(takes)
        given = header(scope, b"content-type")
        if given:
            media_type = given.split(";")[0].strip().lower()
            if media_type not in takes:
                return 415, f"{what} takes {wanted}, not {_quoted(media_type)}"
            return None
        if _has_body(scope):
            return 415, f"{what} has a body but no Content-Type; send it as {wanted}"
        return None


def _same_origin(origin: str, host_header: str) -> bool:
    """Whether a page at ``origin`` is this server as the request reached it (``Host``);
    behind a TLS proxy the scheme differs, so host and port decide."""
    try:
        parts = urlsplit(origin.lower())
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return False  # "null" (a sandboxed frame, a file), or something that is no origin
    host = split_host(host_header)
    if host is None:
        return False
    default = _DEFAULT_PORTS[parts.scheme]
    return parts.hostname == host[0] and (port or default) == (host[1] or default)


def _same_address(host: str, address: str) -> bool:
    try:
        return _unmapped(ipaddress.ip_address(host)) == _unmapped(ipaddress.ip_address(address))
    except ValueError:
        return False


def _unmapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4 client of a dual-stack socket shows as ``::ffff:a.b.c.d``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def header(scope: Scope, name: bytes) -> str:
    """A request header's value (the first, as text), or ``""``."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _quoted(text: str) -> str:
    return repr(text if len(text) <= _QUOTED else text[:_QUOTED] + "…")


async def refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
    """Refused by a middleware. A body the request still carries is left unread: the
    connection closes, so the client stops sending it."""
    headers = [(ERROR_HEADER.encode(), b"InvalidRequest")] if status == 415 else []
    if _has_body(scope):
        headers.append((b"connection", b"close"))
    await send_error(send, status, detail, headers)


async def send_error(send: Send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """An error answer as the routes give one (``{"detail": …}``), from below the app."""
    body = json.dumps({"detail": detail}).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


def _has_body(scope: Scope) -> bool:
    return bool(header(scope, b"transfer-encoding")) or header(scope, b"content-length").strip() not in ("", "0")

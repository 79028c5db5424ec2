"""The REST server (the original web service's API, and more) over the engine: ``veotui serve``."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any
from urllib.parse import urlsplit

from veotui.backend.base import BackendInfo
from veotui.datadir.health import format_bytes
from veotui.datadir.privacy import exposed_secrets
from veotui.logs import log_to_stderr
from veotui.server.limits import allow_open_files
from veotui.server.memory import freeze_heap, limit_arenas
from veotui.server.running import is_loopback, running_server
from veotui.settings import Settings

__all__ = ["running_server", "serve"]


def serve(settings: Settings, host: str, port: int, log_level: str | None = None) -> int:
    """Serve until SIGINT or SIGTERM. Exit status: 0 after a clean stop, 2 when asked to
    listen beyond this machine without a token. Log records go to stderr from ``log_level``
    up (default warning) as well as to the log file. :class:`DataDirBusy` and a port that is
    taken propagate as :class:`VeotuiError` (the CLI prints them, exit 1)."""
    if not is_loopback(host) and not (settings.token or settings.users):
        print(
            f"veotui: refusing to listen on {host} without a token: anyone who can reach this "
            "machine could submit, download and delete jobs. Set --token or VEOTUI_TOKEN, or "
            "keep the default --host 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    for warning in exposed_secrets(settings):
        print(f"veotui: warning: {warning}", file=sys.stderr)
    limit_arenas()
    allow_open_files(settings.max_connections)
    log_to_stderr(settings, level=log_level)
    asyncio.run(_serve(settings, host, port))
    return 0


async def _serve(settings: Settings, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_server(settings, host, port) as server:
            # SIGHUP: read the config file's users now (veotui users add, rotate, remove).
            loop.add_signal_handler(signal.SIGHUP, lambda: server.app.state.users.check(force=True))
            info = await server.backend.info()
            generator = "the offline simulator" if info.is_simulator else info.generator
            auth = "a token" if settings.token or settings.users else "no token (loopback only)"
            print(f"veotui serves {server.url}", flush=True)
            here = client_url(server.url)
            token = " (and VEOTUI_TOKEN)" if settings.token or settings.users else ""
            print(
                f"  generator: {generator}; {info.max_concurrent} slots; data: {info.data_dir}; auth: {auth}\n"
                f"  attach with: veotui --remote {here}   stop with Ctrl+C\n"
                f"  for the client verbs{token}: export VEOTUI_REMOTE={here}",
                flush=True,
            )
            if info.fleet is not None:
                print(f"  store: {server.backend.store!r}", flush=True)
                print(f"  {files_line(info, settings)}", flush=True)
                print(f"  {fleet_line(info.fleet)}", flush=True)
            freeze_heap()
            await stop.wait()
            print("veotui: stopping; processing jobs resume at the next start", file=sys.stderr, flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def files_line(info: BackendInfo, settings: Settings) -> str:
    """Where the fleet's job files live: the shared directory, or the bucket with a cache."""
    if info.shared_dir:
        return f"files: in the data directory {info.data_dir}, shared by the fleet (shared_dir)"
    return (
        f"files: in the bucket gs://{settings.gcs_bucket}; {info.data_dir} is this server's own cache "
        f"of at most {format_bytes(settings.cache_max_bytes)} (no shared directory)"
    )


def client_url(url: str) -> str:
    """The URL a client on this machine uses: a server bound to every address (0.0.0.0,
    ::) answers on loopback."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in ("0.0.0.0", "::"):
        loopback = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
        return f"{parts.scheme}://{loopback}:{parts.port}"
    return url


def fleet_line(fleet: dict[str, Any]) -> str:
    """The fleet in one line: this server, the other live ones, the slots in use."""
    me = fleet["server_id"]
    others = [f"{s['server_id']} ({s['url'] or s['host']})" for s in fleet["servers"] if s["server_id"] != me]
    return (
        f"fleet: this server {me}; other live servers: {', '.join(others) or 'none'}; "
        f"slots in use across the fleet: {fleet['slots_in_use'] if fleet['slots_in_use'] is not None else 'unknown'}"
    )

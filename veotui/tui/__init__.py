"""The Textual TUI: a client of the backend interface, never of the engine directly."""

from __future__ import annotations

import asyncio
import sys

from veotui.backend.base import Backend
from veotui.core.errors import VeotuiError
from veotui.settings import Settings


def make_backend(settings: Settings, remote: str | None = None) -> Backend:
    """The embedded engine, or a client of the server at ``remote``."""
    if remote:
        from veotui.backend.remote import RemoteBackend

        return RemoteBackend(remote, token=settings.token)
    from veotui.backend.local import LocalBackend

    return LocalBackend(settings)


def run_tui(settings: Settings, remote: str | None = None) -> int:
    """Start the backend, run the app on it, stop it; a backend that cannot start (the data
    directory is busy, the server is unreachable) is one line on stderr and exit status 1."""
    from veotui.logs import silence_terminal
    from veotui.tui import pictures
    from veotui.tui.app import VeotuiApp

    silence_terminal()
    pictures.prepare(settings.pictures)  # before the app owns the terminal

    async def main() -> int:
        backend = make_backend(settings, remote)
        try:
            await backend.start()
        except VeotuiError as exc:
            print(f"veotui: {exc}", file=sys.stderr)
            return 1
        try:
            result = await VeotuiApp(backend, settings).run_async()
        finally:
            await backend.close()
        return result if isinstance(result, int) else 0

    return asyncio.run(main())

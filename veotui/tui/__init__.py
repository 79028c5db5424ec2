"""The Textual TUI: a client of the backend interface, never of the engine directly."""

from __future__ import annotations

import sys

from veotui.settings import Settings


def run_tui(settings: Settings, remote: str | None = None) -> int:
    print("veotui: the TUI is not built yet; `veotui serve` and the client verbs work", file=sys.stderr)
    return 1

"""The REST server of the seed's API over the engine."""

from __future__ import annotations

import sys

from veotui.settings import Settings


def serve(settings: Settings, host: str, port: int) -> int:
    print("veotui: the server is not built yet", file=sys.stderr)
    return 1

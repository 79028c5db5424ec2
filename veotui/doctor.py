"""`veotui doctor`: checks the Google Cloud settings without generating anything."""

from __future__ import annotations

import sys

from veotui.settings import Settings


def run_doctor(settings: Settings) -> int:
    print("veotui: doctor is not built yet", file=sys.stderr)
    return 1

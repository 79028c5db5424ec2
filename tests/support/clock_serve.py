"""``veotui serve`` under a wall clock the test can step: SIGUSR1 moves it one hour forward,
SIGUSR2 two hours back. The monotonic clock is left alone, as a real clock step leaves it.

``python -m tests.support.clock_serve serve --port 0``; the arguments go to ``veotui``.
"""

from __future__ import annotations

import signal
import sys
from datetime import UTC, datetime

import time_machine

from veotui.cli import main

if __name__ == "__main__":
    traveller = time_machine.travel(datetime.now(UTC), tick=True).start()
    signal.signal(signal.SIGUSR1, lambda *_: traveller.shift(3600))
    signal.signal(signal.SIGUSR2, lambda *_: traveller.shift(-7200))
    sys.exit(main(sys.argv[1:]))
